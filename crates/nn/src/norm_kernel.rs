//! Group normalisation followed by SiLU as one fused CPU kernel with a
//! hand-written backward pass (the `GN -> SiLU` pair that opens every
//! residual block of the [`crate::unet`]).
//!
//! Forward, per map `n` and channel group `g` of `M = (C / G) H W` values
//! (Wu & He 2018, eq. 1; Elfwing et al. 2018 for SiLU):
//!
//! ```text
//! xhat = (x - mu_ng) / sqrt(var_ng + eps),   a = gamma_c xhat + beta_c,   y = a sigmoid(a)
//! ```
//!
//! Backward, with `g_a = g_y [s + a s (1 - s)]`, `s = sigmoid(a)`:
//!
//! ```text
//! g_gamma_c = sum_{n, hw} g_a xhat,   g_beta_c = sum_{n, hw} g_a,
//! g_x = rstd [gamma_c g_a - mean_M(gamma g_a) - xhat mean_M(gamma g_a xhat)]
//! ```
//!
//! Composed from burn operations the pair is ~15 passes over a
//! `[batch, C, H, W]` tensor forward and more backward, each allocating a
//! fresh buffer; here it is two passes forward (statistics, output) and
//! three backward, parallel over `(n, g)`. The statistics are recomputed in
//! the backward pass instead of stored. Registered as a burn backend
//! extension for `flex` (and its autodiff wrapper); [`group_norm_silu`]
//! composes burn's `GroupNorm` and `silu` on any other backend.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::Autodiff;
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Backend, Dispatch, Flex, TensorMetadata};
use burn::nn::GroupNorm;
use burn::tensor::activation::silu;
use burn::tensor::{Shape, Tensor};
use rayon::prelude::*;

use crate::cpu::{f32_tensor, f32_values, flex_device, register_flat_grads, sigmoid};

/// Fused `silu(group_norm(x))`, differentiable in `x`, `gamma` and `beta`.
#[backend_extension(Flex, Autodiff)]
pub trait GroupNormSiluOps: Backend {
    /// `x` `[N, C, H, W]`, `gamma`, `beta` `[C]` -> `[N, C, H, W]`.
    fn group_norm_silu(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        groups: usize,
        epsilon: f64,
    ) -> FloatTensor<Self>;
}

/// The backward kernel.
#[backend_extension(Flex)]
pub trait GroupNormSiluKernels: Backend {
    /// With `grad` `[N, C, H, W]`, returns the flat `[N C H W + 2 C]`
    /// concatenation of the gradients in `x`, `gamma` and `beta`.
    fn group_norm_silu_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        groups: usize,
        epsilon: f64,
    ) -> FloatTensor<Self>;
}

/// `silu(norm(x))` for a burn `GroupNorm` with affine parameters: the fused
/// kernel on the CPU backend, burn's composed operations elsewhere.
pub fn group_norm_silu(norm: &GroupNorm, x: Tensor<4>) -> Tensor<4> {
    let fused = flex_device(&x.device()).is_some();
    match (fused, &norm.gamma, &norm.beta) {
        (true, Some(gamma), Some(beta)) => Tensor::from_dispatch(Dispatch::group_norm_silu(
            x.into_dispatch(),
            gamma.val().into_dispatch(),
            beta.val().into_dispatch(),
            norm.num_groups,
            norm.epsilon,
        )),
        _ => silu(norm.forward(x)),
    }
}

const LANES: usize = 8;

/// `sum_i f(x_i)` in eight f32 lanes (so the loop vectorises), the lanes
/// and the tail added in f64.
#[inline(always)]
fn lane_sum(x: &[f32], f: impl Fn(f32) -> f32) -> f64 {
    let mut acc = [0.0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for l in 0..LANES {
            acc[l] += f(c[l]);
        }
    }
    acc.iter().map(|&a| a as f64).sum::<f64>() + tail.iter().map(|&v| f(v) as f64).sum::<f64>()
}

/// Mean and `1 / sqrt(var + eps)` of one group (two passes; each channel
/// row of `hw` values summed in f32 lanes, the rows in f64).
fn stats(x: &[f32], hw: usize, eps: f64) -> (f32, f32) {
    let m = x.len() as f64;
    let mu = x.chunks(hw).map(|r| lane_sum(r, |v| v)).sum::<f64>() / m;
    let mu32 = mu as f32;
    let var = x
        .chunks(hw)
        .map(|r| lane_sum(r, |v| (v - mu32) * (v - mu32)))
        .sum::<f64>()
        / m;
    (mu32, (1.0 / (var + eps).sqrt()) as f32)
}

/// `out = silu(a x + b)` over one channel row.
#[inline(never)]
fn affine_silu(x: &[f32], a: f32, b: f32, out: &mut [f32]) {
    for (o, &v) in out.iter_mut().zip(x) {
        let t = a * v + b;
        *o = t * sigmoid(t);
    }
}

