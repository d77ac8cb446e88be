//! Property tests of the input layer (issue 27): mutated TOML configs,
//! `.npy`/`.npz` files and model directories are read, or refused with an
//! error, never a panic.
//!
//! Each target starts from seeds (the committed corpus in
//! `crates/pipeline/fuzz-corpus/` and the configs of `examples/`) and applies
//! random edits: byte replacements, insertions, deletions and truncation for
//! binary files; for TOML and JSON, values replaced by edge cases (zero,
//! negatives, NaN, infinities, huge and tiny numbers, wrong types), lines
//! dropped or repeated. The number of cases per target is fixed
//! ([`CASES`]; `PROPTEST_CASES` overrides it), so CI time is bounded;
//! failures are shrunk and recorded by proptest under
//! `crates/pipeline/proptest-regressions/`, which is committed with the fix.

use proptest::prelude::*;
use std::path::{Path, PathBuf};

/// Cases per target in CI.
const CASES: u32 = 512;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CASES);
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::SourceParallel("proptest-regressions"),
        )),
        ..ProptestConfig::default()
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn corpus(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz-corpus")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// One edit of a byte string.
#[derive(Clone, Debug)]
enum Edit {
    Set(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let one = prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Set(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Delete),
        any::<usize>().prop_map(Edit::Truncate),
    ];
    prop::collection::vec(one, 1..6)
}

fn apply(seed: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for e in edits {
        let n = v.len().max(1);
        match *e {
            Edit::Set(i, b) if !v.is_empty() => v[i % n] = b,
            Edit::Insert(i, b) => v.insert(i % (v.len() + 1), b),
            Edit::Delete(i) if !v.is_empty() => {
                v.remove(i % n);
            }
            Edit::Truncate(i) => v.truncate(i % n),
            _ => {}
        }
    }
    v
}

/// Values that break configs: edge numbers and wrong types.
const VALUES: &[&str] = &[
    "0",
    "-1",
    "1",
    "2",
    "3",
    "7",
    "100000",
    "0.5",
    "-0.5",
    "1e-300",
    "1e300",
    "nan",
    "inf",
    "-inf",
    "\"x\"",
    "\"\"",
    "[]",
    "[1.0]",
    "[0.1, 0.5]",
    "[-1, 2]",
    "{}",
    "true",
];

/// A text edit of a `key = value` config (TOML) or `"key": value` (JSON).
#[derive(Clone, Debug)]
enum TextEdit {
    Value(usize, usize),
    DropLine(usize),
    RepeatLine(usize),
}

fn text_edits() -> impl Strategy<Value = Vec<TextEdit>> {
    let one = prop_oneof![
        4 => (any::<usize>(), any::<usize>()).prop_map(|(l, v)| TextEdit::Value(l, v)),
        1 => any::<usize>().prop_map(TextEdit::DropLine),
        1 => any::<usize>().prop_map(TextEdit::RepeatLine),
    ];
    prop::collection::vec(one, 1..4)
}

fn apply_text(seed: &str, edits: &[TextEdit], sep: &str) -> String {
    let mut lines: Vec<String> = seed.lines().map(str::to_string).collect();
    let assignments = |lines: &[String]| -> Vec<usize> {
        (0..lines.len())
            .filter(|&i| lines[i].contains(sep) && !lines[i].trim_start().starts_with('#'))
            .collect()
    };
    for e in edits {
        if lines.is_empty() {
            break;
        }
        match *e {
            TextEdit::Value(l, v) => {
                let a = assignments(&lines);
                if a.is_empty() {
                    continue;
                }
                let i = a[l % a.len()];
                let at = lines[i].find(sep).expect("separator") + sep.len();
                // keep a JSON line's trailing comma
                let comma = if lines[i].trim_end().ends_with(',') {
                    ","
                } else {
                    ""
                };
                lines[i] = format!("{} {}{comma}", &lines[i][..at], VALUES[v % VALUES.len()]);
            }
            TextEdit::DropLine(l) => {
                let i = l % lines.len();
                lines.remove(i);
            }
            TextEdit::RepeatLine(l) => {
                let i = l % lines.len();
                let line = lines[i].clone();
                lines.insert(i, line);
            }
        }
    }
    lines.join("\n")
}

/// `f` returns normally (`Ok` or `Err`); a panic fails the property with
/// its message.
fn no_panic<T>(what: &str, f: impl FnOnce() -> anyhow::Result<T>) -> Result<(), TestCaseError> {
    IN_TARGET.with(|t| t.set(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    IN_TARGET.with(|t| t.set(false));
    match result {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => {
            let line = crate::report::one_line(&e);
            prop_assert!(!line.contains("panicked"), "{what}: {line}");
            Ok(())
        }
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(TestCaseError::fail(format!("{what} panicked: {msg}")))
        }
    }
}

thread_local! {
    /// Whether this thread is inside [`no_panic`].
    static IN_TARGET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Quiet the default panic hook while a target's code runs (its panics are
/// caught and reported by [`no_panic`]); proptest's own failure report
/// still prints.
fn quiet_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_TARGET.with(|t| t.get()) {
                default(info)
            }
        }));
    });
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fuzz_npy_files_are_read_or_refused(seed in 0usize..2, e in edits()) {
        quiet_panics();
        let bytes = apply(&corpus(["theta.npy", "field_f32.npy"][seed]), &e);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.npy");
        std::fs::write(&p, bytes).unwrap();
        no_panic("read_float_npy", || crate::io::read_float_npy(&p, "--x"))?;
    }

    #[test]
    fn fuzz_npz_fields_are_read_or_refused(e in edits()) {
        quiet_panics();
        let bytes = apply(&corpus("fields.npz"), &e);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fields.npz");
        std::fs::write(&p, bytes).unwrap();
        no_panic("read_fields", || crate::fieldflow::read_fields(&p))?;
    }

    #[test]
    fn fuzz_toml_configs_are_checked_or_refused(seed in 0usize..5, e in text_edits()) {
        quiet_panics();
        let name = ["pm.toml", "halos.toml", "simulate.toml", "prior.toml", "cosmology.toml"][seed];
        let path = repo().join("examples").join(name);
        let text = apply_text(&std::fs::read_to_string(&path).unwrap(), &e, "=");
        let base = repo().join("examples");
        no_panic(name, || -> anyhow::Result<()> {
            match name {
                "pm.toml" | "halos.toml" => {
                    let t: crate::pm::PmToml = crate::config::parse(&text, &path)?;
                    let c = t.cosmology.build()?;
                    t.check_memory(None)?;
                    if let Some(d) = &t.design {
                        crate::halos::campaign::design_points(d, c.omega_b, 0)?;
                    }
                    if let Some(h) = &t.halos {
                        h.settings()?;
                    }
                }
                "simulate.toml" => {
                    let c: crate::simulate::LensingConfig = crate::config::parse(&text, &path)?;
                    crate::simulate::lensing_setup(&c, &base)?;
                }
                "prior.toml" => {
                    let c: crate::prior::PriorConfig = crate::config::parse(&text, &path)?;
                    c.sde.build()?;
                }
                _ => {
                    let c: crate::cosmology::Config = crate::config::parse(&text, &path)?;
                    c.cosmology.build()?;
                    c.options.build()?;
                    crate::config::build_tracers(&c.tracer, &base)?;
                }
            }
            Ok(())
        })?;
    }

    #[test]
    fn fuzz_fieldflow_model_files_are_loaded_or_refused(e in text_edits(), w in edits(), which in 0usize..2) {
        quiet_panics();
        let dir = tempfile::tempdir().unwrap();
        let json = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz-corpus/fieldflow/fieldflow.json"),
        )
        .unwrap();
        let weights = corpus("fieldflow/weights.safetensors");
        if which == 0 {
            std::fs::write(dir.path().join("fieldflow.json"), apply_text(&json, &e, ":")).unwrap();
            std::fs::write(dir.path().join("weights.safetensors"), &weights).unwrap();
        } else {
            std::fs::write(dir.path().join("fieldflow.json"), &json).unwrap();
            std::fs::write(dir.path().join("weights.safetensors"), apply(&weights, &w)).unwrap();
        }
        no_panic("FieldFlow::load", || {
            Ok(cosmodiff_nn::trenf::FieldFlow::load(dir.path())?)
        })?;
    }

    #[test]
    fn fuzz_score_model_files_are_loaded_or_refused(e in text_edits()) {
        quiet_panics();
        let shipped = repo().join("crates/score/models/lognormal64");
        let json = std::fs::read_to_string(shipped.join("score_model.json")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("score_model.json"), apply_text(&json, &e, ":")).unwrap();
        std::os::unix::fs::symlink(
            shipped.join("weights.safetensors"),
            dir.path().join("weights.safetensors"),
        )
        .unwrap();
        no_panic("ScoreModel::load", || {
            Ok(cosmodiff_score::ScoreModel::load(dir.path())?)
        })?;
    }
}

