//! The rational-quadratic spline of [`crate::spline`] as one fused CPU
//! kernel with a hand-written backward pass.
//!
//! Composed from burn operations, one spline costs ~40 small tensor
//! operations forward and as many backward (softmax, cumsum, gather, the
//! rational function), which on the CPU is mostly per-operation overhead. Here
//! the whole map, from the unconstrained parameters to `(y, log |dy/dx|)`, is
//! one loop over the elements (f64 inside, f32 in and out, the elements
//! split over the cores); when a gradient is needed its output also carries
//! each element's bin and softmax weights ([`cache_rows`]), kept as the
//! operation's state, so the backward pass, one more loop, needs no
//! exponentials.
//!
//! Backward, per element, with the bin `k` fixed (Durkan et al. 2019, eqs. 4
//! and 5): forward-mode derivatives of `y` and `log |dy/dx|` in the seven
//! inputs `(x, x_k, x_{k+1}, y_k, y_{k+1}, d_k, d_{k+1})`, then the chain
//! rule through the knots: `X_j = -B + 2B sum_{i<j} w_i` with
//! `w = (1 - K m) softmax(u) + m`, and `d_j = softplus(u_j) + m_d`.
//!
//! Registered as a burn backend extension for the `flex` CPU backend (and
//! its autodiff wrapper); [`crate::spline`] uses the composed version on any
//! other backend.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::Autodiff;
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Backend, Flex, TensorMetadata};
use burn::tensor::{Shape, Slice};

use crate::cpu::{exp_f32, f32_tensor, f32_values, par_columns, par_rows, sigmoid};
use crate::spline::{MIN_BIN, MIN_DERIVATIVE};

/// Rows of the cached forward kernel's output after `y` and `log |dy/dx|`: what
/// the backward pass needs per element, so it does no exponentials: the
/// bin `k` (`-1` outside `[-B, B]`), `x_k, x_{k+1}, y_k, y_{k+1}, d_k,
/// d_{k+1}`, the softplus slopes `sigmoid(u)` at the two knots, and the
/// width and height softmax weights (`K` each).
pub fn cache_rows(bins: usize) -> usize {
    9 + 2 * bins
}

/// The fused spline in the forward (data -> noise) direction, differentiable.
#[backend_extension(Flex, Autodiff)]
pub trait RqSplineOps: Backend {
    /// `x` `[B, D]`, `params` `[B, D, 3K - 1]` -> `[2, B, D]`: `y` stacked
    /// on `log |dy/dx|`.
    fn rq_spline_forward(
        x: FloatTensor<Self>,
        params: FloatTensor<Self>,
        bins: usize,
        bound: f64,
    ) -> FloatTensor<Self>;
}

/// Kernels without gradients: the forward map with its backward cache, the
/// inverse map and the backward pass.
#[backend_extension(Flex)]
pub trait RqSplineKernels: Backend {
    /// [`RqSplineOps::rq_spline_forward`] followed by the [`cache_rows`]
    /// `C` for the backward pass: `[2 + C, B, D]`.
    fn rq_spline_forward_cached(
        x: FloatTensor<Self>,
        params: FloatTensor<Self>,
        bins: usize,
        bound: f64,
    ) -> FloatTensor<Self>;

    /// `y` `[B, D]`, `params` `[B, D, 3K - 1]` -> `[2, B, D]`: `x` stacked on
    /// `log |dy/dx|` at `x`.
    fn rq_spline_inverse(
        y: FloatTensor<Self>,
        params: FloatTensor<Self>,
        bins: usize,
        bound: f64,
    ) -> FloatTensor<Self>;

    /// Vector-Jacobian product of [`RqSplineOps::rq_spline_forward`] from
    /// its input `x` and the output of
    /// [`RqSplineKernels::rq_spline_forward_cached`]; `grad` has the
    /// output's shape `[2, B, D]`. Returns
    /// `[B, D, 3K]`: the gradient in `x` first, then in the `3K - 1`
    /// parameters.
    fn rq_spline_backward(
        x: FloatTensor<Self>,
        cached: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        bins: usize,
        bound: f64,
    ) -> FloatTensor<Self>;

    /// The same for one spline per row (`params` `[B, 1, 3K - 1]`):
    /// `[B, D + 3K - 1]`, the gradient in `x` then the parameter gradient
    /// summed over the row's elements.
    fn rq_spline_backward_shared(
        x: FloatTensor<Self>,
        cached: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        bins: usize,
        bound: f64,
    ) -> FloatTensor<Self>;
}

/// Elements per thread below which the kernels do not split a batch
/// (a split costs about a microsecond, an element a fraction of one).
const PAR_ELEMENTS: usize = 128;

