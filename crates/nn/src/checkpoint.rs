//! Checkpoints: weights as safetensors (burn-store) and the configuration
//! as JSON, so a model can be rebuilt and reloaded for sampling. See
//! [`crate::estimator::ConditionalEstimator::save`] / `load`.

pub use burn::store::{ModuleSnapshot, SafetensorsStore};
