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
//!   signal-to-noise ratio `snr` (predictor-corrector, Song et al. 2021, alg. 5).
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
    fn npix(&self) -> usize {
        let n = self.prior.side();
        n * n
    }
    /// Score of the annealed target for every chain.
    pub fn score(&self, x: &[Vec<f64>], sigma: f64) -> Result<Vec<Vec<f64>>> {
        let mut s = self.prior.score(x, sigma)?;
        if !self.likelihoods.is_empty() {
            let group = x.len() / self.likelihoods.len();
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
        let nl = self.likelihoods.len();
        if nl > 0 && chains % nl != 0 {
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
}

impl MapSamples {
    /// Split into `k` equal contiguous groups of chains (one per data set of
    /// a batched [`Target`]), each with its own mean and std.
    pub fn groups(&self, k: usize) -> Vec<MapSamples> {
        let g = self.samples.len() / k.max(1);
        self.samples
            .chunks(g.max(1))
            .map(|c| MapSamples::new(c.to_vec(), self.score_evals, self.acceptance))
            .collect()
    }

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
        }
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
            let p0: Vec<Vec<f64>> = rngs.iter_mut().map(|r| gaussian(r, np)).collect();
            let mut p = p0.clone();
            let mut y = x.clone();
            let mut gy = g.clone();
            let mut dlogp = vec![0.0; opts.chains];
            for _ in 0..opts.leapfrog {
                let prev = y.clone();
                let gprev = gy.clone();
                for c in 0..opts.chains {
                    for i in 0..np {
                        p[c][i] += 0.5 * eps * gy[c][i];
                        y[c][i] += eps * p[c][i];
                    }
                }
                gy = target.score(&y, sigma)?;
                evals += 1;
                for c in 0..opts.chains {
                    let mut d = 0.0;
                    for i in 0..np {
                        p[c][i] += 0.5 * eps * gy[c][i];
                        d += 0.5 * (gprev[c][i] + gy[c][i]) * (y[c][i] - prev[c][i]);
                    }
                    dlogp[c] += d;
                }
            }
            for c in 0..opts.chains {
                let accept = if opts.metropolis {
                    let dk = 0.5 * (dot(&p0[c], &p0[c]) - dot(&p[c], &p[c]));
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
    let np = target.npix();
    let mut rngs = chain_rngs(opts.seed, opts.chains);
    let sigmas = opts.sde.levels(opts.steps + 1);
    let mut x: Vec<Vec<f64>> = rngs
        .iter_mut()
        .map(|r| gaussian(r, np).into_iter().map(|z| sigmas[0] * z).collect())
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
            .for_each(|((xc, gc), r)| {
                let z = gaussian(r, np);
                for i in 0..np {
                    xc[i] += d * gc[i] + d.sqrt() * z[i];
                }
            });
        for _ in 0..opts.corrector_steps {
            let g = target.score(&x, s1)?;
            evals += 1;
            x.par_iter_mut()
                .zip(g.par_iter())
                .zip(rngs.par_iter_mut())
                .for_each(|((xc, gc), r)| {
                    let z = gaussian(r, np);
                    let eps = 2.0
                        * (opts.snr * dot(&z, &z).sqrt() / dot(gc, gc).sqrt().max(1e-300)).powi(2);
                    for i in 0..np {
                        xc[i] += eps * gc[i] + (2.0 * eps).sqrt() * z[i];
                    }
                });
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    denoise(target, &mut x, *sigmas.last().expect("steps >= 1"))?;
    evals += 1;
    check_finite(&x)?;
    Ok(MapSamples::new(x, evals, 1.0))
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
