//! The networks of cosmodiff timed on the selected device
//! ([`crate::device`]), for `cosmodiff nn bench` and its PyTorch twins
//! (`bench/nn/torch_twins.py`, the same architectures, sizes and losses).
//!
//! | workload | network | training step | inference |
//! |---|---|---|---|
//! | `unet64`, `unet128` | the score U-Net ([`crate::unet`], default widths) | denoising score matching, batch 32 / 8 maps | score of 16 maps |
//! | `nsf_two_moons`, `nsf_slcp` | neural spline flow (5 coupling transforms, 50 hidden, 10 bins; sbi's NPE default) on 2 \| 5 parameters given 2 \| 8 data | -log q(theta \| x), batch 200 | log q of 1000 rows |
//! | `encoder` | the VMIM compressor's ResNet ([`crate::embedding`], width 8) on 5 tomographic 64x64 maps -> 6 summaries | MSE regression, batch 64 maps | 64 maps |
//! | `graph` | 4 message-passing layers ([`crate::graph`], width 64) on a periodic 20-nearest-neighbour graph of 5000 points | MSE on a per-point target, one graph | one graph |
//!
//! Every training step is the one [`crate::train::fit`] takes: loss,
//! backward pass, global gradient clipping at norm 1, the Adam update.

use std::cell::RefCell;
use std::time::Instant;

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;

use crate::adam_kernel::FusedAdam;
use crate::embedding::{Embedding, EmbeddingConfig, EmbeddingKind};
use crate::error::{invalid, NnError};
use crate::flow::{FlowConfig, FlowKind};
use crate::graph::{knn_periodic, MessagePassing};
use crate::tensor::{default_device, int_tensor};
use crate::train::clip_global_norm;
use crate::unet::UNetConfig;

/// A benchmark workload (see the module table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// Score U-Net on 64x64 maps.
    UNet64,
    /// Score U-Net on 128x128 maps.
    UNet128,
    /// NSF of the two_moons task.
    NsfTwoMoons,
    /// NSF of the SLCP task.
    NsfSlcp,
    /// The VMIM compressor's ResNet.
    Encoder,
    /// Message passing on a k-nearest-neighbour graph.
    Graph,
}

impl Workload {
    /// All workloads, in the order of the table.
    pub const ALL: [Workload; 6] = [
        Self::UNet64,
        Self::UNet128,
        Self::NsfTwoMoons,
        Self::NsfSlcp,
        Self::Encoder,
        Self::Graph,
    ];

    /// Its name on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::UNet64 => "unet64",
            Self::UNet128 => "unet128",
            Self::NsfTwoMoons => "nsf_two_moons",
            Self::NsfSlcp => "nsf_slcp",
            Self::Encoder => "encoder",
            Self::Graph => "graph",
        }
    }

    /// The workload of a name.
    pub fn parse(s: &str) -> Result<Self, NnError> {
        Self::ALL
            .into_iter()
            .find(|w| w.name() == s.trim())
            .map_or_else(
                || {
                    let names: Vec<_> = Self::ALL.iter().map(|w| w.name()).collect();
                    invalid(format!(
                        "unknown workload '{s}'; expected one of {}",
                        names.join(", ")
                    ))
                },
                Ok,
            )
    }

    /// Items (maps, rows, graphs) per training step.
    pub fn train_batch(self) -> usize {
        match self {
            Self::UNet64 => 32,
            Self::UNet128 => 8,
            Self::NsfTwoMoons | Self::NsfSlcp => 200,
            Self::Encoder => 64,
            Self::Graph => 1,
        }
    }

    /// Items per inference call.
    pub fn eval_batch(self) -> usize {
        match self {
            Self::UNet64 | Self::UNet128 => 16,
            Self::NsfTwoMoons | Self::NsfSlcp => 1000,
            Self::Encoder => 64,
            Self::Graph => 1,
        }
    }
}

/// Seconds per training step and per inference call (best of the timed
/// repeats), and the network's parameter count.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Seconds per training step (loss, backward, clipping, Adam).
    pub train_step_s: f64,
    /// Seconds per inference call (forward pass, no gradients).
    pub eval_s: f64,
    /// Trainable parameters.
    pub params: usize,
}

