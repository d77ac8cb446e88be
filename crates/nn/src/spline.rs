//! Monotone rational-quadratic splines with linear tails (Durkan, Bekasov,
//! Murray & Papamakarios 2019, "Neural Spline Flows", eqs. 4-8 and appendix A).
//!
//! On `[-B, B]` the map is a piecewise rational-quadratic function through
//! `K + 1` knots `(x_k, y_k)` with positive derivatives `d_k`; outside it is
//! the identity (the boundary derivatives are fixed to one so the map is
//! continuously differentiable). With `xi = (x - x_k) / w_k`,
//! `s_k = h_k / w_k`:
//!
//! ```text
//! y = y_k + h_k [s_k xi^2 + d_k xi (1 - xi)] / [s_k + (d_{k+1} + d_k - 2 s_k) xi (1 - xi)]
//! dy/dx = s_k^2 [d_{k+1} xi^2 + 2 s_k xi (1 - xi) + d_k (1 - xi)^2] / [s_k + (d_{k+1} + d_k - 2 s_k) xi (1 - xi)]^2
//! ```

use burn::backend::Dispatch;
use burn::tensor::activation::{softmax, softplus};
use burn::tensor::{Int, Tensor};

use crate::cpu::flex_device;
use crate::spline_kernel::{RqSplineKernels, RqSplineOps};

/// Smallest bin width / height as a fraction of `2B`.
pub const MIN_BIN: f64 = 1e-3;
/// Smallest knot derivative.
pub const MIN_DERIVATIVE: f64 = 1e-3;

/// Number of unconstrained parameters per feature for `bins` bins: `K`
/// widths, `K` heights and the `K - 1` interior derivatives.
pub fn n_params(bins: usize) -> usize {
    3 * bins - 1
}

struct Knots {
    /// Knot positions `[B, D, K + 1]`.
    x: Tensor<3>,
    y: Tensor<3>,
    /// Derivatives at the knots `[B, D, K + 1]`.
    d: Tensor<3>,
}

fn knots_from(u: Tensor<3>, bound: f64) -> Tensor<3> {
    let [b, d, k] = u.dims();
    let (device, dtype) = (u.device(), u.dtype());
    let w = softmax(u, 2) * (1.0 - MIN_BIN * k as f64) + MIN_BIN;
    let cum = w.cumsum(2) * (2.0 * bound) - bound;
    let interior = cum.narrow(2, 0, k - 1);
    Tensor::cat(
        vec![
            Tensor::full([b, d, 1], -bound, (&device, dtype)),
            interior,
            Tensor::full([b, d, 1], bound, (&device, dtype)),
        ],
        2,
    )
}

fn knots(params: Tensor<3>, bins: usize, bound: f64) -> Knots {
    let [b, d, _] = params.dims();
    let (device, dtype) = (params.device(), params.dtype());
    let uw = params.clone().narrow(2, 0, bins);
    let uh = params.clone().narrow(2, bins, bins);
    let ud = params.narrow(2, 2 * bins, bins - 1);
    // Boundary derivative = 1: MIN_DERIVATIVE + softplus(c) = 1.
    let c = ((1.0 - MIN_DERIVATIVE).exp() - 1.0).ln();
    let ud = Tensor::cat(
        vec![
            Tensor::full([b, d, 1], c, (&device, dtype)),
            ud,
            Tensor::full([b, d, 1], c, (&device, dtype)),
        ],
        2,
    );
    Knots {
        x: knots_from(uw, bound),
        y: knots_from(uh, bound),
        d: softplus(ud, 1.0) + MIN_DERIVATIVE,
    }
}

/// Index of the bin containing `v` among the knots `[B, D, K + 1]`, as
/// `[B, D, 1]` in `0..K`.
fn bin_index(knots: &Tensor<3>, v: &Tensor<2>, bins: usize) -> Tensor<3, Int> {
    let left = knots.clone().narrow(2, 0, bins);
    let [b, d, _] = left.dims();
    let vv = v.clone().unsqueeze_dim::<3>(2).expand([b, d, bins]);
    // Number of left edges at or below v.
    let count = vv.greater_equal(left).int().sum_dim(2);
    (count - 1).clamp(0, bins as i64 - 1)
}

fn take(t: &Tensor<3>, idx: &Tensor<3, Int>) -> Tensor<2> {
    let g = t.clone().gather(2, idx.clone());
    let [b, d, _] = g.dims();
    g.reshape([b, d])
}

struct Bin {
    xk: Tensor<2>,
    wk: Tensor<2>,
    yk: Tensor<2>,
    hk: Tensor<2>,
    dk: Tensor<2>,
    dk1: Tensor<2>,
}

fn bin(k: &Knots, idx: Tensor<3, Int>) -> Bin {
    let idx1 = idx.clone() + 1;
    let xk = take(&k.x, &idx);
    let yk = take(&k.y, &idx);
    Bin {
        wk: take(&k.x, &idx1) - xk.clone(),
        hk: take(&k.y, &idx1) - yk.clone(),
        xk,
        yk,
        dk: take(&k.d, &idx),
        dk1: take(&k.d, &idx1),
    }
}

/// Split a `[2, B, D]` kernel output into its two `[B, D]` halves.
fn halves(out: Tensor<3>) -> (Tensor<2>, Tensor<2>) {
    let [_, b, d] = out.dims();
    (
        out.clone().narrow(0, 0, 1).reshape([b, d]),
        out.narrow(0, 1, 1).reshape([b, d]),
    )
}