/// Knots of one element: positions, heights, derivatives (`K + 1` each) and
/// the softmax weights of widths and heights (`K` each), kept for backward.
struct Knots {
    x: Vec<f64>,
    y: Vec<f64>,
    d: Vec<f64>,
    sw: Vec<f64>,
    sh: Vec<f64>,
    /// Scratch for the exponentials of the softmax.
    e: Vec<f32>,
}

impl Knots {
    fn new(bins: usize) -> Self {
        Self {
            x: vec![0.0; bins + 1],
            y: vec![0.0; bins + 1],
            d: vec![0.0; bins + 1],
            sw: vec![0.0; bins],
            sh: vec![0.0; bins],
            e: vec![0.0; bins],
        }
    }

    /// Knot positions and heights from the `3K - 1` unconstrained
    /// parameters of one element.
    fn fill(&mut self, p: &[f32], bins: usize, bound: f64) {
        positions(&p[..bins], bound, &mut self.e, &mut self.sw, &mut self.x);
        positions(
            &p[bins..2 * bins],
            bound,
            &mut self.e,
            &mut self.sh,
            &mut self.y,
        );
    }

    /// The derivatives at the two knots of bin `k` (the only ones the map
    /// reads): one at the ends, `softplus(u) + m_d` inside.
    fn bin_derivatives(&mut self, p: &[f32], bins: usize, k: usize) {
        for j in [k, k + 1] {
            self.d[j] = if j == 0 || j == bins {
                1.0
            } else {
                softplus(p[2 * bins + j - 1]) + MIN_DERIVATIVE
            };
        }
    }

    /// Bin of `v` among `t` (the `x` or `y` knots), with its derivatives set.
    fn locate(&mut self, p: &[f32], bins: usize, v: f64, inverse: bool) -> usize {
        let k = Self::bin(if inverse { &self.y } else { &self.x }, v);
        self.bin_derivatives(p, bins, k);
        k
    }

    /// The bin containing `v` among the knots `t` (`0..K`).
    fn bin(t: &[f64], v: f64) -> usize {
        let bins = t.len() - 1;
        let count = t[..bins].iter().filter(|&&e| v >= e).count();
        count.saturating_sub(1).min(bins - 1)
    }
}

/// `ln(1 + e^u)` (f32, like the network outputs it is applied to).
fn softplus(u: f32) -> f64 {
    if u > 20.0 {
        u as f64
    } else {
        exp_f32(u).ln_1p() as f64
    }
}

/// Softmax `s` of `u` and knot positions `t_j = -B + 2B sum_{i<j} w_i`,
/// `w = (1 - K m) s + m`; the end knots are exactly `-B` and `B`. The
/// exponentials are f32 (in `e`, a loop that vectorises), the sums f64.
fn positions(u: &[f32], bound: f64, e: &mut [f32], s: &mut [f64], t: &mut [f64]) {
    let k = u.len();
    let max = u.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for (ei, &ui) in e.iter_mut().zip(u) {
        *ei = exp_f32(ui - max);
    }
    let inv = 1.0 / e.iter().map(|&v| v as f64).sum::<f64>();
    let a = 1.0 - MIN_BIN * k as f64;
    let mut cum = 0.0;
    t[0] = -bound;
    for j in 0..k {
        s[j] = e[j] as f64 * inv;
        cum += a * s[j] + MIN_BIN;
        t[j + 1] = cum * 2.0 * bound - bound;
    }
    t[k] = bound;
}

/// A value with its derivatives in the seven bin inputs
/// `(x, x_k, x_{k+1}, y_k, y_{k+1}, d_k, d_{k+1})`.
#[derive(Clone, Copy)]
struct D7 {
    v: f64,
    g: [f64; 7],
}

impl D7 {
    fn var(v: f64, i: usize) -> Self {
        let mut g = [0.0; 7];
        g[i] = 1.0;
        Self { v, g }
    }
    fn cst(v: f64) -> Self {
        Self { v, g: [0.0; 7] }
    }
    fn map(self, v: f64, dv: f64) -> Self {
        Self {
            v,
            g: self.g.map(|x| x * dv),
        }
    }
    fn ln(self) -> Self {
        self.map(self.v.ln(), 1.0 / self.v)
    }
    fn sq(self) -> Self {
        self * self
    }
}

impl std::ops::Add for D7 {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        let mut g = self.g;
        g.iter_mut().zip(o.g).for_each(|(a, b)| *a += b);
        Self { v: self.v + o.v, g }
    }
}