/// Train a 2-to-1 linear regression on 16 rows for 3 epochs, checkpointing
/// to `file` after every batch and continuing from it when it exists.
fn tiny_training(file: &Path) -> anyhow::Result<()> {
    use cosmodiff_nn::burn::nn::{Linear, LinearConfig};
    use cosmodiff_nn::burn::tensor::{Tensor, TensorData};
    let ad = cosmodiff_nn::default_device().autodiff();
    let lin: Linear = LinearConfig::new(2, 1).init(&ad);
    let write: std::sync::Arc<cosmodiff_nn::resume::WriteFn> =
        std::sync::Arc::new(|p: &Path, b: &[u8]| std::fs::write(p, b));
    let cfg = cosmodiff_nn::TrainConfig {
        batch_size: 4,
        max_epochs: 3,
        validation_fraction: 0.25,
        checkpoint: Some(cosmodiff_nn::CheckpointSettings::new(file, 0.0, write)),
        ..Default::default()
    };
    cosmodiff_nn::fit(lin, 16, &cfg, |m: &Linear, rows: &[usize]| {
        let x: Vec<f32> = rows.iter().flat_map(|&r| [r as f32 / 16.0, 1.0]).collect();
        let x = Tensor::<2>::from_data(
            TensorData::new(x, [rows.len(), 2]),
            &m.weight.val().device(),
        );
        m.forward(x).powi_scalar(2).mean().reshape([1])
    })?;
    Ok(())
}

