//! cosmodiff-field: 2-D flat-sky maps and 3-D periodic boxes, FFT plans,
//! Gaussian and log-normal random fields, power-spectrum estimators and
//! mass assignment (CIC) with adjoints.
//!
//! Module ownership while the crate is being built: `fft3`, `cic`, `pk3`
//! serve the particle-mesh code; everything else the 2-D / lensing work.

pub mod cic;
pub mod fft3;
pub mod pk3;
