//! Noise-prediction networks on point clouds in a periodic box.
//!
//! The first three features of each element are its position, in a periodic
//! box of side `box_size` (network units); the others (velocities, log
//! masses) are scalars per element. Positions enter only through
//! minimum-image displacements along the edges of the kNN graph of the noisy
//! positions ([`crate::graph`]), so both networks are exactly invariant
//! under periodic translations (up to f32 rounding) and equivariant under
//! permutations. A global vector `g`, from the noise level `gamma_t`
//! (sinusoidal features) and the parameters `theta` by a two-layer MLP,
//! conditions every node update.
//!
//! - `gnn` (Cuesta-Lazaro & Mishra-Sharma 2023): messages
//!   `m_ij = W_o silu(W_r h_i + W_s h_j + W_e e_ij)` with `e_ij = [d_ij,
//!   |d_ij|]` (plus optional Fourier features of `d_ij`), softmax attention
//!   over the `k` edges entering `i`, `h_i <- LayerNorm(h_i +
//!   MLP([h_i, sum_j a_ij m_ij, g]))`; the output layer maps `h_i` to all F
//!   noise components (not rotation-equivariant: train with the cube's
//!   symmetries as augmentation).
//! - `egnn` (Satorras, Hoogeboom & Welling 2021, E(n)-equivariant graph
//!   networks): messages from squared distances, `m_ij = silu(W_o silu(W_r
//!   h_i + W_s h_j + w_d |d_ij|^2))`, coordinates moved along the
//!   displacements, `x_i <- x_i + (1/k) sum_j d_ij phi_x(m_ij)`, and the
//!   position noise predicted as the total move `x_L - x_0`: equivariant
//!   under the 48 symmetries of the cube (and any rotation where the box
//!   allows).
//!
//! The graph is rebuilt from the noisy positions at every call (on the host,
//! O(N log N) per cloud).

use cosmodiff_nn::burn;

use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::{silu, softmax};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::error::{invalid, Result};
use crate::graph::{displacements, knn_graph, KnnGraph};
use crate::vdm::Denoiser;

/// The kind of network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetKind {
    /// Message passing with attention (not rotation-equivariant).
    Gnn,
    /// E(n)-equivariant graph network.
    Egnn,
}

/// Settings of a [`ScoreNet`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetConfig {
    /// Network kind.
    pub kind: NetKind,
    /// Width of node features and messages.
    pub hidden: usize,
    /// Message-passing layers.
    pub layers: usize,
    /// Neighbours per node.
    pub k: usize,
    /// Sinusoidal features of the noise level.
    pub noise_features: usize,
    /// Exponents `n` of the Fourier features `sin(2^n pi u)`, `cos(2^n pi
    /// u)` of the edge displacements `u` (in box units) appended to the
    /// edge features (`gnn` only; VDM's Fourier features of the input). Empty:
    /// none.
    pub fourier: Vec<i32>,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            kind: NetKind::Gnn,
            hidden: 64,
            layers: 4,
            k: 20,
            noise_features: 16,
            fourier: vec![],
        }
    }
}

impl NetConfig {
    /// Check the settings.
    pub fn validate(&self) -> Result<()> {
        if self.hidden == 0 || self.layers == 0 || self.k == 0 {
            return invalid(format!(
                "network: hidden, layers and k must be at least 1 (got {}, {}, {})",
                self.hidden, self.layers, self.k
            ));
        }
        if self.noise_features < 2 || !self.noise_features.is_multiple_of(2) {
            return invalid("network: noise_features must be even and at least 2");
        }
        if self.fourier.iter().any(|n| n.abs() > 16) {
            return invalid("network: Fourier exponents must lie in [-16, 16]");
        }
        Ok(())
    }
}

