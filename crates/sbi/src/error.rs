//! Typed errors of simulation-based inference.

use cosmodiff_infer::InferError;
use cosmodiff_nn::NnError;

#[derive(Debug, thiserror::Error)]
pub enum SbiError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Nn(#[from] NnError),
    #[error(transparent)]
    Infer(#[from] InferError),
    #[error("{path}: {msg}")]
    File { path: String, msg: String },
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Drawing a figure.
    #[error(transparent)]
    Plot(#[from] cosmodiff_plot::PlotError),
}

pub(crate) fn invalid<T>(msg: impl Into<String>) -> Result<T, SbiError> {
    Err(SbiError::Invalid(msg.into()))
}
