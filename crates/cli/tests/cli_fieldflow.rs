//! `cosmodiff fieldflow` with the interface of the TRENF issue exactly as
//! written: `train --fields FILE.npz --out MODEL_DIR [--config]` (accepting
//! `lensing-cosmology simulate` output and 3-D boxes), `logprob` writing
//! `logprob`, `logdet`, `base_logprob`, and `infer` writing `samples.npy`
//! and `summary.json` in the `lensing-cosmology infer` schema; bad input is
//! one line, exit 2, nothing written.
use ndarray::{Array2, Array4, ArrayD};

mod common;
use common::{bin, fails, read, run};

fn json(p: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn trains_evaluates_and_samples_on_lensing_maps_and_boxes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run(bin()
        .args([
            "lensing-cosmology",
            "simulate",
            "--setup",
            "sbi-lens-128",
            "--n",
            "24",
            "--out",
        ])
        .arg(d.join("sims.npz")));
    let cfg = d.join("small.toml");
    std::fs::write(
        &cfg,
        "[flow]\nlayers = 2\nknots = 8\n[train]\nepochs = 2\nbatch_size = 8\n",
    )
    .unwrap();
    run(bin()
        .args(["fieldflow", "train", "--fields"])
        .arg(d.join("sims.npz"))
        .arg("--out")
        .arg(d.join("model"))
        .arg("--config")
        .arg(&cfg));
    for f in ["weights.safetensors", "fieldflow.json", "train.json"] {
        assert!(d.join("model").join(f).is_file(), "{f}");
    }
    // The model knows the parameter names of the simulation file.
    let cfg_json = json(&d.join("model/fieldflow.json"));
    assert_eq!(
        cfg_json["theta_names"],
        serde_json::json!(["Omega_c", "sigma8"])
    );
    let kappa = read(&d.join("sims.npz"), "kappa_obs");
    let theta = read(&d.join("sims.npz"), "theta");
    let map: Array2<f64> = kappa.slice(ndarray::s![0, .., .., 0]).to_owned();
    ndarray_npy::write_npy(d.join("map.npy"), &map).unwrap();
    let th = format!("{},{}", theta[[0, 0]], theta[[0, 1]]);
    run(bin()
        .args(["fieldflow", "logprob", "--model"])
        .arg(d.join("model"))
        .arg("--field")
        .arg(d.join("map.npy"))
        .args(["--theta", &th, "--out"])
        .arg(d.join("lp.json")));
    let lp = json(&d.join("lp.json"));
    let (a, b, c) = (
        lp["logprob"].as_f64().unwrap(),
        lp["logdet"].as_f64().unwrap(),
        lp["base_logprob"].as_f64().unwrap(),
    );
    assert!(a.is_finite() && (a - b - c).abs() < 1e-6 * a.abs());
    run(bin()
        .args(["fieldflow", "infer", "--model"])
        .arg(d.join("model"))
        .arg("--field")
        .arg(d.join("map.npy"))
        .args(["--samples", "32", "--seed", "1", "--out"])
        .arg(d.join("post")));
    let samples: Array2<f64> = ndarray_npy::read_npy(d.join("post/samples.npy")).unwrap();
    assert_eq!(samples.dim(), (32, 2));
    let s = json(&d.join("post/summary.json"));
    assert_eq!(s["names"], serde_json::json!(["Omega_c", "sigma8"]));
    assert_eq!(s["mean"].as_array().unwrap().len(), 2);
    assert_eq!(s["sd"].as_array().unwrap().len(), 2);
    assert!(s["fom"]["Omega_c,sigma8"].as_f64().unwrap() > 0.0);
    assert!(d.join("post/corner.png").is_file());
    // Every draw lies in the training range.
    let (lo, hi) = (cfg_json["theta_min"].clone(), cfg_json["theta_max"].clone());
    for row in samples.outer_iter() {
        for j in 0..2 {
            assert!(row[j] >= lo[j].as_f64().unwrap() && row[j] <= hi[j].as_f64().unwrap());
        }
    }

    // 3-D boxes [n, N, N, N] with field and theta.
    let n = 12;
    let boxes = Array4::from_shape_fn((n, 8, 8, 8), |(i, a, b, c)| {
        ((a * 3 + b * 5 + c * 7 + i) as f64 * 0.37).sin() * (1.0 + 0.1 * i as f64)
    });
    let bt = Array2::from_shape_fn((n, 2), |(i, j)| 0.2 + 0.05 * i as f64 + 0.1 * j as f64);
    let mut npz = ndarray_npy::NpzWriter::new(std::fs::File::create(d.join("boxes.npz")).unwrap());
    npz.add_array("theta", &bt).unwrap();
    npz.add_array("field", &boxes).unwrap();
    npz.finish().unwrap();
    run(bin()
        .args(["fieldflow", "train", "--fields"])
        .arg(d.join("boxes.npz"))
        .arg("--out")
        .arg(d.join("box_model"))
        .arg("--config")
        .arg(&cfg));
    let one: ArrayD<f64> = boxes
        .slice(ndarray::s![0, .., .., ..])
        .to_owned()
        .into_dyn();
    ndarray_npy::write_npy(d.join("box.npy"), &one).unwrap();
    run(bin()
        .args(["fieldflow", "logprob", "--model"])
        .arg(d.join("box_model"))
        .arg("--field")
        .arg(d.join("box.npy"))
        .args(["--theta", "0.3,0.35", "--out"])
        .arg(d.join("box_lp.json")));
    assert!(json(&d.join("box_lp.json"))["logprob"]
        .as_f64()
        .unwrap()
        .is_finite());

    // Bad input: one line, exit 2, nothing written.
    let out = d.join("bad.json");
    let logprob = |field: &std::path::Path, theta: &str| {
        let mut c = bin();
        c.args(["fieldflow", "logprob", "--model"])
            .arg(d.join("model"))
            .arg("--field")
            .arg(field)
            .args(["--theta", theta, "--out"])
            .arg(&out);
        c
    };
    fails(&mut logprob(&d.join("box.npy"), &th), "trained on 128^2");
    let mut nan = map.clone();
    nan[[3, 4]] = f64::NAN;
    ndarray_npy::write_npy(d.join("nan.npy"), &nan).unwrap();
    fails(&mut logprob(&d.join("nan.npy"), &th), "non-finite");
    fails(
        &mut logprob(&d.join("map.npy"), "5.0,0.8"),
        "outside the training range",
    );
    fails(&mut logprob(&d.join("map.npy"), "0.3"), "2 parameters");
    fails(&mut logprob(&d.join("map.npy"), "0.3,abc"), "not a number");
    assert!(!out.exists());
    fails(
        bin()
            .args(["fieldflow", "infer", "--field"])
            .arg(d.join("map.npy"))
            .arg("--out")
            .arg(d.join("none")),
        "--model",
    );
    fails(
        bin()
            .args(["fieldflow", "train", "--fields"])
            .arg(d.join("map.npy"))
            .arg("--out")
            .arg(d.join("m2")),
        "not an .npz",
    );
    assert!(!d.join("none").exists() && !d.join("m2").exists());
}