/// Sinusoidal features of the noise level: `gamma / 10` and `sin(w_i
/// gamma), cos(w_i gamma)` with `w_i = 2^(i - 4)` (periods from 2 pi / 8
/// to the whole range of gamma).
pub fn noise_embedding(gamma: Tensor<1>, features: usize) -> Tensor<2> {
    let b = gamma.dims()[0];
    let half = features / 2;
    let w: Vec<f32> = (0..half).map(|i| 2f32.powi(i as i32 - 4)).collect();
    let w = Tensor::<1>::from_data(TensorData::new(w, [half]), &gamma.device()).reshape([1, half]);
    let arg = gamma.clone().reshape([b, 1]) * w;
    Tensor::cat(
        vec![gamma.reshape([b, 1]) / 10.0, arg.clone().sin(), arg.cos()],
        1,
    )
}

/// Fourier features `sin(2^n pi u), cos(2^n pi u)` of every component of
/// `u` `[.., c]` for each exponent: `[.., 2 c len(exponents)]`.
pub fn fourier_features<const D: usize>(u: Tensor<D>, exponents: &[i32]) -> Tensor<D> {
    let mut parts = vec![];
    for &n in exponents {
        let a = u.clone() * (2f64.powi(n) * std::f64::consts::PI);
        parts.push(a.clone().sin());
        parts.push(a.cos());
    }
    Tensor::cat(parts, D - 1)
}

fn linear(d_in: usize, d_out: usize, bias: bool, device: &Device) -> Linear {
    LinearConfig::new(d_in, d_out).with_bias(bias).init(device)
}

/// One layer (either kind).
#[derive(Module, Debug)]
struct Layer {
    recv: Linear,
    send: Linear,
    edge: Linear,
    msg: Linear,
    /// `gnn`: attention logits; `egnn`: coordinate weights.
    gate: Linear,
    gate_in: Option<Linear>,
    node_in: Linear,
    node_out: Linear,
    norm: LayerNorm,
}

impl Layer {
    fn new(h: usize, edge_dim: usize, egnn: bool, device: &Device) -> Self {
        Self {
            recv: linear(h, h, true, device),
            send: linear(h, h, false, device),
            edge: linear(edge_dim, h, false, device),
            msg: linear(h, h, true, device),
            gate: LinearConfig::new(h, 1)
                .with_bias(!egnn)
                .with_initializer(burn::nn::Initializer::Uniform {
                    min: -1e-3,
                    max: 1e-3,
                })
                .init(device),
            gate_in: egnn.then(|| linear(h, h, true, device)),
            node_in: linear(3 * h, h, true, device),
            node_out: linear(h, h, true, device),
            norm: LayerNormConfig::new(h).init(device),
        }
    }

    /// Messages `[nodes, k, H]` from `h` `[nodes, H]` and edge features
    /// `[nodes, k, E]`.
    fn messages(&self, h: Tensor<2>, graph: &KnnGraph, edges: Tensor<3>) -> Tensor<3> {
        let [nodes, hd] = h.dims();
        let k = graph.k;
        let pre = self.recv.forward(h.clone()).reshape([nodes, 1, hd])
            + self
                .send
                .forward(h)
                .select(0, graph.senders.clone())
                .reshape([nodes, k, hd])
            + self.edge.forward(edges);
        self.msg.forward(silu(pre))
    }

    fn update(&self, h: Tensor<2>, agg: Tensor<2>, g: Tensor<2>) -> Tensor<2> {
        let u = self.node_out.forward(silu(
            self.node_in
                .forward(Tensor::cat(vec![h.clone(), agg, g], 1)),
        ));
        self.norm.forward(h + u)
    }
}

/// A noise-prediction network on point clouds (see the module docs).
#[derive(Module, Debug)]
pub struct ScoreNet {
    global_in: Linear,
    global_out: Linear,
    scalars_in: Option<Linear>,
    layers: Vec<Layer>,
    out: Linear,
    #[module(skip)]
    cfg: NetConfig,
    #[module(skip)]
    features: usize,
    #[module(skip)]
    box_size: f64,
}

