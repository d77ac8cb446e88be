//! `cosmodiff lensing-cosmology`: cosmology from weak-lensing convergence
//! maps on the sbi_lens benchmark (Zeghal, Lanzieri, Lanusse et al. 2024,
//! arXiv:2409.17975; Lanzieri, Zeghal et al. 2024, arXiv:2407.10877).
//!
//! - [`setup`]: the LSST-Y10 and 128^2 set-ups (n(z), priors, shift tables)
//!   and `theta -> (C_ell, lambda)` with exact Jacobians;
//! - [`model`]: the log-normal forward model and the likelihood of the
//!   observed maps in `(theta, z)` with gradients;
//! - [`emulator`]: Chebyshev tables of `theta -> C_ell` for fast gradients;
//! - [`fullfield`]: the explicit full-field posterior (NUTS over theta and z);
//! - [`implicit`]: learned summaries (VMIM, MSE, MAE ResNet compressors)
//!   and NPE/NLE on them, with a TARP coverage test;
//! - [`run`]: the `simulate` and `infer` workflows;
//! - [`demo`]: the last section of `cosmodiff demo` (one 64^2 map, C_ell vs full field);
//! - [`compare`]: several posteriors of one map side by side (table, C2ST, overlaid corner plot).

pub mod cl;
pub mod compare;
pub mod demo;
pub mod emulator;
pub mod fullfield;
pub mod implicit;
pub mod model;
pub mod run;
pub mod setup;

pub use compare::{compare, CompareSettings};
pub use model::{FieldModel, LikelihoodGrad};
pub use run::{describe, infer, simulate, summarize_samples, InferSettings, SimulateSettings};
pub use setup::{Setup, SetupName};