/// `params` `[B, 1, P]` repeated over the `D` elements of `x` `[B, D]`
/// (the composed operations need one row of parameters per element).
fn broadcast(params: Tensor<3>, x: &Tensor<2>) -> Tensor<3> {
    let [b, d, p] = params.dims();
    let [_, dx] = x.dims();
    if d == 1 && dx > 1 {
        params.expand([b, dx, p])
    } else {
        params
    }
}

/// Forward map `x -> y` with `log |dy/dx|`, elementwise over `[B, D]`;
/// `params` is `[B, D, 3K - 1]`, or `[B, 1, 3K - 1]` for one spline per
/// row. Runs the fused kernel on the CPU backend
/// and [`rq_forward_ops`] elsewhere.
pub fn rq_forward(
    x: Tensor<2>,
    params: Tensor<3>,
    bins: usize,
    bound: f64,
) -> (Tensor<2>, Tensor<2>) {
    if flex_device(&x.device()).is_none() {
        return rq_forward_ops(x, params, bins, bound);
    }
    halves(Tensor::from_dispatch(Dispatch::rq_spline_forward(
        x.into_dispatch(),
        params.into_dispatch(),
        bins,
        bound,
    )))
}

/// Inverse map `y -> x` with `log |dy/dx|` at the solution (so the caller
/// subtracts it). The fused kernel has no backward pass, so it runs only
/// on the plain CPU backend; elsewhere [`rq_inverse_ops`].
pub fn rq_inverse(
    y: Tensor<2>,
    params: Tensor<3>,
    bins: usize,
    bound: f64,
) -> (Tensor<2>, Tensor<2>) {
    if flex_device(&y.device()) != Some(false) {
        return rq_inverse_ops(y, params, bins, bound);
    }
    halves(Tensor::from_dispatch(Dispatch::rq_spline_inverse(
        y.into_dispatch(),
        params.into_dispatch(),
        bins,
        bound,
    )))
}

/// [`rq_forward`] composed from burn operations (any backend, autodiff by
/// burn); the reference the fused kernel is tested against.
pub fn rq_forward_ops(
    x: Tensor<2>,
    params: Tensor<3>,
    bins: usize,
    bound: f64,
) -> (Tensor<2>, Tensor<2>) {
    let k = knots(broadcast(params, &x), bins, bound);
    let inside = x
        .clone()
        .greater_equal_scalar(-bound)
        .bool_and(x.clone().lower_equal_scalar(bound));
    let xc = x.clone().clamp(-bound, bound);
    let b = bin(&k, bin_index(&k.x, &xc, bins));
    let s = b.hk.clone() / b.wk.clone();
    let xi = (xc - b.xk) / b.wk;
    let xi1 = xi.clone() * (xi.clone().neg() + 1.0);
    let den = s.clone() + (b.dk1.clone() + b.dk.clone() - s.clone() * 2.0) * xi1.clone();
    let num = b.hk * (s.clone() * xi.clone().square() + b.dk.clone() * xi1.clone());
    let y = b.yk + num / den.clone();
    let dnum = s.clone().square()
        * (b.dk1 * xi.clone().square() + s * xi1 * 2.0 + b.dk * (xi.neg() + 1.0).square());
    let logdet = dnum.log() - den.log() * 2.0;
    let zeros = logdet.zeros_like();
    (
        x.mask_where(inside.clone(), y),
        zeros.mask_where(inside, logdet),
    )
}

/// [`rq_inverse`] composed from burn operations (solving the quadratic of
/// appendix A).
pub fn rq_inverse_ops(
    y: Tensor<2>,
    params: Tensor<3>,
    bins: usize,
    bound: f64,
) -> (Tensor<2>, Tensor<2>) {
    let k = knots(broadcast(params, &y), bins, bound);
    let inside = y
        .clone()
        .greater_equal_scalar(-bound)
        .bool_and(y.clone().lower_equal_scalar(bound));
    let yc = y.clone().clamp(-bound, bound);
    let b = bin(&k, bin_index(&k.y, &yc, bins));
    let s = b.hk.clone() / b.wk.clone();
    let dy = yc - b.yk;
    let t = b.dk1.clone() + b.dk.clone() - s.clone() * 2.0;
    let qa = b.hk.clone() * (s.clone() - b.dk.clone()) + dy.clone() * t.clone();
    let qb = b.hk * b.dk.clone() - dy.clone() * t.clone();
    let qc = s.clone().neg() * dy;
    let disc = (qb.clone().square() - qa * qc.clone() * 4.0).clamp_min(0.0);
    let xi = (qc * 2.0) / (qb.neg() - disc.sqrt());
    let x = xi.clone() * b.wk + b.xk;
    let xi1 = xi.clone() * (xi.clone().neg() + 1.0);
    let den = s.clone() + t * xi1.clone();
    let dnum = s.clone().square()
        * (b.dk1 * xi.clone().square() + s * xi1 * 2.0 + b.dk * (xi.neg() + 1.0).square());
    let logdet = dnum.log() - den.log() * 2.0;
    let zeros = logdet.zeros_like();
    (
        y.mask_where(inside.clone(), x),
        zeros.mask_where(inside, logdet),
    )
}
