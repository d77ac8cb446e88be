//! NPE and NLE on a conjugate Gaussian problem with a known posterior:
//! theta ~ N(0, 0.1 I_2), x | theta ~ N(theta, 0.1 I_2), so
//! theta | x ~ N(x / 2, 0.05 I_2). Also model save/load and priors.

use cosmodiff_infer::Prior;
use cosmodiff_sbi::*;
use ndarray::{arr1, Array2, Axis};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

/// burn's device RNG (weight initialisation) is process-wide: tests that
/// train run one at a time so each sees the seeded stream it asked for (run
/// concurrently, their draws interleave and the results change from run to
/// run).
static TRAINING: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn simulate(n: usize, seed: u64) -> (Array2<f64>, Array2<f64>) {
    let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(seed);
    let nd = Normal::new(0.0, 0.1f64.sqrt()).unwrap();
    let theta = Array2::from_shape_fn((n, 2), |_| nd.sample(&mut rng));
    let x = &theta + &Array2::from_shape_fn((n, 2), |_| nd.sample(&mut rng));
    (theta, x)
}

fn prior() -> SbiPrior {
    SbiPrior::new(vec![
        Prior::Normal {
            mean: 0.0,
            sd: 0.1f64.sqrt()
        };
        2
    ])
    .unwrap()
}

fn check_posterior(s: &Array2<f64>, xo: &[f64], what: &str) {
    let m = s.mean_axis(Axis(0)).unwrap();
    let sd = s.std_axis(Axis(0), 1.0);
    let exact_sd = 0.05f64.sqrt();
    println!(
        "{what}: mean {m:?} (exact {:?}), sd {sd:?} (exact {exact_sd:.4})",
        [xo[0] / 2.0, xo[1] / 2.0]
    );
    for j in 0..2 {
        assert!(
            (m[j] - xo[j] / 2.0).abs() < 0.15 * exact_sd,
            "{what}: mean[{j}] {} vs {}",
            m[j],
            xo[j] / 2.0
        );
        assert!(
            (sd[j] / exact_sd - 1.0).abs() < 0.1,
            "{what}: sd[{j}] {} vs {exact_sd}",
            sd[j]
        );
    }
}