impl ScoreNet {
    /// A network for `features` per element (the first 3 positions in a
    /// periodic box of side `box_size`), `n_theta` conditioning parameters.
    pub fn new(
        cfg: &NetConfig,
        features: usize,
        n_theta: usize,
        box_size: f64,
        device: &Device,
    ) -> Result<Self> {
        cfg.validate()?;
        if features < 3 {
            return invalid(format!(
                "point clouds need 3 position features, got {features}"
            ));
        }
        if !(box_size.is_finite() && box_size > 0.0) {
            return invalid(format!("box size must be positive, got {box_size}"));
        }
        let h = cfg.hidden;
        let egnn = cfg.kind == NetKind::Egnn;
        let edge_dim = if egnn { 1 } else { 4 + 6 * cfg.fourier.len() };
        Ok(Self {
            global_in: linear(cfg.noise_features + 1 + n_theta, h, true, device),
            global_out: linear(h, h, true, device),
            scalars_in: (features > 3).then(|| linear(features - 3, h, true, device)),
            layers: (0..cfg.layers)
                .map(|_| Layer::new(h, edge_dim, egnn, device))
                .collect(),
            out: LinearConfig::new(h, if egnn { features - 3 } else { features }.max(1))
                .with_initializer(burn::nn::Initializer::Uniform {
                    min: -1e-3,
                    max: 1e-3,
                })
                .init(device),
            cfg: cfg.clone(),
            features,
            box_size,
        })
    }

    /// The settings.
    pub fn config(&self) -> &NetConfig {
        &self.cfg
    }

    /// The graph of the positions of `z` `[B, N, F]` under `mask`.
    pub fn graph(&self, z: &Tensor<3>, mask: &Tensor<2>) -> Result<KnnGraph> {
        let [b, n, _] = z.dims();
        let pos = cosmodiff_nn::tensor::to_vec(z.clone().slice([0..b, 0..n, 0..3]));
        let m = cosmodiff_nn::tensor::to_vec(mask.clone());
        knn_graph(&pos, &m, b, n, self.cfg.k, self.box_size, &z.device())
    }

    /// `eps_hat` on a given graph (see [`Denoiser::eps`]).
    pub fn eps_on(
        &self,
        graph: &KnnGraph,
        z: Tensor<3>,
        gamma: Tensor<1>,
        theta: Tensor<2>,
        mask: Tensor<2>,
    ) -> Tensor<3> {
        let [b, n, f] = z.dims();
        let hd = self.cfg.hidden;
        let nodes = b * n;
        let g = self
            .global_out
            .forward(silu(self.global_in.forward(Tensor::cat(
                vec![noise_embedding(gamma, self.cfg.noise_features), theta],
                1,
            ))));
        let g = g
            .reshape([b, 1, hd])
            .expand([b, n, hd])
            .reshape([nodes, hd]);
        let mut h = g.clone();
        if let Some(lin) = &self.scalars_in {
            h = h + lin.forward(z.clone().slice([0..b, 0..n, 3..f]).reshape([nodes, f - 3]));
        }
        let pos0 = z.clone().slice([0..b, 0..n, 0..3]).reshape([nodes, 3]);
        let k = graph.k;
        let out = match self.cfg.kind {
            NetKind::Gnn => {
                let d = displacements(pos0, graph, self.box_size);
                let r = d.clone().powi_scalar(2).sum_dim(2).sqrt();
                let mut e = vec![d.clone(), r];
                if !self.cfg.fourier.is_empty() {
                    e.push(fourier_features(d / self.box_size, &self.cfg.fourier));
                }
                let edges = Tensor::cat(e, 2);
                for layer in &self.layers {
                    let m = layer.messages(h.clone(), graph, edges.clone());
                    let a = softmax(layer.gate.forward(m.clone()), 1);
                    let agg = (m * a).sum_dim(1).reshape([nodes, hd]);
                    h = layer.update(h, agg, g.clone());
                }
                self.out.forward(h)
            }
            NetKind::Egnn => {
                let mut pos = pos0.clone();
                for layer in &self.layers {
                    let d = displacements(pos.clone(), graph, self.box_size);
                    let r2 = d.clone().powi_scalar(2).sum_dim(2);
                    let m = silu(layer.messages(h.clone(), graph, r2));
                    let gate_in = layer
                        .gate_in
                        .as_ref()
                        .expect("egnn layers have a coordinate MLP");
                    let w = layer.gate.forward(silu(gate_in.forward(m.clone())));
                    pos = pos + (d * w).sum_dim(1).reshape([nodes, 3]) / k as f64;
                    let agg = m.sum_dim(1).reshape([nodes, hd]) / k as f64;
                    h = layer.update(h, agg, g.clone());
                }
                let moved = pos - pos0;
                if f > 3 {
                    Tensor::cat(vec![moved, self.out.forward(h)], 1)
                } else {
                    moved
                }
            }
        };
        out.reshape([b, n, f]) * mask.unsqueeze_dim::<3>(2)
    }
}

