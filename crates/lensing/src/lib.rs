//! cosmodiff-lensing: weak-lensing forward models and classical mass maps.
//!
//! - [`shear`]: the shear <-> convergence operator `P` (forward, adjoint,
//!   Kaiser-Squires inverse), E/B modes, documented `ell = 0` and Nyquist
//!   treatment.
//! - [`noise`]: shape noise per pixel, masks, inverse variance.
//! - [`catalog`]: binning of a galaxy shear catalogue (CSV) into maps.
//! - [`sim`]: tomographic Gaussian / log-normal lensing simulations.
//! - [`wiener`]: Wiener filter (CG, messenger field) and constrained realisations.
//! - [`score`]: score priors (analytic Gaussian; learned ones implement
//!   [`score::MapScore`]), noise schedules, the annealed shear likelihood.
//! - [`posterior`]: annealed HMC, reverse SDE and probability-flow samplers
//!   of `p(kappa | gamma)` with a score prior.
//! - [`field_posterior`]: exact log p(white noise | shear) of a simulated
//!   Gaussian / log-normal field, for HMC under the simulator's own prior.
//! - [`shift_table`]: tabulated log-normal shifts lambda(theta), interpolated as sbi_lens does.
//! - [`tomo_lognormal`]: the sbi_lens tomographic log-normal simulator
//!   `(C_ell, shifts, z) -> kappa` with its reverse mode.
//! - [`metrics`]: RMSE, Pearson, residual C_ell, peak counts, one-point PDF.

// Validation checks are written `!(x > 0.0)` on purpose so that NaN fails them.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub mod catalog;
pub mod error;
pub mod field_posterior;
pub mod metrics;
pub mod noise;
pub mod posterior;
pub mod prior;
pub mod score;
pub mod shear;
pub mod shift_table;
pub mod sim;
pub mod tomo_lognormal;
pub mod wiener;

pub use error::{LensingError, Result};
pub use shear::ShearOp;
pub use sim::{hilbert_shift, simulate_tomographic, theory_ells, SourceBin, TomoLensingSim};
pub use wiener::{MessengerOpts, Solve, Wiener};
