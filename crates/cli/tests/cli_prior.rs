//! `cosmodiff prior train` (simulator and `data = "maps.npz"` configs),
//! `cosmodiff massmap --method diffusion` with `--prior` and with the shipped
//! default model, `prior evaluate`, and one-line errors. Tiny maps and few
//! steps: this checks the interface and the files, not the accuracy (see
//! docs/diffusion.md for the validation runs).

use ndarray::{ArrayD, IxDyn};
use ndarray_npy::NpzWriter;

mod common;
use common::{bin, fails, read, run, training_resumes_to_the_same_weights};

const SIM: &str = r#"
[map]
npix = 16
pixel_arcmin = 2.0
[[source]]
nz = { kind = "smail", a = 2.0, b = 1.5, z0 = 0.64 }
sigma_e = 0.26
gals_per_arcmin2 = 30.0
[field]
kind = "lognormal"
seed = 3
"#;

const TRAIN: &str = r#"
[training]
n_maps = 16
steps = 4
batch_size = 8
[network]
channels = [8, 8]
embed_dim = 8
"#;

#[test]
fn prior_train_then_diffusion_massmap() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("prior.toml"), format!("{SIM}{TRAIN}")).unwrap();
    let model = d.join("model");
    run(bin()
        .args(["prior", "train", "--config"])
        .arg(d.join("prior.toml"))
        .arg("--out")
        .arg(&model));
    assert!(model.join("weights.safetensors").is_file());
    assert!(model.join("score_model.json").is_file());

    // Shear data on the same grid.
    std::fs::write(d.join("sim.toml"), SIM).unwrap();
    run(bin()
        .args(["simulate", "lensing", "--config"])
        .arg(d.join("sim.toml"))
        .arg("--out")
        .arg(d.join("sim.npz")));
    let out = d.join("post.npz");
    // `massmap --method diffusion` on sim.npz with the trained prior into `out`.
    let diffusion = |opts: &[&str]| {
        run(bin()
            .args(["-q", "massmap", "--method", "diffusion", "--input"])
            .arg(d.join("sim.npz"))
            .arg("--out")
            .arg(&out)
            .arg("--prior")
            .arg(&model)
            .args(opts));
    };
    for sampler in ["reverse-sde", "annealed-hmc"] {
        diffusion(&[
            "--samples",
            "3",
            "--seed",
            "1",
            "--steps",
            "3",
            "--sampler",
            sampler,
        ]);
        // One source bin ([1, 16, 16] input): [npix, npix] and [N, npix, npix].
        assert_eq!(read(&out, "kappa_mean").shape(), &[16, 16]);
        assert_eq!(read(&out, "kappa_std").shape(), &[16, 16]);
        assert_eq!(read(&out, "samples").shape(), &[3, 16, 16]);
        let sd = read(&out, "kappa_std");
        assert!(sd.iter().all(|v| v.is_finite() && *v > 0.0));
    }

    // Reverse SDE with an even --samples: antithetic pairs, whose pair means
    // agree far better than independent draws do (--independent).
    let pair_scatter = |extra: &[&str]| -> f64 {
        diffusion(&[&["--samples", "4", "--steps", "5"], extra].concat());
        let s = read(&out, "samples");
        let s = s.as_slice().unwrap();
        let np = 16 * 16;
        let x = |j: usize, i: usize| s[j * np + i];
        let (mut pairs, mut draws) = (0.0, 0.0);
        for i in 0..np {
            pairs += (0.5 * (x(0, i) + x(1, i)) - 0.5 * (x(2, i) + x(3, i))).powi(2);
            draws += (x(0, i) - x(2, i)).powi(2);
        }
        (pairs / draws).sqrt()
    };
    let anti = pair_scatter(&[]);
    let indep = pair_scatter(&["--independent"]);
    assert!(
        anti < 0.3 && indep > 0.4,
        "antithetic {anti}, independent {indep}"
    );
    // Wrong pixel scale / size: one-line errors.
    std::fs::write(d.join("sim32.toml"), SIM.replace("npix = 16", "npix = 32")).unwrap();
    run(bin()
        .args(["simulate", "lensing", "--config"])
        .arg(d.join("sim32.toml"))
        .arg("--out")
        .arg(d.join("sim32.npz")));
    let e = fails(
        bin()
            .args(["massmap", "--method", "diffusion", "--input"])
            .arg(d.join("sim32.npz"))
            .arg("--out")
            .arg(&out)
            .arg("--prior")
            .arg(&model),
        "",
    );
    assert!(e.contains("32x32") && e.contains("16x16"), "{e}");
    let e = fails(
        bin()
            .args(["massmap", "--method", "diffusion", "--input"])
            .arg(d.join("sim.npz"))
            .arg("--out")
            .arg(&out)
            .arg("--prior")
            .arg(d.join("missing")),
        "",
    );
    assert!(e.contains("--prior"), "{e}");

    // Evaluation on held-out simulations.
    let ev = d.join("eval");
    // `prior evaluate` on 2 held-out maps, 2 samples, 3 steps; returns
    // metrics.json (each call replaces the folder of the one before).
    let evaluate = |extra: &[&str]| -> serde_json::Value {
        run(bin()
            .args(["-q", "prior", "evaluate", "--overwrite", "--config"])
            .arg(d.join("prior.toml"))
            .arg("--out")
            .arg(&ev)
            .arg("--prior")
            .arg(&model)
            .args(["--maps", "2", "--samples", "2", "--steps", "3"])
            .args(extra));
        serde_json::from_str(&std::fs::read_to_string(ev.join("metrics.json")).unwrap()).unwrap()
    };
    let m = evaluate(&["--prior-samples", "2"]);
    for k in ["kaiser_squires", "wiener", "diffusion"] {
        assert!(m["methods"][k]["rmse"].as_f64().unwrap() > 0.0, "{k}");
    }
    assert!(ev.join("maps.png").is_file());
    // A survey depth other than the config's: 4x the galaxies, half the noise.
    let noise_30 = m["noise_std_per_component"].as_f64().unwrap();
    let m = evaluate(&["--prior-samples", "0", "--gals-per-arcmin2", "120"]);
    let noise_120 = m["noise_std_per_component"].as_f64().unwrap();
    assert!(
        (noise_30 / noise_120 - 2.0).abs() < 1e-12,
        "{noise_30} {noise_120}"
    );
    for (bad, needle) in [
        (&["--gals-per-arcmin2", "0"][..], "galaxy density"),
        (
            &["--exact-draws", "20"],
            "--exact-draws applies with --exact only",
        ),
        (&["--exact", "--exact-draws", "3"], "need >= 10 draws"),
        (&["--prior-samples", "1"], "--prior-samples 1"),
        (
            &["--sampler", "annealed-hmc", "--independent"],
            "--independent applies",
        ),
    ] {
        fails(
            bin()
                .args(["prior", "evaluate", "--config"])
                .arg(d.join("prior.toml"))
                .arg("--out")
                .arg(&ev)
                .arg("--prior")
                .arg(&model)
                .args(bad),
            needle,
        );
    }
    // With a survey mask (a masked stripe): masked metrics.
    let mut mask = ndarray::Array2::<f64>::ones((16, 16));
    mask.row_mut(5).fill(0.0);
    ndarray_npy::write_npy(d.join("mask.npy"), &mask).unwrap();
    let mask_path = d.join("mask.npy");
    let m = evaluate(&[
        "--mask",
        mask_path.to_str().unwrap(),
        "--prior-samples",
        "0",
        "--exact",
        "--exact-draws",
        "20",
    ]);
    assert!(m["mask"].as_str().unwrap().ends_with("mask.npy"));
    assert!(m["methods"]["diffusion"]["coverage_68"].as_f64().unwrap() > 0.0);
    assert!(
        m["methods"]["diffusion"]["rmse_mc_corrected"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    // The exact field-level posterior under the simulator's prior (NUTS).
    let ex = &m["methods"]["exact_posterior"];
    assert!(ex["rmse"].as_f64().unwrap() > 0.0, "{m}");
    assert!(ex["coverage_68"].as_f64().unwrap() > 0.0, "{m}");
    assert_eq!(m["exact_posterior"]["draws_per_map"].as_u64(), Some(40));
}

#[test]
fn prior_train_from_data_and_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let maps: Vec<f64> = (0..8 * 16 * 16)
        .map(|i| ((i * 7919) % 101) as f64 / 1000.0 - 0.05)
        .collect();
    let mut z = NpzWriter::new(std::fs::File::create(d.join("maps.npz")).unwrap());
    z.add_array(
        "kappa",
        &ArrayD::from_shape_vec(IxDyn(&[8, 16, 16]), maps).unwrap(),
    )
    .unwrap();
    z.finish().unwrap();
    // with `data` every map of the file is used: no n_maps
    let train_data = TRAIN.replace("n_maps = 16\n", "");
    let data = format!("data = \"maps.npz\"\npixel_arcmin = 2.0\n{train_data}");
    std::fs::write(d.join("data.toml"), &data).unwrap();
    // twice into the same directory: the second run rewrites the model
    for _ in 0..2 {
        run(bin()
            .args(["-q", "prior", "train", "--config"])
            .arg(d.join("data.toml"))
            .arg("--out")
            .arg(d.join("m")));
    }
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("m/score_model.json")).unwrap())
            .unwrap();
    assert_eq!(cfg["side"], 16);
    assert_eq!(cfg["hybrid"], true);

    // Errors name the problem in one line (every needle must appear).
    let refused = |config: String, needles: &[&str]| {
        std::fs::write(d.join("bad.toml"), config).unwrap();
        let e = fails(
            bin()
                .args(["prior", "train", "--config"])
                .arg(d.join("bad.toml"))
                .arg("--out")
                .arg(d.join("x")),
            "",
        );
        assert!(needles.iter().all(|n| e.contains(n)), "{needles:?}: {e}");
    };
    refused(TRAIN.to_string(), &["data", "[map]"]);
    refused(format!("{data}\n[sde]\nkind = \"vq\"\n"), &["vq"]);
    refused(
        data.replace("channels = [8, 8]", "channels = [8, 8, 8, 8, 8]"),
        &["multiple of 16"],
    );
    refused(
        format!("data = \"maps.npz\"\npixel_arcmin = 2.0\n{TRAIN}"),
        &["n_maps applies to simulated maps"],
    );
    refused(
        format!("{data}\n[cosmology]\nsigma8 = 0.9\n"),
        &["either `data` or a simulator"],
    );
}

