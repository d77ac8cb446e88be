//! Safe outputs: the one way every workflow writes a file.
//!
//! A file is written under a temporary name in its target folder, flushed to
//! disk (`fsync`), then renamed over the target, so a reader sees either the
//! previous complete file or the new complete one, never a truncated mix: a
//! full disk or a killed process leaves the earlier good output intact and at
//! most a hidden `.NAME.partial-*` file that the next successful write does not
//! trip over. The temporary name keeps the target's extension, so writers that
//! choose the format by extension (PNG plots, `.npy`) work unchanged.
//!
//! [`refuse_overwriting_inputs`] is the companion check made before any work:
//! an output path that names one of the command's inputs is refused.

use anyhow::{bail, Context, Result};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Temporary sibling of `target`: `.NAME.partial-PID-N.EXT` in the same
/// folder (same file system, so the final rename is atomic).
fn partial_path(target: &Path) -> Result<PathBuf> {
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{}: not a file name", target.display()))?;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut tmp = format!(".{name}.partial-{}-{n}", std::process::id());
    if let Some(ext) = target.extension().and_then(|e| e.to_str()) {
        tmp.push('.');
        tmp.push_str(ext);
    }
    Ok(target.with_file_name(tmp))
}

/// The folder that holds `path` (`.` for a bare file name).
fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Write `target` atomically through `write`, which is handed a temporary
/// path (same folder, same extension) to write to. On success the file is
/// synced and renamed over `target`; on failure the temporary file is removed
/// and `target` is left as it was. The target's folder is created if needed.
pub fn write_via<T>(target: &Path, write: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
    let dir = folder_of(target);
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create folder {}", dir.display()))?;
    let tmp = partial_path(target)?;
    let finish = |value: T| -> Result<T> {
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .with_context(|| format!("cannot write {}", target.display()))?;
        std::fs::rename(&tmp, target)
            .with_context(|| format!("cannot write {}", target.display()))?;
        // The rename itself reaches the disk with the folder's entry.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(value)
    };
    let result = write(&tmp).and_then(finish);
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Write the files of a folder (a model directory) through `write`, which
/// is handed a temporary folder inside `dir`: each file it writes is synced
/// and renamed into `dir`, replacing the file of the same name, so every
/// file of `dir` is whole, old or new. On failure the temporary folder is
/// removed and `dir` is left as it was. Subfolders are moved in whole
/// (replacing an older subfolder is not atomic).
pub fn write_folder_via<T>(dir: &Path, write: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
    if dir.as_os_str().is_empty() {
        bail!("the folder path is empty");
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create folder {}", dir.display()))?;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".partial-{}-{n}", std::process::id()));
    std::fs::create_dir(&tmp).with_context(|| format!("cannot write into {}", dir.display()))?;
    let move_in = |value: T| -> Result<T> {
        let entries: Vec<_> = std::fs::read_dir(&tmp)?.collect::<std::io::Result<_>>()?;
        for e in &entries {
            if e.file_type()?.is_file() {
                std::fs::File::open(e.path())?.sync_all()?;
            }
        }
        for e in entries {
            let target = dir.join(e.file_name());
            if e.file_type()?.is_dir() && target.is_dir() {
                std::fs::remove_dir_all(&target)?;
            }
            std::fs::rename(e.path(), &target)?;
        }
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(value)
    };
    let result = write(&tmp)
        .and_then(|v| move_in(v).with_context(|| format!("cannot write into {}", dir.display())));
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

/// Refuse an output file `target` (given as option `flag`) whose folder
/// does not exist, before a long computation rather than after it.
pub fn check_parent_dir(target: Option<&Path>, flag: &str) -> Result<()> {
    if let Some(dir) = target.and_then(Path::parent) {
        if !dir.as_os_str().is_empty() && !dir.is_dir() {
            anyhow::bail!("{flag}: directory {} does not exist", dir.display());
        }
    }
    Ok(())
}

/// Write `bytes` to `target` atomically (see [`write_via`]).
pub fn write_bytes(target: &Path, bytes: &[u8]) -> Result<()> {
    write_via(target, |tmp| {
        let mut f = std::fs::File::create(tmp)?;
        f.write_all(bytes)?;
        Ok(())
    })
    .with_context(|| format!("cannot write {}", target.display()))
}

/// Elements of a `.npy` output whose finiteness is checked before writing
/// (integers always are).
pub trait NpyElement: ndarray_npy::WritableElement {
    fn finite(&self) -> bool;
}

impl NpyElement for f64 {
    fn finite(&self) -> bool {
        self.is_finite()
    }
}

impl NpyElement for f32 {
    fn finite(&self) -> bool {
        self.is_finite()
    }
}

macro_rules! always_finite {
    ($($t:ty),*) => {$(
        impl NpyElement for $t {
            fn finite(&self) -> bool {
                true
            }
        }
    )*};
}
always_finite!(i8, i16, i32, i64, u8, u16, u32, u64, bool);

/// Write a `.npy` array atomically; an array holding a NaN or an infinity
/// is refused (a result outside what the inputs can give), like
/// [`crate::io::Npz::write`].
pub fn write_npy<A: NpyElement, D: ndarray::Dimension>(
    target: &Path,
    array: &ndarray::ArrayBase<impl ndarray::Data<Elem = A>, D>,
) -> Result<()> {
    if let Some(i) = array.iter().position(|v| !v.finite()) {
        anyhow::bail!(
            "not writing {}: it holds a non-finite value (NaN or infinity) at flat index {i}; the inputs give a result outside the range cosmodiff can represent",
            target.display()
        );
    }
    let mut bytes = Vec::new();
    ndarray_npy::WriteNpyExt::write_npy(array, &mut bytes)
        .with_context(|| format!("cannot encode {}", target.display()))?;
    write_bytes(target, &bytes)
}

/// The absolute, symlink-resolved form of a path that may not exist yet
/// (its folder is resolved when it exists).
pub(crate) fn resolved(path: &Path) -> PathBuf {
    if let Ok(p) = path.canonicalize() {
        return p;
    }
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    match (abs.parent().map(Path::canonicalize), abs.file_name()) {
        (Some(Ok(dir)), Some(name)) => dir.join(name),
        _ => abs,
    }
}

/// Refuse, before any work, an output that would overwrite one of the inputs
/// (`--out` naming the `--input` file, or an output folder that holds it).
/// `output` is labelled `flag` in the message; `inputs` pairs each path with
/// its flag or key.
pub fn refuse_overwriting_inputs(
    flag: &str,
    output: &Path,
    inputs: &[(&str, &Path)],
) -> Result<()> {
    let out = resolved(output);
    for (what, input) in inputs {
        let inp = resolved(input);
        if inp == out {
            bail!(
                "{flag} {} is also the {what} file: choose another output name, the input would be overwritten",
                output.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_write_keeps_the_previous_file_and_leaves_no_partial() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("x.npz");
        write_bytes(&target, b"good").unwrap();
        let r: Result<()> = write_via(&target, |tmp| {
            std::fs::write(tmp, b"trunc")?;
            bail!("disk full")
        });
        assert!(r.is_err());
        assert_eq!(std::fs::read(&target).unwrap(), b"good");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "left behind: {names:?}");
    }

    #[test]
    fn folders_get_whole_files_or_keep_their_old_ones() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("model");
        write_folder_via(&out, |t| {
            std::fs::write(t.join("a.json"), b"a1")?;
            std::fs::create_dir(t.join("sub"))?;
            std::fs::write(t.join("sub/w"), b"w1")?;
            Ok(())
        })
        .unwrap();
        let r: Result<()> = write_folder_via(&out, |t| {
            std::fs::write(t.join("a.json"), b"a2-trunc")?;
            bail!("disk full")
        });
        assert!(r.is_err());
        assert_eq!(std::fs::read(out.join("a.json")).unwrap(), b"a1");
        write_folder_via(&out, |t| {
            std::fs::create_dir(t.join("sub"))?;
            std::fs::write(t.join("sub/w"), b"w2")?;
            Ok(())
        })
        .unwrap();
        assert_eq!(std::fs::read(out.join("sub/w")).unwrap(), b"w2");
        let mut names: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["a.json", "sub"], "left behind");
        let e = write_folder_via(Path::new(""), |_| Ok(())).unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
    }

    #[test]
    fn non_finite_npy_outputs_are_refused_and_the_old_file_kept() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("x.npy");
        write_npy(&target, &ndarray::arr1(&[1.0f64, 2.0])).unwrap();
        let e = write_npy(&target, &ndarray::arr1(&[1.0f32, f32::NAN])).unwrap_err();
        assert!(e.to_string().contains("flat index 1"), "{e}");
        let back: ndarray::Array1<f64> = ndarray_npy::read_npy(&target).unwrap();
        assert_eq!(back.to_vec(), [1.0, 2.0]);
        write_npy(&target, &ndarray::arr1(&[i64::MAX])).unwrap();
    }

    #[test]
    fn temporary_name_keeps_the_extension_and_the_folder() {
        let p = partial_path(Path::new("out/maps.png")).unwrap();
        assert_eq!(p.parent(), Some(Path::new("out")));
        assert_eq!(p.extension().and_then(|e| e.to_str()), Some("png"));
        assert!(p
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with(".maps.png.partial-"));
    }

    #[test]
    fn writes_create_the_folder_and_replace_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a/b/c.txt");
        write_bytes(&target, b"1").unwrap();
        write_bytes(&target, b"2").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"2");
    }

    #[test]
    fn an_output_naming_an_input_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("s0.npz");
        std::fs::write(&input, b"x").unwrap();
        let same = dir.path().join(".").join("s0.npz");
        let e = refuse_overwriting_inputs("--out", &same, &[("--input", &input)]).unwrap_err();
        assert!(e.to_string().contains("also the --input file"), "{e}");
        let other = dir.path().join("s1.npz");
        refuse_overwriting_inputs("--out", &other, &[("--input", &input)]).unwrap();
    }
}
