//! Sampling convergence maps from a score prior, alone or given shear data.
//!
//! The target at noise level `sigma` has score
//! `s_post(kappa, sigma) = s_prior(kappa, sigma) + P^T (Sigma + sigma^2)^{-1} (gamma - P kappa)`
//! ([`crate::score`]). All chains advance together, so a learned prior sees
//! one batch per score evaluation.
//!
//! * [`annealed_hmc`]: Hamiltonian Monte Carlo on `p_sigma(kappa | gamma)` over
//!   decreasing noise levels (Remy et al. 2022, A&A 672, A51, sec. 3.3). Step
//!   size `eps = c / sqrt(1/sigma^2 + 1/(Sigma_min + sigma^2))` (the largest
//!   curvature of the annealed target is at most the bracket); with
//!   `metropolis` the acceptance uses the change of `log p` integrated along
//!   the leapfrog path by the trapezoid rule from the scores (exact for a
//!   Gaussian target), since a score model gives no density.
//! * [`reverse_sde`]: the reverse-time variance-exploding SDE
//!   `dx = -d(sigma^2) s_post(x, sigma) + sqrt(d(sigma^2)) dW` by
//!   Euler-Maruyama, optionally with Langevin corrector steps of
//!   signal-to-noise ratio `snr` (predictor-corrector, Song et al. 2021, alg. 5),
//!   optionally in antithetic pairs of chains driven by opposite random
//!   numbers (a far less noisy posterior mean for the same cost).
//! * [`probability_flow`]: the probability-flow ODE
//!   `dx/dsigma = -sigma s(x, sigma)` by Heun's method (deterministic).
//!
//! Every sampler ends with one probability-flow Euler step from `sigma_min` to
//! zero, `x += sigma_min^2 / 2 s_post(x, sigma_min)` (the final denoising step).

use crate::error::{value, Result};
use crate::score::{MapScore, Sde, ShearLikelihood};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

/// A prior with optional shear data: the annealed posterior (or the prior).
///
/// With several data sets the chains are split into equal contiguous groups,
/// group `j` conditioned on `likelihoods[j]` (many maps in one batch; split
/// the result with [`MapSamples::groups`]).
pub struct Target<'a> {
    pub prior: &'a dyn MapScore,
    pub likelihoods: Vec<&'a ShearLikelihood>,
}

