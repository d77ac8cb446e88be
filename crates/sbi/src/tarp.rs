//! TARP: Tests of Accuracy with Random Points (Lemos et al. 2023,
//! arXiv:2302.03026).
//!
//! For simulations `i = 1..N` with true parameters `theta_i` and posterior
//! draws `theta_ij ~ q(theta | x_i)`, `j = 1..L`, draw a reference point
//! `r_i` (uniformly in the bounding box of the true parameters, after
//! normalising each dimension to `[0, 1]` by that box) and take the ball
//! around `r_i` of radius `|theta_i - r_i|`. Its posterior mass
//!
//! ```text
//! f_i = (1/L) #{ j : |theta_ij - r_i| < |theta_i - r_i| }
//! ```
//!
//! is the credibility level of the smallest such ball that contains the
//! truth. The expected coverage probability of the credibility-`alpha`
//! regions is `ECP(alpha) = (1/N) #{ i : f_i <= alpha }`, the empirical CDF of
//! the `f_i`. TARP's theorem: `ECP(alpha) = alpha` for all `alpha` (and all
//! reference distributions) if and only if `q` is the true posterior.
//!
//! Summaries:
//! - `max_deviation = sup_alpha |ECP(alpha) - alpha|`, the Kolmogorov-Smirnov
//!   statistic of the `f_i` against `U(0, 1)` (computed exactly from the
//!   sorted `f_i`, not on the grid), with its asymptotic p-value;
//! - `atc = int_{1/2}^{1} (ECP(alpha) - alpha) d alpha` ("area to curve",
//!   the integral form of sbi's `check_tarp`): 0 when calibrated, negative
//!   for over-confident posteriors (truths fall outside high-credibility
//!   regions), positive for under-confident ones. With
//!   `int_a^1 1[f <= alpha] d alpha = 1 - max(f, a)` it is exact:
//!   `atc = mean_i(1 - max(f_i, 1/2)) - 3/8`.

use crate::stats::{ks_pvalue, ks_uniform_statistic};
use cosmodiff_infer::runner::chain_rng;
use cosmodiff_infer::InferError;
use ndarray::{Array2, ArrayView2, ArrayView3};
use rand::RngExt;
use rayon::prelude::*;

/// Settings of [`tarp_with`].
#[derive(Debug, Clone, PartialEq)]
pub struct TarpOptions {
    /// Points of the `alpha` grid `linspace(0, 1, n_alpha)` (default 101).
    pub n_alpha: usize,
    /// Normalise each dimension by the bounding box of the true parameters
    /// before measuring distances (default true).
    pub normalize: bool,
    /// Reference points `[n_sims, dim]` in parameter units; default: drawn
    /// uniformly in the bounding box of the true parameters.
    pub references: Option<Array2<f64>>,
    /// Seed of the random reference points.
    pub seed: u64,
}

impl Default for TarpOptions {
    fn default() -> Self {
        Self {
            n_alpha: 101,
            normalize: true,
            references: None,
            seed: 0,
        }
    }
}

/// Coverage curve and summaries of [`tarp`].
#[derive(Debug, Clone, PartialEq)]
pub struct TarpResult {
    /// Credibility levels `alpha` (grid on `[0, 1]`).
    pub alpha: Vec<f64>,
    /// Expected coverage probability at each `alpha`.
    pub ecp: Vec<f64>,
    /// Signed area between the curve and the diagonal on `[1/2, 1]`
    /// (< 0 over-confident, > 0 under-confident).
    pub atc: f64,
    /// `sup |ECP(alpha) - alpha|` (KS statistic).
    pub max_deviation: f64,
    /// `mean |ECP(alpha) - alpha|` over the `alpha` grid (about 0.02 for a
    /// calibrated posterior on 200 simulations).
    pub mean_deviation: f64,
    /// Asymptotic KS p-value of `max_deviation` for `n_sims` points.
    pub ks_pvalue: f64,
    /// Credibility level `f_i` of each simulation's truth.
    pub credibility: Vec<f64>,
}

