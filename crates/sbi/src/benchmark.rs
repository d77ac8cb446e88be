//! The sbibm benchmark tasks end to end (Lueckmann et al. 2021): simulate
//! `N` pairs from the prior, train NPE or NLE, draw 10,000 posterior samples
//! for observations 1-5 and score them with C2ST against the reference
//! posterior samples (`../shared/reference/sbi/<task>/`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::c2st::c2st;
use crate::tasks::{load_reference, Task};
use ndarray_npy::write_npy;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::error::{invalid, SbiError};
use crate::model::{SbiModel, SbiOptions};
use crate::prior::SbiPrior;

/// Timings and scores of one benchmark run (written to `timings.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BenchmarkResult {
    pub task: String,
    pub method: String,
    pub flow: String,
    pub num_simulations: usize,
    pub num_samples: usize,
    pub c2st: BTreeMap<String, f64>,
    pub mean_c2st: f64,
    pub simulate_seconds: f64,
    pub train_seconds: f64,
    pub epochs: usize,
    pub sample_seconds: BTreeMap<String, f64>,
    pub c2st_seconds: f64,
    pub threads: usize,
}

/// Find `shared/reference/sbi`: `$COSMODIFF_REFERENCE/sbi`, else
/// `shared/reference/sbi` in the current directory or one of its parents'
/// siblings (the layout of a checkout with `../shared` beside it).
pub fn find_reference_root(explicit: Option<&Path>) -> Result<PathBuf, SbiError> {
    if let Some(p) = explicit {
        return if p.join("two_moons").is_dir() {
            Ok(p.to_path_buf())
        } else {
            invalid(format!(
                "{} does not hold the sbi reference tasks (no two_moons/ inside)",
                p.display()
            ))
        };
    }
    if let Ok(r) = std::env::var("COSMODIFF_REFERENCE") {
        let p = Path::new(&r).join("sbi");
        if p.is_dir() {
            return Ok(p);
        }
    }
    let mut dir = std::env::current_dir()?;
    loop {
        for cand in [
            dir.join("shared/reference/sbi"),
            dir.join("../shared/reference/sbi"),
        ] {
            if cand.join("two_moons").is_dir() {
                return Ok(cand);
            }
        }
        if !dir.pop() {
            break;
        }
    }
    invalid("reference posteriors not found: put the shared data at ../shared/reference/sbi, set COSMODIFF_REFERENCE to the reference folder, or pass --reference")
}

/// Run one task. Writes `out/c2st.json` (`{"obs1": ..}`), `out/timings.json`,
/// `out/samples_obs{i}.npy` and the trained model in `out/model/`.
pub fn run_task(
    task: Task,
    num_simulations: usize,
    opts: &SbiOptions,
    reference: &Path,
    out: &Path,
    num_samples: usize,
    observations: &[usize],
) -> Result<BenchmarkResult, SbiError> {
    if num_simulations < 100 {
        return invalid(format!(
            "--num-simulations {num_simulations} is too small (at least 100)"
        ));
    }
    if !(100..=100_000_000).contains(&num_samples) {
        return invalid(format!(
            "--num-samples {num_samples}: the C2ST needs 100 to 100000000 posterior draws"
        ));
    }
    std::fs::create_dir_all(out)?;
    let seed = opts.train.seed;
    let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(seed);
    let t0 = Instant::now();
    let theta = task.sample_prior(num_simulations, &mut rng);
    let x = task.simulate(theta.view(), &mut rng);
    let simulate_seconds = t0.elapsed().as_secs_f64();
    let prior = SbiPrior::new(task.priors())?;
    let t1 = Instant::now();
    let model = SbiModel::train(theta.view(), x.view(), prior, opts)?;
    let train_seconds = t1.elapsed().as_secs_f64();
    model.save(&out.join("model"))?;
    let mut c2 = BTreeMap::new();
    let mut sample_seconds = BTreeMap::new();
    let mut c2st_seconds = 0.0;
    for &o in observations {
        let r = load_reference(reference, task, o)?;
        let (s, info) = model.sample(
            r.observation.view(),
            num_samples,
            seed.wrapping_add(1000 + o as u64),
        )?;
        sample_seconds.insert(format!("obs{o}"), info.seconds);
        let path = out.join(format!("samples_obs{o}.npy"));
        write_npy(&path, &s).map_err(|e| SbiError::File {
            path: path.display().to_string(),
            msg: e.to_string(),
        })?;
        // sbibm compares equal numbers of draws: with unequal classes the
        // accuracy would be pulled towards the larger class's share.
        let k = num_samples.min(r.posterior_samples.nrows());
        let t2 = Instant::now();
        let score = c2st(
            r.posterior_samples.slice(ndarray::s![..k, ..]),
            s.slice(ndarray::s![..k, ..]),
            seed,
        )?;
        c2st_seconds += t2.elapsed().as_secs_f64();
        c2.insert(format!("obs{o}"), score);
    }
    let mean = c2.values().sum::<f64>() / c2.len().max(1) as f64;
    // Calibration on held-out simulations (NPE: cheap amortised sampling;
    // NLE would need one MCMC run per simulation, so fewer of them).
    let (n_cal, n_draws) = match opts.method {
        crate::model::Method::Npe => (200, 500),
        crate::model::Method::Nle => (0, 0),
    };
    if n_cal > 0 {
        let th = task.sample_prior(n_cal, &mut rng);
        let xs = task.simulate(th.view(), &mut rng);
        let cal = crate::calibration::calibrate(
            &model,
            th.view(),
            xs.view(),
            n_draws,
            seed.wrapping_add(7),
        )?;
        let names: Vec<String> = (1..=task.dim_theta())
            .map(|j| format!("theta_{j}"))
            .collect();
        cal.write(
            out,
            &names,
            &format!("{} {} calibration", task.name(), opts.method.name()),
        )?;
    }
    let res = BenchmarkResult {
        task: task.name().to_string(),
        method: opts.method.name().to_string(),
        flow: opts.flow.name().to_string(),
        num_simulations,
        num_samples,
        c2st: c2.clone(),
        mean_c2st: mean,
        simulate_seconds,
        train_seconds,
        epochs: model.report.epochs,
        sample_seconds,
        c2st_seconds,
        threads: rayon::current_num_threads(),
    };
    std::fs::write(
        out.join("c2st.json"),
        serde_json::to_string_pretty(&c2).expect("serialisable"),
    )?;
    std::fs::write(
        out.join("timings.json"),
        serde_json::to_string_pretty(&res).expect("serialisable"),
    )?;
    Ok(res)
}