impl<'a> Target<'a> {
    /// The prior alone.
    pub fn prior(prior: &'a dyn MapScore) -> Self {
        Self {
            prior,
            likelihoods: vec![],
        }
    }
    /// The posterior given one data set.
    pub fn posterior(prior: &'a dyn MapScore, likelihood: &'a ShearLikelihood) -> Self {
        Self {
            prior,
            likelihoods: vec![likelihood],
        }
    }
    fn min_variance(&self) -> f64 {
        self.likelihoods
            .iter()
            .map(|l| l.min_variance())
            .fold(f64::INFINITY, f64::min)
    }
    /// Chains per data set when `chains` are split over the likelihoods
    /// (all of them for the prior alone).
    pub fn chains_per_set(&self, chains: usize) -> usize {
        chains / self.likelihoods.len().max(1)
    }
    fn npix(&self) -> usize {
        let n = self.prior.side();
        n * n
    }
    /// Score of the annealed target for every chain.
    pub fn score(&self, x: &[Vec<f64>], sigma: f64) -> Result<Vec<Vec<f64>>> {
        let mut s = self.prior.score(x, sigma)?;
        if !self.likelihoods.is_empty() {
            let group = self.chains_per_set(x.len());
            let ls: Vec<Vec<f64>> = x
                .par_iter()
                .enumerate()
                .map(|(c, k)| self.likelihoods[c / group].score(k, sigma))
                .collect::<Result<_>>()?;
            for (a, b) in s.iter_mut().zip(ls) {
                for (u, v) in a.iter_mut().zip(b) {
                    *u += v;
                }
            }
        }
        Ok(s)
    }
    fn check(&self, chains: usize) -> Result<()> {
        // the chains live in memory together (several copies during a step)
        let side = self.prior.side();
        if chains.saturating_mul(side * side) > crate::error::MAX_SAMPLE_VALUES {
            return Err(value(
                "chains",
                format!(
                    "{chains} chains of {side}x{side} maps need more than 1 GiB; use fewer samples"
                ),
            ));
        }
        let nl = self.likelihoods.len();
        if nl > 0 && !chains.is_multiple_of(nl) {
            return Err(value(
                "chains",
                format!("{chains} chains cannot be split evenly over {nl} data sets"),
            ));
        }
        for l in &self.likelihoods {
            if l.grid().n != self.prior.side() {
                return Err(value(
                    "data",
                    format!(
                        "maps of {}x{} pixels, but the prior is for {}x{}",
                        l.grid().n,
                        l.grid().n,
                        self.prior.side(),
                        self.prior.side()
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Samples with their per-pixel mean and standard deviation.
#[derive(Debug, Clone)]
pub struct MapSamples {
    pub samples: Vec<Vec<f64>>,
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    /// Score evaluations per chain.
    pub score_evals: usize,
    /// Mean Metropolis acceptance (annealed HMC with `metropolis`), else 1.
    pub acceptance: f64,
    /// Samples `2j` and `2j + 1` are an antithetic pair
    /// ([`ReverseSde::antithetic`]), not independent.
    pub antithetic: bool,
}

impl MapSamples {
    /// Split into `k` equal contiguous groups of chains (one per data set of
    /// a batched [`Target`]), each with its own mean and std.
    pub fn groups(&self, k: usize) -> Vec<MapSamples> {
        let g = self.samples.len() / k.max(1);
        self.samples
            .chunks(g.max(1))
            .map(|c| {
                let mut m = MapSamples::new(c.to_vec(), self.score_evals, self.acceptance);
                if self.antithetic {
                    m = m.into_antithetic();
                }
                m
            })
            .collect()
    }

    /// Independent samples: sample mean and std (`n - 1` in the denominator).
    pub fn new(samples: Vec<Vec<f64>>, score_evals: usize, acceptance: f64) -> Self {
        let n = samples.len() as f64;
        let np = samples.first().map_or(0, |s| s.len());
        let mean: Vec<f64> = (0..np)
            .map(|i| samples.iter().map(|s| s[i]).sum::<f64>() / n)
            .collect();
        let std = (0..np)
            .map(|i| {
                let v = samples
                    .iter()
                    .map(|s| (s[i] - mean[i]).powi(2))
                    .sum::<f64>();
                (v / (n - 1.0).max(1.0)).sqrt()
            })
            .collect();
        Self {
            samples,
            mean,
            std,
            score_evals,
            acceptance,
            antithetic: false,
        }
    }

    /// The same samples read as `m` antithetic pairs `(a_j, b_j)` (an even
    /// number of them). Pair means `p_j = (a_j + b_j) / 2` are independent,
    /// and for any correlation `rho` within a pair
    /// `E[(a - b)^2 / 4] = sigma^2 (1 - rho) / 2`, `Var p = sigma^2 (1 + rho) / 2`,
    /// so the per-pixel posterior variance is estimated without bias by
    /// `sigma^2 = mean_j (a_j - b_j)^2 / 4 + var_j(p_j)` (the second term
    /// needs `m >= 2`; with one pair it is left out, which underestimates
    /// `sigma^2` by `sigma^2 (1 + rho) / 2`, small when `rho` is near -1).
    pub fn into_antithetic(mut self) -> Self {
        let n = self.samples.len();
        if n < 2 || !n.is_multiple_of(2) {
            return self;
        }
        let m = (n / 2) as f64;
        self.std = (0..self.mean.len())
            .map(|i| {
                let d2: f64 = self
                    .samples
                    .chunks_exact(2)
                    .map(|pair| (pair[0][i] - pair[1][i]).powi(2) / 4.0)
                    .sum();
                let between = if m >= 2.0 {
                    self.pair_mean_ss(i) / (m - 1.0)
                } else {
                    0.0
                };
                (d2 / m + between).sqrt()
            })
            .collect();
        self.antithetic = true;
        self
    }

    /// `sum_j (p_j - mean)^2` at pixel `i` over the pair means `p_j`.
    fn pair_mean_ss(&self, i: usize) -> f64 {
        self.samples
            .chunks_exact(2)
            .map(|pair| (0.5 * (pair[0][i] + pair[1][i]) - self.mean[i]).powi(2))
            .sum()
    }

    /// Per-pixel Monte Carlo variance of [`MapSamples::mean`] as an estimate
    /// of the posterior mean: `std^2 / n` for independent samples, the
    /// variance of the pair means over `m` for antithetic pairs (`m >= 2`;
    /// with one pair `std^2 / n`, an upper bound for `rho <= 0`).
    pub fn mean_variance(&self) -> Vec<f64> {
        let n = self.samples.len();
        let m = n / 2;
        if !self.antithetic || m < 2 {
            return self.std.iter().map(|s| s * s / n.max(1) as f64).collect();
        }
        (0..self.mean.len())
            .map(|i| self.pair_mean_ss(i) / (m - 1) as f64 / m as f64)
            .collect()
    }
}

/// Settings of [`annealed_hmc`].
#[derive(Debug, Clone, PartialEq)]
pub struct AnnealedHmc {
    pub sde: Sde,
    /// Number of noise levels from `sigma_max` to `sigma_min`.
    pub levels: usize,
    /// HMC transitions per level.
    pub steps_per_level: usize,
    /// Leapfrog steps per transition.
    pub leapfrog: usize,
    /// `c` in the step size `eps = c / sqrt(1/sigma^2 + 1/(Sigma_min + sigma^2))`.
    pub step_scale: f64,
    pub metropolis: bool,
    pub chains: usize,
    pub seed: u64,
    pub progress: bool,
}

/// Settings of [`reverse_sde`].
#[derive(Debug, Clone, PartialEq)]
pub struct ReverseSde {
    pub sde: Sde,
    /// Predictor (Euler-Maruyama) steps.
    pub steps: usize,
    /// Langevin corrector steps after each predictor step (0: plain EM).
    pub corrector_steps: usize,
    pub snr: f64,
    pub chains: usize,
    pub seed: u64,
    pub progress: bool,
    /// Antithetic pairs: chain `2c + 1` is driven by the negated random
    /// numbers of chain `2c` (starting point and every increment). Each chain
    /// is still a sample of the target; for a Gaussian target the pair's
    /// average is exactly the posterior mean, so the Monte Carlo error of the
    /// sample mean keeps only the non-linear part of the map (Hammersley &
    /// Morton 1956). Needs an even number of chains per data set.
    pub antithetic: bool,
}

fn check_common(chains: usize, sde: &Sde) -> Result<()> {
    sde.validate()?;
    if chains < 2 {
        return Err(value("chains", format!("need at least 2, got {chains}")));
    }
    Ok(())
}

fn progress_bar(show: bool, len: usize, what: &str) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let pb = indicatif::ProgressBar::new(len as u64);
    pb.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{what} {{bar:30}} {{pos}}/{{len}} {{elapsed_precise}} (eta {{eta}})  {{msg}}"
        ))
        .expect("valid template"),
    );
    pb
}

fn gaussian(rng: &mut StdRng, n: usize) -> Vec<f64> {
    (0..n).map(|_| StandardNormal.sample(rng)).collect()
}

/// One rng per chain, derived from the seed (results do not depend on threads).
fn chain_rngs(seed: u64, chains: usize) -> Vec<StdRng> {
    (0..chains)
        .map(|c| {
            StdRng::seed_from_u64(
                seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    .wrapping_add(c as u64 + 1),
            )
        })
        .collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Final probability-flow Euler step from `sigma` to 0.
fn denoise(target: &Target, x: &mut [Vec<f64>], sigma: f64) -> Result<()> {
    let s = target.score(x, sigma)?;
    let h = 0.5 * sigma * sigma;
    for (xi, si) in x.iter_mut().zip(s) {
        for (u, v) in xi.iter_mut().zip(si) {
            *u += h * v;
        }
    }
    Ok(())
}

/// Annealed HMC over the noise levels of `opts.sde`.
pub fn annealed_hmc(target: &Target, opts: &AnnealedHmc) -> Result<MapSamples> {
    target.check(opts.chains)?;
    check_common(opts.chains, &opts.sde)?;
    if opts.levels < 2 || opts.steps_per_level == 0 || opts.leapfrog == 0 {
        return Err(value(
            "annealed HMC",
            "need levels >= 2, steps_per_level >= 1 and leapfrog >= 1",
        ));
    }
    if !(opts.step_scale > 0.0 && opts.step_scale < 2.0) {
        return Err(value(
            "step_scale",
            format!("must be in (0, 2), got {}", opts.step_scale),
        ));
    }
    let np = target.npix();
    let var_min = target.min_variance();
    let mut rngs = chain_rngs(opts.seed, opts.chains);
    let sigmas = opts.sde.levels(opts.levels);
    let mut x: Vec<Vec<f64>> = rngs
        .iter_mut()
        .map(|r| gaussian(r, np).into_iter().map(|z| sigmas[0] * z).collect())
        .collect();
    let mut evals = 0usize;
    let (mut acc_sum, mut acc_n) = (0.0, 0usize);
    let pb = progress_bar(opts.progress, sigmas.len(), "annealed HMC");
    for &sigma in &sigmas {
        let eps =
            opts.step_scale / (1.0 / (sigma * sigma) + 1.0 / (var_min + sigma * sigma)).sqrt();
        let mut g = target.score(&x, sigma)?;
        evals += 1;
        for _ in 0..opts.steps_per_level {
            let mut p: Vec<Vec<f64>> = rngs.iter_mut().map(|r| gaussian(r, np)).collect();
            let k0: Vec<f64> = p.iter().map(|pc| 0.5 * dot(pc, pc)).collect();
            let mut y = x.clone();
            let mut gy = g.clone();
            // Trapezoid rule for log p along the path: each position step is
            // `dy = eps p` (p after the first half kick), so
            // `0.5 (g_old + g_new) . dy` needs no copy of the old state.
            let mut dlogp = vec![0.0; opts.chains];
            for _ in 0..opts.leapfrog {
                for c in 0..opts.chains {
                    let mut d = 0.0;
                    for i in 0..np {
                        p[c][i] += 0.5 * eps * gy[c][i];
                        y[c][i] += eps * p[c][i];
                        d += gy[c][i] * p[c][i];
                    }
                    dlogp[c] += 0.5 * eps * d;
                }
                gy = target.score(&y, sigma)?;
                evals += 1;
                for c in 0..opts.chains {
                    let mut d = 0.0;
                    for i in 0..np {
                        d += gy[c][i] * p[c][i];
                        p[c][i] += 0.5 * eps * gy[c][i];
                    }
                    dlogp[c] += 0.5 * eps * d;
                }
            }
            for c in 0..opts.chains {
                let accept = if opts.metropolis {
                    let dk = k0[c] - 0.5 * dot(&p[c], &p[c]);
                    let log_a = dlogp[c] + dk;
                    let a = if log_a.is_finite() {
                        log_a.min(0.0).exp()
                    } else {
                        0.0
                    };
                    acc_sum += a;
                    acc_n += 1;
                    let u: f64 = rand::RngExt::random(&mut rngs[c]);
                    u < a
                } else {
                    true
                };
                if accept {
                    x[c] = std::mem::take(&mut y[c]);
                    g[c] = std::mem::take(&mut gy[c]);
                }
            }
        }
        pb.inc(1);
        pb.set_message(format!("sigma {sigma:.3e}"));
    }
    pb.finish_and_clear();
    let sigma_min = *sigmas.last().expect("levels >= 2");
    denoise(target, &mut x, sigma_min)?;
    evals += 1;
    let acceptance = if acc_n > 0 {
        acc_sum / acc_n as f64
    } else {
        1.0
    };
    check_finite(&x)?;
    Ok(MapSamples::new(x, evals, acceptance))
}

/// Reverse-time SDE (Euler-Maruyama predictor, optional Langevin corrector).
pub fn reverse_sde(target: &Target, opts: &ReverseSde) -> Result<MapSamples> {
    target.check(opts.chains)?;
    check_common(opts.chains, &opts.sde)?;
    if opts.steps == 0 {
        return Err(value("reverse SDE", "need at least 1 step"));
    }
    if opts.corrector_steps > 0 && !(opts.snr > 0.0 && opts.snr < 1.0) {
        return Err(value("snr", format!("must be in (0, 1), got {}", opts.snr)));
    }
    let per_set = target.chains_per_set(opts.chains);
    if opts.antithetic && !per_set.is_multiple_of(2) {
        return Err(value(
            "antithetic",
            format!("needs an even number of chains per data set, got {per_set}"),
        ));
    }
    let np = target.npix();
    let (mut rngs, signs) = if opts.antithetic {
        // Two identical streams per pair (seeded alike).
        let rngs = chain_rngs(opts.seed, opts.chains / 2)
            .into_iter()
            .zip(chain_rngs(opts.seed, opts.chains / 2))
            .flat_map(|(a, b)| [a, b])
            .collect();
        let signs = (0..opts.chains)
            .map(|c| if c % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        (rngs, signs)
    } else {
        (chain_rngs(opts.seed, opts.chains), vec![1.0; opts.chains])
    };
    let sigmas = opts.sde.levels(opts.steps + 1);
    let mut x: Vec<Vec<f64>> = rngs
        .iter_mut()
        .zip(&signs)
        .map(|(r, sign)| {
            gaussian(r, np)
                .into_iter()
                .map(|z| sign * sigmas[0] * z)
                .collect()
        })
        .collect();
    let mut evals = 0usize;
    let pb = progress_bar(opts.progress, opts.steps, "reverse SDE");
    for w in sigmas.windows(2) {
        let (s0, s1) = (w[0], w[1]);
        let d = s0 * s0 - s1 * s1;
        let g = target.score(&x, s0)?;
        evals += 1;
        x.par_iter_mut()
            .zip(g.par_iter())
            .zip(rngs.par_iter_mut())
            .zip(signs.par_iter())
            .for_each(|(((xc, gc), r), sign)| {
                let z = gaussian(r, np);
                let a = sign * d.sqrt();
                for i in 0..np {
                    xc[i] += d * gc[i] + a * z[i];
                }
            });
        for _ in 0..opts.corrector_steps {
            let g = target.score(&x, s1)?;
            evals += 1;
            // |score|^2 per chain; an antithetic pair shares its mean, so both
            // take the same step (|z| is shared already) and the pair stays
            // symmetric.
            let mut g2: Vec<f64> = g.par_iter().map(|gc| dot(gc, gc)).collect();
            if opts.antithetic {
                for p in g2.chunks_exact_mut(2) {
                    let m = 0.5 * (p[0] + p[1]);
                    p.fill(m);
                }
            }
            x.par_iter_mut()
                .zip(g.par_iter())
                .zip(rngs.par_iter_mut())
                .zip(signs.par_iter().zip(g2.par_iter()))
                .for_each(|(((xc, gc), r), (sign, g2c))| {
                    let z = gaussian(r, np);
                    let eps = 2.0 * opts.snr * opts.snr * dot(&z, &z) / g2c.max(1e-300);
                    let a = sign * (2.0 * eps).sqrt();
                    for i in 0..np {
                        xc[i] += eps * gc[i] + a * z[i];
                    }
                });
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    denoise(target, &mut x, *sigmas.last().expect("steps >= 1"))?;
    evals += 1;
    check_finite(&x)?;
    let out = MapSamples::new(x, evals, 1.0);
    Ok(if opts.antithetic {
        out.into_antithetic()
    } else {
        out
    })
}

/// Probability-flow ODE from `sigma_max` to `sigma_min` (Heun, `steps` steps),
/// starting from `N(0, sigma_max^2)`, then the final denoising step.
pub fn probability_flow(
    target: &Target,
    sde: &Sde,
    steps: usize,
    chains: usize,
    seed: u64,
) -> Result<MapSamples> {
    target.check(chains)?;
    check_common(chains, sde)?;
    if steps == 0 {
        return Err(value("probability flow", "need at least 1 step"));
    }
    let np = target.npix();
    let mut rngs = chain_rngs(seed, chains);
    let sigmas = sde.levels(steps + 1);
    let mut x: Vec<Vec<f64>> = rngs
        .iter_mut()
        .map(|r| gaussian(r, np).into_iter().map(|z| sigmas[0] * z).collect())
        .collect();
    let mut evals = 0;
    for w in sigmas.windows(2) {
        let (s0, s1) = (w[0], w[1]);
        let h = s1 - s0;
        let g0 = target.score(&x, s0)?;
        let xe: Vec<Vec<f64>> = x
            .iter()
            .zip(&g0)
            .map(|(xc, gc)| xc.iter().zip(gc).map(|(u, v)| u - h * s0 * v).collect())
            .collect();
        let g1 = target.score(&xe, s1)?;
        evals += 2;
        for c in 0..chains {
            for i in 0..np {
                x[c][i] -= 0.5 * h * (s0 * g0[c][i] + s1 * g1[c][i]);
            }
        }
    }
    denoise(target, &mut x, *sigmas.last().expect("steps >= 1"))?;
    evals += 1;
    check_finite(&x)?;
    Ok(MapSamples::new(x, evals, 1.0))
}

fn check_finite(x: &[Vec<f64>]) -> Result<()> {
    if x.iter().flatten().any(|v| !v.is_finite()) {
        return Err(value(
            "sampler",
            "diverged (non-finite map values); use more steps or a smaller step size",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pairs with correlation `rho` and std `sigma` around `mu`: `a, b = mu +
    /// sigma (sqrt((1 + rho)/2) u +- sqrt((1 - rho)/2) v)`.
    fn pairs(m: usize, np: usize, mu: f64, sigma: f64, rho: f64, seed: u64) -> Vec<Vec<f64>> {
        let mut r = StdRng::seed_from_u64(seed);
        let (cu, cv) = (((1.0 + rho) / 2.0).sqrt(), ((1.0 - rho) / 2.0).sqrt());
        let mut out = vec![];
        for _ in 0..m {
            let (u, v) = (gaussian(&mut r, np), gaussian(&mut r, np));
            out.push(
                (0..np)
                    .map(|i| mu + sigma * (cu * u[i] + cv * v[i]))
                    .collect(),
            );
            out.push(
                (0..np)
                    .map(|i| mu + sigma * (cu * u[i] - cv * v[i]))
                    .collect(),
            );
        }
        out
    }

    #[test]
    fn antithetic_std_and_mean_variance_are_unbiased_for_any_correlation() {
        // 4 pairs per "map", averaged over 4000 pixels (independent replicas).
        let (m, np, sigma) = (4, 4000, 0.3);
        for rho in [-0.95, -0.5, 0.0, 0.6] {
            let s = MapSamples::new(pairs(m, np, 1.0, sigma, rho, 7), 1, 1.0).into_antithetic();
            let var = s.std.iter().map(|v| v * v).sum::<f64>() / np as f64;
            let mv = s.mean_variance().iter().sum::<f64>() / np as f64;
            let want_mv = sigma * sigma * (1.0 + rho) / (2 * m) as f64;
            // Relative scatter of the averages ~ sqrt(2 / (dof * np)) ~ 1-2%.
            assert!(
                (var / (sigma * sigma) - 1.0).abs() < 0.05,
                "rho {rho}: var {var}"
            );
            assert!(
                (mv - want_mv).abs() < 0.06 * want_mv + 1e-12,
                "rho {rho}: mean variance {mv} vs {want_mv}"
            );
            // The plain sample variance is biased by (n - 1 - rho) / (n - 1).
            let plain = MapSamples::new(s.samples.clone(), 1, 1.0);
            let pv = plain.std.iter().map(|v| v * v).sum::<f64>() / np as f64;
            let want = sigma * sigma * (2.0 * m as f64 - 1.0 - rho) / (2.0 * m as f64 - 1.0);
            assert!(
                (pv / want - 1.0).abs() < 0.05,
                "rho {rho}: plain {pv} vs {want}"
            );
        }
        // Groups of a batched run keep the pairing.
        let s = MapSamples::new(pairs(4, 10, 0.0, 1.0, -0.9, 1), 1, 1.0).into_antithetic();
        assert!(s
            .groups(2)
            .iter()
            .all(|g| g.antithetic && g.samples.len() == 4));
        // An odd number of samples cannot be pairs.
        let odd = MapSamples::new(vec![vec![0.0; 3]; 3], 1, 1.0).into_antithetic();
        assert!(!odd.antithetic);
    }
}
