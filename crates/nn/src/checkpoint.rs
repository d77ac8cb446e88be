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

/// `format_version` of a model file written before files carried one (the
/// serde default of the field).
pub fn format_v1() -> u32 {
    1
}

/// Check a model file's `format_version` against the newest layout this
/// build writes (`current`): versions `1..=current` are read, anything else
/// was written by a newer cosmodiff (or edited by hand). The message is for
/// the caller's error type.
pub fn check_format_version(found: u32, current: u32) -> Result<(), String> {
    if found == 0 || found > current {
        return Err(format!(
            "format_version {found} is not one this cosmodiff reads (1..={current}); a newer cosmodiff wrote it"
        ));
    }
    Ok(())
}

/// File name of the weights in a model directory.
pub const WEIGHTS: &str = "weights.safetensors";

pub(crate) fn checkpoint_error(path: &std::path::Path, msg: String) -> crate::NnError {
    crate::NnError::Checkpoint {
        path: path.display().to_string(),
        msg,
    }
}

/// Write a model directory: `dir/weights.safetensors` (readable by all) and
/// `dir/<config_name>`, the JSON of `config`.
pub fn save_model<M: burn::module::Module, C: serde::Serialize>(
    dir: &std::path::Path,
    net: &M,
    config_name: &str,
    config: &C,
) -> Result<(), crate::NnError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| checkpoint_error(dir, format!("cannot create the model directory: {e}")))?;
    let path = dir.join(WEIGHTS);
    let mut store = weights_store(&path);
    net.save_into(&mut store)
        .map_err(|e| checkpoint_error(&path, e.to_string()))?;
    make_readable(&path)?;
    let json = serde_json::to_string_pretty(config).expect("config serialises");
    std::fs::write(dir.join(config_name), json)?;
    Ok(())
}

/// The configuration `dir/<config_name>` of a model directory.
pub fn read_config<C: serde::de::DeserializeOwned>(
    dir: &std::path::Path,
    config_name: &str,
) -> Result<C, crate::NnError> {
    let path = dir.join(config_name);
    let text =
        std::fs::read_to_string(&path).map_err(|e| checkpoint_error(&path, e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| checkpoint_error(&path, e.to_string()))
}

/// Load `dir/weights.safetensors` into `net`, built from
/// `dir/<config_name>`; a missing file or a mismatching network is a
/// one-line error.
pub fn load_weights<M: burn::module::Module>(
    dir: &std::path::Path,
    net: &mut M,
    config_name: &str,
) -> Result<(), crate::NnError> {
    let path = dir.join(WEIGHTS);
    if !path.is_file() {
        return Err(checkpoint_error(
            &path,
            format!("missing (a model directory holds {config_name} and {WEIGHTS})"),
        ));
    }
    let mut store = SafetensorsStore::from_file(path.clone());
    net.load_from(&mut store).map_err(|e| {
        checkpoint_error(
            &path,
            format!(
                "does not match the network of {config_name}: {}",
                load_error_line(&e)
            ),
        )
    })?;
    Ok(())
}
