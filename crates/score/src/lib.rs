//! Learned score priors for convergence maps (issue 7).
//!
//! A noise-conditional U-Net ([`cosmodiff_nn::UNet`]) is trained by denoising
//! score matching (Vincent 2011; Song & Ermon 2019) on simulated or supplied
//! maps, optionally as the residual of an analytic Gaussian score (the hybrid
//! prior of Remy et al. 2022). The trained [`ScoreModel`] implements
//! [`cosmodiff_lensing::score::MapScore`], so the annealed HMC, reverse-SDE
//! and probability-flow samplers of [`cosmodiff_lensing::posterior`] use it
//! unchanged.
//!
//! - [`power`]: isotropic per-mode power of a set of maps (the hybrid's
//!   Gaussian part).
//! - [`model`]: the score model, its configuration and model directories.
//! - [`train`]: denoising score matching with dihedral augmentation.
//! - [`posterior`]: posterior samples of shear maps with a score prior
//!   (the sampler settings of the CLI and the Python package).

#![warn(missing_docs)]

pub mod error;
pub mod model;
pub mod posterior;
pub mod power;
pub mod train;

pub use error::ScoreError;
pub use model::{ScoreModel, ScoreModelConfig, SdeConfig};
pub use posterior::{map_posterior, sample_posterior, PosteriorSettings, Sampler};
pub use train::{train_score, ScoreTrainConfig};
