//! A replay of the hostile inputs of the reliability issue (27): bad files,
//! impossible sizes, self-overwriting outputs, edited model files and
//! contradictory flags. Every one must end with exit code 2, one line on
//! stderr and no panic, and leave the working folder exactly as it was (no
//! file or folder created, modified or removed).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use ndarray::{Array1, Array2, Array3};
use ndarray_npy::write_npy;

mod common;
use common::{bin, fails, run};

/// Every path under `dir` with its size and modification time.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u64, SystemTime)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_dir() {
                stack.push(e.path());
            }
            out.insert(e.path(), (m.len(), m.modified().unwrap()));
        }
    }
    out
}

/// One FITS header-and-data unit: 80-character cards, `END`, padded to
/// 2880 bytes, then big-endian f64 data padded to 2880 bytes.
fn hdu(cards: &[(&str, String)], data: &[f64]) -> Vec<u8> {
    let mut h = String::new();
    for (k, v) in cards {
        h.push_str(&format!("{k:<8}= {v:>20}{:50}", ""));
    }
    h.push_str(&format!("{:<80}", "END"));
    while !h.len().is_multiple_of(2880) {
        h.push(' ');
    }
    let mut bytes = h.into_bytes();
    let mut d: Vec<u8> = data.iter().flat_map(|v| v.to_be_bytes()).collect();
    while !d.len().is_multiple_of(2880) {
        d.push(0);
    }
    bytes.extend(d);
    bytes
}

fn primary() -> Vec<u8> {
    hdu(
        &[
            ("SIMPLE", "T".into()),
            ("BITPIX", "8".into()),
            ("NAXIS", "0".into()),
            ("EXTEND", "T".into()),
        ],
        &[],
    )
}

/// A 2x2 float64 image extension named `name`, with `pcount`.
fn image(name: &str, pcount: &str) -> Vec<u8> {
    hdu(
        &[
            ("XTENSION", "'IMAGE   '".into()),
            ("BITPIX", "-64".into()),
            ("NAXIS", "2".into()),
            ("NAXIS1", "2".into()),
            ("NAXIS2", "2".into()),
            ("PCOUNT", pcount.into()),
            ("GCOUNT", "1".into()),
            ("EXTNAME", format!("'{name:<8}'")),
        ],
        &[0.01, -0.02, 0.03, 0.0],
    )
}

