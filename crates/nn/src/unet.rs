//! A small U-Net for score and denoising models on square maps
//! (Ronneberger et al. 2015; the noise-conditional residual design of Ho et
//! al. 2020 and Song et al. 2021, scaled down for CPUs).
//!
//! `forward(x, c_noise)`: `x` is `[batch, channels, n, n]`, `c_noise` one
//! noise-level code per map (e.g. `ln(sigma) / 4`). The code enters through
//! sinusoidal features `sin(w_i c), cos(w_i c)` (`w_i` log-spaced in
//! `[0.5, 64]`) and a two-layer MLP, whose output is added as a per-channel
//! bias inside every residual block.
//!
//! Layout for `channels = [c0, c1, .., cL]` (`n` divisible by `2^L`):
//! `conv_in -> Res(c0) -> [pool -> Res(c_l)]_{l=1..L} -> Res(cL) ->
//! [up -> Res(cat(h, skip_l) -> c_l)]_{l=L-1..0} -> GN, SiLU, conv_out`.
//! Residual blocks: `GN, SiLU, conv3x3, + emb, GN, SiLU, conv3x3` plus a 1x1
//! convolution on the skip path when the width changes. Down-sampling is
//! 2x2 average pooling, up-sampling nearest-neighbour, convolutions
//! zero-padded ("same").

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig};
use burn::nn::{GroupNorm, GroupNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::silu;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::conv_kernel::conv2d_same;
use crate::error::{invalid, NnError};
use crate::norm_kernel::group_norm_silu;

/// Architecture of a [`UNet`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UNetConfig {
    /// Input and output channels.
    pub in_channels: usize,
    /// Width per resolution level, finest first (one level per entry).
    pub channels: Vec<usize>,
    /// Width of the noise embedding.
    pub embed_dim: usize,
}

impl Default for UNetConfig {
    fn default() -> Self {
        Self {
            in_channels: 1,
            channels: vec![16, 32, 64],
            embed_dim: 64,
        }
    }
}

impl UNetConfig {
    pub fn validate(&self, side: usize) -> Result<(), NnError> {
        if self.in_channels == 0 || self.channels.is_empty() || self.embed_dim < 4 {
            return invalid("U-Net needs >= 1 input channel, >= 1 level and embed_dim >= 4");
        }
        if self.channels.iter().any(|&c| c == 0 || c > 1024) {
            return invalid(format!(
                "U-Net channel widths must be in 1..=1024, got {:?}",
                self.channels
            ));
        }
        let f = 1usize << (self.channels.len() - 1);
        if side == 0 || !side.is_multiple_of(f) || side / f < 2 {
            return invalid(format!(
                "a U-Net with {} levels needs maps whose side is a multiple of {f} and at least {}; got {side}",
                self.channels.len(),
                2 * f
            ));
        }
        Ok(())
    }

    pub fn init(&self, device: &Device) -> UNet {
        let c = &self.channels;
        let e = self.embed_dim;
        let conv = |i: usize, o: usize, k: usize| {
            Conv2dConfig::new([i, o], [k, k])
                .with_padding(PaddingConfig2d::Same)
                .init(device)
        };
        let down = (1..c.len())
            .map(|l| ResBlock::new(c[l - 1], c[l], Some(e), true, device))
            .collect();
        let up = (0..c.len() - 1)
            .rev()
            .map(|l| ResBlock::new(c[l + 1] + c[l], c[l], Some(e), true, device))
            .collect();
        let last = *c.last().expect("validated");
        UNet {
            embed1: LinearConfig::new(e, e).init(device),
            embed2: LinearConfig::new(e, e).init(device),
            conv_in: conv(self.in_channels, c[0], 3),
            first: ResBlock::new(c[0], c[0], Some(e), true, device),
            down,
            mid: ResBlock::new(last, last, Some(e), true, device),
            up,
            norm_out: group_norm(c[0], device),
            conv_out: conv(c[0], self.in_channels, 3),
            pool: AvgPoolConfig::pool(),
            embed_dim: e,
        }
    }
}

struct AvgPoolConfig;
impl AvgPoolConfig {
    fn pool() -> AvgPool2d {
        AvgPool2dConfig::new([2, 2]).with_strides([2, 2]).init()
    }
}

fn group_norm(ch: usize, device: &Device) -> GroupNorm {
    let groups = [8, 4, 2, 1]
        .into_iter()
        .find(|g| ch.is_multiple_of(*g))
        .unwrap_or(1);
    GroupNormConfig::new(groups, ch).init(device)
}

