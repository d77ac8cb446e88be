//! Output folders that never mix runs.
//!
//! Every workflow that writes a folder (`--out DIR`) opens it through
//! [`RunDir::open`] once its inputs are validated. The folder then holds a
//! manifest, [`MANIFEST`] (`cosmodiff-run.json`), naming the command and the
//! settings of the run that wrote it, and its status (`running`, `finished`).
//!
//! - A new or empty folder is used as it is.
//! - A folder written by the same command with the same settings and the same
//!   input contents (a rerun) is reused: its files are replaced one by one, atomically. A *resumable*
//!   command (campaigns, full-field chains) only needs the same command: it
//!   continues from the checkpoint inside, and checks that the checkpoint
//!   belongs to its settings itself.
//! - A folder of another run is refused unless `--overwrite`
//!   ([`Reuse::overwrite`]). The old contents are then moved aside and only
//!   deleted once the new run has finished; if it fails they are put back.
//! - A folder without a manifest that is not empty is refused even with
//!   `--overwrite`: cosmodiff never clears a folder it did not write.
//!
//! A run that fails leaves no trace: a folder it created is removed, a folder
//! it replaced is restored, an empty folder is emptied again. Resumable runs
//! keep what they wrote, since that is their checkpoint (unless they wrote
//! nothing yet).

use anyhow::{bail, Context, Result};
use cosmodiff_nn::CheckpointSettings;
use serde_json::json;
use std::fmt;
use std::path::{Path, PathBuf};

/// The manifest file in every output folder.
pub const MANIFEST: &str = "cosmodiff-run.json";

/// Format version of [`MANIFEST`].
const FORMAT: u64 = 1;

/// How an existing output folder may be reused (`--overwrite`).
#[derive(Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct Reuse {
    /// Replace the contents of an --out folder written by another cosmodiff run
    /// (kept until this run succeeds, restored if it fails).
    #[cfg_attr(feature = "cli", arg(long))]
    pub overwrite: bool,
}

/// Not part of a run's identity: a rerun with `--overwrite` is the same run.
impl fmt::Debug for Reuse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Reuse")
    }
}

/// Whether a command continues an interrupted run in its own folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The outputs are rewritten from scratch on every run.
    Rewritten,
    /// The folder holds a checkpoint the command resumes from.
    Resumable,
    /// A training: rewritten like [`Kind::Rewritten`] (same settings and
    /// input contents to reuse the folder), but a folder holding a
    /// [`TRAINING_CHECKPOINT`] is kept when the run fails or is interrupted,
    /// and a rerun continues from it (also with `--overwrite`).
    Training,
}

/// The checkpoint of a training in progress, inside its model folder
/// (see `cosmodiff_nn::resume`); deleted once the model is saved.
pub const TRAINING_CHECKPOINT: &str = "training-checkpoint.bin";

/// How often a training writes its checkpoint.
#[derive(Clone, Copy)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct Checkpoints {
    /// Seconds between training checkpoints, written to OUT/training-checkpoint.bin (rerunning an
    /// interrupted or killed training continues from the last one, to the same weights)
    #[cfg_attr(
        feature = "cli",
        arg(long, default_value_t = 120.0, value_name = "SECONDS")
    )]
    pub checkpoint_seconds: f64,
}

impl Default for Checkpoints {
    fn default() -> Self {
        Self {
            checkpoint_seconds: 120.0,
        }
    }
}

impl Checkpoints {
    /// A number of seconds >= 0 (checked before any output is created).
    pub fn check(&self) -> Result<()> {
        let s = self.checkpoint_seconds;
        if !(s >= 0.0 && s.is_finite()) {
            bail!("--checkpoint-seconds {s}: expected a number of seconds >= 0");
        }
        Ok(())
    }
}

/// Not part of a run's identity: a resumed training may checkpoint more or
/// less often.
impl fmt::Debug for Checkpoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Checkpoints")
    }
}

/// What happened to the folder when it was opened, so that a failed run can
/// undo it.
#[derive(Debug, Clone)]
enum Origin {
    /// The folder did not exist.
    Created,
    /// The folder existed and was empty.
    WasEmpty,
    /// The folder held this run's earlier outputs (a rerun or a resume).
    Reused,
    /// The folder held another run's outputs, moved to this sibling.
    Replaced(PathBuf),
}

