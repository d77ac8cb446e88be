//! Error type of the crate.

/// Everything that can go wrong while setting up or running inference.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    /// Vectors or arrays whose lengths do not agree.
    #[error("dimension mismatch: {0}")]
    Dim(String),
    /// A prior with invalid parameters, or a value outside a prior's support.
    #[error("prior: {0}")]
    Prior(String),
    /// Invalid sampler / optimiser settings.
    #[error("invalid settings: {0}")]
    Settings(String),
    /// The log density failed with an error it declared unrecoverable, or
    /// failed where no fallback exists (MAP, Hessian).
    #[error("log density: {0}")]
    Density(String),
    /// No finite starting point could be found.
    #[error(
        "chain {chain}: no finite log density at {tries} initial points (last problem: {last})"
    )]
    Init {
        chain: usize,
        tries: usize,
        last: String,
    },
    /// Stopped on request (the settings' stop flag) before finishing.
    #[error("interrupted")]
    Interrupted,
    /// An error raised inside the sampler.
    #[error("sampler (chain {chain}): {msg}")]
    Sampler { chain: usize, msg: String },
    /// The optimiser failed.
    #[error("optimisation: {0}")]
    Optim(String),
    /// The Hessian of -log p at the mode is not positive definite.
    #[error("Laplace approximation: Hessian of -log p at the mode is not positive definite ({0})")]
    NotPositiveDefinite(String),
    /// File output.
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// Writing the `.npz` archive.
    #[error("npz {path}: {msg}")]
    Npz { path: String, msg: String },
    /// JSON (de)serialisation.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

/// Result alias of the crate.
pub type Result<T> = std::result::Result<T, InferError>;