impl std::ops::Sub for D7 {
    type Output = Self;
    fn sub(self, o: Self) -> Self {
        let mut g = self.g;
        g.iter_mut().zip(o.g).for_each(|(a, b)| *a -= b);
        Self { v: self.v - o.v, g }
    }
}

impl std::ops::Mul for D7 {
    type Output = Self;
    // The product rule: d(uv) = du v + u dv.
    #[allow(clippy::suspicious_arithmetic_impl)]
    fn mul(self, o: Self) -> Self {
        let mut g = self.g;
        g.iter_mut()
            .zip(o.g)
            .for_each(|(a, b)| *a = *a * o.v + self.v * b);
        Self { v: self.v * o.v, g }
    }
}

impl std::ops::Div for D7 {
    type Output = Self;
    fn div(self, o: Self) -> Self {
        let inv = 1.0 / o.v;
        let q = self.v * inv;
        let mut g = self.g;
        g.iter_mut()
            .zip(o.g)
            .for_each(|(a, b)| *a = (*a - q * b) * inv);
        Self { v: q, g }
    }
}

/// `(y, log dy/dx)` inside bin `k` (eqs. 4-5 of Durkan et al. 2019), with
/// derivatives in the seven bin inputs.
fn rq_bin(x: f64, kn: &Knots, k: usize) -> (D7, D7) {
    let xv = D7::var(x, 0);
    let xk = D7::var(kn.x[k], 1);
    let xk1 = D7::var(kn.x[k + 1], 2);
    let yk = D7::var(kn.y[k], 3);
    let yk1 = D7::var(kn.y[k + 1], 4);
    let dk = D7::var(kn.d[k], 5);
    let dk1 = D7::var(kn.d[k + 1], 6);
    let one = D7::cst(1.0);
    let two = D7::cst(2.0);
    let w = xk1 - xk;
    let h = yk1 - yk;
    let s = h / w;
    let xi = (xv - xk) / w;
    let q = xi * (one - xi);
    let den = s + (dk1 + dk - two * s) * q;
    let y = yk + h * (s * xi.sq() + dk * q) / den;
    let dnum = s.sq() * (dk1 * xi.sq() + two * s * q + dk * (one - xi).sq());
    (y, dnum.ln() - two * den.ln())
}

/// [`rq_bin`] without the derivatives (the forward pass).
fn rq_bin_value(x: f64, kn: &Knots, k: usize) -> (f64, f64) {
    let (xk, w) = (kn.x[k], kn.x[k + 1] - kn.x[k]);
    let (yk, h) = (kn.y[k], kn.y[k + 1] - kn.y[k]);
    let (dk, dk1) = (kn.d[k], kn.d[k + 1]);
    let s = h / w;
    let xi = (x - xk) / w;
    let q = xi * (1.0 - xi);
    let den = s + (dk1 + dk - 2.0 * s) * q;
    let y = yk + h * (s * xi * xi + dk * q) / den;
    let dnum = s * s * (dk1 * xi * xi + 2.0 * s * q + dk * (1.0 - xi) * (1.0 - xi));
    (y, dnum.ln() - 2.0 * den.ln())
}

/// Solve the quadratic of appendix A of Durkan et al. for `x` in bin `k`
/// given `y`; returns `(x, log dy/dx at x)`.
fn rq_bin_inverse(y: f64, kn: &Knots, k: usize) -> (f64, f64) {
    let (xk, w) = (kn.x[k], kn.x[k + 1] - kn.x[k]);
    let (yk, h) = (kn.y[k], kn.y[k + 1] - kn.y[k]);
    let (dk, dk1) = (kn.d[k], kn.d[k + 1]);
    let s = h / w;
    let dy = y - yk;
    let t = dk1 + dk - 2.0 * s;
    let qa = h * (s - dk) + dy * t;
    let qb = h * dk - dy * t;
    let qc = -s * dy;
    let disc = (qb * qb - 4.0 * qa * qc).max(0.0);
    let xi = 2.0 * qc / (-qb - disc.sqrt());
    let q = xi * (1.0 - xi);
    let den = s + t * q;
    let dnum = s * s * (dk1 * xi * xi + 2.0 * s * q + dk * (1.0 - xi) * (1.0 - xi));
    (xi * w + xk, dnum.ln() - 2.0 * den.ln())
}

/// What [`map_all`] computes per element.
#[derive(Clone, Copy, PartialEq)]
enum Map {
    /// `x -> (y, log dy/dx)`.
    Forward,
    /// `x -> (y, log dy/dx)` and the [`cache_rows`] for the backward pass.
    ForwardCached,
    /// `y -> (x, log dy/dx)`.
    Inverse,
}

impl Map {
    fn rows(self, bins: usize) -> usize {
        match self {
            Map::ForwardCached => 2 + cache_rows(bins),
            _ => 2,
        }
    }
}