/// One channel row of the backward pass: `g_a = g_y silu'(a)` into `ga`.
#[inline(never)]
fn silu_grad_row(
    x: &[f32],
    gy: &[f32],
    (mu, rstd): (f32, f32),
    (gamma, beta): (f32, f32),
    ga: &mut [f32],
) {
    for ((o, &xv), &gyv) in ga.iter_mut().zip(x).zip(gy) {
        let a = gamma * ((xv - mu) * rstd) + beta;
        let s = sigmoid(a);
        *o = gyv * (s + a * s * (1.0 - s));
    }
}

/// `sum_i f(a_i, b_i)` in eight f32 lanes, the lanes and the tail added in
/// f64 (see [`lane_sum`]).
#[inline(always)]
fn lane_sum2(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f64 {
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(&u, &v)| f(u, v) as f64)
        .sum();
    for (u, v) in ca.zip(cb) {
        for l in 0..LANES {
            acc[l] += f(u[l], v[l]);
        }
    }
    acc.iter().map(|&v| v as f64).sum::<f64>() + tail
}

/// Shape bookkeeping shared by forward and backward: `(C, G, HW)`.
fn dims(shape: &Shape, gamma_len: usize, groups: usize) -> (usize, usize, usize) {
    let (c, hw) = (shape[1], shape[2..].iter().product::<usize>());
    debug_assert_eq!(c, gamma_len);
    debug_assert_eq!(c % groups, 0);
    (c, groups, hw)
}

fn forward(
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    shape: &Shape,
    groups: usize,
    eps: f64,
) -> Vec<f32> {
    let (c, g, hw) = dims(shape, gamma.len(), groups);
    let cg = c / g;
    let mut out = vec![0.0f32; x.len()];
    out.par_chunks_mut(cg * hw)
        .zip(x.par_chunks(cg * hw))
        .enumerate()
        .for_each(|(ng, (o, xs))| {
            let (mu, rstd) = stats(xs, hw, eps);
            let c0 = (ng % g) * cg;
            for (j, (oc, xc)) in o.chunks_mut(hw).zip(xs.chunks(hw)).enumerate() {
                let (ga, be) = (
                    gamma[c0 + j] * rstd,
                    beta[c0 + j] - gamma[c0 + j] * rstd * mu,
                );
                affine_silu(xc, ga, be, oc);
            }
        });
    out
}

/// Gradients in `x` (`[N C H W]`), then `gamma` and `beta` (`[C]` each).
fn backward(
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    gy: &[f32],
    shape: &Shape,
    groups: usize,
    eps: f64,
) -> Vec<f32> {
    let (c, g, hw) = dims(shape, gamma.len(), groups);
    let cg = c / g;
    let mut gx = vec![0.0f32; x.len() + 2 * c];
    // Per (n, g): the channel sums of g_a xhat and g_a.
    let partial: Vec<(usize, Vec<f64>, Vec<f64>)> = gx[..x.len()]
        .par_chunks_mut(cg * hw)
        .zip(x.par_chunks(cg * hw).zip(gy.par_chunks(cg * hw)))
        .enumerate()
        .map(|(ng, (gxs, (xs, gys)))| {
            let (mu, rstd) = stats(xs, hw, eps);
            let c0 = (ng % g) * cg;
            let (mut sg, mut sb) = (vec![0.0f64; cg], vec![0.0f64; cg]);
            // Pass 1: g_a into gxs; per channel sum g_a xhat and sum g_a,
            // whence the group means of g_xhat = gamma g_a and g_xhat xhat.
            let (mut m1, mut m2) = (0.0f64, 0.0f64);
            for j in 0..cg {
                let r = j * hw..(j + 1) * hw;
                let (xr, gr) = (&xs[r.clone()], &mut gxs[r.clone()]);
                silu_grad_row(xr, &gys[r], (mu, rstd), (gamma[c0 + j], beta[c0 + j]), gr);
                sg[j] = lane_sum2(gr, xr, |g, x| g * ((x - mu) * rstd));
                sb[j] = lane_sum(gr, |g| g);
                m1 += gamma[c0 + j] as f64 * sb[j];
                m2 += gamma[c0 + j] as f64 * sg[j];
            }
            let m = (cg * hw) as f64;
            let (m1, m2) = ((m1 / m) as f32, (m2 / m) as f32);
            // Pass 2: g_x = rstd (gamma g_a - m1 - xhat m2).
            for j in 0..cg {
                let r = j * hw..(j + 1) * hw;
                let gm = gamma[c0 + j];
                for (gv, &xv) in gxs[r.clone()].iter_mut().zip(&xs[r]) {
                    let xhat = (xv - mu) * rstd;
                    *gv = rstd * (gm * *gv - m1 - xhat * m2);
                }
            }
            (c0, sg, sb)
        })
        .collect();
    let n = x.len();
    for (c0, sg, sb) in partial {
        for j in 0..cg {
            gx[n + c0 + j] += sg[j] as f32;
            gx[n + c + c0 + j] += sb[j] as f32;
        }
    }
    gx
}

