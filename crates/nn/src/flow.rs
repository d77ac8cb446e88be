//! Conditional normalizing flows `q(y | c)` (Papamakarios et al. 2021,
//! "Normalizing flows for probabilistic modeling and inference").
//!
//! A flow is a chain of invertible transforms `z = f_L o ... o f_1 (y; c)`
//! onto a standard normal base, so
//! `log q(y | c) = log N(z; 0, I) + sum_l log |det d f_l / d y_{l-1}|`.
//! Transforms (each with `forward` = data -> noise and `inverse`):
//! - [`AffineCoupling`] (RealNVP, Dinh et al. 2017), [`SplineCoupling`]
//!   (Durkan et al. 2019): half the features condition the other half;
//! - [`AffineAutoregressive`] (MAF, Papamakarios et al. 2017) and
//!   [`SplineAutoregressive`] on a [`Made`] conditioner;
//! - [`Permutation`] and [`LuLinear`] (`W = L U`, Kingma & Dhariwal 2018;
//!   Durkan et al. 2019) to mix features between layers.

use burn::module::{Module, Param};
use burn::tensor::activation::softplus;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::error::{invalid, NnError};
use crate::layers::{Made, ResidualNet};
use crate::spline::{n_params, rq_forward, rq_inverse};
use crate::tensor::{const2, int_tensor, to_vec};

/// Affine scale `softplus(u + c) + 1e-3` with `softplus(c) + 1e-3 = 1`:
/// positive, exactly one at `u = 0`, and unbounded in both directions
/// (nflows' `sigmoid(u + 2) + 1e-3` cannot exceed one, so a single MAF layer
/// can only widen a distribution).
fn affine_scale(u: Tensor<2>) -> Tensor<2> {
    let c = ((1.0f64 - 1e-3).exp() - 1.0).ln();
    softplus(u + c, 1.0) + 1e-3
}

fn split(x: Tensor<2>, d_id: usize, flip: bool) -> (Tensor<2>, Tensor<2>) {
    let [_, d] = x.dims();
    if flip {
        (
            x.clone().narrow(1, d - d_id, d_id),
            x.narrow(1, 0, d - d_id),
        )
    } else {
        (x.clone().narrow(1, 0, d_id), x.narrow(1, d_id, d - d_id))
    }
}

fn join(id: Tensor<2>, tr: Tensor<2>, flip: bool) -> Tensor<2> {
    if flip {
        Tensor::cat(vec![tr, id], 1)
    } else {
        Tensor::cat(vec![id, tr], 1)
    }
}

/// Coupling layer with an affine map: `z_b = y_b * s(y_a, c) + t(y_a, c)`.
#[derive(Module, Debug)]
pub struct AffineCoupling {
    net: ResidualNet,
    d_id: usize,
    flip: bool,
}

impl AffineCoupling {
    fn params(&self, ya: Tensor<2>, c: &Option<Tensor<2>>) -> (Tensor<2>, Tensor<2>) {
        let out = self.net.forward(ya, c);
        let [b, n] = out.dims();
        let out = out.reshape([b, 2, n / 2]);
        let shift = out.clone().narrow(1, 0, 1).reshape([b, n / 2]);
        let scale = affine_scale(out.narrow(1, 1, 1).reshape([b, n / 2]));
        (shift, scale)
    }
    fn forward(&self, x: Tensor<2>, c: &Option<Tensor<2>>) -> (Tensor<2>, Tensor<1>) {
        let (ya, yb) = split(x, self.d_id, self.flip);
        let (shift, scale) = self.params(ya.clone(), c);
        let z = yb * scale.clone() + shift;
        let ld = scale.log().sum_dim(1);
        let [b, _] = ld.dims();
        (join(ya, z, self.flip), ld.reshape([b]))
    }
    fn inverse(&self, z: Tensor<2>, c: &Option<Tensor<2>>) -> Tensor<2> {
        let (za, zb) = split(z, self.d_id, self.flip);
        let (shift, scale) = self.params(za.clone(), c);
        join(za, (zb - shift) / scale, self.flip)
    }
}

/// Coupling layer with a rational-quadratic spline on `[-B, B]`.
#[derive(Module, Debug)]
pub struct SplineCoupling {
    net: ResidualNet,
    d_id: usize,
    flip: bool,
    bins: usize,
    bound: f64,
}