/// An output folder opened for one run; call [`RunDir::finish`] when every
/// output is written. Dropped unfinished (an error), it undoes itself (see the
/// module docs).
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
    command: String,
    settings: String,
    inputs: Vec<String>,
    kind: Kind,
    origin: Origin,
    started: u64,
    finished: bool,
    /// The folder, locked while the run is open ([`lock`]).
    _lock: Option<std::fs::File>,
}

/// An exclusive advisory lock (`flock`) on the folder `path`, held while a
/// run writes into it: a second cosmodiff started on the same `--out` at
/// the same time is refused instead of mixing its files in. On a file
/// system without locks the run goes on unlocked.
fn lock(path: &Path) -> Result<Option<std::fs::File>> {
    let f = std::fs::File::open(path)
        .with_context(|| format!("cannot open folder {}", path.display()))?;
    match f.try_lock() {
        Ok(()) => Ok(Some(f)),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "--out {} is being written by another cosmodiff run right now: wait for it to finish or choose another folder",
            path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            log::debug!("cannot lock {}: {e}; going on unlocked", path.display());
            Ok(None)
        }
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The settings as the run's identity: their `Debug` text without the
/// fields that only change how a run is shown or scheduled.
fn fingerprint(settings: &dyn fmt::Debug) -> String {
    let mut s = format!("{settings:?}");
    for key in ["quiet", "workers", "progress"] {
        s = strip_field(&s, key);
    }
    s
}

/// SHA-256 of each input file's contents (`flag=hex`, `flag=folder` for a
/// model directory, `flag=missing` when unreadable): an edited config with
/// the same name is another run.
fn input_hashes(inputs: &[(&str, &Path)]) -> Vec<String> {
    use sha2::Digest as _;
    inputs
        .iter()
        .map(|(flag, p)| {
            if p.is_dir() {
                return format!("{flag}=folder");
            }
            let mut h = sha2::Sha256::new();
            let ok = std::fs::File::open(p)
                .and_then(|mut f| std::io::copy(&mut f, &mut h))
                .is_ok();
            if ok {
                let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
                format!("{flag}={hex}")
            } else {
                format!("{flag}=missing")
            }
        })
        .collect()
}

/// Remove every `key: value` field (value up to the next `,` or `}`) from a
/// `Debug` text.
fn strip_field(s: &str, key: &str) -> String {
    let pat = format!("{key}: ");
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(&pat) {
        let at_field = i == 0 || rest[..i].ends_with(", ") || rest[..i].ends_with("{ ");
        if !at_field {
            out.push_str(&rest[..i + pat.len()]);
            rest = &rest[i + pat.len()..];
            continue;
        }
        out.push_str(&rest[..i]);
        let tail = &rest[i + pat.len()..];
        let end = tail.find([',', '}']).unwrap_or(tail.len());
        rest = tail[end..].strip_prefix(", ").unwrap_or(&tail[end..]);
    }
    out.push_str(rest);
    out
}

/// The manifest of `dir`, if it has one that parses.
fn read_manifest(dir: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join(MANIFEST)).ok()?;
    serde_json::from_str(&text).ok()
}

fn is_empty(dir: &Path) -> Result<bool> {
    Ok(std::fs::read_dir(dir)
        .with_context(|| format!("cannot read folder {}", dir.display()))?
        .next()
        .is_none())
}

