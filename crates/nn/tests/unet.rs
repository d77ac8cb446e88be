//! U-Net shapes, noise conditioning and a training-step smoke test.

use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Distribution, Tensor};
use cosmodiff_nn::tensor::{default_device, scalar};
use cosmodiff_nn::UNetConfig;

#[test]
fn unet_keeps_the_map_shape_and_depends_on_the_noise_level() {
    let device = default_device();
    let cfg = UNetConfig {
        in_channels: 1,
        channels: vec![8, 16, 16],
        embed_dim: 16,
    };
    cfg.validate(16).unwrap();
    assert!(
        cfg.validate(10).is_err(),
        "10 is not a multiple of 4 (3 levels)"
    );
    let net = cfg.init(&device);
    let x: Tensor<4> = Tensor::random([3, 1, 16, 16], Distribution::Normal(0.0, 1.0), &device);
    let y1 = net.forward(x.clone(), &[0.0, 0.0, 0.0]);
    assert_eq!(y1.dims(), [3, 1, 16, 16]);
    let y2 = net.forward(x, &[1.0, 1.0, 1.0]);
    let d = scalar((y1 - y2).abs().sum().reshape([1]));
    assert!(d > 1e-4, "output must depend on the noise code ({d})");
}

#[test]
fn unet_learns_to_denoise_a_constant_map() {
    // A few Adam steps on "predict -x" must reduce the loss: gradients flow
    // through every block (pooling, up-sampling, skips, embedding).
    let device = default_device();
    let ad = device.clone().autodiff();
    ad.seed(0);
    let cfg = UNetConfig {
        in_channels: 1,
        channels: vec![8, 8],
        embed_dim: 8,
    };
    let mut net = cfg.init(&ad);
    let mut opt = AdamConfig::new().init();
    let x: Tensor<4> = Tensor::random([4, 1, 8, 8], Distribution::Normal(0.0, 1.0), &device);
    let mut first = None;
    let mut last = 0.0;
    for _ in 0..30 {
        let r = net.forward(x.clone(), &[0.0; 4]) + x.clone();
        let loss = (r.clone() * r).mean().reshape([1]);
        let v = scalar(loss.clone().detach().without_autodiff());
        first.get_or_insert(v);
        last = v;
        let g = GradientsParams::from_grads(loss.backward(), &net);
        net = opt.step(3e-3, net, g);
    }
    assert!(
        last < 0.5 * first.unwrap(),
        "loss {} -> {last}",
        first.unwrap()
    );
}