#[test]
fn hostile_inputs_fail_cleanly_and_touch_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let example = |name: &str| std::fs::read_to_string(examples.join(name)).unwrap();

    // Good inputs the bad cases start from.
    let sim = example("simulate.toml").replace("npix = 128", "npix = 32");
    std::fs::write(d.join("sim.toml"), &sim).unwrap();
    run(bin()
        .current_dir(d)
        .args(["-q", "simulate", "lensing", "--config", "sim.toml"])
        .args(["--out", "s0.npz"]));
    let theta = Array2::from_shape_fn((300, 2), |(i, j)| ((i * 7 + j * 3) % 17) as f64 / 17.0);
    write_npy(d.join("theta.npy"), &theta).unwrap();
    write_npy(d.join("x.npy"), &(&theta * 2.0 + 0.1)).unwrap();
    write_npy(d.join("xobs.npy"), &Array1::from(vec![0.5, 0.7])).unwrap();
    write_npy(
        d.join("theta3d.npy"),
        &Array3::from_shape_fn((300, 2, 1), |(i, j, _)| theta[[i, j]]),
    )
    .unwrap();
    run(bin()
        .current_dir(d)
        .args(["-q", "sbi", "train", "--theta", "theta.npy", "--x", "x.npy"])
        .args(["--method", "npe", "--max-epochs", "3", "--out", "model"]));
    // Hand-edited copies of the model: a negative standard deviation, and
    // the method switched without the network.
    let edit = |name: &str, file: &str, change: &dyn Fn(&mut serde_json::Value)| {
        let m = d.join(name);
        std::fs::create_dir(&m).unwrap();
        for f in ["estimator.json", "sbi.json", "weights.safetensors"] {
            std::fs::copy(d.join("model").join(f), m.join(f)).unwrap();
        }
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(m.join(file)).unwrap()).unwrap();
        change(&mut v);
        std::fs::write(m.join(file), serde_json::to_string_pretty(&v).unwrap()).unwrap();
    };
    edit("negsd", "estimator.json", &|v| {
        v["y_standardizer"]["std"][0] = (-0.5).into()
    });
    edit("swapped", "sbi.json", &|v| v["method"] = "nle".into());
    // FITS: a PCOUNT whose data size overflows, and two HDUs of one name.
    std::fs::write(
        d.join("pcount.fits"),
        [primary(), image("E1", "2305843009213693697")].concat(),
    )
    .unwrap();
    std::fs::write(
        d.join("dup.fits"),
        [
            primary(),
            image("E1", "0"),
            image("E1", "0"),
            image("E2", "0"),
        ]
        .concat(),
    )
    .unwrap();
    // Configs with impossible sizes and work.
    let pm = example("pm.toml");
    let cfg = |name: &str, text: String| std::fs::write(d.join(name), text).unwrap();
    cfg(
        "pm2048.toml",
        "[box]\nn_mesh = 2048\nn_particles = 1024\nbox_size = 1000.0\n".into(),
    );
    cfg("steps.toml", pm.replacen("\nn = ", "\nn = 100000 #", 1));
    cfg("big.toml", sim.replace("npix = 32", "npix = 8192"));
    cfg(
        "sigma8.toml",
        "[cosmology]\nsigma8 = 1e-200\n[power]\nk = [0.1, 1.0]\nz = [0.0]\n".into(),
    );
    let sample = example("sample.toml");
    cfg(
        "warmup.toml",
        sample.replace("warmup = 500", "warmup = 100000000000"),
    );
    cfg(
        "warmupf.toml",
        sample.replace("warmup = 500", "warmup = 1e11"),
    );
    assert!(std::fs::read_to_string(d.join("warmup.toml")).unwrap() != sample);

    let before = snapshot(d);
    let cases: &[(&[&str], &str)] = &[
        // outputs that would overwrite an input
        (
            &[
                "massmap", "--method", "ks", "--input", "s0.npz", "--out", "s0.npz",
            ],
            "would be overwritten",
        ),
        (
            &[
                "sbi",
                "sample",
                "--model",
                "model",
                "--x-obs",
                "xobs.npy",
                "--out",
                "xobs.npy",
                "--num-samples",
                "10",
            ],
            "would be overwritten",
        ),
        // binary readers
        (
            &[
                "massmap",
                "--method",
                "ks",
                "--input",
                "pcount.fits",
                "--out",
                "k.npz",
            ],
            "pcount.fits",
        ),
        (
            &[
                "massmap", "--method", "ks", "--input", "dup.fits", "--out", "k.npz",
            ],
            "two HDUs are named E1",
        ),
        // too big for memory: refused before allocating
        (
            &["pm", "run", "--config", "pm2048.toml", "--out", "pm"],
            "needs about",
        ),
        (
            &[
                "--max-memory",
                "4G",
                "simulate",
                "lensing",
                "--config",
                "big.toml",
                "--out",
                "big.npz",
            ],
            "needs about",
        ),
        (
            &[
                "sbi",
                "train",
                "--theta",
                "theta.npy",
                "--x",
                "x.npy",
                "--method",
                "npe",
                "--transforms",
                "100000",
                "--hidden",
                "100000",
                "--out",
                "huge",
            ],
            "needs about",
        ),
        // unbounded work
        (
            &["pm", "run", "--config", "steps.toml", "--out", "pm"],
            "at most 10000 steps",
        ),
        (
            &["sample", "--config", "warmup.toml", "--out", "chain"],
            "warmup",
        ),
        (
            &["sample", "--config", "warmupf.toml", "--out", "chain"],
            "warmupf.toml:",
        ),
        // garbage that used to be written with exit 0
        (
            &["cosmology", "--config", "sigma8.toml", "--out", "c.npz"],
            "sigma8",
        ),
        // errors blamed on the right flag
        (
            &[
                "massmap",
                "--method",
                "wiener",
                "--input",
                "s0.npz",
                "--out",
                "k.npz",
                "--pixel-arcmin",
                "nan",
            ],
            "--pixel-arcmin",
        ),
        // silently accepted before
        (
            &[
                "-q", "-vvv", "simulate", "lensing", "--config", "sim.toml", "--out", "s1.npz",
            ],
            "cannot be used with",
        ),
        (
            &[
                "sbi",
                "train",
                "--theta",
                "theta3d.npy",
                "--x",
                "x.npy",
                "--method",
                "npe",
                "--out",
                "m3",
            ],
            "expected [N, dim_theta]",
        ),
        (
            &[
                "sbi",
                "sample",
                "--model",
                "negsd",
                "--x-obs",
                "xobs.npy",
                "--out",
                "s.npy",
                "--num-samples",
                "10",
            ],
            "standard deviation",
        ),
        (
            &[
                "sbi",
                "sample",
                "--model",
                "swapped",
                "--x-obs",
                "xobs.npy",
                "--out",
                "s.npy",
                "--num-samples",
                "10",
            ],
            "the file was edited",
        ),
        // devices this build lacks (the CI build has only the CPU ones)
        (
            &[
                "--device",
                "cuda",
                "sbi",
                "sample",
                "--model",
                "model",
                "--x-obs",
                "xobs.npy",
                "--out",
                "s.npy",
                "--num-samples",
                "10",
            ],
            if cfg!(feature = "cuda") {
                "is not available on this machine"
            } else {
                "device 'cuda' is not compiled into this build (rebuild with --features cuda); this build supports: cpu, flex"
            },
        ),
        (
            &["--device", "tpu", "nn", "bench", "--json", "t.json"],
            "unknown device 'tpu'; this build supports: cpu, flex",
        ),
    ];
    for (args, needle) in cases {
        let t0 = Instant::now();
        let msg = fails(bin().current_dir(d).args(*args), needle);
        let seconds = t0.elapsed().as_secs_f64();
        println!(
            "{seconds:5.2} s  cosmodiff {}\n         {}",
            args.join(" "),
            msg.trim()
        );
        if *needle == "needs about" {
            // the criterion is 5 s; a debug build under load gets slack
            assert!(seconds < 30.0, "memory refusal took {seconds} s");
        }
        assert_eq!(
            snapshot(d),
            before,
            "cosmodiff {} changed the folder",
            args.join(" ")
        );
    }
}