impl RunDir {
    /// Open `path` (the `--out` of `command`, e.g. `"pm run"`) for a run with
    /// `settings`, following the rules of the module docs. `inputs` (flag or
    /// key, path) are the run's input files: their contents are part of the
    /// run's identity, and replacing a folder that holds one of them is
    /// refused.
    pub fn open(
        path: &Path,
        command: &str,
        settings: &dyn fmt::Debug,
        reuse: Reuse,
        kind: Kind,
        inputs: &[(&str, &Path)],
    ) -> Result<RunDir> {
        // A symbolic link is followed once: the run works on the folder it
        // names (moving or removing the link would leave the outputs
        // behind it).
        let real;
        let path = if path.is_symlink() {
            real = path
                .canonicalize()
                .with_context(|| format!("--out {}: a broken symbolic link", path.display()))?;
            real.as_path()
        } else {
            path
        };
        // The folder is only touched once the decision is made, and a
        // `RunDir` (which undoes itself when dropped) exists only then.
        let settings = fingerprint(settings);
        let hashes = match kind {
            Kind::Rewritten | Kind::Training => input_hashes(inputs),
            Kind::Resumable => Vec::new(),
        };
        let dir = |origin, lock| {
            let d = RunDir {
                path: path.to_path_buf(),
                command: command.to_string(),
                settings: settings.clone(),
                inputs: hashes.clone(),
                kind,
                origin,
                started: unix_now(),
                finished: false,
                _lock: lock,
            };
            register(&d);
            d
        };
        let shown = path.display();
        if path.exists() && !path.is_dir() {
            bail!("--out {shown} is a file: the outputs are written into a folder");
        }
        if !path.exists() {
            std::fs::create_dir_all(path)
                .with_context(|| format!("cannot create folder {shown}"))?;
            let d = dir(Origin::Created, lock(path)?);
            d.write_manifest("running")?;
            return Ok(d);
        }
        let held = lock(path)?;
        if is_empty(path)? {
            let d = dir(Origin::WasEmpty, held);
            d.write_manifest("running")?;
            return Ok(d);
        }
        let Some(old) = read_manifest(path) else {
            // a resumable run of an older cosmodiff (no manifest yet)
            let checkpoint = ["params.csv", "checkpoint.npz"]
                .iter()
                .any(|f| path.join(f).is_file());
            if kind == Kind::Resumable && checkpoint && !reuse.overwrite {
                log::info!("continuing the run in {shown}");
                return Ok(dir(Origin::Reused, held));
            }
            bail!(
                "--out {shown} is not empty and was not written by cosmodiff (no {MANIFEST}): choose a new or empty folder"
            );
        };
        let old_command = old["command"].as_str().unwrap_or("?");
        let same = old_command == command
            && (kind == Kind::Resumable
                || (old["settings"].as_str() == Some(&settings) && old["inputs"] == json!(hashes)));
        let training_checkpoint =
            kind == Kind::Training && path.join(TRAINING_CHECKPOINT).is_file();
        if same && (!reuse.overwrite || training_checkpoint) {
            if kind == Kind::Resumable || training_checkpoint {
                log::info!("continuing the run in {shown}");
            }
            return Ok(dir(Origin::Reused, held));
        }
        if !reuse.overwrite {
            let what = if old_command == command {
                format!("`cosmodiff {command}` with other settings or inputs")
            } else {
                format!("`cosmodiff {old_command}`")
            };
            bail!(
                "--out {shown} holds the outputs of another run ({what}): pass --overwrite to replace them, or choose another folder"
            );
        }
        let root = crate::output::resolved(path);
        for (flag, input) in inputs {
            if crate::output::resolved(input).starts_with(&root) {
                bail!(
                    "--overwrite would remove {flag} {} from --out {shown}: move the input out of the folder first",
                    input.display()
                );
            }
        }
        let aside = aside_path(path)?;
        std::fs::rename(path, &aside)
            .with_context(|| format!("cannot move the old contents of {shown} aside"))?;
        if let Err(e) = std::fs::create_dir(path) {
            let _ = std::fs::rename(&aside, path);
            return Err(e).with_context(|| format!("cannot create folder {shown}"));
        }
        drop(held);
        let held = match lock(path) {
            Ok(l) => l,
            Err(e) => {
                let _ = std::fs::remove_dir(path);
                let _ = std::fs::rename(&aside, path);
                return Err(e);
            }
        };
        let d = dir(Origin::Replaced(aside), held);
        d.write_manifest("running")?;
        Ok(d)
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `folder/name`.
    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.path.join(name)
    }

    /// Checkpoints of a training into this folder ([`TRAINING_CHECKPOINT`]),
    /// written atomically every `every.checkpoint_seconds` and when Ctrl-C
    /// asks the training to stop (hold a
    /// [`crate::report::InterruptScope`] meanwhile).
    pub fn training_checkpoint(&self, every: Checkpoints) -> Result<CheckpointSettings> {
        every.check()?;
        let file = self.join(TRAINING_CHECKPOINT);
        if file.is_file() {
            say!(
                "continuing the training from its checkpoint {}",
                file.display()
            );
        }
        let write: std::sync::Arc<cosmodiff_nn::resume::WriteFn> =
            std::sync::Arc::new(|p: &Path, b: &[u8]| {
                crate::output::write_bytes(p, b).map_err(std::io::Error::other)
            });
        Ok(
            CheckpointSettings::new(file, every.checkpoint_seconds, write)
                .with_stop(crate::report::interrupt_flag()),
        )
    }

