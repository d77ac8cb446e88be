//! Convergence diagnostics of Vehtari, Gelman, Simpson, Carpenter & Bürkner
//! (2021), "Rank-normalization, folding, and localization: an improved R-hat
//! for assessing convergence of MCMC", Bayesian Analysis 16, 667.
//!
//! Conventions follow the reference implementations (R `posterior`,
//! ArviZ): every function takes draws of one scalar quantity as `chains[c][t]`
//! (`M` chains of `N` draws each).
//!
//! - *Split*: each chain is cut into halves (the middle draw is dropped when
//!   `N` is odd), giving `2M` chains of `N/2` draws.
//! - *Rank normalisation*: with `r` the average rank of a draw among all
//!   `S` pooled draws, `z = Phi^{-1}((r - 3/8) / (S + 1/4))`.
//! - *R-hat* of chains of length `n`: `W` = mean within-chain variance,
//!   `B/n` = variance of the chain means, `var+ = (n-1)/n W + B/n`,
//!   `R = sqrt(var+/W)`. The reported R-hat is
//!   `max(R(z(split x)), R(z(split |x - median x|)))`.
//! - *ESS*: `S / tau` with `tau = -1 + 2 sum_{t=0}^{K} rho_t + rho_{K+1}`,
//!   `rho_t = 1 - (W - mean_c acov_c(t)) / var+` (autocovariances by FFT,
//!   biased, i.e. divided by `n`), truncated by Geyer's initial positive
//!   sequence on pair sums `rho_{2k} + rho_{2k+1}` and made monotone
//!   (Geyer's initial monotone sequence); `tau >= 1/log10(S)`.
//!   *Bulk-ESS* is the ESS of `z(split x)`; *tail-ESS* is the minimum of the
//!   ESS of the split indicators `I(x <= q_0.05)` and `I(x <= q_0.95)`.

use crate::special::norm_ppf;
use rustfft::{num_complex::Complex, FftPlanner};

/// Split each chain in two halves (dropping the middle draw for odd `N`).
pub fn split_chains(chains: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let mut out = Vec::with_capacity(2 * chains.len());
    for c in chains {
        let half = c.len() / 2;
        out.push(c[..half].to_vec());
        out.push(c[c.len() - half..].to_vec());
    }
    out
}

/// Average ranks (1-based, ties get the mean of their ranks) of all draws.
fn average_ranks(values: &[f64]) -> Vec<f64> {
    let n = values.len();
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; n];
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && values[idx[j + 1]] == values[idx[i]] {
            j += 1;
        }
        let r = 0.5 * ((i + 1) + (j + 1)) as f64;
        for k in i..=j {
            ranks[idx[k]] = r;
        }
        i = j + 1;
    }
    ranks
}

