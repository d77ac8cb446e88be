//! `cosmodiff pointcloud`: a diffusion model trained on a small
//! `simulate halos` campaign samples catalogues, mocks one with the recorded
//! simulation settings, infers its parameters on an ELBO grid; bad inputs
//! are refused in one line; an interrupted training resumes to the same
//! weights.

mod common;
use common::{bin, fails, interrupt_then_resume, read, run, safetensors};
use std::path::Path;

const CAMPAIGN: &str = r#"
[box]
n_mesh = 64
n_particles = 32
box_size = 128.0
[steps]
n = 5
[halos]
min_particles = 10
[design]
kind = "list"
Omega_m = [0.2, 0.45, 0.3, 0.25]
sigma8 = [0.7, 0.95, 0.8, 0.9]
"#;

const MODEL: &str = r#"
[data]
n_halos = 32
[net]
hidden = 16
layers = 2
k = 6
[train]
steps = 24
batch_size = 2
learning_rate = 0.003
"#;

fn campaign(d: &Path) -> std::path::PathBuf {
    std::fs::write(d.join("campaign.toml"), CAMPAIGN).unwrap();
    std::fs::write(d.join("model.toml"), MODEL).unwrap();
    let out = d.join("cats");
    run(bin().current_dir(d).args([
        "simulate",
        "halos",
        "--config",
        "campaign.toml",
        "--out",
        "cats",
    ]));
    out
}

fn train(d: &Path, out: &str) -> std::process::Command {
    let mut c = bin();
    c.current_dir(d).args([
        "pointcloud",
        "train",
        "--catalogs",
        "cats",
        "--out",
        out,
        "--config",
        "model.toml",
    ]);
    c
}

fn write_catalogue(p: &Path, pos: &[[f64; 3]]) {
    let n = pos.len();
    let mut z = ndarray_npy::NpzWriter::new(std::fs::File::create(p).unwrap());
    let flat: Vec<f64> = pos.iter().flatten().copied().collect();
    z.add_array(
        "position",
        &ndarray::Array2::from_shape_vec((n, 3), flat).unwrap(),
    )
    .unwrap();
    z.add_array("mass", &ndarray::Array1::from_elem(n, 1e14))
        .unwrap();
    z.finish().unwrap();
}

