//! Simulation-based inference for cosmodiff.
//!
//! - [`model`]: NPE and NLE on conditional normalizing flows
//!   (`cosmodiff-nn`), with embedding networks and VMIM summaries; train,
//!   sample, save / load a model directory.
//! - [`prior`]: priors from TOML `[[param]]` blocks or the bounding box of
//!   the simulations.
//! - [`mcmc`]: vectorised slice sampling for NLE posteriors.
//! - [`calibration`]: TARP coverage and SBC ranks on held-out simulations,
//!   with `coverage.png` / `sbc.png`.
//! - [`benchmark`]: the sbibm tasks (two_moons, gaussian_linear,
//!   gaussian_mixture, slcp) end to end with C2ST against the reference
//!   posteriors.
//!
//! Calibration diagnostics (C2ST, TARP, SBC) and the task simulators live in
//! `cosmodiff_infer::sbi` (no neural-network dependency); this crate adds
//! the networks. It is a separate crate so that `cosmodiff-infer` (and the
//! Python package built on it) does not compile burn.

pub mod arrays;
pub mod benchmark;
pub mod calibration;
pub mod error;
pub mod mcmc;
pub mod model;
pub mod prior;

/// The network and training choices of [`SbiOptions`], re-exported so that
/// users of this crate need not depend on `cosmodiff-nn`.
pub use cosmodiff_nn::{EmbeddingKind, FlowKind, LrSchedule, TrainReport};
pub use error::SbiError;
pub use model::{Method, SampleInfo, SbiModel, SbiOptions};
pub use prior::SbiPrior;
