//! cosmodiff-field: 2-D flat-sky maps and 3-D periodic boxes, FFT plans,
//! Gaussian and log-normal random fields, power-spectrum estimators and
//! mass assignment (CIC) with adjoints.
//!
//! Module ownership while the crate is being built: `fft3`, `cic`, `pk3`
//! serve the particle-mesh code; everything else the 2-D / lensing work.
//!
//! 2-D modules: [`grid2`] (geometry, `ell` conventions), [`fft2`] (plans and
//! the FFT normalisation convention), [`spectrum`] (C_ell tables),
//! [`grf2`] (Gaussian / log-normal maps and their VJPs), [`tomo2`]
//! (correlated tomographic maps), [`cl2`] (C_ell estimators, smoothing),
//! [`fits`] (minimal FITS image I/O), [`linalg`] (small dense helpers).

// Validation checks are written `!(x > 0.0)` on purpose so that NaN fails them.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub mod cic;
pub mod fft3;
pub mod pk3;

pub mod cl2;
pub mod error;
pub mod fft2;
pub mod fits;
pub mod grf2;
pub mod grf3;
pub mod grid2;
pub mod linalg;
pub mod spectrum;
pub mod tomo2;

pub use error::{FieldError, Result};
pub use fft2::{Fft2, C64};
pub use grid2::{Grid2, ARCMIN};
pub use spectrum::{ClMatrixTable, ClTable};
