//! `cosmodiff sbi train` / `sbi sample` end to end on a conjugate Gaussian
//! problem (theta ~ N(0, 0.1 I_2), x ~ N(theta, 0.1 I_2), posterior
//! N(x / 2, 0.05 I_2)), the model directory layout, and one-line errors.

use ndarray::{Array1, Array2, Axis};
use ndarray_npy::{read_npy, write_npy};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

mod common;
use common::{bin, fails, run, training_resumes_to_the_same_weights};

fn data(dir: &std::path::Path, n: usize) {
    let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(4);
    let nd = Normal::new(0.0, 0.1f64.sqrt()).unwrap();
    let theta = Array2::from_shape_fn((n, 2), |_| nd.sample(&mut rng));
    let x = &theta + &Array2::from_shape_fn((n, 2), |_| nd.sample(&mut rng));
    write_npy(dir.join("theta.npy"), &theta).unwrap();
    write_npy(dir.join("x.npy"), &x.mapv(|v| v as f32)).unwrap();
    write_npy(dir.join("xo.npy"), &Array1::from(vec![0.3, -0.2])).unwrap();
    std::fs::write(
        dir.join("prior.toml"),
        "[[param]]\nname = \"a\"\nprior = \"normal\"\nmean = 0.0\nsd = 0.316227766\n\
         [[param]]\nname = \"b\"\nprior = \"normal\"\nmean = 0.0\nsd = 0.316227766\n",
    )
    .unwrap();
}

#[test]
fn npe_and_nle_train_then_sample() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    data(p, 2000);
    for (method, flow) in [("npe", "maf"), ("nle", "maf")] {
        let model = p.join(format!("model_{method}"));
        run(bin()
            .args(["-q", "sbi", "train", "--theta"])
            .arg(p.join("theta.npy"))
            .arg("--x")
            .arg(p.join("x.npy"))
            .args([
                "--method", method, "--flow", flow, "--lr", "0.002", "--seed", "1", "--out",
            ])
            .arg(&model)
            .arg("--prior")
            .arg(p.join("prior.toml")));
        for f in [
            "weights.safetensors",
            "estimator.json",
            "sbi.json",
            "loss.png",
        ] {
            assert!(model.join(f).exists(), "{method}: {f} missing");
        }
        let out = p.join(format!("samples_{method}.npy"));
        run(bin()
            .args(["-q", "sbi", "sample", "--model"])
            .arg(&model)
            .arg("--x-obs")
            .arg(p.join("xo.npy"))
            .args(["--num-samples", "2000", "--seed", "3", "--out"])
            .arg(&out));
        let s: Array2<f64> = read_npy(&out).unwrap();
        assert_eq!(s.dim(), (2000, 2));
        let m = s.mean_axis(Axis(0)).unwrap();
        let sd = s.std_axis(Axis(0), 1.0);
        println!("{method}: mean {m} sd {sd} (exact [0.15, -0.1], 0.224)");
        assert!(
            (m[0] - 0.15).abs() < 0.06 && (m[1] + 0.1).abs() < 0.06,
            "{method}: mean {m}"
        );
        assert!(
            sd.iter().all(|&v| (v / 0.2236 - 1.0).abs() < 0.2),
            "{method}: sd {sd}"
        );
    }
}

