//! Helpers shared by the CLI integration tests: the binary, `.npz` reading,
//! and the success / one-line-error checks.
#![allow(dead_code)] // each test binary uses its own subset

use ndarray::{ArrayD, IxDyn};
use ndarray_npy::NpzReader;
use std::path::Path;
use std::process::Command;

/// The `cosmodiff` binary under test.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cosmodiff"))
}

/// Array `k` of an `.npz` file (stored with or without the `.npy` suffix).
pub fn read(p: &Path, k: &str) -> ArrayD<f64> {
    let mut z = NpzReader::new(std::fs::File::open(p).unwrap()).unwrap();
    z.by_name::<ndarray::OwnedRepr<f64>, IxDyn>(k)
        .or_else(|_| z.by_name(&format!("{k}.npy")))
        .unwrap()
}

/// Run `c`, assert success, return its stderr (the log lines).
pub fn run(c: &mut Command) -> String {
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "{:?} failed: {}",
        c,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Run `c`, assert it fails with exit code 2 and a one-line message (no
/// panic) containing `needle`; return the message.
pub fn fails(c: &mut Command, needle: &str) -> String {
    let o = c.output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(
        o.status.code(),
        Some(2),
        "{c:?}: expected exit 2, got {:?}: {err}",
        o.status
    );
    assert_eq!(err.trim().lines().count(), 1, "not one line: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    assert!(err.contains(needle), "'{needle}' not in: {err}");
    err
}
