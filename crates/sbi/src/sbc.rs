//! Simulation-based calibration (Talts et al. 2018, arXiv:1804.06788).
//!
//! If `theta_i ~ p(theta)`, `x_i ~ p(x | theta_i)` and `theta_ij`,
//! `j = 1..L`, are draws from the exact posterior `p(theta | x_i)`, then for
//! every parameter `k` the rank
//!
//! ```text
//! r_ik = #{ j : theta_ijk < theta_ik }  in {0, ..., L}
//! ```
//!
//! is uniform on `{0, ..., L}`. Over-confident posteriors pile ranks at
//! both ends (a U-shaped histogram), under-confident ones in the middle, and
//! biased ones on one side.
//!
//! Uniformity is tested per dimension in two ways:
//! - Kolmogorov-Smirnov: `D = max_r |F_N(r) - (r + 1)/(L + 1)|` against the
//!   discrete uniform CDF, p-value from the asymptotic Kolmogorov
//!   distribution (conservative for a discrete null: p-values err high);
//! - Pearson chi-square over `B` bins (`B = clamp(N / 10, 2, 20)`, at most
//!   `L + 1`), rank `r` in bin `floor(r B / (L + 1))` and the exact expected
//!   count `E_b = N n_b / (L + 1)` (`n_b` ranks per bin), `B - 1` degrees of
//!   freedom.
//!
//! [`SbcResult::passes`] applies a Bonferroni correction over the
//! `2 dim` tests.

use crate::stats::{chi2_sf, ks_pvalue};
use cosmodiff_infer::InferError;
use ndarray::{Array2, ArrayView2, ArrayView3};

/// Ranks and per-dimension uniformity tests of [`sbc`].
#[derive(Debug, Clone, PartialEq)]
pub struct SbcResult {
    /// `[n_sims, dim]` ranks in `0..=n_samples`.
    pub ranks: Array2<usize>,
    /// Posterior draws per simulation `L`.
    pub n_samples: usize,
    /// Bins of the chi-square test and of [`SbcResult::histogram`].
    pub bins: usize,
    /// KS statistic per dimension.
    pub ks_statistic: Vec<f64>,
    /// KS p-value per dimension.
    pub ks_pvalues: Vec<f64>,
    /// Chi-square statistic per dimension.
    pub chi2_statistic: Vec<f64>,
    /// Chi-square p-value per dimension (`bins - 1` degrees of freedom).
    pub chi2_pvalues: Vec<f64>,
}

impl SbcResult {
    /// Whether no test rejects uniformity at family-wise level `level`
    /// (Bonferroni: every p-value `>= level / (2 dim)`).
    pub fn passes(&self, level: f64) -> bool {
        let m = 2.0 * self.ks_pvalues.len() as f64;
        self.ks_pvalues
            .iter()
            .chain(&self.chi2_pvalues)
            .all(|&p| p >= level / m)
    }

    /// Smallest p-value over dimensions and both tests.
    pub fn min_pvalue(&self) -> f64 {
        self.ks_pvalues
            .iter()
            .chain(&self.chi2_pvalues)
            .fold(1.0, |a, &b| a.min(b))
    }

    /// Rank counts of dimension `k` in the `bins` bins, and the expected
    /// count of each bin under uniformity.
    pub fn histogram(&self, k: usize) -> (Vec<usize>, Vec<f64>) {
        let l1 = self.n_samples + 1;
        let b = self.bins;
        let bin = |r: usize| r * b / l1;
        let mut counts = vec![0usize; b];
        for &r in self.ranks.column(k) {
            counts[bin(r)] += 1;
        }
        let mut per_bin = vec![0usize; b];
        for r in 0..l1 {
            per_bin[bin(r)] += 1;
        }
        let n = self.ranks.nrows() as f64;
        let expected = per_bin.iter().map(|&c| n * c as f64 / l1 as f64).collect();
        (counts, expected)
    }
}

/// SBC ranks and uniformity tests. `samples`: posterior draws
/// `[n_sims, n_samples, dim]`; `theta`: the true parameters `[n_sims, dim]`
/// (drawn from the prior).
pub fn sbc(samples: ArrayView3<f64>, theta: ArrayView2<f64>) -> Result<SbcResult, InferError> {
    let (ns, nd, dim) = samples.dim();
    if theta.dim() != (ns, dim) {
        return Err(InferError::Dim(format!(
            "sbc: samples are [{ns}, {nd}, {dim}] but theta is {:?}",
            theta.shape()
        )));
    }
    if ns < 2 || nd == 0 || dim == 0 {
        return Err(InferError::Settings(
            "sbc: need >= 2 simulations, >= 1 sample and >= 1 dimension".into(),
        ));
    }
    if samples.iter().chain(theta.iter()).any(|v| v.is_nan()) {
        return Err(InferError::Settings("sbc: NaN in samples or theta".into()));
    }
    let ranks = Array2::from_shape_fn((ns, dim), |(i, k)| {
        let t = theta[[i, k]];
        (0..nd).filter(|&j| samples[[i, j, k]] < t).count()
    });
    let bins = (ns / 10).clamp(2, 20).min(nd + 1);
    let mut res = SbcResult {
        ranks,
        n_samples: nd,
        bins,
        ks_statistic: vec![],
        ks_pvalues: vec![],
        chi2_statistic: vec![],
        chi2_pvalues: vec![],
    };
    let l1 = (nd + 1) as f64;
    for k in 0..dim {
        let mut counts = vec![0usize; nd + 1];
        for &r in res.ranks.column(k) {
            counts[r] += 1;
        }
        let mut cum = 0usize;
        let mut d = 0.0f64;
        for (r, &c) in counts.iter().enumerate() {
            cum += c;
            d = d.max((cum as f64 / ns as f64 - (r + 1) as f64 / l1).abs());
        }
        res.ks_statistic.push(d);
        res.ks_pvalues.push(ks_pvalue(d, ns));
        let (obs, exp) = res.histogram(k);
        let chi2: f64 = obs
            .iter()
            .zip(&exp)
            .map(|(&o, &e)| (o as f64 - e).powi(2) / e)
            .sum();
        res.chi2_statistic.push(chi2);
        res.chi2_pvalues.push(chi2_sf(chi2, (bins - 1) as f64));
    }
    Ok(res)
}