#[test]
fn trains_samples_mocks_and_infers() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    campaign(d);
    run(&mut train(d, "model"));
    for f in ["pointcloud.json", "weights.safetensors", "train.json"] {
        assert!(d.join("model").join(f).is_file(), "{f}");
    }
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("model/pointcloud.json")).unwrap())
            .unwrap();
    assert!(
        cfg["simulation"]["campaign_config"]
            .as_str()
            .unwrap()
            .contains("n_particles = 32"),
        "the model records its simulation settings"
    );
    assert_eq!(cfg["simulation"]["selection"]["n_halos"], 32);

    // sample: [n, N, 3] positions in the box, masses
    run(bin().current_dir(d).args([
        "pointcloud",
        "sample",
        "--model",
        "model",
        "--theta",
        "0.3,0.8",
        "--n",
        "2",
        "--out",
        "s.npz",
        "--steps",
        "20",
        "--seed",
        "4",
    ]));
    let pos = read(&d.join("s.npz"), "position");
    assert_eq!(pos.shape(), &[2, 32, 3]);
    assert!(pos.iter().all(|x| (0.0..128.0).contains(x)));
    assert_eq!(read(&d.join("s.npz"), "mass").shape(), &[2, 32]);

    // mock: the recorded PM + FoF + selection at a new theta
    run(bin().current_dir(d).args([
        "pointcloud",
        "mock",
        "--model",
        "model",
        "--theta",
        "0.3,0.8",
        "--seed",
        "1",
        "--out",
        "mock.npz",
    ]));
    let m = read(&d.join("mock.npz"), "mass");
    assert_eq!(m.shape(), &[32]);
    let m: Vec<f64> = m.iter().copied().collect();
    assert!(m.windows(2).all(|w| w[0] >= w[1]), "sorted by mass");

    // infer on the mock
    run(bin().current_dir(d).args([
        "pointcloud",
        "infer",
        "--model",
        "model",
        "--catalog",
        "mock.npz",
        "--out",
        "inf",
        "--grid",
        "4",
        "--times",
        "4",
        "--truth",
        "0.3,0.8",
    ]));
    let ll = read(&d.join("inf/loglike.npz"), "loglike");
    assert_eq!(ll.shape(), &[4, 4]);
    assert!(ll.iter().all(|v| v.is_finite()));
    let om = read(&d.join("inf/loglike.npz"), "omega_m");
    assert!(
        (om[0] - 0.23125).abs() < 1e-9,
        "cell centres of [0.2, 0.45]: {om}"
    );
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("inf/summary.json")).unwrap())
            .unwrap();
    assert_eq!(s["names"], serde_json::json!(["Omega_m", "sigma8"]));
    for (j, r) in [[0.2, 0.45], [0.7, 0.95]].iter().enumerate() {
        let mean = s["mean"][j].as_f64().unwrap();
        let iv = &s["interval68"][j];
        assert!(r[0] <= mean && mean <= r[1], "{s}");
        assert!(
            iv[0].as_f64().unwrap() <= mean && mean <= iv[1].as_f64().unwrap(),
            "{s}"
        );
        assert!(s["sd"][j].as_f64().unwrap() > 0.0);
    }
    assert!(d.join("inf/posterior.png").is_file());

    // evaluate: coverage, emulation and ELBO-vs-exact, on the training
    // campaign itself (a smoke test of the workflow, not of calibration)
    run(bin().current_dir(d).args([
        "pointcloud",
        "evaluate",
        "--model",
        "model",
        "--catalogs",
        "cats",
        "--out",
        "ev",
        "--n",
        "2",
        "--grid",
        "3",
        "--times",
        "2",
        "--emulation-n",
        "2",
        "--gap-boxes",
        "1",
    ]));
    let ev: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("ev/evaluation.json")).unwrap())
            .unwrap();
    assert_eq!(ev["n_catalogues"], 2);
    assert_eq!(ev["coverage68"].as_array().unwrap().len(), 2);
    let frac = ev["xi_within_1sigma_fraction"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&frac), "{ev}");
    assert_eq!(ev["gap_rows"].as_array().unwrap().len(), 7);
    assert!(ev["gap_spread_nats"][0].as_f64().unwrap().is_finite());
    for f in ["coverage.png", "xi.png", "per_catalogue.csv"] {
        assert!(d.join("ev").join(f).is_file(), "{f}");
    }

    // bad inputs: one line, exit 2
    let sample = |theta: &str, model: &str| {
        let mut c = bin();
        c.current_dir(d).args([
            "pointcloud",
            "sample",
            "--model",
            model,
            "--theta",
            theta,
            "--out",
            "x.npz",
        ]);
        c
    };
    fails(
        &mut sample("0.6,0.8", "model"),
        "outside the training design",
    );
    fails(&mut sample("0.3", "model"), "2 parameters");
    std::fs::create_dir(d.join("empty")).unwrap();
    fails(
        &mut sample("0.3,0.8", "empty"),
        "not a point-cloud model directory",
    );
    fails(
        bin().current_dir(d).args([
            "pointcloud",
            "sample",
            "--theta",
            "0.3,0.8",
            "--out",
            "x.npz",
        ]),
        "no default point-cloud model",
    );
    let infer = |cat: &str| {
        let mut c = bin();
        c.current_dir(d).args([
            "pointcloud",
            "infer",
            "--model",
            "model",
            "--catalog",
            cat,
            "--out",
            "bad",
        ]);
        c
    };
    write_catalogue(&d.join("few.npz"), &[[1.0, 2.0, 3.0]; 10]);
    fails(&mut infer("few.npz"), "fewer than the 32");
    let mut pts = vec![[1.0, 2.0, 3.0]; 40];
    pts[3][1] = f64::NAN;
    write_catalogue(&d.join("nan.npz"), &pts);
    fails(&mut infer("nan.npz"), "nan.npz");
    pts[3][1] = 200.0;
    write_catalogue(&d.join("out.npz"), &pts);
    fails(&mut infer("out.npz"), "outside the box");
    assert!(
        !d.join("bad").exists(),
        "no output folder for refused input"
    );
}

/// Killed mid-training, a rerun continues from the checkpoint to the
/// weights of an uninterrupted run.
#[test]
fn an_interrupted_training_resumes_to_the_same_weights() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    campaign(d);
    std::fs::write(
        d.join("model.toml"),
        MODEL.replace("steps = 24", "steps = 400"),
    )
    .unwrap();
    run(&mut train(d, "whole"));
    let cmd = |out: &Path| {
        let mut c = train(d, out.to_str().unwrap());
        c.args(["--checkpoint-seconds", "0"]);
        c
    };
    let cut = d.join("cut");
    if interrupt_then_resume(
        cmd,
        &cut,
        "training-checkpoint.bin",
        "weights.safetensors",
        "rerun the same command",
    ) {
        assert_eq!(
            safetensors(&cut.join("weights.safetensors")),
            safetensors(&d.join("whole/weights.safetensors"))
        );
    }
}
