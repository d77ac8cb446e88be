//! Translation- and rotation-equivariant normalizing flows on periodic
//! fields (TRENF; Dai & Seljak 2022, "Translation and rotation equivariant
//! normalizing flow (TRENF) for optimal cosmological analysis",
//! arXiv:2202.05282): exact likelihoods `p(x | theta)` of whole maps and
//! boxes.
//!
//! Each layer maps a field `h` (`C` channels of `L = n^d` pixels) towards
//! noise by, in order:
//! 1. an optional ActNorm, `h_c -> exp(s_c) h_c + b_c` (`log det = L sum s_c`);
//! 2. for `C > 1`, a learned invertible channel mixing `W = L U` applied at
//!    every pixel (`log det = L log |det W|`, Kingma & Dhariwal 2018);
//! 3. the radial Fourier filter `u = F^-1[T_c(|k|; theta) F h_c]`
//!    ([`crate::fourier_kernel`]), `log T_c` a natural cubic spline in
//!    `s = ln(1 + |k|) / ln(1 + k_max)` through `knots` equally spaced values
//!    (`k_max = sqrt(d) n / 2`), so `T` is radial and Hermitian by
//!    construction (`log det = sum_m w_m log T(k_m)`, the mode weights of
//!    [`crate::fourier_kernel::mode_weights`]);
//! 4. an optional pixel-wise monotone rational-quadratic spline
//!    `psi_c(u; theta)` (Durkan et al. 2019; [`crate::spline`]), the same
//!    at every pixel (`log det = sum_pixels log psi'`).
//!
//! Knot values and spline parameters are a learned base plus a small MLP of
//! the standardised parameters `theta` whose last layer starts near zero,
//! so a fresh flow is the identity. Translations commute with every step
//! and rotations with all but the lattice, so the flow is equivariant. The
//! base is a standard normal on every pixel:
//! `log p(x | theta) = log N(z; 0, I) + sum log det - L sum_c log sd_c`,
//! the last term from the per-channel standardisation of the data.
//!
//! A Gaussian random field with pixel power `P(k)` is exactly one filter
//! layer with `T = 1 / sqrt(P)` and no spline ([`filter_layer`] is the
//! step the flow uses, tested in f64 against the dense Gaussian).

use std::path::Path;

use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::silu;
use burn::tensor::{DType, Device, Tensor, TensorData};
use ndarray::{Array2, ArrayView2};
use rand::SeedableRng;
use rand_distr::Distribution;
use serde::{Deserialize, Serialize};

use crate::error::{invalid, NnError};
use crate::flow::LuLinear;
use crate::fourier_kernel::{fourier_filter, mode_k, mode_weights, n_modes};
use crate::layers::near_zero_linear;
use crate::spline::{n_params, rq_forward, rq_inverse, MIN_DERIVATIVE};
use crate::standardize::{check_finite, Standardizer};
use crate::tensor::{default_device, to_vec};
use crate::train::{fit, TrainConfig, TrainReport};

/// The objective a flow is fitted by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowLoss {
    /// Maximum likelihood: `-E[ln p(x_i | theta_i)]` (per pixel).
    #[default]
    Likelihood,
    /// Discriminative: the posterior of the true parameters among `contrast`
    /// others of the batch, `-E[ln p(x_i | theta_i) - ln sum_j p(x_i |
    /// theta_j)]` over `theta_j in {theta_i} + contrast draws` (the batch's
    /// parameters stand in for the prior, as in contrastive neural ratio
    /// estimation, Durkan et al. 2020; the "discriminative" training of
    /// field-level flows), plus `likelihood_weight` times the likelihood
    /// loss. It spends the model's capacity on how the field depends on
    /// theta rather than on everything in the field.
    Posterior,
}

/// The flow's architecture and objective (the `[flow]` table of a training
/// config).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrenfConfig {
    /// Number of layers.
    pub layers: usize,
    /// Knots of each radial function `log T(|k|)`.
    pub knots: usize,
    /// Bins of each pixel-wise spline.
    pub bins: usize,
    /// The splines act on `[-bound, bound]` (identity outside).
    pub bound: f64,
    /// Width of the conditioning MLPs (two hidden layers).
    pub hidden: usize,
    /// Pixel-wise splines (false: linear flow, a Gaussian field model).
    pub spline: bool,
    /// ActNorm at the start of each layer.
    pub actnorm: bool,
    /// Training objective ("likelihood" or "posterior").
    pub loss: FlowLoss,
    /// Posterior loss: other parameter points of the batch per field.
    pub contrast: usize,
    /// Posterior loss: weight of the likelihood term (nats per pixel).
    pub likelihood_weight: f64,
}

impl Default for TrenfConfig {
    fn default() -> Self {
        Self {
            layers: 4,
            knots: 16,
            bins: 8,
            bound: 5.0,
            hidden: 32,
            spline: true,
            actnorm: true,
            loss: FlowLoss::Likelihood,
            contrast: 4,
            likelihood_weight: 1.0,
        }
    }
}

impl TrenfConfig {
    pub fn validate(&self) -> Result<(), NnError> {
        if self.layers == 0 || self.layers > 64 {
            return invalid(format!("layers must be in 1..=64, got {}", self.layers));
        }
        if !(4..=128).contains(&self.knots) {
            return invalid(format!("knots must be in 4..=128, got {}", self.knots));
        }
        if !(2..=64).contains(&self.bins) {
            return invalid(format!("bins must be in 2..=64, got {}", self.bins));
        }
        if !(self.bound > 0.0 && self.bound.is_finite()) {
            return invalid(format!("bound must be positive, got {}", self.bound));
        }
        if self.hidden == 0 {
            return invalid("hidden must be at least 1");
        }
        if self.loss == FlowLoss::Posterior && self.contrast == 0 {
            return invalid("contrast must be at least 1 for the posterior loss");
        }
        if !(self.likelihood_weight >= 0.0 && self.likelihood_weight.is_finite()) {
            return invalid(format!(
                "likelihood_weight must be >= 0, got {}",
                self.likelihood_weight
            ));
        }
        Ok(())
    }
}

/// The shape of the fields a flow models.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldShape {
    /// Side in pixels (cells).
    pub n: usize,
    /// 2 (maps) or 3 (boxes).
    pub dims: usize,
    /// Channels (tomographic bins), 1 for boxes.
    pub channels: usize,
}

impl FieldShape {
    /// Pixels (cells) per channel, `n^dims`.
    pub fn pixels(&self) -> usize {
        self.n.pow(self.dims as u32)
    }
    /// Values per field, `pixels * channels`.
    pub fn len(&self) -> usize {
        self.pixels() * self.channels
    }
    /// Whether a field has no values (never, for a valid shape).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn validate(&self) -> Result<(), NnError> {
        if !(self.dims == 2 || self.dims == 3) {
            return invalid(format!("fields must be 2-D or 3-D, got {}-D", self.dims));
        }
        if self.n < 2 || self.channels == 0 {
            return invalid(format!(
                "fields must be at least 2 pixels wide with a channel, got side {} and {} channels",
                self.n, self.channels
            ));
        }
        // checked arithmetic: a hand-edited side must not overflow or ask
        // for tens of gigabytes
        let values = (self.n as u128)
            .checked_pow(self.dims as u32)
            .unwrap_or(u128::MAX)
            .saturating_mul(self.channels as u128);
        if values > MAX_FIELD_VALUES as u128 {
            return invalid(format!(
                "fields of side {} in {}-D with {} channels have more than {MAX_FIELD_VALUES} values",
                self.n, self.dims, self.channels
            ));
        }
        Ok(())
    }
}

/// Most values (pixels times channels) of one field: 8192^2 maps, 512^3
/// boxes.
pub const MAX_FIELD_VALUES: usize = 1 << 27;

