//! The move of the workflows into `cosmodiff-pipeline` changes no number:
//! each workflow below is run with fixed seeds and every array it writes
//! (all of `.npz`, `.npy`) is compared bit for bit with a digest recorded by
//! the binary from before the move (`tests/golden/digests.json`).
//!
//! The digest of an array is SHA-256 over its name, shape and little-endian
//! values as stored (f64, or f32 read as f32), so any changed bit, shape or
//! dtype shows. Re-recording, after a change that is meant to move numbers,
//! is `COSMODIFF_RECORD_GOLDEN=1 cargo test -p cosmodiff-cli --test cli_golden`
//! (with `COSMODIFF_GOLDEN_BIN=path/to/cosmodiff` to record another binary);
//! the commit that does it says which outputs changed and by how much.
//! Arrays whose bits depend on the CPU (trained networks: gemm picks AVX-512
//! kernels where it can) may list the digests of other machine kinds, with
//! the reason, in `tests/golden/digests_alt.json`.
use ndarray::{ArrayD, IxDyn};
use ndarray_npy::NpzReader;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

fn bin() -> Command {
    match std::env::var_os("COSMODIFF_GOLDEN_BIN") {
        Some(p) => Command::new(p),
        None => common::bin(),
    }
}

fn run(args: &[&str], paths: &[(&str, &Path)]) {
    let mut c = bin();
    c.arg("-q").args(args);
    for (flag, p) in paths {
        c.arg(flag).arg(p);
    }
    common::run(&mut c);
}

fn digest(name: &str, shape: &[usize], bytes: impl Iterator<Item = u8>) -> String {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    for s in shape {
        h.update((*s as u64).to_le_bytes());
    }
    h.update(bytes.collect::<Vec<u8>>());
    format!("{:x}", h.finalize())
}

fn f64_digest(name: &str, a: &ArrayD<f64>) -> String {
    digest(name, a.shape(), a.iter().flat_map(|v| v.to_le_bytes()))
}

fn f32_digest(name: &str, a: &ArrayD<f32>) -> String {
    digest(
        &format!("{name}:f32"),
        a.shape(),
        a.iter().flat_map(|v| v.to_le_bytes()),
    )
}

/// Digests of every array of an `.npz` (float64, float32 or int64 arrays).
fn npz_digests(p: &Path, label: &str, out: &mut BTreeMap<String, String>) {
    let mut z = NpzReader::new(std::fs::File::open(p).unwrap()).unwrap();
    for n in z.names().unwrap() {
        let key = format!("{label}:{n}");
        let d = if let Ok(a) = z.by_name::<ndarray::OwnedRepr<f64>, IxDyn>(&n) {
            f64_digest(&n, &a)
        } else if let Ok(a) = z.by_name::<ndarray::OwnedRepr<f32>, IxDyn>(&n) {
            f32_digest(&n, &a)
        } else if let Ok(a) = z.by_name::<ndarray::OwnedRepr<i64>, IxDyn>(&n) {
            digest(&n, a.shape(), a.iter().flat_map(|v| v.to_le_bytes()))
        } else if let Ok(a) = z.by_name::<ndarray::OwnedRepr<bool>, IxDyn>(&n) {
            digest(&n, a.shape(), a.iter().map(|v| *v as u8))
        } else {
            // string arrays (parameter names) are not numbers: skipped
            continue;
        };
        out.insert(key, d);
    }
}

fn npy_digest(p: &Path, label: &str, out: &mut BTreeMap<String, String>) {
    let d = if let Ok(a) = ndarray_npy::read_npy::<_, ArrayD<f64>>(p) {
        f64_digest(label, &a)
    } else {
        let a: ArrayD<f32> = ndarray_npy::read_npy(p).unwrap();
        f32_digest(label, &a)
    };
    out.insert(label.to_string(), d);
}

const SIM64: &str = r#"
[map]
npix = 64
pixel_arcmin = 2.0
[[source]]
nz = { kind = "smail", a = 1.0, b = 2.0, z0 = 1.0 }
sigma_e = 0.26
gals_per_arcmin2 = 30.0
[field]
kind = "lognormal"
seed = 7
"#;

const PM: &str = "[box]\nn_mesh = 32\nn_particles = 16\nbox_size = 128.0\n[ic]\nseed = 3\n\
[steps]\nn = 3\nsnapshots = [0.5, 1.0]\n";

const SAMPLE: &str = r#"
[[tracer]]
kind = "weak_lensing"
nz = { kind = "smail", a = 1.0, b = 2.0, z0 = 1.0 }
[cl]
ell = [20.0, 50.0, 120.0, 300.0, 700.0]
f_sky = 0.1
[data]
fiducial = true
[[param]]
name = "sigma8"
prior = "uniform"
low = 0.5
high = 1.2
[sampler]
chains = 2
warmup = 100
draws = 100
seed = 4
"#;