/// The map over `n` elements with `3K - 1` parameters per `share`
/// consecutive elements (1: each its own; the elements of a row sharing
/// one spline, as TRENF's pixel-wise splines do, fill their knots once);
/// returns `[value..., logdet..., cache...]` row by row (`[rows, n]`), the
/// elements split over the kernel threads.
fn map_all(v: &[f32], p: &[f32], (bins, bound): (usize, f64), share: usize, map: Map) -> Vec<f32> {
    let n = v.len();
    let np = 3 * bins - 1;
    let rows = map.rows(bins);
    let mut out = vec![0.0f32; rows * n];
    par_columns(&mut out, n, PAR_ELEMENTS, |range, mut cols| {
        let mut kn = Knots::new(bins);
        let mut filled = usize::MAX;
        let mut o = vec![0.0; rows];
        for (j, i) in range.enumerate() {
            let row = i / share;
            let fill = row != filled;
            filled = row;
            map_one(
                v[i] as f64,
                &p[row * np..(row + 1) * np],
                (&mut kn, fill),
                (bins, bound),
                map,
                &mut o,
            );
            for (col, &val) in cols.iter_mut().zip(&o) {
                col[j] = val as f32;
            }
        }
    });
    out
}

/// One element of [`map_all`] into `o` (`[value, logdet, cache...]`).
fn map_one(
    vi: f64,
    pi: &[f32],
    (kn, fill): (&mut Knots, bool),
    (bins, bound): (usize, f64),
    map: Map,
    o: &mut [f64],
) {
    let inverse = map == Map::Inverse;
    if fill {
        kn.fill(pi, bins, bound);
    }
    if !(-bound..=bound).contains(&vi) {
        o[0] = vi;
        o[1] = 0.0;
        if map == Map::ForwardCached {
            o[2] = -1.0;
        }
        return;
    }
    let k = kn.locate(pi, bins, vi, inverse);
    let (val, ld) = if inverse {
        rq_bin_inverse(vi, kn, k)
    } else {
        rq_bin_value(vi, kn, k)
    };
    o[0] = val;
    o[1] = ld;
    if map == Map::ForwardCached {
        let slope = |j: usize| {
            if j == 0 || j == bins {
                0.0
            } else {
                sigmoid(pi[2 * bins + j - 1]) as f64
            }
        };
        let head = [
            k as f64,
            kn.x[k],
            kn.x[k + 1],
            kn.y[k],
            kn.y[k + 1],
            kn.d[k],
            kn.d[k + 1],
            slope(k),
            slope(k + 1),
        ];
        let cache = head.iter().chain(&kn.sw).chain(&kn.sh);
        for (slot, &c) in o[2..].iter_mut().zip(cache) {
            *slot = c;
        }
    }
}

/// Gradient of the forward map from its input and output (with the cache
/// rows, see [`cache_rows`]): `gy`, `gl` per element -> `[n, 3K]` (`x`, then
/// the parameters).
fn backward_all(
    x: &[f32],
    out: &[f32],
    gy: &[f32],
    gl: &[f32],
    bins: usize,
    bound: f64,
) -> Vec<f32> {
    let n = x.len();
    let np = 3 * bins - 1;
    let mut grads = vec![0.0f32; n * (np + 1)];
    par_rows(&mut grads, np + 1, PAR_ELEMENTS, |range, part| {
        let mut scratch = (
            Knots::new(bins),
            vec![0.0; bins + 1],
            vec![0.0; bins + 1],
            vec![0.0; bins],
        );
        let mut row = vec![0.0; np + 1];
        for (i, dst) in range.zip(part.chunks_mut(np + 1)) {
            let (kn, gx_knot, gy_knot, gs) = &mut scratch;
            let cache = |r: usize| out[(2 + r) * n + i] as f64;
            row.fill(0.0);
            backward_one(
                x[i] as f64,
                (gy[i] as f64, gl[i] as f64),
                cache,
                (bins, bound),
                (kn, gx_knot, gy_knot, gs),
                &mut row,
            );
            for (d, &g) in dst.iter_mut().zip(&row) {
                *d = g as f32;
            }
        }
    });
    grads
}