/// Everything needed to rebuild a trained flow (`fieldflow.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldFlowConfig {
    /// Layout version of `fieldflow.json` ([`FIELDFLOW_FORMAT`]; files
    /// without it are version 1).
    #[serde(default = "crate::checkpoint::format_v1")]
    pub format_version: u32,
    pub flow: TrenfConfig,
    pub shape: FieldShape,
    /// Names of the conditioning parameters.
    pub theta_names: Vec<String>,
    /// Standardisation of theta (per column).
    pub theta_mean: Vec<f64>,
    pub theta_sd: Vec<f64>,
    /// The training range of theta (per column).
    pub theta_min: Vec<f64>,
    pub theta_max: Vec<f64>,
    /// Standardisation of the field (per channel).
    pub field_mean: Vec<f64>,
    pub field_sd: Vec<f64>,
    pub train: TrainConfig,
}

/// The `format_version` written into `fieldflow.json`.
pub const FIELDFLOW_FORMAT: u32 = 1;

impl FieldFlowConfig {
    /// Check a configuration read from a file against its own constraints:
    /// a version this build reads, a network of bounded size, one name,
    /// standardisation and training range per parameter (positive standard
    /// deviations, `min <= max`), and one field standardisation per channel.
    pub fn validate(&self) -> Result<(), NnError> {
        crate::checkpoint::check_format_version(self.format_version, FIELDFLOW_FORMAT)
            .or_else(invalid)?;
        self.flow.validate()?;
        if self.flow.hidden > crate::estimator::MAX_HIDDEN {
            return invalid(format!(
                "hidden = {}: at most {}",
                self.flow.hidden,
                crate::estimator::MAX_HIDDEN
            ));
        }
        self.shape.validate()?;
        let p = self.theta_names.len();
        let theta = Standardizer {
            mean: self.theta_mean.clone(),
            std: self.theta_sd.clone(),
        };
        theta.validate("theta_mean/theta_sd", p)?;
        if self.theta_min.len() != p || self.theta_max.len() != p {
            return invalid(format!(
                "theta_min/theta_max: {} and {} values for {p} parameters",
                self.theta_min.len(),
                self.theta_max.len()
            ));
        }
        for j in 0..p {
            let (lo, hi) = (self.theta_min[j], self.theta_max[j]);
            if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
                return invalid(format!(
                    "training range of {}: [{lo}, {hi}] is not an interval",
                    self.theta_names[j]
                ));
            }
        }
        let field = Standardizer {
            mean: self.field_mean.clone(),
            std: self.field_sd.clone(),
        };
        field.validate("field_mean/field_sd", self.shape.channels)
    }
}

/// Theta -> an output vector: two SiLU hidden layers, the last layer near
/// zero.
#[derive(Module, Debug)]
struct Conditioner {
    l1: Linear,
    l2: Linear,
    out: Linear,
}

impl Conditioner {
    fn new(d_in: usize, d_out: usize, hidden: usize, device: &Device) -> Self {
        Self {
            l1: LinearConfig::new(d_in, hidden).init(device),
            l2: LinearConfig::new(hidden, hidden).init(device),
            out: near_zero_linear(hidden, d_out, device),
        }
    }
    fn forward(&self, theta: Tensor<2>) -> Tensor<2> {
        self.out
            .forward(silu(self.l2.forward(silu(self.l1.forward(theta)))))
    }
}

/// One TRENF layer (see the module docs for the order of its steps).
#[derive(Module, Debug)]
struct TrenfLayer {
    act_log_scale: Option<Param<Tensor<1>>>,
    act_shift: Option<Param<Tensor<1>>>,
    mixing: Option<LuLinear>,
    /// `[C, K]` base knot values of `log T`.
    radial: Param<Tensor<2>>,
    radial_cond: Option<Conditioner>,
    /// `[C, 3 bins - 1]` base spline parameters.
    spline: Option<Param<Tensor<2>>>,
    spline_cond: Option<Conditioner>,
}

/// The network: layers plus the fixed radial basis and mode weights.
#[derive(Module, Debug)]
struct TrenfNet {
    layers: Vec<TrenfLayer>,
    /// `[K, M]`: `log T` at the modes = knot values x basis.
    basis: Tensor<2>,
    /// `[M, 1]` mode weights.
    weights: Tensor<2>,
}

/// Natural cubic spline through `(knots_j, y_j)`, as the matrix `B` with
/// `S(at_i) = sum_j B_ij y_j` (`[at.len(), K]`, row-major): the spline is
/// linear in its values, so `log T` at every mode is one matrix product.
pub fn natural_spline_basis(knots: &[f64], at: &[f64]) -> Vec<f64> {
    let k = knots.len();
    // Second derivatives M = A^-1 R y with M_0 = M_{K-1} = 0.
    let mut a = nalgebra::DMatrix::<f64>::zeros(k, k);
    let mut r = nalgebra::DMatrix::<f64>::zeros(k, k);
    a[(0, 0)] = 1.0;
    a[(k - 1, k - 1)] = 1.0;
    for i in 1..k - 1 {
        let (h0, h1) = (knots[i] - knots[i - 1], knots[i + 1] - knots[i]);
        a[(i, i - 1)] = h0 / 6.0;
        a[(i, i)] = (h0 + h1) / 3.0;
        a[(i, i + 1)] = h1 / 6.0;
        r[(i, i - 1)] = 1.0 / h0;
        r[(i, i)] = -1.0 / h0 - 1.0 / h1;
        r[(i, i + 1)] = 1.0 / h1;
    }
    let m = a
        .lu()
        .solve(&r)
        .expect("the spline system is diagonally dominant");
    let mut out = vec![0.0; at.len() * k];
    for (row, &x) in at.iter().enumerate() {
        let x = x.clamp(knots[0], knots[k - 1]);
        let i = knots[..k - 1]
            .iter()
            .rposition(|&t| t <= x)
            .unwrap_or(0)
            .min(k - 2);
        let h = knots[i + 1] - knots[i];
        let (b, c) = ((knots[i + 1] - x) / h, (x - knots[i]) / h);
        let (bb, cc) = ((b * b * b - b) * h * h / 6.0, (c * c * c - c) * h * h / 6.0);
        let o = &mut out[row * k..(row + 1) * k];
        o[i] += b;
        o[i + 1] += c;
        for (j, v) in o.iter_mut().enumerate() {
            *v += bb * m[(i, j)] + cc * m[(i + 1, j)];
        }
    }
    out
}

/// The spline coordinate `s(|k|)` of [`natural_spline_basis`] and the knots.
pub fn radial_coordinate(k: f64, n: usize, dims: usize) -> f64 {
    let k_max = (dims as f64).sqrt() * n as f64 / 2.0;
    (1.0 + k).ln() / (1.0 + k_max).ln()
}

/// Knot positions in the spline coordinate: `K` equally spaced in `[0, 1]`.
fn knot_positions(k: usize) -> Vec<f64> {
    (0..k).map(|j| j as f64 / (k - 1) as f64).collect()
}

/// The radial basis `[K, M]` for a field shape, as a tensor of `dtype`.
fn basis_tensor(knots: usize, n: usize, dims: usize, device: &Device) -> Tensor<2> {
    let s: Vec<f64> = mode_k(n, dims)
        .iter()
        .map(|&k| radial_coordinate(k, n, dims))
        .collect();
    let b = natural_spline_basis(&knot_positions(knots), &s);
    let m = s.len();
    // Transpose to [K, M].
    let bt: Vec<f32> = (0..knots * m)
        .map(|idx| b[(idx % m) * knots + idx / m] as f32)
        .collect();
    Tensor::from_data(TensorData::new(bt, [knots, m]), device)
}

