//! `cosmodiff lensing-cosmology` with the interface of the sbi_lens issue
//! exactly as written: `simulate` writes theta, theta_names, kappa_obs and
//! kappa; `infer --method cl` writes samples.npy and summary.json with
//! mean, sd, fom, n_simulations, wall_seconds; `compare` puts runs beside the
//! reference chain; bad input is one line, exit 2, nothing written.
use std::path::Path;

mod common;
use common::{bin, fails, read, run};

fn shared(f: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/reference/sbi_lens")
        .join(f)
}

#[test]
fn simulate_writes_the_benchmark_layout() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sims.npz");
    run(bin()
        .args([
            "lensing-cosmology",
            "simulate",
            "--setup",
            "sbi-lens-128",
            "--n",
            "3",
            "--seed",
            "4",
            "--out",
        ])
        .arg(&out));
    let theta = read(&out, "theta");
    assert_eq!(theta.shape(), &[3, 2]);
    let k = read(&out, "kappa");
    let ko = read(&out, "kappa_obs");
    assert_eq!(k.shape(), &[3, 128, 128, 1]);
    assert_eq!(ko.shape(), k.shape());
    // Noise of sigma_e / sqrt(n_gal A_pix) = 0.2 / sqrt(30 (300/128)^2) = 0.01558.
    let n = ko.len() as f64;
    let resid = (&ko - &k).mapv(|v| v * v).sum() / n;
    assert!(
        (resid.sqrt() / 0.015580 - 1.0).abs() < 0.02,
        "{}",
        resid.sqrt()
    );
    // theta_names as numpy unicode strings.
    let bytes = std::fs::read(&out).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        text.contains("'descr': '<U32'"),
        "theta_names is not a unicode array"
    );
    // Same seed, same draws.
    let out2 = dir.path().join("again.npz");
    run(bin()
        .args([
            "lensing-cosmology",
            "simulate",
            "--setup",
            "sbi-lens-128",
            "--n",
            "3",
            "--seed",
            "4",
            "--out",
        ])
        .arg(&out2));
    assert_eq!(read(&out2, "kappa_obs"), ko);
}

#[test]
fn cl_posterior_on_the_128_map() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cl");
    run(bin()
        .args([
            "lensing-cosmology",
            "infer",
            "--setup",
            "sbi-lens-128",
            "--method",
            "cl",
            "--warmup",
            "150",
            "--draws",
            "150",
            "--quiet",
            "--data",
        ])
        .arg(shared("m_data__128N_5ms_30gpa_0.2se.npy"))
        .arg("--out")
        .arg(&out));
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    for k in ["mean", "sd", "fom", "n_simulations", "wall_seconds"] {
        assert!(s.get(k).is_some(), "summary.json lacks {k}");
    }
    let mean: Vec<f64> = serde_json::from_value(s["mean"].clone()).unwrap();
    // The reference full-field posterior mean is (0.340, 0.762); the C_ell
    // one is wider and within a few of its sds (0.03, 0.04) of it.
    assert!(
        (mean[0] - 0.34).abs() < 0.1 && (mean[1] - 0.76).abs() < 0.12,
        "{mean:?}"
    );
    let fom = s["fom"]["Omega_c,sigma8"].as_f64().unwrap();
    assert!(fom > 1000.0 && fom < 6000.0, "{fom}");
    let samples: ndarray::Array2<f64> = ndarray_npy::read_npy(out.join("samples.npy")).unwrap();
    assert_eq!(samples.shape(), &[300, 2]);
    assert!(out.join("corner.png").exists());
    // Side by side with the benchmark's full-field reference chain.
    let cmp = dir.path().join("cmp");
    run(bin()
        .args([
            "lensing-cosmology",
            "compare",
            "--setup",
            "sbi-lens-128",
            "--runs",
        ])
        .arg(&out)
        .arg("--reference")
        .arg(shared("posterior_full_field__128N_5ms_30gpa_0.2se.npy"))
        .arg("--out")
        .arg(&cmp));
    let c: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cmp.join("compare.json")).unwrap()).unwrap();
    let fom = c["methods"]["reference"]["fom"]["Omega_c,sigma8"]
        .as_f64()
        .unwrap();
    assert!((fom - 4004.0).abs() < 1.0, "{fom}");
    let acc = c["c2st"][0]["accuracy"].as_f64().unwrap();
    assert!((0.45..=1.0).contains(&acc), "{acc}");
    assert!(cmp.join("compare.png").exists());
    fails(
        bin()
            .args([
                "lensing-cosmology",
                "compare",
                "--setup",
                "lsst-y10",
                "--runs",
            ])
            .arg(&out)
            .arg("--out")
            .arg(&cmp),
        "expected [n >= 2, 6]",
    );
}

