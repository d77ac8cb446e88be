//! Time the pieces of one NPE training step of sbi's default neural spline
//! flow at slcp's sizes (5 parameters, 8 data, batch 200), and the spline
//! alone; for profiling (`perf record -- target/release/examples/flow_step`):
//! `cargo run --release -p cosmodiff-nn --example flow_step`.
use cosmodiff_nn::burn::tensor::{Distribution, Tensor};
use cosmodiff_nn::spline::{n_params, rq_forward};
use cosmodiff_nn::tensor::default_device;
use cosmodiff_nn::{FlowConfig, FlowKind};
use std::time::Instant;

fn main() {
    let dev = default_device().autodiff();
    let reps = 200;
    let flow = FlowConfig::new(FlowKind::Nsf, 5, 8).init(&dev).unwrap();
    let y = Tensor::<2>::random([200, 5], Distribution::Normal(0.0, 1.0), &dev);
    let c = Tensor::<2>::random([200, 8], Distribution::Normal(0.0, 1.0), &dev);
    let t = Instant::now();
    for _ in 0..reps {
        let l = flow.log_prob(y.clone(), Some(c.clone())).mean().neg();
        let _g = l.backward();
    }
    let full = t.elapsed().as_secs_f64() / reps as f64;
    let x = Tensor::<2>::random([200, 1], Distribution::Normal(0.0, 1.0), &dev);
    let p = Tensor::<3>::random([200, 1, n_params(10)], Distribution::Normal(0.0, 1.0), &dev)
        .require_grad();
    let t = Instant::now();
    for _ in 0..reps * 5 {
        let (z, ld) = rq_forward(x.clone(), p.clone(), 10, 3.0);
        let _g = (z.sum() + ld.sum()).backward();
    }
    let spl = t.elapsed().as_secs_f64() / reps as f64;
    use cosmodiff_nn::burn::optim::{GradientsParams, ModuleOptimizer};
    let mut optim =
        ModuleOptimizer::from(cosmodiff_nn::adam_kernel::FusedAdam::new(0.9, 0.999, 1e-8));
    let mut flow = flow;
    // Per phase over all steps, and whole steps in blocks of 50 (the
    // minimum block is robust to a noisy machine).
    let (mut tb, mut tg, mut to) = (0.0, 0.0, 0.0);
    let (mut block, mut blocks) = (0.0, Vec::new());
    let steps = reps * 3;
    for rep in 0..steps {
        let t0 = Instant::now();
        let l = flow.log_prob(y.clone(), Some(c.clone())).mean().neg();
        let g = l.backward();
        let t1 = Instant::now();
        let mut g = GradientsParams::from_grads(g, &flow);
        cosmodiff_nn::train::clip_global_norm(&flow, &mut g, 5.0);
        let t2 = Instant::now();
        flow = optim.step(1e-4, flow, g);
        let t3 = Instant::now();
        tb += (t1 - t0).as_secs_f64();
        tg += (t2 - t1).as_secs_f64();
        to += (t3 - t2).as_secs_f64();
        block += (t3 - t0).as_secs_f64();
        if rep % 50 == 49 {
            blocks.push(block * 1e3 / 50.0);
            block = 0.0;
        }
    }
    blocks.sort_by(f64::total_cmp);
    let r = 1e3 / steps as f64;
    println!(
        "step: fwd+bwd {:.3} ms, grads+clip {:.3} ms, adam {:.3} ms; blocks of 50: min {:.3} ms, median {:.3} ms",
        tb * r,
        tg * r,
        to * r,
        blocks[0],
        blocks[blocks.len() / 2]
    );
    println!(
        "flow log_prob fwd+bwd: {:.3} ms; 5 x spline fwd+bwd: {:.3} ms ({:.0}%)",
        full * 1e3,
        spl * 1e3,
        100.0 * spl / full
    );
}