/// One filter step on rows `h` `[R, L]` with `log T` `[R, M]`:
/// `u = F^-1[exp(log T) F h]` and `log |det du/dh| = sum_m w_m log T_m`
/// per row (`weights` `[M, 1]`, [`mode_weights`]). Works in the tensors'
/// dtype (f64 in the exactness tests).
pub fn filter_layer(
    h: Tensor<2>,
    log_t: Tensor<2>,
    weights: Tensor<2>,
    n: usize,
    dims: usize,
) -> (Tensor<2>, Tensor<1>) {
    let [r, _] = log_t.dims();
    let ld = log_t.clone().matmul(weights).reshape([r]);
    (fourier_filter(h, log_t.exp(), n, dims), ld)
}

/// `log N(z; 0, I)` per row of `z` `[R, D]`.
pub fn standard_normal_log_prob(z: Tensor<2>) -> Tensor<1> {
    let [r, d] = z.dims();
    z.square().sum_dim(1).reshape([r]) * (-0.5) - 0.5 * d as f64 * (2.0 * std::f64::consts::PI).ln()
}

/// Spline parameters `[C, 3 bins - 1]` of the identity: equal widths and
/// heights, and every interior derivative 1 (`softplus(u) + m_d = 1`), so a
/// fresh flow adds nothing to the log-density.
fn identity_spline(c: usize, bins: usize, device: &Device) -> Tensor<2> {
    let u = ((1.0 - MIN_DERIVATIVE).exp() - 1.0).ln() as f32;
    let row: Vec<f32> = (0..n_params(bins))
        .map(|j| if j >= 2 * bins { u } else { 0.0 })
        .collect();
    let v: Vec<f32> = (0..c).flat_map(|_| row.iter().copied()).collect();
    Tensor::from_data(TensorData::new(v, [c, n_params(bins)]), device)
}

/// The mode weights as an `[M, 1]` tensor.
fn weights_tensor(n: usize, dims: usize, device: &Device, dtype: DType) -> Tensor<2> {
    let w = mode_weights(n, dims);
    let m = w.len();
    Tensor::from_data(TensorData::new(w, [m, 1]), (device, dtype))
}

/// An `[R, M]` mode weights helper for callers: `(log T, weights)` of a
/// prescribed filter, e.g. `T = 1 / sqrt(P)` for a Gaussian field.
pub fn prescribed_filter(
    log_t: &[f64],
    rows: usize,
    n: usize,
    dims: usize,
    device: &Device,
) -> (Tensor<2>, Tensor<2>) {
    let m = n_modes(n, dims);
    let lt: Vec<f64> = (0..rows).flat_map(|_| log_t.iter().copied()).collect();
    (
        Tensor::from_data(TensorData::new(lt, [rows, m]), (device, DType::F64)),
        weights_tensor(n, dims, device, DType::F64),
    )
}

/// Knot values `[C, K]` (f32, row-major) of the radial function that best
/// whitens the mean power of standardised fields `[rows, C, L]`: a
/// least-squares fit, over modes weighted by `w_m`, of
/// `log T = -1/2 log P_m`, with `P_m` the power of mode `m` averaged over
/// the fields.
fn whitening_knots(x: &[f64], shape: FieldShape, knots: usize) -> Vec<f32> {
    let (n, dims, c, l) = (shape.n, shape.dims, shape.channels, shape.pixels());
    let rows = x.len() / (c * l);
    let km = mode_k(n, dims);
    let w = mode_weights(n, dims);
    let fft = crate::fourier_kernel::plan::<f64>(n, dims);
    let s: Vec<f64> = km.iter().map(|&k| radial_coordinate(k, n, dims)).collect();
    let basis = natural_spline_basis(&knot_positions(knots), &s);
    let mut out = Vec::with_capacity(c * knots);
    for ch in 0..c {
        let mut power = vec![0.0; km.len()];
        for r in 0..rows {
            let start = (r * c + ch) * l;
            for (p, xk) in power.iter_mut().zip(fft.forward(&x[start..start + l])) {
                *p += xk.norm_sqr() / (l * rows) as f64;
            }
        }
        // Normal equations of the weighted fit, regularised lightly.
        let mut a = nalgebra::DMatrix::<f64>::identity(knots, knots) * 1e-8;
        let mut rhs = nalgebra::DVector::<f64>::zeros(knots);
        for m in 0..km.len() {
            let y = -0.5 * power[m].max(1e-12).ln();
            let row = &basis[m * knots..(m + 1) * knots];
            for i in 0..knots {
                rhs[i] += w[m] * row[i] * y;
                for j in 0..knots {
                    a[(i, j)] += w[m] * row[i] * row[j];
                }
            }
        }
        let v = a.cholesky().map(|ch| ch.solve(&rhs)).unwrap_or(rhs);
        out.extend(v.iter().map(|&v| v as f32));
    }
    out
}

/// Per-sample outputs of [`FieldFlow::log_prob`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LogProb {
    /// `log p(x | theta)` in nats.
    pub logprob: f64,
    /// Sum of the layers' log-determinants plus the standardisation's.
    pub logdet: f64,
    /// `log N(z; 0, I)` of the latent field.
    pub base_logprob: f64,
}

impl TrenfNet {
    fn new(cfg: &TrenfConfig, shape: FieldShape, theta_dim: usize, device: &Device) -> Self {
        let c = shape.channels;
        let np = n_params(cfg.bins);
        let cond = |d_out: usize| {
            (theta_dim > 0).then(|| Conditioner::new(theta_dim, d_out, cfg.hidden, device))
        };
        let layers = (0..cfg.layers)
            .map(|_| TrenfLayer {
                act_log_scale: cfg
                    .actnorm
                    .then(|| Param::from_tensor(Tensor::zeros([c], device))),
                act_shift: cfg
                    .actnorm
                    .then(|| Param::from_tensor(Tensor::zeros([c], device))),
                mixing: (c > 1).then(|| LuLinear::new(c, device)),
                radial: Param::from_tensor(Tensor::zeros([c, cfg.knots], device)),
                radial_cond: cond(c * cfg.knots),
                spline: cfg
                    .spline
                    .then(|| Param::from_tensor(identity_spline(c, cfg.bins, device))),
                spline_cond: if cfg.spline { cond(c * np) } else { None },
            })
            .collect();
        Self {
            layers,
            basis: basis_tensor(cfg.knots, shape.n, shape.dims, device),
            weights: weights_tensor(shape.n, shape.dims, device, DType::F32),
        }
    }

    /// Per-row parameters `[B * C, width]` from a `[C, width]` base and an
    /// optional conditioner of theta.
    fn per_row(
        base: Tensor<2>,
        cond: &Option<Conditioner>,
        theta: &Tensor<2>,
        b: usize,
    ) -> Tensor<2> {
        let [c, width] = base.dims();
        let base = base.unsqueeze_dim::<3>(0);
        let v = match cond {
            Some(f) => base + f.forward(theta.clone()).reshape([b, c, width]),
            None => base.expand([b, c, width]),
        };
        v.reshape([b * c, width])
    }

