//! `cosmodiff simulate lensing` then `cosmodiff massmap`: shapes, the theory
//! C_ell against `cosmodiff cosmology`, and the Wiener map beating raw noise.
use std::path::Path;

mod common;
use common::{bin, fails, read};

const SIM: &str = r#"
[cosmology]
sigma8 = 0.8
[map]
npix = 32
pixel_arcmin = 2.0
[[source]]
nz = { kind = "smail", a = 1.0, b = 2.0, z0 = 1.0 }
sigma_e = 0.26
gals_per_arcmin2 = 30.0
[[source]]
nz = { kind = "smail", a = 1.0, b = 2.0, z0 = 0.5 }
sigma_e = 0.26
gals_per_arcmin2 = 30.0
[field]
kind = "lognormal"
seed = 3
"#;

#[test]
fn simulate_then_massmap() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("sim.toml");
    std::fs::write(&cfg, SIM).unwrap();
    let out = dir.path().join("sim.npz");
    assert!(bin()
        .args(["simulate", "lensing", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap()
        .success());
    for k in ["kappa", "gamma1", "gamma2", "e1", "e2", "noise_std"] {
        assert_eq!(read(&out, k).shape(), &[2, 32, 32], "{k}");
    }
    let cl = read(&out, "cl_theory");
    assert_eq!(cl.shape()[0], 3);
    // The same theory from `cosmodiff cosmology`.
    let ell = read(&out, "ell");
    let ell_s = format!(
        "[{}]",
        ell.iter()
            .map(|v| format!("{v:.17e}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let ccfg = dir.path().join("c.toml");
    std::fs::write(
        &ccfg,
        format!(
            "[cosmology]\nsigma8 = 0.8\n[[tracer]]\nkind = \"weak_lensing\"\nnz = {{ kind = \"smail\", a = 1.0, b = 2.0, z0 = 1.0 }}\n[[tracer]]\nkind = \"weak_lensing\"\nnz = {{ kind = \"smail\", a = 1.0, b = 2.0, z0 = 0.5 }}\n[cl]\nell = {ell_s}\n"
        ),
    )
    .unwrap();
    let cout = dir.path().join("c.npz");
    assert!(bin()
        .args(["cosmology", "--config"])
        .arg(&ccfg)
        .arg("--out")
        .arg(&cout)
        .status()
        .unwrap()
        .success());
    let cl2 = read(&cout, "cl");
    for (a, b) in cl.iter().zip(cl2.iter()) {
        assert!((a / b - 1.0).abs() < 1e-12);
    }
    // Noise level: sigma_e / sqrt(n A_pix) = 0.26 / sqrt(30 * 4).
    let ns = read(&out, "noise_std");
    assert!((ns[[0, 0, 0]] - 0.26 / (120f64).sqrt()).abs() < 1e-12);
    // Wiener with the theory prior beats Kaiser-Squires on the noisy maps.
    let w = dir.path().join("w.npz");
    let ks = dir.path().join("ks.npz");
    assert!(bin()
        .args([
            "massmap",
            "--method",
            "wiener",
            "--cl-theory",
            "--samples",
            "2",
            "--input"
        ])
        .arg(&out)
        .arg("--out")
        .arg(&w)
        .status()
        .unwrap()
        .success());
    assert!(bin()
        .args(["massmap", "--method", "ks", "--input"])
        .arg(&out)
        .arg("--out")
        .arg(&ks)
        .status()
        .unwrap()
        .success());
    let kappa = read(&out, "kappa");
    let rms = |p: &Path| {
        let k = read(p, "kappa_e");
        (k.iter()
            .zip(kappa.iter())
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f64>()
            / k.len() as f64)
            .sqrt()
    };
    assert!(rms(&w) < rms(&ks), "wiener {} ks {}", rms(&w), rms(&ks));
    // An --out naming the --input is refused before any work; the input and
    // an earlier good output stay as they were.
    let (input_before, ks_before) = (std::fs::read(&out).unwrap(), std::fs::read(&ks).unwrap());
    let same = dir.path().join(".").join("sim.npz");
    fails(
        bin()
            .args(["massmap", "--method", "ks", "--input"])
            .arg(&out)
            .arg("--out")
            .arg(&same),
        "also the --input file",
    );
    fails(
        bin()
            .args([
                "massmap",
                "--method",
                "ks",
                "--pixel-arcmin",
                "nan",
                "--input",
            ])
            .arg(&out)
            .arg("--out")
            .arg(&ks),
        "pixel",
    );
    assert_eq!(std::fs::read(&out).unwrap(), input_before);
    assert_eq!(std::fs::read(&ks).unwrap(), ks_before);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".partial-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn simulate_rejects_bad_config() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("sim.toml");
    let gaussian_with_shift = SIM
        .replace("kind = \"lognormal\"", "kind = \"gaussian\"")
        .replace(
            "gals_per_arcmin2 = 30.0\n[field]",
            "gals_per_arcmin2 = 30.0\nlognormal_shift = 0.5\n[field]",
        );
    for (text, needle) in [
        (SIM.replace("npix = 32", "npix = 3"), "npix"),
        (
            gaussian_with_shift,
            "lognormal_shift applies to [field] kind = \"lognormal\" only",
        ),
        (
            SIM.replace(
                "gals_per_arcmin2 = 30.0\n[field]",
                "gals_per_arcmin2 = 30.0\nlognormal_shift = 0.0\n[field]",
            ),
            "[[source]] #2: lognormal_shift = 0 must be > 0",
        ),
    ] {
        std::fs::write(&cfg, text).unwrap();
        fails(
            bin()
                .args(["simulate", "lensing", "--config"])
                .arg(&cfg)
                .arg("--out")
                .arg(dir.path().join("x.npz")),
            needle,
        );
    }
}
