//! Simulation-based inference (SBI) support code, free of neural-network
//! dependencies: benchmark tasks, two-sample and calibration metrics, and a
//! reference sampler.
//!
//! - [`tasks`]: the sbibm benchmark tasks `two_moons`, `gaussian_linear`,
//!   `gaussian_mixture` and `slcp` (Lueckmann et al. 2021): priors,
//!   simulators, analytic likelihoods and the stored reference posteriors.
//! - [`mod@c2st`]: the classifier two-sample test exactly as sbibm runs it
//!   (sklearn `MLPClassifier` re-implemented, 5-fold cross-validation).
//! - [`mod@tarp`]: TARP expected coverage (Lemos et al. 2023).
//! - [`mod@sbc`]: simulation-based calibration ranks and uniformity tests
//!   (Talts et al. 2018).
//! - [`plots`]: coverage curves and SBC rank histograms (PNG).
//! - [`mod@slice`]: coordinate-wise slice sampler (Neal 2003) with parallel
//!   chains.
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

pub mod c2st;
pub mod plots;
pub mod sbc;
pub mod slice;
pub mod stats;
pub mod tarp;
pub mod tasks;

pub use c2st::{c2st, c2st_with, C2stOptions};
pub use plots::{coverage_plot, sbc_rank_plot};
pub use sbc::{sbc, SbcResult};
pub use slice::{slice_sample, try_slice_sample};
pub use tarp::{tarp, tarp_with, TarpOptions, TarpResult};
pub use tasks::{load_reference, Task, TaskReference};