impl SplineCoupling {
    fn params(&self, ya: Tensor<2>, c: &Option<Tensor<2>>, d_tr: usize) -> Tensor<3> {
        let out = self.net.forward(ya, c);
        let [b, _] = out.dims();
        let out = out.reshape([b, d_tr, n_params(self.bins)]);
        // As in nflows: bin widths and heights are divided by sqrt(hidden),
        // so the initial spline is close to uniform bins.
        // One broadcast multiply by [1/sqrt(h) x 2K, 1 x (K - 1)].
        let k = self.bins;
        let inv = (1.0 / (self.net.hidden() as f64).sqrt()) as f32;
        let scale: Vec<f32> = (0..n_params(k))
            .map(|i| if i < 2 * k { inv } else { 1.0 })
            .collect();
        let scale = Tensor::<1>::from_data(TensorData::new(scale, [n_params(k)]), &out.device());
        out * scale.reshape([1, 1, n_params(k)])
    }
    fn forward(&self, x: Tensor<2>, c: &Option<Tensor<2>>) -> (Tensor<2>, Tensor<1>) {
        let (ya, yb) = split(x, self.d_id, self.flip);
        let [b, d_tr] = yb.dims();
        let p = self.params(ya.clone(), c, d_tr);
        let (z, ld) = rq_forward(yb, p, self.bins, self.bound);
        (join(ya, z, self.flip), ld.sum_dim(1).reshape([b]))
    }
    fn inverse(&self, z: Tensor<2>, c: &Option<Tensor<2>>) -> Tensor<2> {
        let (za, zb) = split(z, self.d_id, self.flip);
        let [_, d_tr] = zb.dims();
        let p = self.params(za.clone(), c, d_tr);
        join(za, rq_inverse(zb, p, self.bins, self.bound).0, self.flip)
    }
}

/// MAF layer: `z_i = y_i s_i(y_{<i}, c) + t_i(y_{<i}, c)`.
#[derive(Module, Debug)]
pub struct AffineAutoregressive {
    made: Made,
}

impl AffineAutoregressive {
    fn params(&self, y: Tensor<2>, c: &Option<Tensor<2>>) -> (Tensor<2>, Tensor<2>) {
        let [b, d] = y.dims();
        let out = self.made.forward(y, c.clone());
        let shift = out.clone().narrow(1, 0, 1).reshape([b, d]);
        let scale = affine_scale(out.narrow(1, 1, 1).reshape([b, d]));
        (shift, scale)
    }
    fn forward(&self, x: Tensor<2>, c: &Option<Tensor<2>>) -> (Tensor<2>, Tensor<1>) {
        let [b, _] = x.dims();
        let (shift, scale) = self.params(x.clone(), c);
        (
            x * scale.clone() + shift,
            scale.log().sum_dim(1).reshape([b]),
        )
    }
    /// `D` sequential passes: after pass `i`, features `<= i` are exact.
    fn inverse(&self, z: Tensor<2>, c: &Option<Tensor<2>>) -> Tensor<2> {
        let [_, d] = z.dims();
        let mut y = z.zeros_like();
        for _ in 0..d {
            let (shift, scale) = self.params(y, c);
            y = (z.clone() - shift) / scale;
        }
        y
    }
}

/// Autoregressive rational-quadratic spline layer on a MADE conditioner.
#[derive(Module, Debug)]
pub struct SplineAutoregressive {
    made: Made,
    bins: usize,
    bound: f64,
}

impl SplineAutoregressive {
    fn params(&self, y: Tensor<2>, c: &Option<Tensor<2>>) -> Tensor<3> {
        self.made.forward(y, c.clone()).swap_dims(1, 2)
    }
    fn forward(&self, x: Tensor<2>, c: &Option<Tensor<2>>) -> (Tensor<2>, Tensor<1>) {
        let [b, _] = x.dims();
        let p = self.params(x.clone(), c);
        let (z, ld) = rq_forward(x, p, self.bins, self.bound);
        (z, ld.sum_dim(1).reshape([b]))
    }
    fn inverse(&self, z: Tensor<2>, c: &Option<Tensor<2>>) -> Tensor<2> {
        let [_, d] = z.dims();
        let mut y = z.zeros_like();
        for _ in 0..d {
            let p = self.params(y, c);
            y = rq_inverse(z.clone(), p, self.bins, self.bound).0;
        }
        y
    }
}

/// Fixed permutation of the features (volume preserving).
#[derive(Module, Debug)]
pub struct Permutation {
    perm: Tensor<1, Int>,
    inv: Tensor<1, Int>,
}

