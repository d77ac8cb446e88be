//! Posterior samples of convergence maps with a score prior: the sampler
//! settings shared by `cosmodiff massmap --method diffusion`,
//! `cosmodiff prior evaluate` and the Python `massmap_diffusion`.
//!
//! For `gamma = P kappa + n` the posterior score is the prior's plus the
//! likelihood's (`cosmodiff_lensing::posterior::Target`); the samplers are
//! those of [`cosmodiff_lensing::posterior`]:
//! - reverse SDE: Euler-Maruyama predictor and one Langevin corrector
//!   (signal-to-noise 0.16) per step (Song et al. 2021), optionally in
//!   antithetic pairs;
//! - annealed HMC (Remy et al. 2022): 2 Metropolis-corrected transitions of
//!   5 leapfrog steps (step scale 0.5) per noise level.

use cosmodiff_field::Grid2;
use cosmodiff_lensing::posterior::{
    annealed_hmc, reverse_sde, AnnealedHmc, MapSamples, ReverseSde, Target,
};
use cosmodiff_lensing::score::{Sde, ShearLikelihood};

use crate::ScoreModel;

/// Which posterior sampler runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sampler {
    /// Reverse-time SDE with a Langevin corrector.
    ReverseSde,
    /// Annealed HMC over the noise levels.
    AnnealedHmc,
}

/// Settings of one posterior run.
#[derive(Clone, Debug)]
pub struct PosteriorSettings {
    /// The sampling algorithm.
    pub sampler: Sampler,
    /// Reverse-SDE steps or annealed-HMC noise levels.
    pub steps: usize,
    /// Chains in all (for a batched target: per data set times data sets).
    pub chains: usize,
    /// Seed of every random draw of the run.
    pub seed: u64,
    /// Reverse SDE only: antithetic pairs where every data set has an even
    /// number of at least 4 chains (two pairs or more: the pair means'
    /// scatter is what measures the Monte Carlo error of the mean).
    /// Annealed HMC always runs independent chains.
    pub antithetic: bool,
    /// Progress bar on stderr.
    pub progress: bool,
}

/// Run the chosen sampler on `target` (score of the noise-convolved
/// posterior) with the forward SDE `sde` of the prior.
pub fn sample_posterior(
    target: &Target,
    sde: Sde,
    s: &PosteriorSettings,
) -> cosmodiff_lensing::Result<MapSamples> {
    let per_set = target.chains_per_set(s.chains);
    match s.sampler {
        Sampler::ReverseSde => reverse_sde(
            target,
            &ReverseSde {
                sde,
                steps: s.steps,
                corrector_steps: 1,
                snr: 0.16,
                chains: s.chains,
                seed: s.seed,
                progress: s.progress,
                antithetic: s.antithetic && per_set.is_multiple_of(2) && per_set >= 4,
            },
        ),
        Sampler::AnnealedHmc => annealed_hmc(
            target,
            &AnnealedHmc {
                sde,
                levels: s.steps,
                steps_per_level: 2,
                leapfrog: 5,
                step_scale: 0.5,
                metropolis: true,
                chains: s.chains,
                seed: s.seed,
                progress: s.progress,
            },
        ),
    }
}

/// Posterior samples of one shear map `(g1, g2)` on `grid` with per-pixel
/// noise std `noise` (inf = unobserved) and optional `mask` (1 observed,
/// 0 masked) under the score prior `model`.
pub fn map_posterior(
    model: &ScoreModel,
    grid: Grid2,
    g1: &[f64],
    g2: &[f64],
    noise: &[f64],
    mask: Option<&[f64]>,
    s: &PosteriorSettings,
) -> cosmodiff_lensing::Result<MapSamples> {
    let lik = ShearLikelihood::new(grid, g1, g2, noise, mask)?;
    let target = Target::posterior(model, &lik);
    sample_posterior(&target, model.config.sde(), s)
}