    /// The result of a training into this folder: after an interruption
    /// (Ctrl-C) with a checkpoint written, the one-line message saying how
    /// to resume; once the model is saved, the checkpoint is deleted.
    pub fn training_result<T, E: Into<anyhow::Error>>(
        &self,
        result: std::result::Result<T, E>,
    ) -> Result<T> {
        let checkpoint = self.join(TRAINING_CHECKPOINT);
        match result {
            Err(_) if crate::report::interrupted() && checkpoint.is_file() => bail!(
                "interrupted: training checkpoint kept in {}; rerun the same command to continue",
                checkpoint.display()
            ),
            r => r.map_err(Into::into),
        }
    }

    /// Delete the training checkpoint (call once the trained model is saved).
    pub fn training_done(&self) -> Result<()> {
        match std::fs::remove_file(self.join(TRAINING_CHECKPOINT)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).context("cannot delete the training checkpoint")
            }
            _ => Ok(()),
        }
    }

    /// Mark the run finished (the manifest says so) and delete the contents
    /// it replaced.
    pub fn finish(mut self) -> Result<()> {
        self.write_manifest("finished")?;
        self.finished = true;
        if let Origin::Replaced(old) = &self.origin {
            let _ = std::fs::remove_dir_all(old);
        }
        Ok(())
    }

    fn write_manifest(&self, status: &str) -> Result<()> {
        let m = json!({
            "format": FORMAT,
            "command": self.command,
            "settings": self.settings,
            "inputs": self.inputs,
            "cosmodiff_version": env!("CARGO_PKG_VERSION"),
            "status": status,
            "started_unix": self.started,
            "updated_unix": unix_now(),
        });
        crate::output::write_bytes(
            &self.path.join(MANIFEST),
            serde_json::to_string_pretty(&m)?.as_bytes(),
        )
    }
}

/// Put the folder `path` of a `kind` run back as it was before
/// [`RunDir::open`] found it (`origin`).
fn undo(path: &Path, kind: Kind, origin: &Origin) {
    let only_manifest = std::fs::read_dir(path)
        .map(|d| d.flatten().all(|e| e.file_name() == MANIFEST))
        .unwrap_or(false);
    let replaced = matches!(origin, Origin::Replaced(_));
    if kind == Kind::Resumable && !only_manifest && !replaced {
        // what is written is the checkpoint of this run
        return;
    }
    if kind == Kind::Training && path.join(TRAINING_CHECKPOINT).is_file() {
        // a training to continue: what it replaced (with --overwrite) is gone
        if let Origin::Replaced(old) = origin {
            let _ = std::fs::remove_dir_all(old);
        }
        return;
    }
    match origin {
        Origin::Created => {
            let _ = std::fs::remove_dir_all(path);
        }
        Origin::WasEmpty => {
            if std::fs::remove_dir_all(path).is_ok() {
                let _ = std::fs::create_dir(path);
            }
        }
        Origin::Reused => {}
        Origin::Replaced(old) => {
            let _ = std::fs::remove_dir_all(path);
            let _ = std::fs::rename(old, path);
        }
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        unregister(&self.path);
        if !self.finished {
            undo(&self.path, self.kind, &self.origin);
        }
    }
}

/// How to undo the folders of runs in progress when the process must end
/// at once (a second Ctrl-C, or Ctrl-C in a command that does not
/// checkpoint), where no destructor runs: `(folder, origin, kind)`.
static PENDING: std::sync::Mutex<Vec<(PathBuf, Origin, Kind)>> = std::sync::Mutex::new(Vec::new());

fn register(d: &RunDir) {
    if let Ok(mut p) = PENDING.lock() {
        p.push((d.path.clone(), d.origin.clone(), d.kind));
    }
}

fn unregister(path: &Path) {
    if let Ok(mut p) = PENDING.lock() {
        p.retain(|(q, _, _)| q != path);
    }
}

/// Undo every run folder still open (see [`RunDir`]'s drop): called by the
/// command line's signal handler just before it ends the process.
pub fn abandon_all() {
    abandon_where(|_| true);
}