/// The learned-summary methods, tiny (a one-epoch compressor on 60
/// simulations): the interface and the files, not the quality (see
/// `crates/pipeline/tests/implicit_128.rs` and docs/lensing-cosmology.md).
#[test]
fn learned_summary_methods_write_samples_summary_models_and_coverage() {
    let dir = tempfile::tempdir().unwrap();
    let sims = dir.path().join("sims.npz");
    run(bin()
        .args([
            "lensing-cosmology",
            "simulate",
            "--setup",
            "sbi-lens-128",
            "--n",
            "60",
            "--out",
        ])
        .arg(&sims));
    let m128 = shared("m_data__128N_5ms_30gpa_0.2se.npy");
    let out = dir.path().join("mse");
    run(bin()
        .args([
            "lensing-cosmology",
            "infer",
            "--setup",
            "sbi-lens-128",
            "--method",
            "mse",
            "--epochs",
            "1",
            "--tarp",
            "10",
            "--draws",
            "500",
            "--quiet",
            "--data",
        ])
        .arg(&m128)
        .arg("--sims")
        .arg(&sims)
        .arg("--out")
        .arg(&out));
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    for k in ["mean", "sd", "fom", "wall_seconds", "tarp_mean_deviation"] {
        assert!(s.get(k).is_some(), "summary.json lacks {k}");
    }
    assert_eq!(s["n_simulations"], 60);
    assert_eq!(s["compression"], "mse");
    let samples: ndarray::Array2<f64> = ndarray_npy::read_npy(out.join("samples.npy")).unwrap();
    assert_eq!(samples.shape(), &[500, 2]);
    for f in [
        "corner.png",
        "coverage.png",
        "calibration.json",
        "compressor/compressor.json",
        "estimator/sbi.json",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    // VMIM with NLE on the summaries, training maps simulated internally.
    let out = dir.path().join("vmim");
    run(bin()
        .args([
            "lensing-cosmology",
            "infer",
            "--setup",
            "sbi-lens-128",
            "--method",
            "vmim",
            "--estimator",
            "nle",
            "--n-sims",
            "40",
            "--epochs",
            "1",
            "--tarp",
            "0",
            "--draws",
            "200",
            "--quiet",
            "--data",
        ])
        .arg(&m128)
        .arg("--out")
        .arg(&out));
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["n_simulations"], 40);
    assert_eq!(s["estimator"], "nle");
    assert!(s.get("tarp_mean_deviation").is_none());
    assert!(out.join("compressor/sbi.json").exists());
}

#[test]
fn bad_input_is_one_line_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    let m128 = shared("m_data__128N_5ms_30gpa_0.2se.npy");
    let infer = |setup: &str, method: &str, data: &Path| {
        let mut c = bin();
        c.args([
            "lensing-cosmology",
            "infer",
            "--setup",
            setup,
            "--method",
            method,
            "--data",
        ])
        .arg(data)
        .arg("--out")
        .arg(&out);
        c
    };
    fails(&mut infer("lsst-y10", "cl", &m128), "needs [256, 256, 5]");
    fails(&mut infer("sbi-lens-64", "cl", &m128), "unknown set-up");
    fails(&mut infer("sbi-lens-128", "hmc", &m128), "--method");
    fails(
        infer("sbi-lens-128", "vmim", &m128).args(["--estimator", "snpe"]),
        "--estimator",
    );
    fails(
        infer("sbi-lens-128", "mae", &m128).args(["--n-sims", "5"]),
        "--n-sims 5",
    );
    // NaN pixels.
    let nan = dir.path().join("nan.npy");
    let mut a: ndarray::Array2<f32> = ndarray_npy::read_npy(&m128).unwrap();
    a[[3, 5]] = f32::NAN;
    ndarray_npy::write_npy(&nan, &a).unwrap();
    fails(&mut infer("sbi-lens-128", "cl", &nan), "must be finite");
    // Simulations of the other set-up: theta has 6 columns, not 2.
    let sims = dir.path().join("lsst.npz");
    let mut npz = ndarray_npy::NpzWriter::new(std::fs::File::create(&sims).unwrap());
    npz.add_array("theta", &ndarray::Array2::<f64>::zeros((4, 6)))
        .unwrap();
    npz.add_array(
        "kappa_obs",
        &ndarray::Array4::<f64>::zeros((4, 128, 128, 1)),
    )
    .unwrap();
    npz.finish().unwrap();
    fails(
        infer("sbi-lens-128", "cl", &m128).arg("--sims").arg(&sims),
        "2 parameters",
    );
    assert!(!out.exists(), "an output directory was left behind");
    fails(
        bin()
            .args([
                "lensing-cosmology",
                "simulate",
                "--setup",
                "sbi-lens-128",
                "--n",
                "0",
                "--out",
            ])
            .arg(dir.path().join("x.npz")),
        "--n 0",
    );
}