impl Permutation {
    fn new(perm: Vec<usize>, device: &Device) -> Self {
        let mut inv = vec![0; perm.len()];
        for (i, &p) in perm.iter().enumerate() {
            inv[p] = i;
        }
        Self {
            perm: int_tensor(&perm, device),
            inv: int_tensor(&inv, device),
        }
    }
}

/// Learned invertible linear map `z = y W^T + b`, `W = L U` with `L` unit
/// lower triangular and `U` upper triangular with diagonal
/// `softplus(u) + 1e-3`; `log |det W| = sum_i log U_ii`. Starts at identity.
#[derive(Module, Debug)]
pub struct LuLinear {
    lower: Param<Tensor<2>>,
    upper: Param<Tensor<2>>,
    diag: Param<Tensor<1>>,
    bias: Param<Tensor<1>>,
    lower_mask: Tensor<2>,
    upper_mask: Tensor<2>,
    eye: Tensor<2>,
}

impl LuLinear {
    pub(crate) fn new(d: usize, device: &Device) -> Self {
        let lm: Vec<f32> = (0..d * d)
            .map(|k| if k / d > k % d { 1.0 } else { 0.0 })
            .collect();
        let um: Vec<f32> = (0..d * d)
            .map(|k| if k / d < k % d { 1.0 } else { 0.0 })
            .collect();
        let d0 = ((1.0f64 - 1e-3).exp() - 1.0).ln();
        Self {
            lower: Param::from_tensor(Tensor::zeros([d, d], device)),
            upper: Param::from_tensor(Tensor::zeros([d, d], device)),
            diag: Param::from_tensor(Tensor::full([d], d0, device)),
            bias: Param::from_tensor(Tensor::zeros([d], device)),
            lower_mask: const2(lm, [d, d], device),
            upper_mask: const2(um, [d, d], device),
            eye: Tensor::eye(d, device),
        }
    }
    fn diag_u(&self) -> Tensor<1> {
        softplus(self.diag.val(), 1.0) + 1e-3
    }
    fn weight(&self) -> Tensor<2> {
        let l = self.lower.val() * self.lower_mask.clone() + self.eye.clone();
        let u = self.upper.val() * self.upper_mask.clone()
            + self.eye.clone() * self.diag_u().unsqueeze_dim::<2>(0);
        l.matmul(u)
    }
    pub(crate) fn forward(&self, x: Tensor<2>) -> (Tensor<2>, Tensor<1>) {
        let [b, _] = x.dims();
        let z = x.matmul(self.weight().transpose()) + self.bias.val().unsqueeze_dim::<2>(0);
        let ld = self.diag_u().log().sum().expand([b]);
        (z, ld)
    }
    pub(crate) fn inverse(&self, z: Tensor<2>) -> Tensor<2> {
        let [_, d] = z.dims();
        let device = z.device();
        let w = to_vec(self.weight());
        let winv = invert(&w, d);
        // x = (z - b) W^{-T}
        let winv_t: Vec<f32> = (0..d * d)
            .map(|k| winv[(k % d) * d + k / d] as f32)
            .collect();
        (z - self.bias.val().unsqueeze_dim::<2>(0)).matmul(const2(winv_t, [d, d], &device))
    }
}

/// Gauss-Jordan inverse with partial pivoting of a small dense matrix.
fn invert(a: &[f64], n: usize) -> Vec<f64> {
    let mut m = a.to_vec();
    let mut inv: Vec<f64> = (0..n * n)
        .map(|k| if k / n == k % n { 1.0 } else { 0.0 })
        .collect();
    for col in 0..n {
        let piv = (col..n)
            .max_by(|&i, &j| m[i * n + col].abs().total_cmp(&m[j * n + col].abs()))
            .unwrap_or(col);
        for k in 0..n {
            m.swap(col * n + k, piv * n + k);
            inv.swap(col * n + k, piv * n + k);
        }
        let p = m[col * n + col];
        for k in 0..n {
            m[col * n + k] /= p;
            inv[col * n + k] /= p;
        }
        for i in 0..n {
            if i != col {
                let f = m[i * n + col];
                if f != 0.0 {
                    for k in 0..n {
                        m[i * n + k] -= f * m[col * n + k];
                        inv[i * n + k] -= f * inv[col * n + k];
                    }
                }
            }
        }
    }
    inv
}