#[test]
fn npe_recovers_gaussian_posterior_and_round_trips_through_disk() {
    let _serial = TRAINING.lock().unwrap_or_else(|e| e.into_inner());
    let (theta, x) = simulate(3000, 1);
    let mut opts = SbiOptions::new(Method::Npe);
    opts.flow = cosmodiff_nn::FlowKind::Maf;
    opts.num_transforms = 3;
    opts.train.learning_rate = 2e-3;
    let model = SbiModel::train(theta.view(), x.view(), prior(), &opts).unwrap();
    let r = &model.report;
    println!(
        "NPE training: {} epochs (best {}), losses {:?} .. {:?}",
        r.epochs,
        r.best_epoch,
        &r.train_loss[..3.min(r.epochs)],
        r.validation_loss.last()
    );
    let xo = [0.3, -0.2];
    let (s, info) = model.sample(arr1(&xo).view(), 4000, 3).unwrap();
    assert_eq!(s.dim(), (4000, 2));
    assert!(info.acceptance > 0.99);
    check_posterior(&s, &xo, "NPE");

    let dir = std::env::temp_dir().join(format!("cosmodiff-npe-{}", std::process::id()));
    model.save(&dir).unwrap();
    let back = SbiModel::load(&dir).unwrap();
    let (s2, _) = back.sample(arr1(&xo).view(), 4000, 3).unwrap();
    let diff = (&s - &s2).mapv(f64::abs).fold(0.0f64, |a, &b| a.max(b));
    assert!(diff < 1e-6, "reloaded model samples differ by {diff}");
    // hand-edited sbi.json: an error on load, not a panic or a hang later
    let meta = std::fs::read_to_string(dir.join("sbi.json")).unwrap();
    for (from, to, needle) in [
        (
            "\"mcmc_chains\": 100",
            "\"mcmc_chains\": 0",
            "mcmc_chains >= 1",
        ),
        ("\"dim_theta\": 2", "\"dim_theta\": 3", "dim_theta = 3"),
    ] {
        assert!(meta.contains(from), "{from} not in sbi.json");
        std::fs::write(dir.join("sbi.json"), meta.replace(from, to)).unwrap();
        let e = SbiModel::load(&dir).err().expect("refused").to_string();
        assert!(e.contains(needle), "{e}");
    }
    // unknown keys and a newer layout are refused
    let mut v: serde_json::Value = serde_json::from_str(&meta).unwrap();
    assert_eq!(v["format_version"], 1);
    v["format_version"] = serde_json::json!(99);
    std::fs::write(dir.join("sbi.json"), v.to_string()).unwrap();
    let e = SbiModel::load(&dir).err().expect("refused").to_string();
    assert!(e.contains("format_version 99"), "{e}");
    v["format_version"] = serde_json::json!(1);
    v["extra"] = serde_json::json!(1);
    std::fs::write(dir.join("sbi.json"), v.to_string()).unwrap();
    let e = SbiModel::load(&dir).err().expect("refused").to_string();
    assert!(e.contains("unknown field `extra`"), "{e}");
    std::fs::write(dir.join("sbi.json"), &meta).unwrap();
    // hand-edited estimator.json: a negative standard deviation, a flow
    // over the wrong variable
    let est = std::fs::read_to_string(dir.join("estimator.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&est).unwrap();
    v["y_standardizer"]["std"][0] = serde_json::json!(-0.1);
    std::fs::write(dir.join("estimator.json"), v.to_string()).unwrap();
    let e = SbiModel::load(&dir).err().expect("refused").to_string();
    assert!(
        e.contains("standard deviation -0.1 must be a positive number"),
        "{e}"
    );
    let mut v: serde_json::Value = serde_json::from_str(&est).unwrap();
    v["embedding"]["input_dim"] = serde_json::json!(3);
    v["c_standardizer"]["mean"] = serde_json::json!([0.0, 0.0, 0.0]);
    v["c_standardizer"]["std"] = serde_json::json!([1.0, 1.0, 1.0]);
    std::fs::write(dir.join("estimator.json"), v.to_string()).unwrap();
    let e = SbiModel::load(&dir).err().expect("refused").to_string();
    assert!(e.contains("needs a flow over 2 dimensions given 2"), "{e}");
    // every size within its limit, the whole far beyond memory
    let mut v: serde_json::Value = serde_json::from_str(&est).unwrap();
    v["flow"]["hidden"] = serde_json::json!(16384);
    v["flow"]["num_transforms"] = serde_json::json!(256);
    std::fs::write(dir.join("estimator.json"), v.to_string()).unwrap();
    let e = SbiModel::load(&dir).err().expect("refused").to_string();
    assert!(e.contains("weights: at most 2.7e8"), "{e}");
    std::fs::write(dir.join("estimator.json"), &est).unwrap();
    // the method switched in sbi.json alone
    std::fs::write(
        dir.join("sbi.json"),
        meta.replacen("\"method\": \"npe\"", "\"method\": \"nle\"", 1),
    )
    .unwrap();
    let e = SbiModel::load(&dir).err().expect("refused").to_string();
    assert!(e.contains("the file was edited"), "{e}");
    std::fs::write(dir.join("sbi.json"), &meta).unwrap();
    std::fs::remove_file(dir.join("weights.safetensors")).unwrap();
    let e = SbiModel::load(&dir).err().expect("refused").to_string();
    assert!(e.contains("weights.safetensors: missing"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
    assert!(model.save(std::path::Path::new("")).is_err());
    // Wrong observation size is an error, not a panic.
    assert!(model.sample(arr1(&[0.1, 0.2, 0.3]).view(), 10, 0).is_err());
}

#[test]
fn nle_with_slice_sampling_recovers_gaussian_posterior() {
    let _serial = TRAINING.lock().unwrap_or_else(|e| e.into_inner());
    let (theta, x) = simulate(3000, 2);
    let mut opts = SbiOptions::new(Method::Nle);
    opts.num_transforms = 3;
    opts.train.learning_rate = 2e-3;
    opts.mcmc_chains = 50;
    opts.mcmc_warmup = 30;
    opts.mcmc_thin = 2;
    let model = SbiModel::train(theta.view(), x.view(), prior(), &opts).unwrap();
    let xo = [0.3, -0.2];
    let (s, _) = model.sample(arr1(&xo).view(), 3000, 5).unwrap();
    check_posterior(&s, &xo, "NLE");
}

#[test]
fn priors_from_toml_and_bounding_box() {
    let p = SbiPrior::from_toml_str(
        "[[param]]\nname = \"Omega_c\"\nprior = \"uniform\"\nlow = 0.1\nhigh = 0.5\n[[param]]\nname = \"sigma8\"\nprior = \"normal\"\nmean = 0.8\nsd = 0.1\n",
        "prior.toml",
    )
    .unwrap();
    assert_eq!(p.names(), vec!["Omega_c", "sigma8"]);
    assert!(p.contains(arr1(&[0.3, 0.8]).view()));
    assert!(!p.contains(arr1(&[0.6, 0.8]).view()));
    let e = SbiPrior::from_toml_str(
        "[[param]]\nname = \"a\"\nprior = \"uniform\"\nlow = 1\nhigh = 0\n",
        "bad.toml",
    );
    assert!(e.is_err());
    // the same name twice, and a key of another prior kind
    let twice = "[[param]]\nname = \"a\"\nprior = \"uniform\"\nlow = 0\nhigh = 1\n";
    let e = SbiPrior::from_toml_str(&twice.repeat(2), "twice.toml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("listed twice"), "{e}");
    let e = SbiPrior::from_toml_str(
        "[[param]]\nname = \"a\"\nprior = \"normal\"\nmean = 0.25\nsd = 0.05\nlow = 0.26\n",
        "low.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("low.toml:1") && e.contains("unknown field `low`") && !e.contains('|'),
        "{e}"
    );
    let theta = ndarray::arr2(&[[0.0, 1.0], [2.0, -1.0], [1.0, 0.0]]);
    let b = SbiPrior::bounding_box(theta.view()).unwrap();
    assert_eq!(
        b.param[0].prior,
        Prior::Uniform {
            low: 0.0,
            high: 2.0
        }
    );
    assert_eq!(
        b.param[1].prior,
        Prior::Uniform {
            low: -1.0,
            high: 1.0
        }
    );
    // Training data outside the prior are rejected.
    let (theta, x) = simulate(100, 3);
    let tight = SbiPrior::new(vec![
        Prior::Uniform {
            low: -0.01,
            high: 0.01
        };
        2
    ])
    .unwrap();
    assert!(SbiModel::train(theta.view(), x.view(), tight, &SbiOptions::new(Method::Npe)).is_err());
}
