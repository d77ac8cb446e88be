//! Checkpoints: weights as safetensors (burn-store) and the configuration
//! as JSON, so a model can be rebuilt and reloaded for sampling. See
//! [`crate::estimator::ConditionalEstimator::save`] / `load`.

pub use burn::store::{ModuleSnapshot, SafetensorsStore};

/// A safetensors store that writes `path`, replacing an existing file (a
/// model directory is rewritten as a whole when training again into it).
pub fn weights_store(path: &std::path::Path) -> SafetensorsStore {
    SafetensorsStore::from_file(path).overwrite(true)
}

/// Give a written weights file the usual `rw-r--r--` permissions: the store
/// writes through a private temporary file (0600), which would keep a
/// shared model directory unreadable to others.
pub fn make_readable(path: &std::path::Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// One line of a failed weights load: burn lists every mismatching tensor
/// over many lines; the first (at most 240 characters) says enough.
pub fn load_error_line(e: &impl std::fmt::Display) -> String {
    let full = e.to_string();
    let first: String = full
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(240)
        .collect();
    if first.len() < full.len() {
        format!("{first} ...")
    } else {
        first
    }
}
