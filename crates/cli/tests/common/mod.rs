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

/// Interrupt a resumable command as Ctrl-C would: run `cmd(out)`, send
/// SIGINT once `out/marker` exists, expect exit 2 with `message` (one
/// line after the handler's notice, no panic), `out/marker` kept and the
/// final output `out/unfinished` not written, then rerun the same command
/// to the end. Returns false when the command finished before the signal
/// arrived (nothing was interrupted).
pub fn interrupt_then_resume(
    cmd: impl Fn(&Path) -> Command,
    out: &Path,
    marker: &str,
    unfinished: &str,
    message: &str,
) -> bool {
    let child = cmd(out)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while !out.join(marker).exists() && t0.elapsed().as_secs() < 120 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    if o.status.code() == Some(0) {
        eprintln!("finished before the interrupt");
        return false;
    }
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains(message), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.join(marker).exists(), "{marker} not kept: {err}");
    assert!(
        !out.join(unfinished).exists(),
        "{unfinished} written: {err}"
    );
    run(&mut cmd(out));
    true
}

/// The tensors of a safetensors file: its header (names, shapes, offsets;
/// the metadata's key order, which varies from run to run, does not
/// matter) and its data bytes.
pub fn safetensors(path: &Path) -> (serde_json::Value, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    (header, bytes[8 + n..].to_vec())
}

/// A training command `train(out)` (checkpointing after every batch) run
/// whole into `dir/whole`, and into `dir/cut` interrupted by SIGINT once
/// its checkpoint exists and rerun: both end with the same tensors in
/// `weights.safetensors`, and neither keeps its checkpoint.
pub fn training_resumes_to_the_same_weights(train: impl Fn(&Path) -> Command, dir: &Path) {
    const CHECKPOINT: &str = "training-checkpoint.bin";
    let whole = dir.join("whole");
    run(&mut train(&whole));
    assert!(!whole.join(CHECKPOINT).exists());
    let cut = dir.join("cut");
    let interrupted = interrupt_then_resume(
        train,
        &cut,
        CHECKPOINT,
        "weights.safetensors",
        "rerun the same command to continue",
    );
    assert!(interrupted, "training ended before the interrupt");
    assert!(!cut.join(CHECKPOINT).exists());
    let weights = |d: &Path| safetensors(&d.join("weights.safetensors"));
    assert!(weights(&whole) == weights(&cut), "weights differ");
}