/// [`abandon_all`] for the folders `which` selects.
fn abandon_where(which: impl Fn(&Path) -> bool) {
    let pending = match PENDING.lock() {
        Ok(mut p) => {
            let (now, later): (Vec<_>, Vec<_>) = std::mem::take(&mut *p)
                .into_iter()
                .partition(|(q, _, _)| which(q));
            *p = later;
            now
        }
        Err(_) => return,
    };
    for (path, origin, kind) in pending {
        undo(&path, kind, &origin);
    }
}

/// A hidden sibling of `path` for the contents it replaces.
fn aside_path(path: &Path) -> Result<PathBuf> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("--out {}: not a folder name", path.display()))?;
    for i in 0.. {
        let p = path.with_file_name(format!(".{name}.replaced-{}-{i}", std::process::id()));
        if !p.exists() {
            return Ok(p);
        }
    }
    unreachable!()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    #[allow(dead_code)]
    struct S {
        seed: u64,
        quiet: bool,
        reuse: Reuse,
    }

    fn s(seed: u64, quiet: bool, overwrite: bool) -> S {
        S {
            seed,
            quiet,
            reuse: Reuse { overwrite },
        }
    }

    fn open(p: &Path, st: &S, kind: Kind) -> Result<RunDir> {
        RunDir::open(p, "demo", st, st.reuse, kind, &[])
    }

    fn names(p: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn identity_ignores_display_fields() {
        assert_eq!(
            fingerprint(&s(1, true, true)),
            fingerprint(&s(1, false, false))
        );
        assert_ne!(
            fingerprint(&s(1, false, false)),
            fingerprint(&s(2, false, false))
        );
        assert_eq!(
            strip_field("A { a: 1, quiet: true }", "quiet"),
            "A { a: 1, }"
        );
        assert_eq!(strip_field("A { unquiet: 1 }", "quiet"), "A { unquiet: 1 }");
    }

    #[test]
    fn a_failed_run_leaves_no_folder_and_a_finished_one_a_manifest() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("out");
        {
            let d = open(&out, &s(1, false, false), Kind::Rewritten).unwrap();
            std::fs::write(d.join("a.npy"), b"x").unwrap();
        }
        assert!(!out.exists(), "a failed run kept its folder");
        let d = open(&out, &s(1, false, false), Kind::Rewritten).unwrap();
        std::fs::write(d.join("a.npy"), b"x").unwrap();
        d.finish().unwrap();
        let m = read_manifest(&out).unwrap();
        assert_eq!(m["status"], "finished");
        assert_eq!(m["command"], "demo");
    }

    #[test]
    fn another_run_is_refused_unless_overwrite_and_restored_on_failure() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("out");
        let d = open(&out, &s(1, false, false), Kind::Rewritten).unwrap();
        std::fs::write(d.join("old.npy"), b"old").unwrap();
        d.finish().unwrap();
        // the same run again (even quiet) is fine
        open(&out, &s(1, true, false), Kind::Rewritten)
            .unwrap()
            .finish()
            .unwrap();
        let e = open(&out, &s(2, false, false), Kind::Rewritten).unwrap_err();
        assert!(e.to_string().contains("pass --overwrite"), "{e}");
        // --overwrite that fails puts the old outputs back
        {
            let d = open(&out, &s(2, false, true), Kind::Rewritten).unwrap();
            assert_eq!(names(d.path()), [MANIFEST]);
            std::fs::write(d.join("new.npy"), b"new").unwrap();
        }
        assert_eq!(names(&out), [MANIFEST, "old.npy"]);
        assert_eq!(names(t.path()), ["out"], "the moved-aside copy stayed");
        // --overwrite that succeeds replaces them
        let d = open(&out, &s(2, false, true), Kind::Rewritten).unwrap();
        std::fs::write(d.join("new.npy"), b"new").unwrap();
        d.finish().unwrap();
        assert_eq!(names(&out), [MANIFEST, "new.npy"]);
        assert_eq!(names(t.path()), ["out"]);
    }

    #[test]
    fn foreign_folders_files_and_inputs_inside_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let mine = t.path().join("mine");
        std::fs::create_dir(&mine).unwrap();
        std::fs::write(mine.join("thesis.tex"), b"x").unwrap();
        let e = open(&mine, &s(1, false, true), Kind::Rewritten).unwrap_err();
        assert!(e.to_string().contains("not written by cosmodiff"), "{e}");
        assert!(mine.join("thesis.tex").exists());
        let e = open(
            &mine.join("thesis.tex"),
            &s(1, false, false),
            Kind::Rewritten,
        )
        .unwrap_err();
        assert!(e.to_string().contains("is a file"), "{e}");

        let out = t.path().join("out");
        let d = open(&out, &s(1, false, false), Kind::Rewritten).unwrap();
        std::fs::write(d.join("data.npy"), b"x").unwrap();
        d.finish().unwrap();
        let input = out.join("data.npy");
        let st = s(2, false, true);
        let e = RunDir::open(
            &out,
            "demo",
            &st,
            st.reuse,
            Kind::Rewritten,
            &[("--data", &input)],
        )
        .unwrap_err();
        assert!(e.to_string().contains("move the input out"), "{e}");
        assert!(input.exists());
    }

    #[test]
    fn resumable_runs_keep_their_checkpoint_and_continue() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("out");
        {
            let d = open(&out, &s(1, false, false), Kind::Resumable).unwrap();
            std::fs::write(d.join("checkpoint.npz"), b"ck").unwrap();
        }
        assert!(
            out.join("checkpoint.npz").exists(),
            "checkpoint removed on failure"
        );
        // more draws (other settings) continue the same command's run
        let d = open(&out, &s(3, false, false), Kind::Resumable).unwrap();
        assert!(d.join("checkpoint.npz").exists());
        d.finish().unwrap();
        let e = RunDir::open(
            &out,
            "pm run",
            &s(1, false, false),
            Reuse::default(),
            Kind::Resumable,
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().contains("`cosmodiff demo`"), "{e}");
    }

    /// A training keeps its folder only while it holds a checkpoint; a
    /// rerun of the same training continues (even with --overwrite), one
    /// with other settings is refused, and --overwrite of another run's
    /// folder whose new training stops with a checkpoint drops the old one.
    #[test]
    fn trainings_keep_their_checkpoint_and_only_it() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("out");
        // failed before any checkpoint: no trace
        drop(open(&out, &s(1, false, false), Kind::Training).unwrap());
        assert!(!out.exists());
        {
            let d = open(&out, &s(1, false, false), Kind::Training).unwrap();
            std::fs::write(d.join(TRAINING_CHECKPOINT), b"ck").unwrap();
        }
        assert!(out.join(TRAINING_CHECKPOINT).exists(), "checkpoint removed");
        let e = open(&out, &s(2, false, false), Kind::Training).unwrap_err();
        assert!(e.to_string().contains("pass --overwrite"), "{e}");
        let d = open(&out, &s(1, false, true), Kind::Training).unwrap();
        assert!(d.join(TRAINING_CHECKPOINT).exists(), "not continued");
        d.training_done().unwrap();
        std::fs::write(d.join("weights.safetensors"), b"w").unwrap();
        d.finish().unwrap();
        assert_eq!(names(&out), [MANIFEST, "weights.safetensors"]);
        // another training over it, interrupted with a checkpoint
        {
            let d = open(&out, &s(2, false, true), Kind::Training).unwrap();
            assert_eq!(names(&out), [MANIFEST]);
            std::fs::write(d.join(TRAINING_CHECKPOINT), b"ck").unwrap();
        }
        assert_eq!(names(&out), [MANIFEST, TRAINING_CHECKPOINT]);
        assert_eq!(names(t.path()), ["out"], "replaced contents left behind");
        // the same again without a checkpoint: the old folder comes back
        std::fs::remove_file(out.join(TRAINING_CHECKPOINT)).unwrap();
        drop(open(&out, &s(3, false, true), Kind::Training).unwrap());
        assert_eq!(names(&out), [MANIFEST]);
    }

    /// Two runs at once into one folder: the second is refused while the
    /// first is open, and welcome once it has finished.
    #[test]
    fn a_folder_in_use_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("out");
        let first = open(&out, &s(1, false, false), Kind::Rewritten).unwrap();
        for st in [s(1, false, false), s(2, false, true)] {
            let e = open(&out, &st, Kind::Rewritten).unwrap_err();
            assert!(
                e.to_string().contains("another cosmodiff run right now"),
                "{e}"
            );
        }
        assert_eq!(names(&out), [MANIFEST]);
        first.finish().unwrap();
        open(&out, &s(1, false, false), Kind::Rewritten)
            .unwrap()
            .finish()
            .unwrap();
    }

    #[test]
    fn an_edited_input_makes_another_run() {
        let t = tempfile::tempdir().unwrap();
        let cfg = t.path().join("c.toml");
        std::fs::write(&cfg, "n = 1").unwrap();
        let out = t.path().join("out");
        let st = s(1, false, false);
        let open = || {
            RunDir::open(
                &out,
                "pm run",
                &st,
                st.reuse,
                Kind::Rewritten,
                &[("--config", &cfg)],
            )
        };
        open().unwrap().finish().unwrap();
        open().unwrap().finish().unwrap();
        std::fs::write(&cfg, "n = 2").unwrap();
        let e = open().unwrap_err();
        assert!(e.to_string().contains("other settings or inputs"), "{e}");
    }

    #[test]
    fn overwrite_of_a_resumable_run_that_fails_restores_it() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("out");
        let d = open(&out, &s(1, false, false), Kind::Resumable).unwrap();
        std::fs::write(d.join("params.csv"), b"old").unwrap();
        drop(d); // interrupted: the checkpoint stays
        {
            let d = open(&out, &s(1, false, true), Kind::Resumable).unwrap();
            std::fs::write(d.join("params.csv"), b"new").unwrap();
        }
        assert_eq!(std::fs::read(out.join("params.csv")).unwrap(), b"old");
        assert_eq!(names(t.path()), ["out"]);
    }

    #[test]
    fn a_resumable_folder_of_an_older_version_continues() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("out");
        std::fs::create_dir(&out).unwrap();
        std::fs::write(out.join("params.csv"), b"x").unwrap();
        open(&out, &s(1, false, false), Kind::Resumable)
            .unwrap()
            .finish()
            .unwrap();
        assert!(out.join(MANIFEST).exists());
        // but an older folder is not another run's to replace
        let old = t.path().join("old");
        std::fs::create_dir(&old).unwrap();
        std::fs::write(old.join("samples.npy"), b"x").unwrap();
        assert!(open(&old, &s(1, false, false), Kind::Rewritten).is_err());
    }

    #[test]
    fn a_symlinked_out_folder_is_written_through() {
        let t = tempfile::tempdir().unwrap();
        let real = t.path().join("real");
        let link = t.path().join("link");
        let d = open(&real, &s(1, false, false), Kind::Rewritten).unwrap();
        std::fs::write(d.join("a.npy"), b"old").unwrap();
        d.finish().unwrap();
        std::os::unix::fs::symlink(&real, &link).unwrap();
        {
            let d = open(&link, &s(2, false, true), Kind::Rewritten).unwrap();
            std::fs::write(d.join("b.npy"), b"new").unwrap();
        }
        assert!(link.is_symlink(), "the link was replaced");
        assert_eq!(names(&real), ["a.npy", MANIFEST]);
        let d = open(&link, &s(2, false, true), Kind::Rewritten).unwrap();
        std::fs::write(d.join("b.npy"), b"new").unwrap();
        d.finish().unwrap();
        assert!(link.is_symlink());
        assert_eq!(names(&real), ["b.npy", MANIFEST]);
    }

    #[test]
    fn abandoned_runs_are_undone_without_their_destructor() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("out");
        let d = open(&out, &s(1, false, false), Kind::Rewritten).unwrap();
        std::fs::write(d.join("a.npy"), b"x").unwrap();
        // what the signal handler does before exiting (abandon_all), for
        // this test's folders only: other tests run beside it
        abandon_where(|p| p.starts_with(t.path()));
        std::mem::forget(d); // exit: no destructor runs
        assert!(!out.exists());
    }

    #[test]
    fn an_empty_folder_is_emptied_again_after_a_failure() {
        let t = tempfile::tempdir().unwrap();
        {
            let d = open(t.path(), &s(1, false, false), Kind::Rewritten).unwrap();
            std::fs::write(d.join("a.npy"), b"x").unwrap();
        }
        assert!(t.path().is_dir());
        assert!(names(t.path()).is_empty());
    }
}