/// One element of [`backward_all`] into `row` (`[g_x, g_params...]`).
#[allow(clippy::type_complexity)]
fn backward_one(
    xi: f64,
    (gyi, gli): (f64, f64),
    cache: impl Fn(usize) -> f64,
    (bins, bound): (usize, f64),
    (kn, gx_knot, gy_knot, gs): (&mut Knots, &mut [f64], &mut [f64], &mut [f64]),
    row: &mut [f64],
) {
    if cache(0) < 0.0 {
        row[0] = gyi;
        return;
    }
    let (k, g) = bin_gradient(xi, (gyi, gli), &cache, kn);
    row[0] = g[0];
    gx_knot.fill(0.0);
    gy_knot.fill(0.0);
    gx_knot[k] = g[1];
    gx_knot[k + 1] = g[2];
    gy_knot[k] = g[3];
    gy_knot[k + 1] = g[4];
    let (widths, rest) = row[1..].split_at_mut(bins);
    knots_to_logits(gx_knot, |j| cache(9 + j), (bins, bound), gs, widths);
    knots_to_logits(gy_knot, |j| cache(9 + bins + j), (bins, bound), gs, rest);
    // Interior derivatives: d_j = softplus(u_{j-1}) + m_d, j = 1..K-1,
    // with the slope sigmoid(u_{j-1}) from the cache.
    for (j, gd, r) in [(k, g[5], 7), (k + 1, g[6], 8)] {
        if j >= 1 && j < bins {
            row[1 + 2 * bins + j - 1] += gd * cache(r);
        }
    }
}

/// For an element inside `[-B, B]`: its bin `k` and the gradient of
/// `gy y + gl log y'` in the seven bin inputs `[x, x_k, x_{k+1}, y_k,
/// y_{k+1}, d_k, d_{k+1}]`, the bin's knots read from the cache into `kn`.
fn bin_gradient(
    xi: f64,
    (gyi, gli): (f64, f64),
    cache: &impl Fn(usize) -> f64,
    kn: &mut Knots,
) -> (usize, [f64; 7]) {
    let k = cache(0) as usize;
    kn.x[k] = cache(1);
    kn.x[k + 1] = cache(2);
    kn.y[k] = cache(3);
    kn.y[k + 1] = cache(4);
    kn.d[k] = cache(5);
    kn.d[k + 1] = cache(6);
    let (y, ld) = rq_bin(xi, kn, k);
    (k, std::array::from_fn(|j| gyi * y.g[j] + gli * ld.g[j]))
}

/// Gradients `gk` in the `K + 1` knot positions (the end knots constant)
/// to the `K` softmax logits with weights `softmax(j)`, into `out`:
/// `dL/dw_i = 2B sum_{j = i+1}^{K-1} dL/dt_j`, `dL/ds_i = a dL/dw_i`, then
/// the softmax Jacobian. `gs` is scratch of `K`.
fn knots_to_logits(
    gk: &[f64],
    softmax: impl Fn(usize) -> f64,
    (bins, bound): (usize, f64),
    gs: &mut [f64],
    out: &mut [f64],
) {
    let a = 1.0 - MIN_BIN * bins as f64;
    let mut acc = 0.0;
    for i in (0..bins).rev() {
        if i + 1 < bins {
            acc += gk[i + 1];
        }
        gs[i] = a * 2.0 * bound * acc;
    }
    let dot: f64 = (0..bins).map(|j| gs[j] * softmax(j)).sum();
    for j in 0..bins {
        out[j] = softmax(j) * (gs[j] - dot);
    }
}

/// [`backward_all`] for one spline per row of `share` elements: `[rows,
/// share + 3K - 1]`, the gradient in `x` then the parameters'. The knot
/// gradients are summed over the row's elements first and pushed through
/// the softmax and softplus once per row, not once per element (the chain
/// from knots to parameters is linear and the same for the whole row).
fn backward_shared(
    x: &[f32],
    out: &[f32],
    gy: &[f32],
    gl: &[f32],
    (bins, bound): (usize, f64),
    share: usize,
) -> Vec<f32> {
    let n = x.len();
    let np = 3 * bins - 1;
    let width = share + np;
    let mut res = vec![0.0f32; (n / share.max(1)) * width];
    par_rows(&mut res, width, 1, |rows, part| {
        let mut kn = Knots::new(bins);
        // Knot gradients (positions, heights, derivatives times slope).
        let (mut gxk, mut gyk, mut gdk) = (
            vec![0.0; bins + 1],
            vec![0.0; bins + 1],
            vec![0.0; bins + 1],
        );
        let mut gs = vec![0.0; bins];
        let mut params = vec![0.0; np];
        for (r, dst) in rows.zip(part.chunks_mut(width)) {
            let (gx, gp) = dst.split_at_mut(share);
            gxk.fill(0.0);
            gyk.fill(0.0);
            gdk.fill(0.0);
            let mut softmax_from = None;
            for (j, g) in gx.iter_mut().enumerate() {
                let i = r * share + j;
                let cache = |q: usize| out[(2 + q) * n + i] as f64;
                if cache(0) < 0.0 {
                    *g = gy[i];
                    continue;
                }
                let (k, e) =
                    bin_gradient(x[i] as f64, (gy[i] as f64, gl[i] as f64), &cache, &mut kn);
                *g = e[0] as f32;
                gxk[k] += e[1];
                gxk[k + 1] += e[2];
                gyk[k] += e[3];
                gyk[k + 1] += e[4];
                gdk[k] += e[5] * cache(7);
                gdk[k + 1] += e[6] * cache(8);
                softmax_from.get_or_insert(i);
            }
            // No element inside [-B, B]: the parameters get no gradient.
            let Some(i) = softmax_from else { continue };
            let cache = |q: usize| out[(2 + q) * n + i] as f64;
            let (widths, rest) = params.split_at_mut(bins);
            let (heights, derivs) = rest.split_at_mut(bins);
            knots_to_logits(&gxk, |j| cache(9 + j), (bins, bound), &mut gs, widths);
            knots_to_logits(
                &gyk,
                |j| cache(9 + bins + j),
                (bins, bound),
                &mut gs,
                heights,
            );
            derivs.copy_from_slice(&gdk[1..bins]);
            for (d, &v) in gp.iter_mut().zip(&params) {
                *d = v as f32;
            }
        }
    });
    res
}