    /// Data -> noise: `h` `[B, C, L]` (standardised), theta `[B, p]`
    /// (standardised) -> `(z, sum of log-determinants [B])`.
    fn forward(
        &self,
        h: Tensor<3>,
        theta: &Tensor<2>,
        cfg: &TrenfConfig,
        shape: FieldShape,
    ) -> (Tensor<3>, Tensor<1>) {
        let [b, c, l] = h.dims();
        let device = h.device();
        let mut h = h;
        let mut ld: Tensor<1> = Tensor::zeros([b], &device);
        for layer in &self.layers {
            if let (Some(s), Some(t)) = (&layer.act_log_scale, &layer.act_shift) {
                let s = s.val();
                h = h * s.clone().exp().reshape([1, c, 1]) + t.val().reshape([1, c, 1]);
                ld = ld + s.sum() * l as f64;
            }
            if let Some(mix) = &layer.mixing {
                let rows = h.swap_dims(1, 2).reshape([b * l, c]);
                let (y, lrow) = mix.forward(rows);
                h = y.reshape([b, l, c]).swap_dims(1, 2);
                ld = ld + lrow.reshape([b, l]).sum_dim(1).reshape([b]);
            }
            let log_t = Self::per_row(layer.radial.val(), &layer.radial_cond, theta, b)
                .matmul(self.basis.clone());
            let (u, lf) = filter_layer(
                h.reshape([b * c, l]),
                log_t,
                self.weights.clone(),
                shape.n,
                shape.dims,
            );
            ld = ld + lf.reshape([b, c]).sum_dim(1).reshape([b]);
            let u = match &layer.spline {
                Some(p) => {
                    let params = Self::per_row(p.val(), &layer.spline_cond, theta, b);
                    let np = params.dims()[1];
                    // One spline per row, shared by its pixels.
                    let params = params.reshape([b * c, 1, np]);
                    let (y, ls) = rq_forward(u, params, cfg.bins, cfg.bound);
                    ld = ld + ls.reshape([b, c * l]).sum_dim(1).reshape([b]);
                    y
                }
                None => u,
            };
            h = u.reshape([b, c, l]);
        }
        (h, ld)
    }

    /// Noise -> data (no gradients needed).
    fn inverse(
        &self,
        z: Tensor<3>,
        theta: &Tensor<2>,
        cfg: &TrenfConfig,
        shape: FieldShape,
    ) -> Tensor<3> {
        let [b, c, l] = z.dims();
        let mut h = z;
        for layer in self.layers.iter().rev() {
            let mut u = h.reshape([b * c, l]);
            if let Some(p) = &layer.spline {
                let params = Self::per_row(p.val(), &layer.spline_cond, theta, b);
                let np = params.dims()[1];
                let params = params.reshape([b * c, 1, np]);
                u = rq_inverse(u, params, cfg.bins, cfg.bound).0;
            }
            let log_t = Self::per_row(layer.radial.val(), &layer.radial_cond, theta, b)
                .matmul(self.basis.clone());
            h = fourier_filter(u, log_t.neg().exp(), shape.n, shape.dims).reshape([b, c, l]);
            if let Some(mix) = &layer.mixing {
                let rows = h.swap_dims(1, 2).reshape([b * l, c]);
                h = mix.inverse(rows).reshape([b, l, c]).swap_dims(1, 2);
            }
            if let (Some(s), Some(t)) = (&layer.act_log_scale, &layer.act_shift) {
                h = (h - t.val().reshape([1, c, 1])) * s.val().neg().exp().reshape([1, c, 1]);
            }
        }
        h
    }
}

/// A TRENF conditional density `p(field | theta)`.
pub struct FieldFlow {
    pub config: FieldFlowConfig,
    /// On the autodiff device (gradients in theta).
    net: TrenfNet,
    /// The same weights without autodiff (evaluation).
    net_eval: TrenfNet,
    device: Device,
}

const CONFIG: &str = "fieldflow.json";

/// Rows per forward pass when evaluating (fields are large).
const EVAL_ROWS: usize = 16;

impl FieldFlow {
    /// Fit by maximum likelihood on `fields` `[n, L * C]` (channels last,
    /// C order) with parameters `theta` `[n, p]`.
    pub fn fit(
        fields: ArrayView2<f64>,
        theta: ArrayView2<f64>,
        theta_names: Vec<String>,
        shape: FieldShape,
        flow: TrenfConfig,
        train: TrainConfig,
    ) -> Result<(Self, TrainReport), NnError> {
        shape.validate()?;
        flow.validate()?;
        if fields.ncols() != shape.len() {
            return invalid(format!(
                "fields have {} values, the shape {}^{} x {} needs {}",
                fields.ncols(),
                shape.n,
                shape.dims,
                shape.channels,
                shape.len()
            ));
        }
        if fields.nrows() != theta.nrows() {
            return invalid(format!(
                "{} fields but {} rows of parameters",
                fields.nrows(),
                theta.nrows()
            ));
        }
        check_finite(fields, "fields")?;
        check_finite(theta, "parameters")?;
        let p = theta.ncols();
        let col = |j: usize| theta.column(j).to_vec();
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let sd = |v: &[f64]| {
            let m = mean(v);
            let s = (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64).sqrt();
            if s > 0.0 {
                s
            } else {
                1.0
            }
        };
        let c = shape.channels;
        let chan: Vec<Vec<f64>> = (0..c)
            .map(|ch| fields.iter().skip(ch).step_by(c).copied().collect())
            .collect();
        let config = FieldFlowConfig {
            format_version: FIELDFLOW_FORMAT,
            flow,
            shape,
            theta_names,
            theta_mean: (0..p).map(|j| mean(&col(j))).collect(),
            theta_sd: (0..p).map(|j| sd(&col(j))).collect(),
            theta_min: (0..p)
                .map(|j| col(j).into_iter().fold(f64::INFINITY, f64::min))
                .collect(),
            theta_max: (0..p)
                .map(|j| col(j).into_iter().fold(f64::NEG_INFINITY, f64::max))
                .collect(),
            field_mean: chan.iter().map(|v| mean(v)).collect(),
            field_sd: chan.iter().map(|v| sd(v)).collect(),
            train,
        };
        let device = default_device();
        let ad = device.clone().autodiff();
        ad.seed(config.train.seed);
        let mut net = TrenfNet::new(&config.flow, shape, p, &ad);
        let xs = Self::standardise(&config, fields, &device);
        // Data-dependent start (as ActNorm's): the first filter whitens the
        // mean spectrum of the training fields.
        let init = whitening_knots(
            &to_vec(xs.clone().narrow(0, 0, fields.nrows().min(256))),
            shape,
            config.flow.knots,
        );
        net.layers[0].radial = Param::from_tensor(Tensor::from_data(
            TensorData::new(init, [shape.channels, config.flow.knots]),
            &ad,
        ));
        let ts = Self::theta_tensor(&config, theta, &device);
        let norm = 1.0 / shape.len() as f64;
        if config.flow.loss == FlowLoss::Posterior && theta.ncols() == 0 {
            return invalid("the posterior loss needs parameters theta");
        }
        let (net, report) = fit(net, fields.nrows(), &config.train, |m: &TrenfNet, rows| {
            let idx = crate::tensor::int_tensor(rows, &device);
            let xb = xs.clone().select(0, idx.clone());
            let tb = ts.clone().select(0, idx);
            let [b, c, l] = xb.dims();
            match config.flow.loss {
                FlowLoss::Likelihood => {
                    let (z, ld) = m.forward(xb, &tb, &config.flow, shape);
                    let lp = standard_normal_log_prob(z.reshape([b, shape.len()])) + ld;
                    lp.mean().neg() * norm
                }
                FlowLoss::Posterior => {
                    // Every field at its own theta (k = 0) and at the
                    // batch's theta rolled by k = 1..=K.
                    let k = config.flow.contrast.min(b.saturating_sub(1)).max(1);
                    let x = xb.unsqueeze_dim::<4>(0).expand([k + 1, b, c, l]).reshape([
                        (k + 1) * b,
                        c,
                        l,
                    ]);
                    let t = Tensor::cat(
                        (0..=k)
                            .map(|r| {
                                let order: Vec<usize> = (0..b).map(|i| (i + r) % b).collect();
                                tb.clone()
                                    .select(0, crate::tensor::int_tensor(&order, &device))
                            })
                            .collect(),
                        0,
                    );
                    let (z, ld) = m.forward(x, &t, &config.flow, shape);
                    let lp = (standard_normal_log_prob(z.reshape([(k + 1) * b, shape.len()])) + ld)
                        .reshape([k + 1, b]);
                    let own = lp.clone().narrow(0, 0, 1).reshape([b]);
                    let top = lp.clone().max_dim(0).detach();
                    let lse = (lp - top.clone()).exp().sum_dim(0).log() + top;
                    let posterior = (own.clone() - lse.reshape([b])).mean().neg();
                    posterior + own.mean().neg() * (norm * config.flow.likelihood_weight)
                }
            }
        })?;
        let net_eval = net.clone().valid();
        Ok((
            Self {
                config,
                net,
                net_eval,
                device,
            },
            report,
        ))
    }

