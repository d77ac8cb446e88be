//! Typed errors of the lensing library.

use cosmodiff_field::FieldError;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LensingError {
    #[error(transparent)]
    Field(#[from] FieldError),
    #[error("invalid {what}: {msg}")]
    Value { what: String, msg: String },
    #[error(
        "{what} did not converge in {iterations} iterations (relative residual {residual:.2e})"
    )]
    NotConverged {
        what: String,
        iterations: usize,
        residual: f64,
    },
    #[error("catalogue {path}: {msg}")]
    Catalog { path: String, msg: String },
}

pub type Result<T> = std::result::Result<T, LensingError>;

/// Most map values a set of posterior samples or chains may hold in memory
/// (1 GiB of f64): Wiener samples and the score-based samplers.
pub(crate) const MAX_SAMPLE_VALUES: usize = 1 << 27;

pub(crate) fn value(what: &str, msg: impl Into<String>) -> LensingError {
    LensingError::Value {
        what: what.into(),
        msg: msg.into(),
    }
}

pub(crate) fn check_len(what: &str, expected: usize, got: usize) -> Result<()> {
    if expected != got {
        return Err(FieldError::Shape {
            what: what.into(),
            expected,
            got,
        }
        .into());
    }
    Ok(())
}