/// Every workflow's arrays, by `workflow:file:array`.
fn digests(d: &Path) -> BTreeMap<String, String> {
    let mut g = BTreeMap::new();
    let p = |name: &str| -> PathBuf { d.join(name) };

    run(
        &["demo", "--quick", "--seed", "1"],
        &[("--out", &p("demo"))],
    );
    npz_digests(&p("demo/demo.npz"), "demo", &mut g);

    std::fs::write(p("sim.toml"), SIM64).unwrap();
    run(
        &["simulate", "lensing"],
        &[("--config", &p("sim.toml")), ("--out", &p("sim.npz"))],
    );
    npz_digests(&p("sim.npz"), "simulate", &mut g);
    run(
        &["massmap", "--method", "ks", "--smoothing-arcmin", "4"],
        &[("--input", &p("sim.npz")), ("--out", &p("ks.npz"))],
    );
    npz_digests(&p("ks.npz"), "massmap_ks", &mut g);
    run(
        &[
            "massmap",
            "--method",
            "wiener",
            "--cl-theory",
            "--samples",
            "4",
            "--seed",
            "3",
        ],
        &[("--input", &p("sim.npz")), ("--out", &p("wiener.npz"))],
    );
    npz_digests(&p("wiener.npz"), "massmap_wiener", &mut g);
    run(
        &[
            "massmap",
            "--method",
            "diffusion",
            "--samples",
            "4",
            "--steps",
            "20",
            "--seed",
            "5",
        ],
        &[("--input", &p("sim.npz")), ("--out", &p("diffusion.npz"))],
    );
    npz_digests(&p("diffusion.npz"), "massmap_diffusion", &mut g);

    std::fs::write(p("pm.toml"), PM).unwrap();
    run(
        &["pm", "run"],
        &[("--config", &p("pm.toml")), ("--out", &p("pm"))],
    );
    for f in ["density", "positions"] {
        npy_digest(&p(&format!("pm/{f}.npy")), &format!("pm:{f}"), &mut g);
    }
    npz_digests(&p("pm/snapshot.npz"), "pm:snapshot", &mut g);
    let pk = std::fs::read(p("pm/pk.txt")).unwrap();
    g.insert("pm:pk.txt".into(), digest("pk.txt", &[], pk.into_iter()));

    std::fs::write(p("sample.toml"), SAMPLE).unwrap();
    run(
        &["sample", "--map"],
        &[("--config", &p("sample.toml")), ("--out", &p("chains"))],
    );
    npz_digests(&p("chains/draws.npz"), "sample", &mut g);

    // sbi: a deterministic toy (x = theta + a fixed pattern), 400 pairs.
    let n = 400;
    let theta =
        ndarray::Array2::from_shape_fn((n, 2), |(i, j)| ((i * 7 + j * 3) % 97) as f64 / 48.5 - 1.0);
    let x = ndarray::Array2::from_shape_fn((n, 2), |(i, j)| {
        theta[[i, j]] + 0.1 * (((i * 13 + j * 5) % 31) as f64 / 15.5 - 1.0)
    });
    ndarray_npy::write_npy(p("theta.npy"), &theta).unwrap();
    ndarray_npy::write_npy(p("x.npy"), &x).unwrap();
    ndarray_npy::write_npy(p("x_obs.npy"), &ndarray::arr1(&[0.2, -0.3])).unwrap();
    run(
        &[
            "sbi",
            "train",
            "--method",
            "npe",
            "--flow",
            "realnvp",
            "--max-epochs",
            "5",
            "--seed",
            "2",
        ],
        &[
            ("--theta", &p("theta.npy")),
            ("--x", &p("x.npy")),
            ("--out", &p("model")),
        ],
    );
    run(
        &["sbi", "sample", "--num-samples", "200", "--seed", "6"],
        &[
            ("--model", &p("model")),
            ("--x-obs", &p("x_obs.npy")),
            ("--out", &p("post.npy")),
        ],
    );
    npy_digest(&p("post.npy"), "sbi:samples", &mut g);
    g
}

#[test]
fn workflow_outputs_are_bit_identical_to_the_recorded_ones() {
    let dir = tempfile::tempdir().unwrap();
    // COSMODIFF_GOLDEN_KEEP=DIR keeps the outputs there, to measure by how
    // much two binaries differ (tests/golden/compare.py A B).
    let keep = std::env::var_os("COSMODIFF_GOLDEN_KEEP").map(PathBuf::from);
    let out = keep.clone().unwrap_or_else(|| dir.path().to_path_buf());
    std::fs::create_dir_all(&out).unwrap();
    let got = digests(&out);
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/digests.json");
    if std::env::var_os("COSMODIFF_RECORD_GOLDEN").is_some() {
        std::fs::write(&path, serde_json::to_string_pretty(&got).unwrap() + "\n").unwrap();
        eprintln!("recorded {} digests in {}", got.len(), path.display());
        return;
    }
    let want: BTreeMap<String, String> =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    // Outputs of trained networks whose bits depend on the CPU (the gemm
    // crate picks AVX-512 kernels where the CPU has them, which round the
    // matrix products differently): the digests from other machine kinds,
    // each with the reason (tests/golden/digests_alt.json).
    // Each entry: {"digests": [...], "why": "..."}.
    let alt: BTreeMap<String, serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(path.with_file_name("digests_alt.json")).unwrap(),
    )
    .unwrap();
    let accepted = |k: &String, v: &String| {
        let other = alt.get(k).and_then(|a| a["digests"].as_array());
        got.get(k) == Some(v)
            || other.is_some_and(|o| {
                o.iter()
                    .any(|d| got.get(k).map(|g| g.as_str()) == d.as_str())
            })
    };
    let changed: Vec<(&String, Option<&String>)> = want
        .iter()
        .filter(|(k, v)| !accepted(k, v))
        .map(|(k, _)| (k, got.get(k)))
        .collect();
    let extra: Vec<&String> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    assert!(
        changed.is_empty() && extra.is_empty(),
        "{} of {} recorded arrays differ or are missing (name, digest now): {changed:?}; new arrays: {extra:?}",
        changed.len(),
        want.len()
    );
    eprintln!(
        "{} arrays bit-identical to the recorded outputs",
        want.len()
    );
}