/// Elements per parameter row: `D` when `params` is `[B, 1, 3K - 1]` for
/// `x` `[B, D]` (one spline per row), else 1.
fn shared(x: &Shape, params: &Shape) -> usize {
    if params[1] == 1 {
        x[1]
    } else {
        1
    }
}

/// The map on `flex` tensors: `[B, D]` and `[B, D, 3K - 1]` (or
/// `[B, 1, 3K - 1]`) in,
/// `[rows, B, D]` out.
fn flex_map(v: FlexTensor, params: FlexTensor, bins: usize, bound: f64, map: Map) -> FlexTensor {
    let (shape, dtype) = (v.shape(), v.dtype());
    let share = shared(&shape, &params.shape());
    let out = map_all(
        &f32_values(&v),
        &f32_values(&params),
        (bins, bound),
        share,
        map,
    );
    let mut out_shape = vec![map.rows(bins)];
    out_shape.extend(shape.iter());
    f32_tensor(out, Shape::from(out_shape), dtype)
}

impl RqSplineOps for Flex {
    fn rq_spline_forward(x: FlexTensor, params: FlexTensor, bins: usize, bound: f64) -> FlexTensor {
        flex_map(x, params, bins, bound, Map::Forward)
    }
}

impl RqSplineKernels for Flex {
    fn rq_spline_forward_cached(
        x: FlexTensor,
        params: FlexTensor,
        bins: usize,
        bound: f64,
    ) -> FlexTensor {
        flex_map(x, params, bins, bound, Map::ForwardCached)
    }

    fn rq_spline_inverse(y: FlexTensor, params: FlexTensor, bins: usize, bound: f64) -> FlexTensor {
        flex_map(y, params, bins, bound, Map::Inverse)
    }

    fn rq_spline_backward(
        x: FlexTensor,
        cached: FlexTensor,
        grad: FlexTensor,
        bins: usize,
        bound: f64,
    ) -> FlexTensor {
        let (shape, dtype) = (x.shape(), x.dtype());
        let (xv, g) = (f32_values(&x), f32_values(&grad));
        let n = xv.len();
        let grads = backward_all(
            &xv,
            &f32_values(&cached),
            &g[..n],
            &g[n..2 * n],
            bins,
            bound,
        );
        let mut out_shape: Vec<usize> = shape.iter().copied().collect();
        out_shape.push(3 * bins);
        f32_tensor(grads, Shape::from(out_shape), dtype)
    }

    fn rq_spline_backward_shared(
        x: FlexTensor,
        cached: FlexTensor,
        grad: FlexTensor,
        bins: usize,
        bound: f64,
    ) -> FlexTensor {
        let (shape, dtype) = (x.shape(), x.dtype());
        let (xv, g) = (f32_values(&x), f32_values(&grad));
        let n = xv.len();
        let grads = backward_shared(
            &xv,
            &f32_values(&cached),
            &g[..n],
            &g[n..2 * n],
            (bins, bound),
            shape[1],
        );
        f32_tensor(
            grads,
            Shape::from(vec![shape[0], shape[1] + 3 * bins - 1]),
            dtype,
        )
    }
}

#[derive(Debug)]
struct RqSplineBackward {
    bins: usize,
    bound: f64,
    /// `params` is `[B, 1, 3K - 1]`, one spline per row.
    shared: bool,
}