impl GroupNormSiluOps for Flex {
    fn group_norm_silu(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        groups: usize,
        epsilon: f64,
    ) -> FlexTensor {
        let (shape, dtype) = (x.shape(), x.dtype());
        let out = forward(
            &f32_values(&x),
            &f32_values(&gamma),
            &f32_values(&beta),
            &shape,
            groups,
            epsilon,
        );
        f32_tensor(out, shape, dtype)
    }
}

impl GroupNormSiluKernels for Flex {
    fn group_norm_silu_backward(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        grad: FlexTensor,
        groups: usize,
        epsilon: f64,
    ) -> FlexTensor {
        let (shape, dtype) = (x.shape(), x.dtype());
        let out = backward(
            &f32_values(&x),
            &f32_values(&gamma),
            &f32_values(&beta),
            &f32_values(&grad),
            &shape,
            groups,
            epsilon,
        );
        let len = out.len();
        f32_tensor(out, Shape::from([len]), dtype)
    }
}

#[derive(Debug)]
struct GroupNormSiluBackward {
    groups: usize,
    epsilon: f64,
}

impl<B: Backend + GroupNormSiluKernels> Backward<B, 3> for GroupNormSiluBackward {
    /// The inputs `x`, `gamma`, `beta`.
    type State = (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let (x, gamma, beta) = ops.state;
        let shapes = [x.shape(), gamma.shape(), beta.shape()];
        let parents = ops.parents.map(|p| p.map(|n| n.id));
        let g = B::group_norm_silu_backward(x, gamma, beta, grad, self.groups, self.epsilon);
        register_flat_grads::<B, 3>(grads, parents, shapes, g);
    }
}

impl<B: Backend + GroupNormSiluOps + GroupNormSiluKernels, C: CheckpointStrategy> GroupNormSiluOps
    for Autodiff<B, C>
{
    fn group_norm_silu(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        groups: usize,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        let (x, nx) = x.into_parts();
        let (gamma, ng) = gamma.into_parts();
        let (beta, nb) = beta.into_parts();
        let op = GroupNormSiluBackward { groups, epsilon };
        match op.prepare::<C>([nx, ng, nb]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let out =
                    B::group_norm_silu(x.clone(), gamma.clone(), beta.clone(), groups, epsilon);
                prep.finish((x, gamma, beta), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::group_norm_silu(x, gamma, beta, groups, epsilon))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::group_norm_silu;
    use crate::cpu::close;
    use crate::tensor::to_vec;
    use burn::module::Param;
    use burn::nn::{GroupNorm, GroupNormConfig};
    use burn::tensor::activation::silu;
    use burn::tensor::{Device, Distribution, Tensor};

    fn norm(device: &Device) -> GroupNorm {
        let mut n = GroupNormConfig::new(2, 6).init(device);
        // Non-trivial affine parameters.
        n.gamma = Some(Param::from_tensor(Tensor::random(
            [6],
            Distribution::Uniform(0.5, 1.5),
            device,
        )));
        n.beta = Some(Param::from_tensor(Tensor::random(
            [6],
            Distribution::Uniform(-0.5, 0.5),
            device,
        )));
        n
    }

    #[test]
    fn fused_matches_composed_values_and_gradients() {
        let dev = Device::flex().autodiff();
        let gn = norm(&dev);
        let x = Tensor::<4>::random([3, 6, 5, 4], Distribution::Normal(0.3, 2.0), &dev);
        let w = Tensor::<4>::random([3, 6, 5, 4], Distribution::Normal(0.0, 1.0), &dev);
        let run = |fused: bool| {
            let x = x.clone().require_grad();
            let y = if fused {
                group_norm_silu(&gn, x.clone())
            } else {
                silu(gn.forward(x.clone()))
            };
            let g = (y.clone() * w.clone()).sum().backward();
            let gamma = gn.gamma.as_ref().expect("affine").val();
            let beta = gn.beta.as_ref().expect("affine").val();
            (
                to_vec(y),
                to_vec(x.grad(&g).expect("x tracked")),
                to_vec(gamma.grad(&g).expect("gamma tracked")),
                to_vec(beta.grad(&g).expect("beta tracked")),
            )
        };
        let (y, gx, gg, gb) = run(true);
        let (y0, gx0, gg0, gb0) = run(false);
        assert!(close(&y, &y0, 1e-5), "values");
        assert!(close(&gx, &gx0, 1e-4), "gradient in x");
        assert!(close(&gg, &gg0, 1e-4), "gradient in gamma");
        assert!(close(&gb, &gb0, 1e-4), "gradient in beta");
        assert!(gx.iter().any(|v| v.abs() > 1e-3));
    }
}
