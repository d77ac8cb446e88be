//! Typed errors of the score-prior crate.

#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Nn(#[from] cosmodiff_nn::NnError),
    #[error(transparent)]
    Lensing(#[from] cosmodiff_lensing::LensingError),
    #[error("model directory {path}: {msg}")]
    Model { path: String, msg: String },
}

pub(crate) fn invalid<T>(msg: impl Into<String>) -> Result<T, ScoreError> {
    Err(ScoreError::Invalid(msg.into()))
}