/// One invertible layer of a flow.
#[derive(Module, Debug)]
pub enum Transform {
    AffineCoupling(AffineCoupling),
    SplineCoupling(SplineCoupling),
    AffineAutoregressive(AffineAutoregressive),
    SplineAutoregressive(SplineAutoregressive),
    Permutation(Permutation),
    LuLinear(LuLinear),
}

impl Transform {
    /// Data -> noise, with `log |det J|` per sample.
    pub fn forward(&self, x: Tensor<2>, c: &Option<Tensor<2>>) -> (Tensor<2>, Tensor<1>) {
        match self {
            Transform::AffineCoupling(t) => t.forward(x, c),
            Transform::SplineCoupling(t) => t.forward(x, c),
            Transform::AffineAutoregressive(t) => t.forward(x, c),
            Transform::SplineAutoregressive(t) => t.forward(x, c),
            Transform::Permutation(p) => {
                let [b, _] = x.dims();
                let device = x.device();
                (x.select(1, p.perm.clone()), Tensor::zeros([b], &device))
            }
            Transform::LuLinear(t) => t.forward(x),
        }
    }
    /// Noise -> data.
    pub fn inverse(&self, z: Tensor<2>, c: &Option<Tensor<2>>) -> Tensor<2> {
        match self {
            Transform::AffineCoupling(t) => t.inverse(z, c),
            Transform::SplineCoupling(t) => t.inverse(z, c),
            Transform::AffineAutoregressive(t) => t.inverse(z, c),
            Transform::SplineAutoregressive(t) => t.inverse(z, c),
            Transform::Permutation(p) => z.select(1, p.inv.clone()),
            Transform::LuLinear(t) => t.inverse(z),
        }
    }
}

/// Which family of transforms a flow is built from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowKind {
    /// Rational-quadratic spline coupling layers + LU linear mixing (sbi's `nsf`).
    Nsf,
    /// Autoregressive rational-quadratic splines (MADE) + permutations.
    NsfAr,
    /// Masked autoregressive affine flow + permutations (sbi's `maf`).
    Maf,
    /// Affine coupling (RealNVP) + alternating halves and permutations.
    Realnvp,
}

impl FlowKind {
    /// Whether the flow's transforms are splines (so a bin count applies).
    pub fn has_splines(&self) -> bool {
        matches!(self, Self::Nsf | Self::NsfAr)
    }
    pub fn parse(s: &str) -> Result<Self, NnError> {
        match s {
            "nsf" => Ok(Self::Nsf),
            "nsf_ar" | "nsf-ar" => Ok(Self::NsfAr),
            "maf" => Ok(Self::Maf),
            "realnvp" => Ok(Self::Realnvp),
            _ => invalid(format!(
                "unknown flow '{s}': expected nsf, nsf_ar, maf or realnvp"
            )),
        }
    }
    pub fn name(&self) -> &'static str {
        match self {
            Self::Nsf => "nsf",
            Self::NsfAr => "nsf_ar",
            Self::Maf => "maf",
            Self::Realnvp => "realnvp",
        }
    }
}

/// Architecture of a conditional flow (defaults follow sbi's).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlowConfig {
    pub kind: FlowKind,
    /// Dimension of the modelled variable.
    pub dim: usize,
    /// Dimension of the conditioning vector (0: unconditional).
    pub context_dim: usize,
    pub num_transforms: usize,
    pub hidden: usize,
    /// Residual blocks (coupling) or hidden layers (MADE).
    pub blocks: usize,
    pub bins: usize,
    pub tail_bound: f64,
    /// Seed of the random permutations (the weights are seeded by training).
    pub seed: u64,
}

impl FlowConfig {
    pub fn new(kind: FlowKind, dim: usize, context_dim: usize) -> Self {
        Self {
            kind,
            dim,
            context_dim,
            num_transforms: 5,
            hidden: 50,
            blocks: 2,
            bins: 10,
            tail_bound: 3.0,
            seed: 0,
        }
    }

    pub fn validate(&self) -> Result<(), NnError> {
        if self.dim == 0 {
            return invalid("flow dimension must be at least 1");
        }
        if self.num_transforms == 0 || self.hidden == 0 {
            return invalid("flow needs at least one transform and one hidden unit");
        }
        if self.bins < 2 {
            return invalid(format!("spline needs at least 2 bins, got {}", self.bins));
        }
        if !(self.tail_bound > 0.0 && self.tail_bound.is_finite()) {
            return invalid(format!(
                "tail bound must be positive, got {}",
                self.tail_bound
            ));
        }
        Ok(())
    }