impl Denoiser for ScoreNet {
    /// Panics when a cloud has at most `k` valid points: callers check the
    /// clouds first ([`crate::vdm`]'s users do).
    fn eps(&self, z: Tensor<3>, gamma: Tensor<1>, theta: Tensor<2>, mask: Tensor<2>) -> Tensor<3> {
        let graph = self
            .graph(&z, &mask)
            .expect("every cloud has more than k valid points (checked by the caller)");
        self.eps_on(&graph, z, gamma, theta, mask)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cosmodiff_nn::tensor::{default_device, to_vec};

    const L: f64 = 3.0;

    fn cloud(b: usize, n: usize, f: usize, seed: u64, device: &Device) -> Tensor<3> {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(seed);
        let v: Vec<f32> = (0..b * n * f)
            .map(|i| {
                if i % f < 3 {
                    rng.random_range(0.0..L as f32)
                } else {
                    rng.random_range(-1.0..1.0)
                }
            })
            .collect();
        Tensor::from_data(TensorData::new(v, [b, n, f]), device)
    }

    fn net(kind: NetKind, f: usize, device: &Device) -> ScoreNet {
        let cfg = NetConfig {
            kind,
            hidden: 16,
            layers: 2,
            k: 5,
            fourier: if kind == NetKind::Gnn {
                vec![0, 1]
            } else {
                vec![]
            },
            ..Default::default()
        };
        let mut net = ScoreNet::new(&cfg, f, 2, L, device).unwrap();
        // outputs of order one (not the near-zero start), so that a broken
        // symmetry shows far above the tolerances
        let d_out = net.out.weight.dims()[1];
        net.out = linear(16, d_out, true, device);
        for layer in &mut net.layers {
            layer.gate = linear(16, 1, true, device);
        }
        net
    }

    fn inputs(b: usize, device: &Device) -> (Tensor<1>, Tensor<2>) {
        (
            Tensor::from_data(
                TensorData::new(vec![-3.0f32, 2.0][..b].to_vec(), [b]),
                device,
            ),
            Tensor::from_data(
                TensorData::new(vec![0.3f32, 0.8, 0.2, 0.7][..2 * b].to_vec(), [b, 2]),
                device,
            ),
        )
    }

    fn max_diff(a: &[f64], b: &[f64]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max)
    }