#[test]
fn default_prior_runs_out_of_the_box() {
    // No --prior: the shipped 64x64, 2-arcmin model.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("sim.toml"), SIM.replace("npix = 16", "npix = 64")).unwrap();
    run(bin()
        .args(["simulate", "lensing", "--config"])
        .arg(d.join("sim.toml"))
        .arg("--out")
        .arg(d.join("sim.npz")));
    let out = d.join("post.npz");
    run(bin()
        .args(["-q", "massmap", "--method", "diffusion", "--input"])
        .arg(d.join("sim.npz"))
        .arg("--out")
        .arg(&out)
        .args(["--samples", "2", "--steps", "4"]));
    assert_eq!(read(&out, "samples").shape(), &[2, 64, 64]);
    let m = read(&out, "kappa_mean");
    assert!(m.iter().all(|v| v.is_finite()));
}

#[test]
fn prior_bench_checks_its_reference_first() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sizes = ["--side", "16", "--batch", "4", "--eval-batch", "2"];
    let quick = ["--steps", "1", "--evals", "1"];
    run(bin()
        .args(["-q", "prior", "bench"])
        .args(sizes)
        .args(quick)
        .arg("--json")
        .arg(d.join("ours.json")));
    let ours: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("ours.json")).unwrap()).unwrap();
    assert!(ours["train_maps_per_s"].as_f64().unwrap() > 0.0, "{ours}");
    // our own JSON is a valid reference of the same sizes
    run(bin()
        .args(["-q", "prior", "bench"])
        .args(sizes)
        .args(quick)
        .arg("--torch-json")
        .arg(d.join("ours.json")));
    let reference = |text: &str, needle: &str| {
        std::fs::write(d.join("ref.json"), text).unwrap();
        fails(
            bin()
                .args(["prior", "bench"])
                .args(sizes)
                .args(quick)
                .arg("--torch-json")
                .arg(d.join("ref.json")),
            needle,
        );
    };
    reference("{}", "'train_maps_per_s' must be a positive number");
    let at = |side: usize, rate: f64| {
        format!("{{\"side\": {side}, \"train_batch\": 4, \"eval_batch\": 2, \"train_maps_per_s\": {rate}, \"score_eval_s\": 0.1}}")
    };
    reference(&at(64, 10.0), "measured with side = 64, this run uses 16");
    reference(&at(16, -3.0), "must be a positive number");
    fails(
        bin().args(["prior", "bench", "--batch", "2"]),
        "needs at least 4 maps",
    );
}

/// `prior train` interrupted by Ctrl-C (checkpoint after every batch) and
/// rerun ends with the same weights, byte for byte, as an uninterrupted
/// run: the noise of denoising score matching continues where it stopped.
#[test]
fn an_interrupted_training_resumes_to_the_same_weights() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = d.join("prior.toml");
    std::fs::write(
        &cfg,
        format!("{SIM}{}", TRAIN.replace("steps = 4", "steps = 60")),
    )
    .unwrap();
    let train = |out: &std::path::Path| {
        let mut c = bin();
        c.args(["prior", "train", "--checkpoint-seconds", "0", "--config"])
            .arg(&cfg)
            .arg("--out")
            .arg(out);
        c
    };
    training_resumes_to_the_same_weights(train, d);
}
