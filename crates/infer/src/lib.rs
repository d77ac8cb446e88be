//! Bayesian inference for cosmodiff: the sampling half.
//!
//! - [`LogDensity`]: value + gradient of an unnormalised log density.
//! - [`Prior`] (uniform, normal, truncated normal, log-normal) with
//!   bijections to unconstrained space; [`Posterior`] = likelihood x priors
//!   as an unconstrained [`LogDensity`].
//! - [`run_nuts`]: NUTS (Hoffman & Gelman 2014) through `nuts-rs`, with
//!   windowed diagonal mass-matrix and dual-averaging step-size adaptation,
//!   parallel chains with reproducible seeds, progress bar, divergences.
//! - [`run_hmc`]: plain HMC with fixed integration time (own leapfrog,
//!   dual averaging, Stan-style windowed diagonal mass matrix).
//! - [`find_map`]: MAP by L-BFGS (argmin) + Laplace covariance.
//! - [`diagnostics`]: rank-normalised split R-hat, bulk/tail ESS (Vehtari
//!   et al. 2021).
//! - [`Samples`]: draws `[chains, draws, dim]`, [`Summary`] table / JSON,
//!   `.npz` output.
//!
//! A sampler crate only: no cosmology and no plotting here (the C_ell
//! likelihood as a [`LogDensity`] and corner plots live in
//! `cosmodiff-pipeline`, simulation-based inference in `cosmodiff-sbi`).
//!
//! ```no_run
//! use cosmodiff_infer::*;
//! # fn lik() -> GaussianDensity { GaussianDensity::new(vec![0.3, 0.8], &[1e-4, 0.0, 0.0, 1e-4]).unwrap() }
//! let post = Posterior::new(lik(), vec![
//!     Prior::Uniform { low: 0.1, high: 0.5 },
//!     Prior::Normal { mean: 0.8, sd: 0.1 },
//! ])?;
//! let samples = run_nuts(&post, &NutsSettings { chains: 4, warmup: 500, draws: 1000, seed: 0, progress: true, ..Default::default() })?;
//! println!("{}", samples.summary());
//! samples.write_npz(std::path::Path::new("draws.npz"))?;
//! samples.summary().write_json(std::path::Path::new("summary.json"))?;
//! let map = find_map(&post, &MapSettings::default())?;
//! # Ok::<(), InferError>(())
//! ```

pub mod density;
pub mod diagnostics;
pub mod error;
pub mod hmc;
pub mod linalg;
pub mod map;
pub mod nuts;
pub mod posterior;
pub mod prior;
pub mod runner;
pub mod samples;
pub mod special;

pub use density::{DensityError, FnDensity, GaussianDensity, LogDensity};
pub use error::InferError;
pub use hmc::{run_hmc, HmcSettings};
pub use map::{find_map, MapResult, MapSettings};
pub use nuts::{run_nuts, run_nuts_chains, MassMatrix, NutsSettings, Observer};
pub use posterior::{Posterior, PosteriorError};
pub use prior::{Bijection, Prior};
pub use runner::ChainOutput;
pub use samples::{ParamSummary, Samples, Summary};
