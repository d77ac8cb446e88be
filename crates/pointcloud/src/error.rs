//! Typed errors of the point-cloud crate.

/// Everything that can go wrong building, training or evaluating a point-cloud
/// model.
#[derive(Debug, thiserror::Error)]
pub enum PointCloudError {
    /// A size, setting or input the caller supplied is inconsistent.
    #[error("{0}")]
    Invalid(String),
    /// From the network layer (training, weights).
    #[error(transparent)]
    Nn(#[from] cosmodiff_nn::NnError),
}

/// `Result` with [`PointCloudError`].
pub type Result<T> = std::result::Result<T, PointCloudError>;

pub(crate) fn invalid<T>(msg: impl Into<String>) -> Result<T> {
    Err(PointCloudError::Invalid(msg.into()))
}
