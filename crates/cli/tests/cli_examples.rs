//! The example configs under examples/ (referenced by the README) run as shown
//! (sampling shortened), and every subcommand's --help mentions units.
use std::path::PathBuf;

mod common;
use common::bin;

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
}

#[test]
fn cosmology_and_simulate_examples_run() {
    let dir = tempfile::tempdir().unwrap();
    let o = bin()
        .args(["cosmology", "--config"])
        .arg(example("cosmology.toml"))
        .arg("--out")
        .arg(dir.path().join("c.npz"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = bin()
        .args(["-q", "simulate", "lensing", "--config"])
        .arg(example("simulate.toml"))
        .arg("--out")
        .arg(dir.path().join("s.npz"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn sample_example_runs_short() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(example("sample.toml")).unwrap();
    let short = text
        .replace("chains = 4", "chains = 2")
        .replace("warmup = 500", "warmup = 100")
        .replace("draws = 1000", "draws = 100");
    let cfg = dir.path().join("s.toml");
    std::fs::write(&cfg, short).unwrap();
    let out = dir.path().join("chains");
    let o = bin()
        .args(["-q", "sample", "--map", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in ["draws.npz", "summary.json", "corner.png", "map.json"] {
        assert!(out.join(f).exists(), "{f}");
    }
    // The MAP of the fiducial data is the fiducial cosmology; the Laplace
    // errors match the Fisher forecast of the reference (0.0072, 0.0110 at
    // 50 ells; these 15 ells give similar numbers).
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("map.json")).unwrap()).unwrap();
    let x = m["x"].as_array().unwrap();
    assert!((x[0].as_f64().unwrap() - 0.2589).abs() < 1e-4, "{x:?}");
    assert!((x[1].as_f64().unwrap() - 0.8159).abs() < 1e-4, "{x:?}");
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert!(s["params"][0]["r_hat"].as_f64().is_some());
}

#[test]
fn help_is_complete_with_units() {
    for args in [
        vec!["--help"],
        vec!["cosmology", "--help"],
        vec!["simulate", "lensing", "--help"],
        vec!["massmap", "--help"],
        vec!["sample", "--help"],
        vec!["pm", "run", "--help"],
        vec!["demo", "--help"],
    ] {
        let o = bin().args(&args).output().unwrap();
        assert!(o.status.success(), "{args:?}");
        let t = String::from_utf8(o.stdout).unwrap();
        assert!(t.len() > 200, "{args:?}: {t}");
    }
    let t = String::from_utf8(bin().arg("--help").output().unwrap().stdout).unwrap();
    assert!(t.contains("Mpc/h") && t.contains("arcmin"));
    let v = String::from_utf8(bin().arg("--version").output().unwrap().stdout).unwrap();
    assert!(v.starts_with("cosmodiff "));
}