/// Time `steps` training steps and `evals` inference calls of `w` on the
/// selected device, after one warm-up step and call.
pub fn time(w: Workload, steps: usize, evals: usize) -> Result<Timing, NnError> {
    if steps == 0 || evals == 0 {
        return invalid("steps and evals must be at least 1");
    }
    let ad = default_device().autodiff();
    let rng = RefCell::new(ChaCha8Rng::seed_from_u64(0));
    let normal = |shape: &[usize], dev: &Device| -> Tensor<2> {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|_| rng.borrow_mut().sample(StandardNormal))
            .collect();
        Tensor::from_data(TensorData::new(v, [shape[0], n / shape[0]]), dev)
    };
    let dev = default_device();
    match w {
        Workload::UNet64 | Workload::UNet128 => {
            let side = if w == Workload::UNet64 { 64 } else { 128 };
            let (b, e) = (w.train_batch(), w.eval_batch());
            let x0 = normal(&[b, side * side], &ad).reshape([b, 1, side, side]);
            let loss = |net: &crate::unet::UNet| {
                // sigma log-uniform on [0.005, 50], as the score prior trains
                let sigma: Vec<f32> = (0..b)
                    .map(|_| (rng.borrow_mut().random_range(0.005f32.ln()..50f32.ln())).exp())
                    .collect();
                let code: Vec<f32> = sigma.iter().map(|s| s.ln() / 4.0).collect();
                let s = |f: fn(f32) -> f32| {
                    let v: Vec<f32> = sigma.iter().map(|&s| f(s)).collect();
                    Tensor::<1>::from_data(TensorData::new(v, [b]), &ad).reshape([b, 1, 1, 1])
                };
                let z = normal(&[b, side * side], &ad).reshape([b, 1, side, side]);
                let x = (x0.clone() + z.clone() * s(|s| s)) / s(|s| (1.0 + s * s).sqrt());
                (net.forward(x, &code) + z).powi_scalar(2).mean()
            };
            let x = normal(&[e, side * side], &dev).reshape([e, 1, side, side]);
            let code = vec![0.0f32; e];
            measure(UNetConfig::default().init(&ad), steps, evals, loss, |net| {
                net.forward(x.clone(), &code).into_data();
            })
        }
        Workload::NsfTwoMoons | Workload::NsfSlcp => {
            let (dim, ctx) = if w == Workload::NsfTwoMoons {
                (2, 2)
            } else {
                (5, 8)
            };
            let (b, e) = (w.train_batch(), w.eval_batch());
            let (y, c) = (normal(&[b, dim], &ad), normal(&[b, ctx], &ad));
            let loss = |f: &crate::flow::Flow| -f.log_prob(y.clone(), Some(c.clone())).mean();
            let (ye, ce) = (normal(&[e, dim], &dev), normal(&[e, ctx], &dev));
            let flow = FlowConfig::new(FlowKind::Nsf, dim, ctx).init(&ad)?;
            measure(flow, steps, evals, loss, |f| {
                f.log_prob(ye.clone(), Some(ce.clone())).into_data();
            })
        }
        Workload::Encoder => {
            let (channels, side, out) = (5, 64, 6);
            let mut cfg = EmbeddingConfig::new(EmbeddingKind::ResNet, channels * side * side);
            cfg.channels = channels;
            cfg.hidden = 8;
            cfg.output_dim = out;
            let Some(net) = cfg.init(&ad)? else {
                return invalid("the ResNet embedding was not built");
            };
            let b = w.train_batch();
            let (x, t) = (
                normal(&[b, channels * side * side], &ad),
                normal(&[b, out], &ad),
            );
            let loss = |net: &Embedding| (net.forward(x.clone()) - t.clone()).powi_scalar(2).mean();
            let xe = normal(&[w.eval_batch(), channels * side * side], &dev);
            measure(net, steps, evals, loss, |net| {
                net.forward(xe.clone()).into_data();
            })
        }
        Workload::Graph => {
            let (n, k, hidden) = (5000, 20, 64);
            let points: Vec<f32> = (0..3 * n)
                .map(|_| rng.borrow_mut().random_range(0.0..1000.0f32))
                .collect();
            let (s, r, f) = knn_periodic(&points, 1000.0, k);
            let graph = |dev: &Device| Graph {
                x: Tensor::from_data(TensorData::new(points.clone(), [n, 3]), dev) / 1000.0,
                senders: int_tensor(&s, dev),
                receivers: int_tensor(&r, dev),
                edges: Tensor::from_data(TensorData::new(f.clone(), [s.len(), 4]), dev) / 100.0,
            };
            let (g, target) = (graph(&ad), normal(&[n, 3], &ad));
            let loss = |net: &GraphNet| (net.forward(&g) - target.clone()).powi_scalar(2).mean();
            let ge = graph(&dev);
            measure(GraphNet::new(hidden, 4, &ad), steps, evals, loss, |net| {
                net.forward(&ge).into_data();
            })
        }
    }
}