impl<B: Backend + RqSplineKernels> Backward<B, 2> for RqSplineBackward {
    /// The input `x` and the output with its cache rows.
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_p] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x, cached) = ops.state;
        let shape = x.shape();
        let elements = shape[1];
        let np = 3 * self.bins - 1;
        let full = Slice::from(..);
        if self.shared && elements > 1 {
            let rows = shape[0];
            let g = B::rq_spline_backward_shared(x, cached, grad, self.bins, self.bound);
            if let Some(node) = node_x {
                let gx = B::float_slice(g.clone(), &[full, Slice::from(0..elements)]);
                grads.register::<B>(node.id, gx);
            }
            if let Some(node) = node_p {
                let gp = B::float_slice(g, &[full, Slice::from(elements..elements + np)]);
                grads.register::<B>(
                    node.id,
                    B::float_reshape(gp, Shape::from(vec![rows, 1, np])),
                );
            }
            return;
        }
        let g = B::rq_spline_backward(x, cached, grad, self.bins, self.bound);
        if let Some(node) = node_x {
            let gx = B::float_slice(g.clone(), &[full, full, Slice::from(0..1)]);
            grads.register::<B>(node.id, B::float_reshape(gx, shape));
        }
        if let Some(node) = node_p {
            let gp = B::float_slice(g, &[full, full, Slice::from(1..np + 1)]);
            // A spline shared by a row of one element.
            grads.register::<B>(node.id, gp);
        }
    }
}