/// TARP with the default options and the given seed for the reference
/// points. `samples`: `[n_sims, n_samples, dim]`, `theta`: `[n_sims, dim]`.
pub fn tarp(
    samples: ArrayView3<f64>,
    theta: ArrayView2<f64>,
    seed: u64,
) -> Result<TarpResult, InferError> {
    tarp_with(
        samples,
        theta,
        &TarpOptions {
            seed,
            ..Default::default()
        },
    )
}

/// TARP with explicit options.
pub fn tarp_with(
    samples: ArrayView3<f64>,
    theta: ArrayView2<f64>,
    opts: &TarpOptions,
) -> Result<TarpResult, InferError> {
    let (ns, nd, dim) = samples.dim();
    if theta.dim() != (ns, dim) {
        return Err(InferError::Dim(format!(
            "tarp: samples are [{ns}, {nd}, {dim}] but theta is {:?}",
            theta.shape()
        )));
    }
    if ns < 2 || nd == 0 || dim == 0 || opts.n_alpha < 2 {
        return Err(InferError::Settings(
            "tarp: need >= 2 simulations, >= 1 sample, >= 1 dimension, n_alpha >= 2".into(),
        ));
    }
    if samples.iter().chain(theta.iter()).any(|v| !v.is_finite()) {
        return Err(InferError::Settings(
            "tarp: samples or theta contain NaN or infinite values".into(),
        ));
    }
    // Bounding box of the true parameters.
    let mut lo = vec![f64::INFINITY; dim];
    let mut hi = vec![f64::NEG_INFINITY; dim];
    for row in theta.outer_iter() {
        for k in 0..dim {
            lo[k] = lo[k].min(row[k]);
            hi[k] = hi[k].max(row[k]);
        }
    }
    let width: Vec<f64> = lo
        .iter()
        .zip(&hi)
        .map(|(a, b)| if b > a { b - a } else { 1.0 })
        .collect();
    // Distances are shift-invariant: normalising is a per-dimension scale.
    let scale: Vec<f64> = if opts.normalize {
        width.iter().map(|w| 1.0 / w).collect()
    } else {
        vec![1.0; dim]
    };
    let refs = match &opts.references {
        Some(r) => {
            if r.dim() != (ns, dim) {
                return Err(InferError::Dim(format!(
                    "tarp: references must be [{ns}, {dim}], got {:?}",
                    r.shape()
                )));
            }
            r.clone()
        }
        None => {
            let mut rng = chain_rng(opts.seed, 0);
            Array2::from_shape_fn((ns, dim), |(_, k)| lo[k] + width[k] * rng.random::<f64>())
        }
    };
    let credibility: Vec<f64> = (0..ns)
        .into_par_iter()
        .map(|i| {
            let dist2 = |p: ndarray::ArrayView1<f64>| -> f64 {
                (0..dim)
                    .map(|k| {
                        let d = (p[k] - refs[[i, k]]) * scale[k];
                        d * d
                    })
                    .sum()
            };
            let dt = dist2(theta.row(i));
            let inside = samples
                .index_axis(ndarray::Axis(0), i)
                .outer_iter()
                .filter(|s| dist2(s.view()) < dt)
                .count();
            inside as f64 / nd as f64
        })
        .collect();
    let alpha: Vec<f64> = (0..opts.n_alpha)
        .map(|k| k as f64 / (opts.n_alpha - 1) as f64)
        .collect();
    let mut sorted = credibility.clone();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let ecp: Vec<f64> = alpha
        .iter()
        .map(|&a| sorted.partition_point(|&f| f <= a) as f64 / ns as f64)
        .collect();
    let atc = credibility.iter().map(|&f| 1.0 - f.max(0.5)).sum::<f64>() / ns as f64 - 0.375;
    let max_deviation = ks_uniform_statistic(&credibility);
    let mean_deviation = alpha
        .iter()
        .zip(&ecp)
        .map(|(a, e)| (e - a).abs())
        .sum::<f64>()
        / alpha.len() as f64;
    Ok(TarpResult {
        alpha,
        ecp,
        atc,
        max_deviation,
        mean_deviation,
        ks_pvalue: ks_pvalue(max_deviation, ns),
        credibility,
    })
}