    /// Standardised fields `[n, C, L]` from `[n, L * C]` (channels last).
    fn standardise(cfg: &FieldFlowConfig, fields: ArrayView2<f64>, device: &Device) -> Tensor<3> {
        let (n, c, l) = (fields.nrows(), cfg.shape.channels, cfg.shape.pixels());
        let mut v = vec![0f32; n * c * l];
        for (i, row) in fields.outer_iter().enumerate() {
            for (px, vals) in row.as_slice().expect("C order").chunks(c).enumerate() {
                for (ch, &x) in vals.iter().enumerate() {
                    v[(i * c + ch) * l + px] = ((x - cfg.field_mean[ch]) / cfg.field_sd[ch]) as f32;
                }
            }
        }
        Tensor::from_data(TensorData::new(v, [n, c, l]), device)
    }

    /// Standardised theta `[n, p]`.
    fn theta_tensor(cfg: &FieldFlowConfig, theta: ArrayView2<f64>, device: &Device) -> Tensor<2> {
        let (n, p) = theta.dim();
        let v: Vec<f32> = theta
            .outer_iter()
            .flat_map(|r| {
                r.iter()
                    .enumerate()
                    .map(|(j, &t)| ((t - cfg.theta_mean[j]) / cfg.theta_sd[j]) as f32)
                    .collect::<Vec<_>>()
            })
            .collect();
        Tensor::from_data(TensorData::new(v, [n, p]), device)
    }

    /// The standardisation's log-determinant, `-L sum_c log sd_c`.
    fn standardisation_logdet(&self) -> f64 {
        -(self.config.shape.pixels() as f64)
            * self.config.field_sd.iter().map(|s| s.ln()).sum::<f64>()
    }

    fn check_inputs(&self, fields: ArrayView2<f64>, theta: ArrayView2<f64>) -> Result<(), NnError> {
        let s = self.config.shape;
        if fields.ncols() != s.len() {
            return invalid(format!(
                "a field has {} values, the model was trained on {}^{} pixels x {} channels ({})",
                fields.ncols(),
                s.n,
                s.dims,
                s.channels,
                s.len()
            ));
        }
        if theta.ncols() != self.config.theta_mean.len() || theta.nrows() != fields.nrows() {
            return invalid(format!(
                "need one row of {} parameters per field, got [{}, {}] for {} fields",
                self.config.theta_mean.len(),
                theta.nrows(),
                theta.ncols(),
                fields.nrows()
            ));
        }
        check_finite(fields, "field")?;
        check_finite(theta, "parameters")
    }