/// Train `net` (on the autodiff device) for `steps` timed steps of `loss`,
/// then time `evals` calls of `eval` on its inference copy (the timing of
/// every workload here, and of other crates' networks).
pub fn measure<M, L, E>(
    net: M,
    steps: usize,
    evals: usize,
    loss: L,
    eval: E,
) -> Result<Timing, NnError>
where
    M: Module + Clone,
    L: Fn(&M) -> Tensor<1>,
    E: Fn(&M),
{
    let params = net.num_params();
    let (net, train_step_s) = train_steps(net, steps, loss)?;
    let net = net.valid();
    Ok(Timing {
        train_step_s,
        eval_s: best_time(evals, || eval(&net)),
        params,
    })
}

/// One warm-up step, then `steps` timed ones; returns the trained model
/// and the seconds per step.
fn train_steps<M, F>(model: M, steps: usize, loss: F) -> Result<(M, f64), NnError>
where
    M: Module + Clone,
    F: Fn(&M) -> Tensor<1>,
{
    let mut optim = ModuleOptimizer::from(FusedAdam::new(0.9, 0.999, 1e-8));
    let mut model = model;
    let mut t0 = Instant::now();
    for i in 0..=steps {
        if i == 1 {
            t0 = Instant::now();
        }
        let l = loss(&model);
        let v = crate::tensor::scalar(l.clone().detach().without_autodiff());
        if !v.is_finite() {
            return Err(NnError::Diverged { epoch: 0, loss: v });
        }
        let mut grads = GradientsParams::from_grads(l.backward(), &model);
        clip_global_norm(&model, &mut grads, 1.0);
        model = optim.step(1e-4, model, grads);
    }
    Ok((model, t0.elapsed().as_secs_f64() / steps as f64))
}

/// The best of `n` timed calls of `f`, after one warm-up call.
fn best_time(n: usize, f: impl Fn()) -> f64 {
    f();
    (0..n)
        .map(|_| {
            let t0 = Instant::now();
            f();
            t0.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

/// A point cloud's graph: normalised positions `[n, 3]`, edges `j -> i`
/// and their features `[edges, 4]`.
struct Graph {
    x: Tensor<2>,
    senders: Tensor<1, Int>,
    receivers: Tensor<1, Int>,
    edges: Tensor<2>,
}

/// `layers` message-passing layers between a linear embedding of the
/// positions and a linear read-out of 3 values per point.
#[derive(Module, Debug)]
struct GraphNet {
    embed: Linear,
    layers: Vec<MessagePassing>,
    out: Linear,
}

impl GraphNet {
    fn new(hidden: usize, layers: usize, device: &Device) -> Self {
        Self {
            embed: LinearConfig::new(3, hidden).init(device),
            layers: (0..layers)
                .map(|_| MessagePassing::new(hidden, 4, device))
                .collect(),
            out: LinearConfig::new(hidden, 3).init(device),
        }
    }

    fn forward(&self, g: &Graph) -> Tensor<2> {
        let mut h = self.embed.forward(g.x.clone());
        for layer in &self.layers {
            h = layer.forward(h, g.senders.clone(), g.receivers.clone(), g.edges.clone());
        }
        self.out.forward(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_a_small_workload_runs() {
        for w in Workload::ALL {
            assert_eq!(Workload::parse(w.name()).unwrap(), w);
        }
        assert!(Workload::parse("resnet")
            .unwrap_err()
            .to_string()
            .contains("expected one of unet64"));
        let t = time(Workload::NsfTwoMoons, 1, 1).unwrap();
        assert!(t.train_step_s > 0.0 && t.eval_s > 0.0, "{t:?}");
        assert!(t.params > 10_000, "{t:?}");
    }
}
