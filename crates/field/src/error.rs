//! Typed errors of the 2-D field code (no panics on user input).

/// Errors raised by grids, spectra, random fields and estimators.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FieldError {
    #[error("grid: {0}")]
    Grid(String),
    #[error("shape mismatch for {what}: expected {expected}, got {got}")]
    Shape {
        what: String,
        expected: usize,
        got: usize,
    },
    #[error("spectrum table: {0}")]
    Table(String),
    #[error("invalid value for {what}: {msg}")]
    Value { what: String, msg: String },
    #[error("spectrum matrix not positive semi-definite at ell = {ell:.4e} (pivot {pivot:.3e}); check the cross spectra")]
    NotPositiveDefinite { ell: f64, pivot: f64 },
    #[error("log-normal: 1 + xi/(s_i s_j) <= 0 for bins ({i},{j}) (min {min:.3e}); increase the shift parameter")]
    LogNormalShift { i: usize, j: usize, min: f64 },
    #[error("FITS {path}: {msg}")]
    Fits { path: String, msg: String },
    #[error("io {path}: {msg}")]
    Io { path: String, msg: String },
}

pub type Result<T> = std::result::Result<T, FieldError>;

pub(crate) fn check_len(what: &str, expected: usize, got: usize) -> Result<()> {
    if expected != got {
        return Err(FieldError::Shape {
            what: what.into(),
            expected,
            got,
        });
    }
    Ok(())
}

pub(crate) fn check_finite(what: &str, v: &[f64]) -> Result<()> {
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(FieldError::Value {
            what: what.into(),
            msg: format!("non-finite value at index {i}"),
        });
    }
    Ok(())
}
