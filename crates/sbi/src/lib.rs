//! Simulation-based inference for cosmodiff.
//!
//! - [`model`]: NPE and NLE on conditional normalizing flows
//!   (`cosmodiff-nn`), with embedding networks and VMIM summaries; train,
//!   sample, save / load a model directory.
//! - [`prior`]: priors from TOML `[[param]]` blocks or the bounding box of
//!   the simulations.
//! - [`mcmc`]: slice sampling (Neal 2003) with all chains in lockstep and one
//!   batched density call per step (the NLE posterior, and any other
//!   gradient-free density).
//! - [`tasks`]: the sbibm benchmark tasks `two_moons`, `gaussian_linear`,
//!   `gaussian_mixture` and `slcp` (Lueckmann et al. 2021): priors,
//!   simulators, analytic likelihoods and the stored reference posteriors.
//! - [`mod@c2st`]: the classifier two-sample test exactly as sbibm runs it
//!   (sklearn `MLPClassifier` re-implemented, 5-fold cross-validation).
//! - [`mod@tarp`]: TARP expected coverage (Lemos et al. 2023).
//! - [`mod@sbc`]: simulation-based calibration ranks and uniformity tests
//!   (Talts et al. 2018).
//! - [`plots`]: coverage curves and SBC rank histograms (PNG).
//! - [`calibration`]: TARP coverage and SBC ranks of a trained model on
//!   held-out simulations, with `coverage.png` / `sbc.png`.
//! - [`benchmark`]: the sbibm tasks end to end with C2ST against the
//!   reference posteriors.
//!
//! References:
//! - J.-M. Lueckmann et al., "Benchmarking Simulation-Based Inference",
//!   AISTATS 2021, arXiv:2101.04653.
//! - D. Lopez-Paz & M. Oquab, "Revisiting Classifier Two-Sample Tests",
//!   ICLR 2017, arXiv:1610.06545.
//! - P. Lemos et al., "Sampling-Based Accuracy Testing of Posterior
//!   Estimators for General Inference", ICML 2023, arXiv:2302.03026.
//! - S. Talts et al., "Validating Bayesian Inference Algorithms with
//!   Simulation-Based Calibration", arXiv:1804.06788 (2018).
//! - R. M. Neal, "Slice sampling", Ann. Statist. 31, 705 (2003).

pub mod arrays;
pub mod benchmark;
pub mod c2st;
pub mod calibration;
pub mod error;
pub mod mcmc;
pub mod model;
pub mod plots;
pub mod prior;
pub mod sbc;
pub mod stats;
pub mod tarp;
pub mod tasks;

pub use c2st::{c2st, c2st_with, C2stOptions};
/// The network and training choices of [`SbiOptions`], re-exported so that
/// users of this crate need not depend on `cosmodiff-nn`.
pub use cosmodiff_nn::{EmbeddingKind, FlowKind, LrSchedule, TrainReport};
pub use error::SbiError;
pub use model::{Method, SampleInfo, SbiModel, SbiOptions};
pub use plots::{coverage_plot, sbc_rank_plot};
pub use prior::SbiPrior;
pub use sbc::{sbc, SbcResult};
pub use tarp::{tarp, tarp_with, TarpOptions, TarpResult};
pub use tasks::{load_reference, Task, TaskReference};