#[test]
fn bounding_box_prior_and_errors() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    data(p, 300);
    let model = p.join("m");
    // twice into the same directory: the second run rewrites the model
    for _ in 0..2 {
        run(bin()
            .args(["-q", "sbi", "train", "--theta"])
            .arg(p.join("theta.npy"))
            .arg("--x")
            .arg(p.join("x.npy"))
            .args([
                "--method",
                "npe",
                "--flow",
                "realnvp",
                "--max-epochs",
                "5",
                "--out",
            ])
            .arg(&model));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(model.join("weights.safetensors"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644, "weights readable by others");
    }
    let meta = std::fs::read_to_string(model.join("sbi.json")).unwrap();
    assert!(
        meta.contains("\"uniform\""),
        "bounding-box prior not recorded: {meta}"
    );
    // NPE samples stay inside the bounding-box prior.
    let out = p.join("s.npy");
    run(bin()
        .args(["-q", "sbi", "sample", "--model"])
        .arg(&model)
        .arg("--x-obs")
        .arg(p.join("xo.npy"))
        .args(["--num-samples", "500", "--out"])
        .arg(&out));
    let s: Array2<f64> = read_npy(&out).unwrap();
    let th: Array2<f64> = read_npy(p.join("theta.npy")).unwrap();
    for j in 0..2 {
        let lo = th.column(j).iter().cloned().fold(f64::INFINITY, f64::min);
        let hi = th
            .column(j)
            .iter()
            .cloned()
            .fold(f64::NEG_INFINITY, f64::max);
        assert!(s.column(j).iter().all(|&v| v >= lo && v <= hi));
    }

    write_npy(p.join("x_short.npy"), &Array2::<f64>::zeros((10, 2))).unwrap();
    // `sbi train` with theta.npy, the given x file and options: fails with `needle`.
    let train_fails = |x: &str, opts: &[&str], out: &str, needle: &str| {
        fails(
            bin()
                .args(["sbi", "train", "--theta"])
                .arg(p.join("theta.npy"))
                .arg("--x")
                .arg(p.join(x))
                .args(opts)
                .arg("--out")
                .arg(p.join(out)),
            needle,
        );
    };
    train_fails(
        "x_short.npy",
        &["--method", "npe"],
        "bad",
        "300 simulations but --x has 10",
    );
    train_fails("x.npy", &["--method", "abc"], "bad", "unknown method 'abc'");
    train_fails(
        "x.npy",
        &["--method", "npe", "--weight-decay", "nan"],
        "bad",
        "weight decay must be finite",
    );
    std::fs::write(p.join("a_file"), "").unwrap();
    train_fails(
        "x.npy",
        &["--method", "npe"],
        "a_file",
        "is a file: the outputs are written into a folder",
    );
    train_fails(
        "x.npy",
        &["--method", "npe", "--flow", "glow"],
        "bad",
        "unknown flow 'glow'",
    );
    train_fails(
        "x.npy",
        &["--method", "npe", "--summary-dim", "2"],
        "bad",
        "a summary dimension needs an embedding network",
    );
    train_fails(
        "x.npy",
        &["--method", "nle", "--bins", "4"],
        "bad",
        "bins applies to spline flows (nsf, nsf_ar), not maf",
    );
    // `sbi sample` of 10 draws: model, observation, output -> fails with `needle`.
    let sample_fails = |model: &std::path::Path, x_obs: &str, out: &str, needle: &str| {
        fails(
            bin()
                .args(["sbi", "sample", "--model"])
                .arg(model)
                .arg("--x-obs")
                .arg(p.join(x_obs))
                .args(["--num-samples", "10", "--out"])
                .arg(p.join(out)),
            needle,
        );
    };
    sample_fails(&model, "xo.npy", "o.npz", "written as .npy");
    write_npy(p.join("xo3.npy"), &Array1::from(vec![0.1, 0.2, 0.3])).unwrap();
    sample_fails(&model, "xo3.npy", "o.npy", "the model was trained on 2");
    sample_fails(&p.join("nope"), "xo.npy", "o.npy", "sbi.json");
    // --out naming the observation: refused before any work, input intact.
    let before = std::fs::read(p.join("xo.npy")).unwrap();
    sample_fails(&model, "xo.npy", "xo.npy", "also the --x-obs file");
    assert_eq!(std::fs::read(p.join("xo.npy")).unwrap(), before);
    fails(
        bin()
            .args([
                "sbi",
                "benchmark",
                "--task",
                "moons",
                "--num-simulations",
                "1000",
                "--method",
                "npe",
                "--out",
            ])
            .arg(p.join("b")),
        "two_moons",
    );
    fails(
        bin()
            .args([
                "sbi",
                "benchmark",
                "--task",
                "two_moons",
                "--num-simulations",
                "1000",
                "--method",
                "npe",
                "--observations",
                "1,1",
                "--out",
            ])
            .arg(p.join("b")),
        "1 is listed twice",
    );
}

/// `sbi train` interrupted by Ctrl-C (checkpoint after every batch) and
/// rerun ends with the same weights, byte for byte, as an uninterrupted
/// run with the same seed.
#[test]
fn an_interrupted_training_resumes_to_the_same_weights() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    data(p, 600);
    let train = |out: &std::path::Path| {
        let mut c = bin();
        c.args(["sbi", "train", "--theta"])
            .arg(p.join("theta.npy"))
            .arg("--x")
            .arg(p.join("x.npy"))
            .args(["--method", "npe", "--flow", "nsf", "--seed", "2"])
            .args(["--checkpoint-seconds", "0", "--out"])
            .arg(out);
        c
    };
    training_resumes_to_the_same_weights(train, p);
}
