//! Typed errors of the score-prior crate.

/// Everything that can go wrong training, saving, loading or sampling a
/// score prior.
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    /// A size, setting or input the caller supplied is inconsistent.
    #[error("{0}")]
    Invalid(String),
    /// From the network layer (training, weights).
    #[error(transparent)]
    Nn(#[from] cosmodiff_nn::NnError),
    /// From the lensing operators (grids, shear, Gaussian score).
    #[error(transparent)]
    Lensing(#[from] cosmodiff_lensing::LensingError),
    /// A model directory that cannot be read or does not match itself.
    #[error("model directory {path}: {msg}")]
    Model {
        /// The directory.
        path: String,
        /// What is wrong with it.
        msg: String,
    },
}

pub(crate) fn invalid<T>(msg: impl Into<String>) -> Result<T, ScoreError> {
    Err(ScoreError::Invalid(msg.into()))
}