/// Pre-activation residual block (He et al. 2016):
/// `[GN], SiLU, conv3x3, [+ emb], [GN], SiLU, conv3x3` plus the input
/// (through a 1x1 convolution when the width changes), with an optional
/// per-channel bias from a noise embedding. The U-Net's blocks normalise
/// and take the embedding; the ResNet summary network's do neither, since
/// a per-map normalisation would erase the map's amplitude, which is what
/// carries sigma8.
#[derive(Module, Debug)]
pub struct ResBlock {
    norm1: Option<GroupNorm>,
    conv1: Conv2d,
    emb: Option<Linear>,
    norm2: Option<GroupNorm>,
    conv2: Conv2d,
    skip: Option<Conv2d>,
}

impl ResBlock {
    /// `e`: width of the noise embedding, if any; `norm`: GroupNorm before
    /// each activation.
    pub(crate) fn new(
        cin: usize,
        cout: usize,
        e: Option<usize>,
        norm: bool,
        device: &Device,
    ) -> Self {
        let conv = |i: usize, o: usize, k: usize| {
            Conv2dConfig::new([i, o], [k, k])
                .with_padding(PaddingConfig2d::Same)
                .init(device)
        };
        Self {
            norm1: norm.then(|| group_norm(cin, device)),
            conv1: conv(cin, cout, 3),
            emb: e.map(|e| LinearConfig::new(e, cout).init(device)),
            norm2: norm.then(|| group_norm(cout, device)),
            conv2: conv(cout, cout, 3),
            skip: (cin != cout).then(|| conv(cin, cout, 1)),
        }
    }

    pub(crate) fn forward(&self, x: Tensor<4>, emb: Option<Tensor<2>>) -> Tensor<4> {
        let mut h = conv2d_same(&self.conv1, norm_silu(&self.norm1, x.clone()));
        if let (Some(layer), Some(emb)) = (&self.emb, emb) {
            let [b, c] = [h.dims()[0], h.dims()[1]];
            h = h + layer.forward(emb).reshape([b, c, 1, 1]);
        }
        let h = conv2d_same(&self.conv2, norm_silu(&self.norm2, h));
        let s = match &self.skip {
            Some(conv) => conv2d_same(conv, x),
            None => x,
        };
        h + s
    }
}

/// `SiLU(GN(x))`, or `SiLU(x)` without a norm.
fn norm_silu(norm: &Option<GroupNorm>, x: Tensor<4>) -> Tensor<4> {
    match norm {
        Some(n) => group_norm_silu(n, x),
        None => crate::silu_kernel::silu(x),
    }
}

/// The noise-conditional U-Net.
#[derive(Module, Debug)]
pub struct UNet {
    embed1: Linear,
    embed2: Linear,
    conv_in: Conv2d,
    first: ResBlock,
    down: Vec<ResBlock>,
    mid: ResBlock,
    up: Vec<ResBlock>,
    norm_out: GroupNorm,
    conv_out: Conv2d,
    pool: AvgPool2d,
    embed_dim: usize,
}

/// Nearest-neighbour 2x up-sampling by broadcasting.
fn upsample2(x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, c, h, 1, w, 1])
        .expand([b, c, h, 2, w, 2])
        .reshape([b, c, 2 * h, 2 * w])
}

impl UNet {
    /// Sinusoidal features of the noise codes, `[batch, embed_dim]`.
    fn features(&self, c_noise: &[f32], device: &Device) -> Tensor<2> {
        let half = self.embed_dim / 2;
        let mut v = Vec::with_capacity(c_noise.len() * self.embed_dim);
        for &c in c_noise {
            for i in 0..half {
                let w = 0.5 * 128f32.powf(i as f32 / (half.max(2) - 1) as f32);
                v.push((w * c).sin());
            }
            for i in 0..half {
                let w = 0.5 * 128f32.powf(i as f32 / (half.max(2) - 1) as f32);
                v.push((w * c).cos());
            }
            v.resize(v.len() + self.embed_dim - 2 * half, 0.0);
        }
        Tensor::from_data(TensorData::new(v, [c_noise.len(), self.embed_dim]), device)
    }

    /// `x`: `[batch, channels, n, n]`; `c_noise`: one code per map.
    pub fn forward(&self, x: Tensor<4>, c_noise: &[f32]) -> Tensor<4> {
        let device = x.device();
        let f = self.features(c_noise, &device);
        let emb = self.embed2.forward(silu(self.embed1.forward(f)));
        let mut h = self
            .first
            .forward(conv2d_same(&self.conv_in, x), Some(emb.clone()));
        let mut skips = vec![h.clone()];
        for block in &self.down {
            h = block.forward(self.pool.forward(h), Some(emb.clone()));
            skips.push(h.clone());
        }
        h = self.mid.forward(h, Some(emb.clone()));
        skips.pop();
        for block in &self.up {
            let s = skips.pop().expect("one skip per level");
            h = block.forward(Tensor::cat(vec![upsample2(h), s], 1), Some(emb.clone()));
        }
        conv2d_same(&self.conv_out, group_norm_silu(&self.norm_out, h))
    }
}