impl<B: Backend + RqSplineOps + RqSplineKernels, C: CheckpointStrategy> RqSplineOps
    for Autodiff<B, C>
{
    fn rq_spline_forward(
        x: FloatTensor<Self>,
        params: FloatTensor<Self>,
        bins: usize,
        bound: f64,
    ) -> FloatTensor<Self> {
        let (x, x_node) = x.into_parts();
        let (params, p_node) = params.into_parts();
        let shared = params.shape()[1] == 1;
        let op = RqSplineBackward {
            bins,
            bound,
            shared,
        };
        match op.prepare::<C>([x_node, p_node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let cached = B::rq_spline_forward_cached(x.clone(), params, bins, bound);
                let out = B::float_slice(cached.clone(), &[Slice::from(0..2)]);
                prep.finish((x, cached), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::rq_spline_forward(x, params, bins, bound)),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cpu::close;
    use crate::spline::{rq_forward, rq_forward_ops, rq_inverse, rq_inverse_ops};
    use crate::tensor::to_vec;
    use burn::tensor::{Device, Distribution, Tensor, TensorData};

    const BINS: usize = 6;
    const BOUND: f64 = 3.0;

    /// Inputs spread over and beyond `[-B, B]`, and parameters of every size.
    fn inputs(device: &Device) -> (Tensor<2>, Tensor<3>) {
        use rand::SeedableRng;
        use rand_distr::{Distribution as _, Normal, Uniform};
        let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(7);
        let np = 3 * BINS - 1;
        let uniform = Uniform::new(-4.0f32, 4.0).expect("valid");
        let x: Vec<f32> = (0..300).map(|_| uniform.sample(&mut rng)).collect();
        let normal = Normal::new(0.0f32, 1.5).expect("valid");
        let p: Vec<f32> = (0..300 * np).map(|_| normal.sample(&mut rng)).collect();
        (
            Tensor::from_data(TensorData::new(x, [100, 3]), device),
            Tensor::from_data(TensorData::new(p, [100, 3, np]), device),
        )
    }

    fn max_diff(a: Tensor<2>, b: Tensor<2>) -> f64 {
        to_vec(a)
            .iter()
            .zip(to_vec(b))
            .map(|(u, v)| (u - v).abs())
            .fold(0.0, f64::max)
    }

    #[test]
    fn fused_matches_composed_values() {
        let dev = Device::flex();
        let (x, p) = inputs(&dev);
        let (y, ld) = rq_forward(x.clone(), p.clone(), BINS, BOUND);
        let (y0, ld0) = rq_forward_ops(x.clone(), p.clone(), BINS, BOUND);
        assert!(max_diff(y.clone(), y0) < 1e-5);
        assert!(max_diff(ld.clone(), ld0) < 1e-4);
        let (xb, ldb) = rq_inverse(y.clone(), p.clone(), BINS, BOUND);
        let p_inv = p.clone();
        let (xb0, _) = rq_inverse_ops(y.clone(), p, BINS, BOUND);
        // Inverse to the rounding of y: |x_b - x| dy/dx within a few f32
        // ulps of y (flat bins amplify that rounding in x, up to 1e-2 in
        // this draw). The composed f32 inverse also loses digits in the
        // quadratic's cancellation.
        let (xs, ys, ls) = (to_vec(x.clone()), to_vec(y), to_vec(ld.clone()));
        let back = |xb: Tensor<2>| {
            to_vec(xb)
                .iter()
                .zip(&xs)
                .zip(ys.iter().zip(&ls))
                .map(|((a, b), (y, l))| (a - b).abs() * l.exp() / (1.0 + y.abs()))
                .fold(0.0, f64::max)
        };
        let (err, err0) = (back(xb.clone()), back(xb0));
        assert!(err < 1e-6, "inverse(forward(x)) = x up to rounding: {err}");
        assert!(
            err <= err0,
            "at least as accurate as composed ({err} vs {err0})"
        );
        // The inverse's log-determinant is the forward one at its solution.
        let (_, ld_at_xb) = rq_forward(xb, p_inv, BINS, BOUND);
        assert!(max_diff(ldb, ld_at_xb) < 1e-4);
    }

    #[test]
    fn fused_gradients_match_composed() {
        let dev = Device::flex().autodiff();
        let (x, p) = inputs(&dev);
        // Random output weights so every output element matters.
        let wy = Tensor::<2>::random([100, 3], Distribution::Normal(0.0, 1.0), &dev);
        let wl = Tensor::<2>::random([100, 3], Distribution::Normal(0.0, 1.0), &dev);
        let grads = |fused: bool| {
            let (x, p) = (x.clone().require_grad(), p.clone().require_grad());
            let f = if fused { rq_forward } else { rq_forward_ops };
            let (y, ld) = f(x.clone(), p.clone(), BINS, BOUND);
            let g = ((y * wy.clone()).sum() + (ld * wl.clone()).sum()).backward();
            let gx = x.grad(&g).expect("x is tracked");
            let gp = p.grad(&g).expect("params are tracked");
            (to_vec(gx), to_vec(gp))
        };
        let (gx, gp) = grads(true);
        let (gx0, gp0) = grads(false);
        assert!(close(&gx, &gx0, 1e-4), "gradient in x");
        assert!(close(&gp, &gp0, 1e-4), "gradient in the parameters");
        assert!(
            gp.iter().any(|g| g.abs() > 1e-3),
            "parameter gradient is not trivially zero"
        );
    }

    /// One spline per row (`params` `[B, 1, P]`, as TRENF's pixel-wise
    /// splines): the fused kernel's values, inverse and gradients equal the
    /// composed operations on parameters repeated over the elements.
    #[test]
    fn shared_row_splines_match_repeated_parameters() {
        let dev = Device::flex().autodiff();
        let (x, p) = inputs(&dev);
        let p1 = p.narrow(1, 0, 1);
        let wy = Tensor::<2>::random([100, 3], Distribution::Normal(0.0, 1.0), &dev);
        let wl = Tensor::<2>::random([100, 3], Distribution::Normal(0.0, 1.0), &dev);
        let run = |fused: bool| {
            let (x, p1) = (x.clone().require_grad(), p1.clone().require_grad());
            let (y, ld) = if fused {
                rq_forward(x.clone(), p1.clone(), BINS, BOUND)
            } else {
                rq_forward_ops(
                    x.clone(),
                    p1.clone().expand([100, 3, 3 * BINS - 1]),
                    BINS,
                    BOUND,
                )
            };
            let g = ((y.clone() * wy.clone()).sum() + (ld.clone() * wl.clone()).sum()).backward();
            (
                to_vec(y),
                to_vec(ld),
                to_vec(x.grad(&g).expect("x")),
                to_vec(p1.grad(&g).expect("params")),
            )
        };
        let (y, ld, gx, gp) = run(true);
        let (y0, ld0, gx0, gp0) = run(false);
        assert!(close(&y, &y0, 1e-5) && close(&ld, &ld0, 1e-4), "values");
        assert!(close(&gx, &gx0, 1e-4), "gradient in x");
        assert_eq!(gp.len(), 100 * (3 * BINS - 1));
        assert!(close(&gp, &gp0, 1e-4), "gradient in the shared parameters");
        // The inverse kernel, shared or repeated, is the same arithmetic.
        let (xv, pv) = (x.clone().inner(), p1.clone().inner());
        let (yv, _) = rq_forward(xv, pv.clone(), BINS, BOUND);
        let (a, la) = rq_inverse(yv.clone(), pv.clone(), BINS, BOUND);
        let (b, lb) = rq_inverse(yv, pv.expand([100, 3, 3 * BINS - 1]), BINS, BOUND);
        assert_eq!((to_vec(a), to_vec(la)), (to_vec(b), to_vec(lb)), "inverse");
    }
}
