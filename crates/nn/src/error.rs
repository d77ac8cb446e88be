//! Typed errors of the neural-network crate.

/// Everything that can go wrong building, training, saving or loading a network.
#[derive(Debug, thiserror::Error)]
pub enum NnError {
    /// A shape, size or option the caller supplied is inconsistent.
    #[error("{0}")]
    Invalid(String),
    /// Training data contain NaN or infinite values.
    #[error("{what} contains non-finite values (first at row {row})")]
    NonFinite { what: String, row: usize },
    /// The loss became NaN or infinite during training.
    #[error("training diverged at epoch {epoch}: loss is {loss}; lower the learning rate or standardise the data")]
    Diverged { epoch: usize, loss: f64 },
    /// Training was stopped (Ctrl-C) after writing the checkpoint `path`,
    /// which a rerun continues from.
    #[error("training interrupted at epoch {epoch}; the checkpoint {path} continues it")]
    Interrupted { epoch: usize, path: String },
    /// Reading or writing a model file or a checkpoint failed (`path` names it).
    #[error("{path}: {msg}")]
    Checkpoint { path: String, msg: String },
    /// The requested device is unknown, not compiled in, or does not start.
    #[error("{0}")]
    Device(String),
    /// I/O error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Shorthand for `Err(NnError::Invalid(..))`.
pub(crate) fn invalid<T>(msg: impl Into<String>) -> Result<T, NnError> {
    Err(NnError::Invalid(msg.into()))
}