/// `simulate density` makes PM boxes on a design (resumable, gathered into
/// `fields.npz`), a flow trains on them, and `fieldflow fisher` and
/// `fieldflow calibrate` (against a P(k)-only likelihood) report on it.
#[test]
fn density_campaign_fisher_and_calibration() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let campaign = |n: usize, seed: u64, design_seed: u64| {
        format!(
            "[box]\nn_particles = 8\nn_mesh = 8\nbox_size = 128.0\n[ic]\nseed = {seed}\n[steps]\nn = 4\n\
             [design]\nkind = \"latin_hypercube\"\nn = {n}\nseed = {design_seed}\nOmega_m = [0.2, 0.4]\nsigma8 = [0.7, 0.9]\n"
        )
    };
    std::fs::write(d.join("train.toml"), campaign(24, 0, 0)).unwrap();
    std::fs::write(d.join("test.toml"), campaign(4, 1000, 1)).unwrap();
    for name in ["train", "test"] {
        run(bin()
            .args(["simulate", "density", "--config"])
            .arg(d.join(format!("{name}.toml")))
            .arg("--out")
            .arg(d.join(name)));
    }
    let mut z =
        ndarray_npy::NpzReader::new(std::fs::File::open(d.join("train/fields.npz")).unwrap())
            .unwrap();
    let field: ndarray::ArrayD<f32> = z.by_name("field").unwrap();
    assert_eq!(field.shape(), &[24, 8, 8, 8]);
    // An overdensity: mean zero in every box, never below -1.
    for b in 0..24 {
        let v = field.slice(ndarray::s![b, .., .., ..]);
        assert!(v.mean().unwrap().abs() < 1e-5 && v.iter().all(|&x| x >= -1.0));
    }
    let theta = read(&d.join("train/fields.npz"), "theta");
    let csv = std::fs::read_to_string(d.join("train/params.csv")).unwrap();
    let second: Vec<f64> = csv
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!([theta[[0, 0]], theta[[0, 1]]], [second[2], second[3]]);
    // A rerun finds every box done and keeps the file.
    let again = run(bin()
        .args(["simulate", "density", "--config"])
        .arg(d.join("train.toml"))
        .arg("--out")
        .arg(d.join("train")));
    assert!(again.contains("all 24 simulations are done"), "{again}");

    let cfg = d.join("small.toml");
    std::fs::write(
        &cfg,
        "[flow]\nlayers = 1\nknots = 6\n[train]\nepochs = 2\nbatch_size = 8\n",
    )
    .unwrap();
    run(bin()
        .args(["fieldflow", "train", "--fields"])
        .arg(d.join("train/fields.npz"))
        .arg("--out")
        .arg(d.join("model"))
        .arg("--config")
        .arg(&cfg));
    run(bin()
        .args(["fieldflow", "fisher", "--model"])
        .arg(d.join("model"))
        .args(["--theta", "0.3,0.8", "--samples", "4", "--out"])
        .arg(d.join("fisher.json")));
    let f = json(&d.join("fisher.json"));
    assert_eq!(f["names"], serde_json::json!(["Omega_m", "sigma8"]));
    let m = f["fisher"].as_array().unwrap();
    assert_eq!(m.len(), 2);
    assert_eq!(m[0][1], m[1][0]);
    run(bin()
        .args(["fieldflow", "calibrate", "--model"])
        .arg(d.join("model"))
        .arg("--fields")
        .arg(d.join("test/fields.npz"))
        .arg("--pk-train")
        .arg(d.join("train/fields.npz"))
        .args(["--grid", "6", "--out"])
        .arg(d.join("cal")));
    let c = json(&d.join("cal/calibration.json"));
    assert_eq!(c["n_fields"], 4);
    for key in [
        "fom_median",
        "fom_pk_median",
        "fom_ratio_median",
        "latent_power_max_deviation",
    ] {
        assert!(c[key].as_f64().unwrap().is_finite(), "{key}: {c}");
    }
    let cov = c["coverage_68"]["sigma8"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&cov));
    let rows = std::fs::read_to_string(d.join("cal/per_field.csv")).unwrap();
    assert_eq!(rows.lines().count(), 5);
    assert!(d.join("cal/truth_vs_posterior.png").is_file());

    // Bad input: one line, exit 2, nothing written.
    fails(
        bin()
            .args(["fieldflow", "fisher", "--model"])
            .arg(d.join("model"))
            .args(["--theta", "0.9,0.8", "--out"])
            .arg(d.join("bad.json")),
        "outside the training range",
    );
    std::fs::write(
        d.join("halos.toml"),
        campaign(2, 0, 0) + "[halos]\nmin_particles = 5\n",
    )
    .unwrap();
    fails(
        bin()
            .args(["simulate", "density", "--config"])
            .arg(d.join("halos.toml"))
            .arg("--out")
            .arg(d.join("bad")),
        "[halos] is not used",
    );
    assert!(!d.join("bad.json").exists() && !d.join("bad").exists());
}