    /// Build the flow with freshly initialised weights on `device`.
    pub fn init(&self, device: &Device) -> Result<Flow, NnError> {
        self.validate()?;
        let (d, c, h) = (self.dim, self.context_dim, self.hidden);
        let d_id = d / 2;
        let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(self.seed);
        let mut ts = Vec::new();
        // Couplings need two halves; in 1-D the autoregressive version
        // (conditioned on the context only) is the same thing.
        let kind = match (self.kind, d) {
            (FlowKind::Nsf, 1) => FlowKind::NsfAr,
            (FlowKind::Realnvp, 1) => FlowKind::Maf,
            (k, _) => k,
        };
        for l in 0..self.num_transforms {
            let flip = l % 2 == 1;
            match kind {
                FlowKind::Nsf => {
                    ts.push(Transform::SplineCoupling(SplineCoupling {
                        net: ResidualNet::new(
                            d_id,
                            c,
                            (d - d_id) * n_params(self.bins),
                            h,
                            self.blocks,
                            device,
                        ),
                        d_id,
                        flip,
                        bins: self.bins,
                        bound: self.tail_bound,
                    }));
                    ts.push(Transform::LuLinear(LuLinear::new(d, device)));
                }
                FlowKind::Realnvp => {
                    ts.push(Transform::AffineCoupling(AffineCoupling {
                        net: ResidualNet::new(d_id, c, 2 * (d - d_id), h, self.blocks, device),
                        d_id,
                        flip,
                    }));
                    let mut p: Vec<usize> = (0..d).collect();
                    p.shuffle(&mut rng);
                    ts.push(Transform::Permutation(Permutation::new(p, device)));
                }
                FlowKind::Maf => {
                    ts.push(Transform::AffineAutoregressive(AffineAutoregressive {
                        made: Made::new(d, c, h, self.blocks, 2, device),
                    }));
                    let mut p: Vec<usize> = (0..d).collect();
                    p.shuffle(&mut rng);
                    ts.push(Transform::Permutation(Permutation::new(p, device)));
                }
                FlowKind::NsfAr => {
                    ts.push(Transform::SplineAutoregressive(SplineAutoregressive {
                        made: Made::new(d, c, h, self.blocks, n_params(self.bins), device),
                        bins: self.bins,
                        bound: self.tail_bound,
                    }));
                    let mut p: Vec<usize> = (0..d).collect();
                    p.shuffle(&mut rng);
                    ts.push(Transform::Permutation(Permutation::new(p, device)));
                }
            }
        }
        Ok(Flow {
            transforms: ts,
            dim: d,
            context_dim: c,
        })
    }
}

/// A conditional normalizing flow on standardised variables.
#[derive(Module, Debug)]
pub struct Flow {
    transforms: Vec<Transform>,
    dim: usize,
    context_dim: usize,
}

impl Flow {
    pub fn dim(&self) -> usize {
        self.dim
    }
    pub fn context_dim(&self) -> usize {
        self.context_dim
    }

    /// Map data to noise: `(z, sum log |det J|)`.
    pub fn to_noise(&self, y: Tensor<2>, context: Option<Tensor<2>>) -> (Tensor<2>, Tensor<1>) {
        let [b, _] = y.dims();
        let device = y.device();
        let mut ld: Tensor<1> = Tensor::zeros([b], &device);
        let mut z = y;
        for t in &self.transforms {
            let (z2, l) = t.forward(z, &context);
            z = z2;
            ld = ld + l;
        }
        (z, ld)
    }

    /// `log q(y | c)` per row, `[B]`.
    pub fn log_prob(&self, y: Tensor<2>, context: Option<Tensor<2>>) -> Tensor<1> {
        let [b, d] = y.dims();
        let (z, ld) = self.to_noise(y, context);
        let base = z.square().sum_dim(1).reshape([b]) * (-0.5)
            - 0.5 * d as f64 * (2.0 * std::f64::consts::PI).ln();
        base + ld
    }

    /// Map base draws `z` `[B, D]` to samples (context `[B, C]`).
    pub fn from_noise(&self, z: Tensor<2>, context: Option<Tensor<2>>) -> Tensor<2> {
        let mut y = z;
        for t in self.transforms.iter().rev() {
            y = t.inverse(y, &context);
        }
        y
    }
}