/// A checkpoint written by [`tiny_training`] (after its last batch).
fn training_checkpoint_seed() -> &'static [u8] {
    static SEED: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    SEED.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("training-checkpoint.bin");
        tiny_training(&file).unwrap();
        std::fs::read(&file).unwrap()
    })
}

proptest! {
    #![proptest_config(config())]

    /// A damaged training checkpoint is continued from or refused.
    #[test]
    fn fuzz_training_checkpoints_are_resumed_or_refused(e in edits()) {
        quiet_panics();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("training-checkpoint.bin");
        std::fs::write(&file, apply(training_checkpoint_seed(), &e)).unwrap();
        no_panic("training checkpoint", || tiny_training(&file))?;
    }
}

/// The corpus seeds are what the targets expect: valid files that load.
#[test]
fn fuzz_corpus_seeds_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz-corpus");
    crate::io::read_float_npy(&dir.join("theta.npy"), "theta").unwrap();
    crate::io::read_float_npy(&dir.join("field_f32.npy"), "field").unwrap();
    crate::fieldflow::read_fields(&dir.join("fields.npz")).unwrap();
    cosmodiff_nn::trenf::FieldFlow::load(&dir.join("fieldflow")).unwrap();
    // the training checkpoint seed is continued from
    let t = tempfile::tempdir().unwrap();
    let file = t.path().join("training-checkpoint.bin");
    std::fs::write(&file, training_checkpoint_seed()).unwrap();
    tiny_training(&file).unwrap();
}