    /// One field `[L * C]` as a one-row view, checked against the model
    /// with the parameter points `theta` `[m >= 1, p]` it is evaluated at.
    fn one_field<'a>(
        &self,
        field: &'a [f64],
        theta: ArrayView2<f64>,
    ) -> Result<ArrayView2<'a, f64>, NnError> {
        let x = ndarray::ArrayView2::from_shape((1, field.len()), field)
            .map_err(|e| NnError::Invalid(e.to_string()))?;
        if theta.nrows() == 0 {
            return invalid("need at least one parameter point");
        }
        self.check_inputs(x, theta.slice(ndarray::s![..1, ..]))?;
        check_finite(theta, "parameters")?;
        Ok(x)
    }

    /// The evaluation pass over checked `fields` and `theta`, `EVAL_ROWS`
    /// rows at a time: `f(rows, z, sum of log-dets)` per chunk. One field
    /// with several theta rows is standardised once and broadcast.
    fn forward_chunks(
        &self,
        fields: ArrayView2<f64>,
        theta: ArrayView2<f64>,
        mut f: impl FnMut(std::ops::Range<usize>, Tensor<3>, Tensor<1>),
    ) {
        let one =
            (fields.nrows() == 1).then(|| Self::standardise(&self.config, fields, &self.device));
        for start in (0..theta.nrows()).step_by(EVAL_ROWS) {
            let rows = start..(start + EVAL_ROWS).min(theta.nrows());
            let x = match &one {
                Some(x) => {
                    let [_, c, l] = x.dims();
                    x.clone().expand([rows.len(), c, l])
                }
                None => Self::standardise(
                    &self.config,
                    fields.slice(ndarray::s![rows.clone(), ..]),
                    &self.device,
                ),
            };
            let t = Self::theta_tensor(
                &self.config,
                theta.slice(ndarray::s![rows.clone(), ..]),
                &self.device,
            );
            let (z, ld) = self
                .net_eval
                .forward(x, &t, &self.config.flow, self.config.shape);
            f(rows, z, ld);
        }
    }

    /// `log p(field | theta_j)` of one field `[L * C]` at every row of
    /// `theta` `[m, p]` (a likelihood on a grid or for a sampler's batch of
    /// proposals; the field is standardised once).
    pub fn log_prob_at(&self, field: &[f64], theta: ArrayView2<f64>) -> Result<Vec<f64>, NnError> {
        if theta.nrows() == 0 {
            return Ok(vec![]);
        }
        let x = self.one_field(field, theta)?;
        let len = self.config.shape.len();
        let std_ld = self.standardisation_logdet();
        let mut out = Vec::with_capacity(theta.nrows());
        self.forward_chunks(x, theta, |rows, z, ld| {
            let base = to_vec(standard_normal_log_prob(z.reshape([rows.len(), len])));
            out.extend(
                base.into_iter()
                    .zip(to_vec(ld))
                    .map(|(b, l)| b + l + std_ld),
            );
        });
        Ok(out)
    }

    /// `log p(field_i | theta_i)` with its parts, per row.
    pub fn log_prob(
        &self,
        fields: ArrayView2<f64>,
        theta: ArrayView2<f64>,
    ) -> Result<Vec<LogProb>, NnError> {
        self.check_inputs(fields, theta)?;
        let len = self.config.shape.len();
        let std_ld = self.standardisation_logdet();
        let mut out = Vec::with_capacity(fields.nrows());
        self.forward_chunks(fields, theta, |rows, z, ld| {
            let base = to_vec(standard_normal_log_prob(z.reshape([rows.len(), len])));
            for (b, l) in base.into_iter().zip(to_vec(ld)) {
                let logdet = l + std_ld;
                out.push(LogProb {
                    logprob: b + logdet,
                    logdet,
                    base_logprob: b,
                });
            }
        });
        Ok(out)
    }

    /// `log p(field | theta_j)` and its gradient in theta for one field and
    /// several parameter points `theta` `[m, p]` (burn autodiff).
    pub fn log_prob_and_grad(
        &self,
        field: &[f64],
        theta: ArrayView2<f64>,
    ) -> Result<(Vec<f64>, Array2<f64>), NnError> {
        let m = theta.nrows();
        let fields = self.one_field(field, theta)?;
        let s = self.config.shape;
        let p = theta.ncols();
        let ad = self.device.clone().autodiff();
        let x = Self::standardise(&self.config, fields, &ad);
        let x = x.expand([m, s.channels, s.pixels()]);
        let raw: Vec<f32> = theta.iter().map(|&v| v as f32).collect();
        let th = Tensor::<2>::from_data(TensorData::new(raw, [m, p]), &ad).require_grad();
        let mean: Vec<f32> = self.config.theta_mean.iter().map(|&v| v as f32).collect();
        let sd: Vec<f32> = self.config.theta_sd.iter().map(|&v| v as f32).collect();
        let ts = (th.clone()
            - Tensor::<1>::from_data(TensorData::new(mean, [p]), &ad).unsqueeze_dim::<2>(0))
            / Tensor::<1>::from_data(TensorData::new(sd, [p]), &ad).unsqueeze_dim::<2>(0);
        let (z, ld) = self.net.forward(x, &ts, &self.config.flow, s);
        let lp = standard_normal_log_prob(z.reshape([m, s.len()])) + ld;
        let grads = lp.clone().sum().backward();
        let g = th
            .grad(&grads)
            .map(to_vec)
            .unwrap_or_else(|| vec![0.0; m * p]);
        let std_ld = self.standardisation_logdet();
        let values = to_vec(lp).into_iter().map(|v| v + std_ld).collect();
        Ok((values, Array2::from_shape_vec((m, p), g).expect("m x p")))
    }

    /// Fisher matrix of the flow likelihood at `theta`,
    ///
    /// `F_ij = -E_x[d^2 ln p(x | theta) / d theta_i d theta_j]`,
    ///
    /// the expectation over `fields` `[n, L * C]` drawn at `theta` (held-out
    /// simulations, or the flow's own [`sample`](Self::sample)s, which make
    /// it the Fisher matrix of the learned model). The second derivative is
    /// a central difference, with steps `step`, of the autodiff gradient;
    /// the mean Hessian is far less noisy than the mean outer product of
    /// scores (`sqrt(2 / n)` relative error on the diagonal), since each
    /// field's Hessian already averages over all its Fourier modes. The
    /// result is symmetrised.
    pub fn fisher(
        &self,
        theta: &[f64],
        fields: ArrayView2<f64>,
        step: &[f64],
    ) -> Result<Array2<f64>, NnError> {
        let p = self.config.theta_mean.len();
        if theta.len() != p || step.len() != p {
            return invalid(format!(
                "need {p} parameters and {p} steps, got {} and {}",
                theta.len(),
                step.len()
            ));
        }
        if let Some(h) = step.iter().find(|h| !(h.is_finite() && **h > 0.0)) {
            return invalid(format!("finite-difference step {h} must be positive"));
        }
        if fields.nrows() == 0 {
            return invalid("need at least one field to average the Fisher matrix over");
        }
        // Rows theta + h_j e_j, then theta - h_j e_j.
        let mut at = Array2::zeros((2 * p, p));
        for j in 0..p {
            for (r, sign) in [(j, 1.0), (p + j, -1.0)] {
                at.row_mut(r).assign(&ndarray::ArrayView1::from(theta));
                at[[r, j]] += sign * step[j];
            }
        }
        let mut f = Array2::<f64>::zeros((p, p));
        for x in fields.outer_iter() {
            let x = x.to_vec();
            let (_, g) = self.log_prob_and_grad(&x, at.view())?;
            for j in 0..p {
                for i in 0..p {
                    f[[i, j]] -= (g[[j, i]] - g[[p + j, i]]) / (2.0 * step[j]);
                }
            }
        }
        f /= fields.nrows() as f64;
        Ok((&f + &f.t()) / 2.0)
    }

    /// Latent fields `z` `[n, L * C]` (channels last) of data fields.
    pub fn latent(
        &self,
        fields: ArrayView2<f64>,
        theta: ArrayView2<f64>,
    ) -> Result<Array2<f64>, NnError> {
        self.check_inputs(fields, theta)?;
        let len = self.config.shape.len();
        let mut out = Array2::zeros((fields.nrows(), len));
        self.forward_chunks(fields, theta, |rows, z, _| {
            let z = to_vec(z.swap_dims(1, 2));
            let n = rows.len();
            out.slice_mut(ndarray::s![rows, ..])
                .assign(&Array2::from_shape_vec((n, len), z).expect("shape"));
        });
        Ok(out)
    }

    /// Fields drawn from `p(field | theta_i)`, one per row of `theta`
    /// (`[n, L * C]`, channels last), reproducible from `seed`.
    pub fn sample(&self, theta: ArrayView2<f64>, seed: u64) -> Result<Array2<f64>, NnError> {
        check_finite(theta, "parameters")?;
        if theta.ncols() != self.config.theta_mean.len() {
            return invalid(format!(
                "need {} parameters per row, got {}",
                self.config.theta_mean.len(),
                theta.ncols()
            ));
        }
        let s = self.config.shape;
        let (c, l) = (s.channels, s.pixels());
        let mut out = Array2::zeros((theta.nrows(), s.len()));
        let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(seed);
        let normal = rand_distr::Normal::new(0.0f32, 1.0).expect("valid");
        for start in (0..theta.nrows()).step_by(EVAL_ROWS) {
            let end = (start + EVAL_ROWS).min(theta.nrows());
            let b = end - start;
            let t = Self::theta_tensor(
                &self.config,
                theta.slice(ndarray::s![start..end, ..]),
                &self.device,
            );
            let z: Vec<f32> = (0..b * c * l).map(|_| normal.sample(&mut rng)).collect();
            let z = Tensor::<3>::from_data(TensorData::new(z, [b, c, l]), &self.device);
            let h = to_vec(
                self.net_eval
                    .inverse(z, &t, &self.config.flow, s)
                    .swap_dims(1, 2),
            );
            for (i, v) in h.iter().enumerate() {
                let ch = i % c;
                out[[start + i / (l * c), i % (l * c)]] =
                    v * self.config.field_sd[ch] + self.config.field_mean[ch];
            }
        }
        Ok(out)
    }

    /// The learned filters `T_c(|k|; theta)` of every layer at wavenumbers
    /// `k` (grid units): `[layer][channel][k]`, for plots against
    /// `1 / sqrt(P(k))`.
    pub fn radial_filters(&self, theta: &[f64], k: &[f64]) -> Result<Vec<Vec<Vec<f64>>>, NnError> {
        let s = self.config.shape;
        let th = ndarray::Array2::from_shape_vec((1, theta.len()), theta.to_vec())
            .map_err(|e| NnError::Invalid(e.to_string()))?;
        if theta.len() != self.config.theta_mean.len() {
            return invalid("wrong number of parameters");
        }
        let t = Self::theta_tensor(&self.config, th.view(), &self.device);
        let kn = knot_positions(self.config.flow.knots);
        let sk: Vec<f64> = k
            .iter()
            .map(|&k| radial_coordinate(k, s.n, s.dims))
            .collect();
        let basis = natural_spline_basis(&kn, &sk);
        let nk = self.config.flow.knots;
        Ok(self
            .net_eval
            .layers
            .iter()
            .map(|layer| {
                let v = to_vec(TrenfNet::per_row(
                    layer.radial.val(),
                    &layer.radial_cond,
                    &t,
                    1,
                ));
                (0..s.channels)
                    .map(|ch| {
                        (0..k.len())
                            .map(|i| {
                                (0..nk)
                                    .map(|j| basis[i * nk + j] * v[ch * nk + j])
                                    .sum::<f64>()
                                    .exp()
                            })
                            .collect()
                    })
                    .collect()
            })
            .collect())
    }

    /// Write `DIR/weights.safetensors` and `DIR/fieldflow.json`.
    pub fn save(&self, dir: &Path) -> Result<(), NnError> {
        crate::checkpoint::save_model(dir, &self.net_eval, CONFIG, &self.config)
    }

    /// Read a flow written by [`save`](Self::save).
    pub fn load(dir: &Path) -> Result<Self, NnError> {
        let config: FieldFlowConfig = crate::checkpoint::read_config(dir, CONFIG)?;
        Self::build(config, |net| {
            crate::checkpoint::load_weights(dir, net, CONFIG)
        })
    }

    /// A flow from the text of its `fieldflow.json` and the bytes of its
    /// `weights.safetensors` (a model embedded in a binary).
    pub fn from_bytes(config_json: &str, weights: Vec<u8>) -> Result<Self, NnError> {
        let fail = |what: &str, msg: String| NnError::Checkpoint {
            path: format!("embedded {what}"),
            msg,
        };
        let config: FieldFlowConfig =
            serde_json::from_str(config_json).map_err(|e| fail(CONFIG, e.to_string()))?;
        Self::build(config, |net| {
            use crate::checkpoint::ModuleSnapshot;
            let mut store = crate::checkpoint::SafetensorsStore::from_bytes(Some(weights));
            net.load_from(&mut store).map(drop).map_err(|e| {
                fail(
                    crate::checkpoint::WEIGHTS,
                    crate::checkpoint::load_error_line(&e),
                )
            })
        })
    }

    /// The network of `config` with weights from `load`.
    fn build(
        config: FieldFlowConfig,
        load: impl FnOnce(&mut TrenfNet) -> Result<(), NnError>,
    ) -> Result<Self, NnError> {
        config.validate()?;
        let device = default_device();
        let ad = device.clone().autodiff();
        let mut net = TrenfNet::new(&config.flow, config.shape, config.theta_mean.len(), &ad);
        load(&mut net)?;
        let net_eval = net.clone().valid();
        Ok(Self {
            config,
            net,
            net_eval,
            device,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spline::rq_forward_ops;
    use rand_distr::Normal;

    fn normal(len: usize, seed: u64) -> Vec<f64> {
        let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(seed);
        (0..len)
            .map(|_| Normal::new(0.0, 1.0).expect("valid").sample(&mut rng))
            .collect()
    }

    /// A smooth pixel power spectrum with a turnover.
    fn p_pix(k: f64) -> f64 {
        3.0 / (1.0 + k).powf(2.5) * (1.0 + (k / 4.0).powi(2)).sqrt() + 0.05
    }

    fn f64s(t: Tensor<1>) -> Vec<f64> {
        to_vec(t)
    }

    /// A Gaussian random field with pixel power P: (i) the dense Gaussian
    /// with the circulant covariance built by direct cosine sums, (ii) the
    /// Fourier-space formula, (iii) one flow layer with `T = 1 / sqrt(P)`
    /// and no spline, all in f64.
    #[test]
    fn gaussian_field_log_density_three_ways() {
        // exact to 1e-10 in f64, which not every GPU backend has: the CPU
        let dev = burn::tensor::Device::flex();
        for &(n, dims) in &[(8usize, 2usize), (16, 3)] {
            let l = n.pow(dims as u32);
            let x = normal(l, 3);
            // Full-plane modes and positions as integer vectors.
            let vec_of = |i: usize| -> Vec<i64> {
                let mut rest = i;
                let mut v = vec![0i64; dims];
                for d in (0..dims).rev() {
                    v[d] = (rest % n) as i64;
                    rest /= n;
                }
                v
            };
            let kmag = |v: &[i64]| {
                v.iter()
                    .map(|&a| {
                        let f = cosmodiff_field::fft3::freq(a as usize, n) as f64;
                        f * f
                    })
                    .sum::<f64>()
                    .sqrt()
            };
            let pk: Vec<f64> = (0..l).map(|i| p_pix(kmag(&vec_of(i)))).collect();
            // (i) c(delta) = L^-1 sum_k P(k) cos(2 pi k.delta / n).
            let c: Vec<f64> = (0..l)
                .map(|d| {
                    let dv = vec_of(d);
                    (0..l)
                        .map(|k| {
                            let kv = vec_of(k);
                            let ph: i64 = kv.iter().zip(&dv).map(|(a, b)| a * b).sum();
                            pk[k]
                                * (2.0 * std::f64::consts::PI * (ph % n as i64) as f64 / n as f64)
                                    .cos()
                        })
                        .sum::<f64>()
                        / l as f64
                })
                .collect();
            let cov = nalgebra::DMatrix::from_fn(l, l, |i, j| {
                let (vi, vj) = (vec_of(i), vec_of(j));
                let mut d = 0usize;
                for a in 0..dims {
                    d = d * n + ((vi[a] - vj[a]).rem_euclid(n as i64)) as usize;
                }
                c[d]
            });
            let chol = cov.cholesky().expect("positive definite");
            let xv = nalgebra::DVector::from_vec(x.clone());
            let y = chol.l().solve_lower_triangular(&xv).expect("solve");
            let logdet: f64 = chol.l().diagonal().iter().map(|d| 2.0 * d.ln()).sum();
            let dense = -0.5 * y.dot(&y)
                - 0.5 * logdet
                - 0.5 * l as f64 * (2.0 * std::f64::consts::PI).ln();
            // (ii) sum over full modes via the half-complex weights.
            let fft = cosmodiff_field::fft3::Fft3::<f64>::with_dims(n, dims);
            let xk = fft.forward(&x);
            let (w, km) = (mode_weights(n, dims), mode_k(n, dims));
            let fourier: f64 = xk
                .iter()
                .zip(w.iter().zip(&km))
                .map(|(xk, (w, &k))| {
                    let p = p_pix(k);
                    -0.5 * w
                        * (xk.norm_sqr() / (l as f64 * p) + (2.0 * std::f64::consts::PI * p).ln())
                })
                .sum();
            // (iii) the flow's filter step in f64.
            let log_t: Vec<f64> = km.iter().map(|&k| -0.5 * p_pix(k).ln()).collect();
            let (lt, wt) = prescribed_filter(&log_t, 1, n, dims, &dev);
            let h = Tensor::<2>::from_data(TensorData::new(x.clone(), [1, l]), (&dev, DType::F64));
            let (z, ld) = filter_layer(h, lt, wt, n, dims);
            let flow = f64s(standard_normal_log_prob(z) + ld)[0];
            assert!(
                (dense - fourier).abs() < 1e-10,
                "{n}^{dims}: dense {dense} fourier {fourier}"
            );
            assert!(
                (flow - fourier).abs() < 1e-10,
                "{n}^{dims}: flow {flow} fourier {fourier}"
            );
        }
    }

    /// Two layers of filter + pixel-wise spline in f64: the summed
    /// log-determinants equal log |det| of the brute-force Jacobian
    /// (fourth-order central differences) on an 8x8 map.
    #[test]
    fn log_det_matches_brute_force_jacobian() {
        // exact to 1e-10 in f64, which not every GPU backend has: the CPU
        let dev = burn::tensor::Device::flex();
        let (n, dims, bins, bound) = (8usize, 2usize, 6usize, 3.0);
        let l = 64;
        let np = n_params(bins);
        let km = mode_k(n, dims);
        let lts: Vec<Vec<f64>> = (0..2)
            .map(|j| {
                km.iter()
                    .map(|&k| 0.4 - 0.3 * (1.0 + k).ln() + 0.1 * j as f64)
                    .collect()
            })
            .collect();
        let ps: Vec<Vec<f64>> = (0..2)
            .map(|j| normal(np, 10 + j).iter().map(|v| 0.7 * v).collect())
            .collect();
        let run = |x: &[f64]| -> (Vec<f64>, f64) {
            let mut h =
                Tensor::<2>::from_data(TensorData::new(x.to_vec(), [1, l]), (&dev, DType::F64));
            let mut total = 0.0;
            for j in 0..2 {
                let (lt, wt) = prescribed_filter(&lts[j], 1, n, dims, &dev);
                let (u, ld) = filter_layer(h, lt, wt, n, dims);
                let p: Vec<f64> = (0..l).flat_map(|_| ps[j].iter().copied()).collect();
                let p = Tensor::<3>::from_data(TensorData::new(p, [1, l, np]), (&dev, DType::F64));
                let (y, ls) = rq_forward_ops(u, p, bins, bound);
                total += f64s(ld)[0] + to_vec(ls).iter().sum::<f64>();
                h = y;
            }
            (to_vec(h), total)
        };
        let x: Vec<f64> = normal(l, 4);
        let (_, logdet) = run(&x);
        // Small steps: the spline's second derivative jumps at its knots, and
        // a step across one biases the difference by O(h).
        let hstep = 1e-4;
        let mut jac = nalgebra::DMatrix::<f64>::zeros(l, l);
        for j in 0..l {
            let at = |s: f64| {
                let mut xp = x.clone();
                xp[j] += s * hstep;
                run(&xp).0
            };
            let (p1, m1, p2, m2) = (at(1.0), at(-1.0), at(2.0), at(-2.0));
            for i in 0..l {
                jac[(i, j)] = (8.0 * (p1[i] - m1[i]) - (p2[i] - m2[i])) / (12.0 * hstep);
            }
        }
        let brute = jac.lu().determinant().abs().ln();
        assert!(
            (brute - logdet).abs() < 1e-8,
            "brute {brute} vs flow {logdet}"
        );
    }

    /// A few steps of training on skewed fields move every weight; then
    /// `inverse(forward(x)) = x` in f32, the log-probability is the sum of
    /// its parts, and a sample maps back to its latent draw.
    #[test]
    fn trained_flow_inverts_and_reports_its_parts() {
        for &(n, dims, c) in &[(8usize, 2usize, 2usize), (4, 3, 1)] {
            let shape = FieldShape {
                n,
                dims,
                channels: c,
            };
            let rows = 24;
            let fields = Array2::from_shape_vec(
                (rows, shape.len()),
                normal(rows * shape.len(), 5)
                    .iter()
                    .map(|v| (0.5 * v).exp())
                    .collect(),
            )
            .expect("shape");
            let theta = Array2::from_shape_vec((rows, 2), normal(rows * 2, 6)).expect("shape");
            let train = TrainConfig {
                learning_rate: 3e-2,
                batch_size: 8,
                max_epochs: 3,
                validation_fraction: 0.0,
                ..Default::default()
            };
            let flow_cfg = TrenfConfig {
                layers: 2,
                knots: 6,
                ..Default::default()
            };
            let (flow, report) = FieldFlow::fit(
                fields.view(),
                theta.view(),
                vec!["a".into(), "b".into()],
                shape,
                flow_cfg,
                train,
            )
            .expect("fit");
            assert!(report.train_loss.iter().all(|v| v.is_finite()));
            let (x, t) = (
                fields.slice(ndarray::s![..4, ..]),
                theta.slice(ndarray::s![..4, ..]),
            );
            let z = flow.latent(x, t).expect("latent");
            let lp = flow.log_prob(x, t).expect("log prob");
            for (i, p) in lp.iter().enumerate() {
                let base: f64 = -0.5 * z.row(i).iter().map(|v| v * v).sum::<f64>()
                    - 0.5 * shape.len() as f64 * (2.0 * std::f64::consts::PI).ln();
                assert!((p.base_logprob - base).abs() < 1e-3 * base.abs());
                assert!(
                    (p.logprob - p.base_logprob - p.logdet).abs() < 1e-9 * p.logprob.abs().max(1.0)
                );
            }
            // Round trip through the inverse, in standardised units.
            let xs = FieldFlow::standardise(&flow.config, x, &flow.device);
            let ts = FieldFlow::theta_tensor(&flow.config, t, &flow.device);
            let (zt, _) = flow
                .net_eval
                .forward(xs.clone(), &ts, &flow.config.flow, shape);
            let back = flow.net_eval.inverse(zt, &ts, &flow.config.flow, shape);
            let err = to_vec(back)
                .iter()
                .zip(to_vec(xs))
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(err < 1e-5, "round trip {err}");
            // Gradients in theta against central differences of log_prob.
            let field = x.row(0).to_vec();
            let th = t.slice(ndarray::s![..1, ..]).to_owned();
            let (v, g) = flow.log_prob_and_grad(&field, th.view()).expect("grad");
            assert!((v[0] - lp[0].logprob).abs() < 1e-3 * lp[0].logprob.abs());
            for j in 0..2 {
                // log p sums f32 values of order 100 (rounding ~1e-3), and the
                // splines are only C1 (wide steps cross knots): a middle step
                // and an absolute floor for the rounding.
                let h = 0.02;
                let lp_at = |d: f64| {
                    let mut tt = th.clone();
                    tt[[0, j]] += d;
                    flow.log_prob(x.slice(ndarray::s![..1, ..]), tt.view())
                        .expect("lp")[0]
                        .logprob
                };
                let fd = (lp_at(h) - lp_at(-h)) / (2.0 * h);
                assert!(
                    (fd - g[[0, j]]).abs() < 0.02 * fd.abs() + 0.1,
                    "d/dtheta_{j}: {fd} vs {}",
                    g[[0, j]]
                );
            }
            // Samples have the data's shape and are finite.
            let s = flow.sample(t, 1).expect("sample");
            assert_eq!(s.dim(), (4, shape.len()));
            assert!(s.iter().all(|v| v.is_finite()));
            // Save and load give the same log-probabilities.
            let dir = std::env::temp_dir()
                .join(format!("cosmodiff-trenf-{n}-{dims}-{}", std::process::id()));
            flow.save(&dir).expect("save");
            let back = FieldFlow::load(&dir).expect("load");
            let lp2 = back.log_prob(x, t).expect("log prob");
            for (a, b) in lp.iter().zip(&lp2) {
                assert_eq!(a.logprob, b.logprob);
            }
            // A hand-edited fieldflow.json is refused on load, naming what
            // is wrong.
            let cfg_path = dir.join(CONFIG);
            let text = std::fs::read_to_string(&cfg_path).expect("config");
            let edits: [(&str, serde_json::Value, &str); 5] = [
                (
                    "theta_sd",
                    serde_json::json!([-1.0, 1.0]),
                    "must be a positive number",
                ),
                (
                    "theta_min",
                    serde_json::json!([1.0, 0.0]),
                    "is not an interval",
                ),
                (
                    "field_sd",
                    serde_json::json!(vec![1.0; 7]),
                    "7 standard deviations for",
                ),
                ("format_version", serde_json::json!(7), "format_version 7"),
                ("surprise", serde_json::json!(1), "unknown field"),
            ];
            for (key, value, needle) in edits {
                let mut v: serde_json::Value = serde_json::from_str(&text).expect("json");
                if key == "theta_min" {
                    v["theta_max"] = serde_json::json!([0.0, 1.0]);
                }
                v[key] = value;
                std::fs::write(&cfg_path, v.to_string()).expect("write");
                let e = FieldFlow::load(&dir).err().expect("refused").to_string();
                assert!(e.contains(needle), "{key}: {e}");
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    /// The spline basis reproduces the values at its knots and is exact on
    /// straight lines.
    #[test]
    fn spline_basis_interpolates_knots() {
        let kn = knot_positions(7);
        let b = natural_spline_basis(&kn, &kn);
        for i in 0..7 {
            for j in 0..7 {
                assert!((b[i * 7 + j] - if i == j { 1.0 } else { 0.0 }).abs() < 1e-12);
            }
        }
        // Natural splines reproduce straight lines exactly.
        let at: Vec<f64> = (0..50).map(|i| i as f64 / 49.0).collect();
        let b = natural_spline_basis(&kn, &at);
        for (i, &x) in at.iter().enumerate() {
            let v: f64 = (0..7).map(|j| b[i * 7 + j] * (2.0 - 3.0 * kn[j])).sum();
            assert!((v - (2.0 - 3.0 * x)).abs() < 1e-12);
        }
    }
}