    /// Permuting the elements of a cloud permutes the prediction (exactly),
    /// a periodic translation leaves it unchanged (to 1e-5), and for the
    /// EGNN a symmetry of the cube (axis permutation with reflections) maps
    /// the position noise with it, the scalar noise unchanged.
    #[test]
    fn networks_respect_the_symmetries_of_the_periodic_box() {
        let dev = default_device();
        let (b, n, f) = (2, 40, 4);
        let z = cloud(b, n, f, 1, &dev);
        let mask = Tensor::<2>::ones([b, n], &dev);
        let (gamma, theta) = inputs(b, &dev);
        for kind in [NetKind::Gnn, NetKind::Egnn] {
            let net = net(kind, f, &dev);
            let base = to_vec(net.eps(z.clone(), gamma.clone(), theta.clone(), mask.clone()));
            // permutation (reverse the elements of every cloud)
            let rev: Vec<usize> = (0..n).rev().collect();
            let idx = cosmodiff_nn::tensor::int_tensor(&rev, &dev);
            let zp = z.clone().select(1, idx.clone());
            let got = to_vec(
                net.eps(zp, gamma.clone(), theta.clone(), mask.clone())
                    .select(1, idx),
            );
            assert!(
                max_diff(&got, &base) < 1e-6,
                "{kind:?} permutation {}",
                max_diff(&got, &base)
            );
            // periodic translation by (1.1, -0.4, 2.9), wrapped into the box
            let shift =
                Tensor::<1>::from_data(TensorData::new(vec![1.1f32, -0.4, 2.9, 0.0], [4]), &dev)
                    .reshape([1, 1, 4]);
            let zt = z.clone() + shift;
            let pos = zt.clone().slice([0..b, 0..n, 0..3]);
            let pos = pos.clone() - (pos / L).floor() * L;
            let zt = Tensor::cat(vec![pos, zt.slice([0..b, 0..n, 3..4])], 2);
            let got = to_vec(net.eps(zt, gamma.clone(), theta.clone(), mask.clone()));
            assert!(
                max_diff(&got, &base) < 1e-5,
                "{kind:?} translation {}",
                max_diff(&got, &base)
            );
            if kind == NetKind::Egnn {
                // (x, y, z) -> (y, L - x, z): a quarter turn of the cube about
                // z; the noise turns with it, (e_x, e_y, e_z) -> (e_y, -e_x, e_z)
                let col = |t: &Tensor<3>, c: usize| t.clone().slice([0..b, 0..n, c..c + 1]);
                let zr = Tensor::cat(
                    vec![col(&z, 1), col(&z, 0).neg() + L, col(&z, 2), col(&z, 3)],
                    2,
                );
                let got = net.eps(zr, gamma.clone(), theta.clone(), mask.clone());
                let e = Tensor::<3>::from_data(
                    TensorData::new(
                        base.iter().map(|&v| v as f32).collect::<Vec<_>>(),
                        [b, n, f],
                    ),
                    &dev,
                );
                let want = Tensor::cat(
                    vec![col(&e, 1), col(&e, 0).neg(), col(&e, 2), col(&e, 3)],
                    2,
                );
                let d = max_diff(&to_vec(got), &to_vec(want));
                assert!(d < 1e-5, "egnn rotation {d}");
            }
        }
    }

    /// Masked elements get zero noise and do not change the valid ones.
    #[test]
    fn padding_does_not_reach_valid_points() {
        let dev = default_device();
        let (n, f) = (30, 4);
        let z = cloud(1, n, f, 2, &dev);
        let (gamma, theta) = inputs(1, &dev);
        for kind in [NetKind::Gnn, NetKind::Egnn] {
            let net = net(kind, f, &dev);
            let mut m = vec![1.0f32; n];
            m[25..].fill(0.0);
            let mask = Tensor::<2>::from_data(TensorData::new(m, [1, n]), &dev);
            let full = to_vec(net.eps(z.clone(), gamma.clone(), theta.clone(), mask.clone()));
            // move the padding elements elsewhere: no valid output changes
            let moved = Tensor::cat(
                vec![
                    z.clone().slice([0..1, 0..25, 0..f]),
                    z.clone().slice([0..1, 25..n, 0..f]) * 0.5,
                ],
                1,
            );
            let got = to_vec(net.eps(moved, gamma.clone(), theta.clone(), mask));
            assert!(max_diff(&got, &full) < 1e-6, "{kind:?}");
            assert!(full[25 * f..].iter().all(|&v| v == 0.0));
        }
    }
}