/// Rank normalisation `z = Phi^{-1}((r - 3/8)/(S + 1/4))` over all pooled draws.
pub fn rank_normalize(chains: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let flat: Vec<f64> = chains.iter().flatten().copied().collect();
    let s = flat.len() as f64;
    let ranks = average_ranks(&flat);
    let mut out = Vec::with_capacity(chains.len());
    let mut k = 0;
    for c in chains {
        out.push(
            c.iter()
                .map(|_| {
                    let z = norm_ppf((ranks[k] - 0.375) / (s + 0.25));
                    k += 1;
                    z
                })
                .collect(),
        );
    }
    out
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

fn var_ddof1(x: &[f64]) -> f64 {
    let m = mean(x);
    x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (x.len() as f64 - 1.0)
}

/// Classic (non-split, non-rank-normalised) potential scale reduction
/// `sqrt(((n-1)/n W + B/n) / W)` of the given chains.
pub fn rhat_basic(chains: &[Vec<f64>]) -> f64 {
    let n = chains[0].len();
    if chains.len() < 2 || n < 2 {
        return f64::NAN;
    }
    let means: Vec<f64> = chains.iter().map(|c| mean(c)).collect();
    let w = chains.iter().map(|c| var_ddof1(c)).sum::<f64>() / chains.len() as f64;
    let b = n as f64 * var_ddof1(&means);
    if !(w > 0.0) {
        return f64::NAN;
    }
    ((b / w + n as f64 - 1.0) / n as f64).sqrt()
}

/// Median of all draws (numpy-style linear interpolation).
fn pooled_quantile(chains: &[Vec<f64>], p: f64) -> f64 {
    let mut flat: Vec<f64> = chains.iter().flatten().copied().collect();
    flat.sort_by(f64::total_cmp);
    quantile_sorted(&flat, p)
}

/// Quantile of sorted data with linear interpolation between order
/// statistics (numpy's default, R type 7).
pub fn quantile_sorted(sorted: &[f64], p: f64) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    let h = (n - 1) as f64 * p;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

fn is_constant(chains: &[Vec<f64>]) -> bool {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for v in chains.iter().flatten() {
        lo = lo.min(*v);
        hi = hi.max(*v);
    }
    !(hi - lo >= 1e-15)
}

/// Rank-normalised split R-hat (Vehtari et al. 2021, eq. 4-5 and sec. 4.2):
/// the maximum of bulk R-hat and folded (tail) R-hat.
pub fn rhat(chains: &[Vec<f64>]) -> f64 {
    if chains.is_empty() || chains[0].len() < 4 || chains.iter().flatten().any(|v| !v.is_finite()) {
        return f64::NAN;
    }
    if is_constant(chains) {
        return f64::NAN;
    }
    let split = split_chains(chains);
    let bulk = rhat_basic(&rank_normalize(&split));
    let med = pooled_quantile(chains, 0.5);
    let folded: Vec<Vec<f64>> = split
        .iter()
        .map(|c| c.iter().map(|v| (v - med).abs()).collect())
        .collect();
    let tail = rhat_basic(&rank_normalize(&folded));
    bulk.max(tail)
}

/// Biased autocovariance `acov(t) = 1/n sum_{i} (x_i - m)(x_{i+t} - m)`
/// for `t = 0..n`, by zero-padded FFT (Wiener-Khinchin).
pub fn autocovariance(x: &[f64]) -> Vec<f64> {
    let n = x.len();
    let m = (2 * n).next_power_of_two();
    let mu = mean(x);
    let mut buf: Vec<Complex<f64>> = x.iter().map(|v| Complex::new(v - mu, 0.0)).collect();
    buf.resize(m, Complex::new(0.0, 0.0));
    let mut planner = FftPlanner::new();
    planner.plan_fft_forward(m).process(&mut buf);
    for c in buf.iter_mut() {
        *c = Complex::new(c.norm_sqr(), 0.0);
    }
    planner.plan_fft_inverse(m).process(&mut buf);
    buf[..n]
        .iter()
        .map(|c| c.re / (m as f64 * n as f64))
        .collect()
}

/// Multi-chain effective sample size of the given chains (no splitting or
/// rank normalisation): Geyer's initial monotone sequence estimator as in
/// Vehtari et al. (2021), eq. 10-11.
pub fn ess_raw(chains: &[Vec<f64>]) -> f64 {
    let m = chains.len();
    let n = chains[0].len();
    if n < 4 || chains.iter().flatten().any(|v| !v.is_finite()) {
        return f64::NAN;
    }
    let total = (m * n) as f64;
    if is_constant(chains) {
        return total;
    }
    let acov: Vec<Vec<f64>> = chains.iter().map(|c| autocovariance(c)).collect();
    let means: Vec<f64> = chains.iter().map(|c| mean(c)).collect();
    let mean_acov = |t: usize| acov.iter().map(|a| a[t]).sum::<f64>() / m as f64;
    let nf = n as f64;
    let mean_var = mean_acov(0) * nf / (nf - 1.0);
    let mut var_plus = mean_var * (nf - 1.0) / nf;
    if m > 1 {
        var_plus += var_ddof1(&means);
    }
    let mut rho = vec![0.0; n];
    let mut rho_even = 1.0;
    rho[0] = rho_even;
    let mut rho_odd = 1.0 - (mean_var - mean_acov(1)) / var_plus;
    rho[1] = rho_odd;
    // Geyer's initial positive sequence.
    let mut t = 1;
    while t + 3 < n && rho_even + rho_odd > 0.0 {
        rho_even = 1.0 - (mean_var - mean_acov(t + 1)) / var_plus;
        rho_odd = 1.0 - (mean_var - mean_acov(t + 2)) / var_plus;
        if rho_even + rho_odd >= 0.0 {
            rho[t + 1] = rho_even;
            rho[t + 2] = rho_odd;
        }
        t += 2;
    }
    // t is odd and >= 1, so max_t >= -1.
    let max_t_i = t as isize - 2;
    if rho_even > 0.0 {
        rho[(max_t_i + 1) as usize] = rho_even;
    }
    // Geyer's initial monotone sequence.
    let mut t: isize = 1;
    while t <= max_t_i - 2 {
        let tu = t as usize;
        if rho[tu + 1] + rho[tu + 2] > rho[tu - 1] + rho[tu] {
            rho[tu + 1] = 0.5 * (rho[tu - 1] + rho[tu]);
            rho[tu + 2] = rho[tu + 1];
        }
        t += 2;
    }
    let upto = (max_t_i + 1).max(0) as usize;
    let mut tau = -1.0 + 2.0 * rho[..upto].iter().sum::<f64>();
    if upto < n {
        tau += rho[upto];
    }
    if rho.iter().any(|v| v.is_nan()) {
        return f64::NAN;
    }
    let tau = tau.max(1.0 / total.log10());
    total / tau
}

/// Bulk-ESS: ESS of the rank-normalised split chains.
pub fn ess_bulk(chains: &[Vec<f64>]) -> f64 {
    if chains.is_empty() || chains[0].len() < 8 {
        return f64::NAN;
    }
    ess_raw(&rank_normalize(&split_chains(chains)))
}

/// ESS of the split chains without rank normalisation (for the mean).
pub fn ess_mean(chains: &[Vec<f64>]) -> f64 {
    if chains.is_empty() || chains[0].len() < 8 {
        return f64::NAN;
    }
    ess_raw(&split_chains(chains))
}

/// ESS of the quantile `prob`: ESS of the split indicator `I(x <= q_prob)`.
pub fn ess_quantile(chains: &[Vec<f64>], prob: f64) -> f64 {
    if chains.is_empty() || chains[0].len() < 8 {
        return f64::NAN;
    }
    let q = pooled_quantile(chains, prob);
    let ind: Vec<Vec<f64>> = chains
        .iter()
        .map(|c| c.iter().map(|&v| if v <= q { 1.0 } else { 0.0 }).collect())
        .collect();
    ess_raw(&split_chains(&ind))
}

/// Tail-ESS: `min(ESS(q_0.05), ESS(q_0.95))`.
pub fn ess_tail(chains: &[Vec<f64>]) -> f64 {
    ess_quantile(chains, 0.05).min(ess_quantile(chains, 0.95))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn autocovariance_matches_direct() {
        let x: Vec<f64> = (0..37)
            .map(|i| ((i * 7919) % 101) as f64 / 10.0 + (i as f64 * 0.3).sin())
            .collect();
        let a = autocovariance(&x);
        let m = mean(&x);
        for t in [0usize, 1, 5, 36] {
            let d: f64 = (0..x.len() - t)
                .map(|i| (x[i] - m) * (x[i + t] - m))
                .sum::<f64>()
                / x.len() as f64;
            assert!((a[t] - d).abs() < 1e-10, "t={t}");
        }
    }

    #[test]
    fn ranks_average_ties() {
        assert_eq!(
            average_ranks(&[3.0, 1.0, 3.0, 2.0]),
            vec![3.5, 1.0, 3.5, 2.0]
        );
    }
}
