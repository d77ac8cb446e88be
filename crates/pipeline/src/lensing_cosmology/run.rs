//! The `cosmodiff lensing-cosmology` workflows: `simulate` and `infer`.

use super::fullfield;
use super::model::FieldModel;
use super::setup::{Setup, SetupName};
use crate::io::Npz;
use anyhow::{bail, Context, Result};
use cosmodiff_infer::{NutsSettings, Samples};
use rand::SeedableRng;
use rayon::prelude::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// `cosmodiff lensing-cosmology simulate`.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct SimulateSettings {
    /// Survey set-up: lsst-y10 (256^2, 5 bins, 6 parameters) or sbi-lens-128 (128^2, 1 bin, 2 parameters).
    #[cfg_attr(feature = "cli", arg(long))]
    pub setup: String,
    /// Output .npz: theta [n, n_params], theta_names, kappa_obs and kappa [n, npix, npix, n_bins].
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
    /// Number of simulations (theta drawn from the prior).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 1000))]
    pub n: usize,
    /// Random seed.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0))]
    pub seed: u64,
}

/// Largest `simulate` output (float64 values of both map arrays): 2 GiB.
const MAX_SIM_VALUES: usize = 1 << 28;

/// Simulations from the prior: `theta`, `theta_names`, noisy `kappa_obs`
/// and noiseless `kappa`, maps stored `[npix, npix, n_bins]` like the
/// benchmark's observed maps.
pub fn simulate(s: &SimulateSettings) -> Result<()> {
    crate::io::require_npz(&s.out)?;
    let setup = Setup::new(SetupName::parse(&s.setup)?)?;
    if s.n == 0 {
        bail!("--n 0: nothing to simulate");
    }
    let (n, nb) = (setup.npix, setup.n_bins());
    let per = n * n * nb;
    if s.n.checked_mul(2 * per).is_none_or(|v| v > MAX_SIM_VALUES) {
        bail!(
            "--n {}: {} maps of {n}x{n}x{nb} need more than 2 GiB; write at most {} per file",
            s.n,
            2 * s.n,
            MAX_SIM_VALUES / (2 * per)
        );
    }
    let model = FieldModel::new(setup)?;
    let setup = &model.setup;
    let np = setup.n_params();
    let mut theta_all = Vec::with_capacity(s.n * np);
    let mut kappa = Vec::with_capacity(s.n * per);
    let mut obs = Vec::with_capacity(s.n * per);
    let pb = crate::report::progress(s.n as u64, "simulating maps");
    // In parallel, a chunk at a time (the progress bar moves per chunk).
    let chunk = 4 * rayon::current_num_threads();
    for start in (0..s.n).step_by(chunk) {
        let sims: Vec<Simulated> = (start..(start + chunk).min(s.n))
            .into_par_iter()
            .map(|i| simulate_one(&model, s.seed, i))
            .collect::<Result<_>>()?;
        for sim in sims {
            theta_all.extend(sim.theta);
            kappa.extend(maps_to_bins_last(&sim.kappa));
            obs.extend(maps_to_bins_last(&sim.observed));
            pb.inc(1);
        }
    }
    pb.finish_and_clear();
    let mut npz = Npz::new();
    npz.add("theta", &[s.n, np], theta_all)?;
    npz.add_str("theta_names", &setup.names)?;
    npz.add("kappa_obs", &[s.n, n, n, nb], obs)?;
    npz.add("kappa", &[s.n, n, n, nb], kappa)?;
    if let Some((name, i)) = npz.first_non_finite() {
        bail!(
            "simulation produced a non-finite value in '{name}' (flat index {i}); nothing written"
        );
    }
    npz.write(&s.out)?;
    println!(
        "wrote {} {} simulations ({n}x{n} pixels, {nb} bin(s)) to {}",
        s.n,
        setup.name.as_str(),
        s.out.display()
    );
    Ok(())
}

/// One simulation: parameters, noiseless and noisy maps `[n_bins][npix^2]`.
pub struct Simulated {
    pub theta: Vec<f64>,
    pub kappa: Vec<Vec<f64>>,
    pub observed: Vec<Vec<f64>>,
}

/// Simulation `i` of the stream `seed`: theta from the prior, the latent
/// field, the shape noise (drawn pixel by pixel, bins last); it depends on
/// `(seed, i)` only, so a set can be simulated in parallel.
pub fn simulate_one(model: &FieldModel, seed: u64, i: usize) -> Result<Simulated> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(
        seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(i as u64),
    );
    let (theta, maps) = draw(model, &mut rng)?;
    let observed = add_noise(model, &maps, &mut rng);
    Ok(Simulated {
        theta,
        kappa: maps,
        observed,
    })
}

/// Noiseless maps `[n_bins][npix^2]` plus Gaussian shape noise of each
/// bin's sd, drawn pixel by pixel with the bins last (the stored layout).
pub fn add_noise<R: rand::Rng>(
    model: &FieldModel,
    maps: &[Vec<f64>],
    rng: &mut R,
) -> Vec<Vec<f64>> {
    let nb = maps.len();
    let noise = model.noise_sd();
    let obs: Vec<f64> = maps_to_bins_last(maps)
        .iter()
        .enumerate()
        .map(|(j, v)| {
            let e: f64 = rand_distr::Distribution::sample(&rand_distr::StandardNormal, rng);
            v + noise[j % nb] * e
        })
        .collect();
    maps_from_bins_last(&obs, nb)
}

/// One prior draw: `theta` (redrawn while the cosmology or the shifts are
/// invalid, e.g. a negative Omega_m) and its noiseless maps.
fn draw<R: rand::Rng>(model: &FieldModel, rng: &mut R) -> Result<(Vec<f64>, Vec<Vec<f64>>)> {
    let setup = &model.setup;
    let np2 = setup.npix * setup.npix;
    let mut last = None;
    for _ in 0..100 {
        let theta: Vec<f64> = setup.priors.iter().map(|p| p.sample(rng)).collect();
        let z: Vec<Vec<f64>> = (0..setup.n_bins())
            .map(|_| cosmodiff_field::grf2::white_noise_rng(np2, rng))
            .collect();
        match model.kappa(&theta, &z) {
            Ok(k) => return Ok((theta, k)),
            Err(e) => last = Some(e),
        }
    }
    Err(last
        .unwrap()
        .context("100 prior draws in a row gave no valid cosmology"))
}

/// `cosmodiff lensing-cosmology infer`.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct InferSettings {
    /// Survey set-up: lsst-y10 or sbi-lens-128.
    #[cfg_attr(feature = "cli", arg(long))]
    pub setup: String,
    /// Method: cl (power-spectrum likelihood), fullfield (NUTS over theta and the latent field), vmim, mse, mae.
    #[cfg_attr(feature = "cli", arg(long))]
    pub method: String,
    /// Observed convergence maps .npy: [npix, npix, n_bins], or [npix, npix] for one bin.
    #[cfg_attr(feature = "cli", arg(long))]
    pub data: PathBuf,
    /// Output directory: samples.npy, summary.json, corner.png.
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
    /// Simulations from `simulate` (cl: covariance from them instead of the analytic one; vmim, mse, mae: the training set).
    #[cfg_attr(feature = "cli", arg(long))]
    pub sims: Option<PathBuf>,
    /// vmim, mse, mae without --sims: simulations to train on, drawn from the prior (default 10000).
    #[cfg_attr(feature = "cli", arg(long))]
    pub n_sims: Option<usize>,
    /// vmim, mse, mae: fresh simulations for the TARP coverage test (0: none).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 200))]
    pub tarp: usize,
    /// vmim, mse, mae: most training epochs of the compressor (default 30, early stopping after 5 without improvement).
    #[cfg_attr(feature = "cli", arg(long))]
    pub epochs: Option<usize>,
    /// vmim, mse, mae: average-pool the maps by this factor before compressing (saves memory and time; loses the smallest scales).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 1))]
    pub pool: usize,
    /// Density estimator of the learned-summary methods: npe or nle.
    #[cfg_attr(feature = "cli", arg(long, default_value = "npe"))]
    pub estimator: String,
    /// Posterior draws per chain (default: cl 2000, fullfield 1300: a theta ESS of about 450 on the 128^2 map; vmim, mse, mae: 10000 in all).
    #[cfg_attr(feature = "cli", arg(long))]
    pub draws: Option<usize>,
    /// Warm-up iterations per chain (default: cl 500, fullfield 600).
    #[cfg_attr(feature = "cli", arg(long))]
    pub warmup: Option<usize>,
    /// Number of chains.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 2))]
    pub chains: usize,
    /// Random seed.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0))]
    pub seed: u64,
    /// Hide the progress bar.
    #[cfg_attr(feature = "cli", arg(long))]
    pub quiet: bool,
    #[cfg_attr(feature = "cli", command(flatten))]
    pub reuse: crate::run_dir::Reuse,
}

/// The result of one analysis.
#[derive(Debug, Clone)]
pub struct Posterior {
    pub setup: SetupName,
    pub names: Vec<&'static str>,
    /// Flat draws `[n][n_params]`.
    pub samples: Vec<Vec<f64>>,
    pub n_simulations: usize,
    pub wall_seconds: f64,
    /// Sampler diagnostics, if the method ran a chain.
    pub chain: Option<Samples>,
    /// Method-specific numbers added to `summary.json` (an object or null).
    pub extra: serde_json::Value,
}

/// Maps stored bins last (`[npix, npix, n_bins]` flat, the benchmark's
/// layout) as `[n_bins][npix^2]`.
pub fn maps_from_bins_last(flat: &[f64], n_bins: usize) -> Vec<Vec<f64>> {
    (0..n_bins)
        .map(|b| flat.iter().skip(b).step_by(n_bins).copied().collect())
        .collect()
}

/// Inverse of [`maps_from_bins_last`]: `[n_bins][npix^2]` -> flat bins last.
pub fn maps_to_bins_last(maps: &[Vec<f64>]) -> Vec<f64> {
    let np = maps.first().map_or(0, |m| m.len());
    (0..np)
        .flat_map(|p| maps.iter().map(move |m| m[p]))
        .collect()
}

/// An observed map set of `setup`'s shape (`[npix, npix, n_bins]`, or
/// `[npix, npix]` for one bin) with finite pixels, as `[n_bins][npix^2]`;
/// `what` names the input in the one-line error.
pub fn check_maps(
    shape: &[usize],
    flat: &[f64],
    setup: &Setup,
    what: &str,
) -> Result<Vec<Vec<f64>>> {
    let (n, nb) = (setup.npix, setup.n_bins());
    let ok = match shape {
        [r, c, b] => *r == n && *c == n && *b == nb,
        [r, c] => *r == n && *c == n && nb == 1,
        _ => false,
    };
    if !ok {
        bail!(
            "{what}: shape {shape:?}, but set-up {} needs [{n}, {n}, {nb}]{}",
            setup.name.as_str(),
            if nb == 1 {
                format!(" or [{n}, {n}]")
            } else {
                String::new()
            }
        );
    }
    if let Some(i) = flat.iter().position(|v| !v.is_finite()) {
        bail!("{what}: pixel {i} is {} (the maps must be finite)", flat[i]);
    }
    Ok(maps_from_bins_last(flat, nb))
}

/// Read an observed map set of `setup`'s shape, `[n_bins][npix^2]`.
pub fn read_maps(path: &Path, setup: &Setup) -> Result<Vec<Vec<f64>>> {
    let a = crate::io::read_float_npy(path, "--data map")?;
    let flat = a.iter().copied().collect::<Vec<f64>>();
    check_maps(
        a.shape(),
        &flat,
        setup,
        &format!("--data {}", path.display()),
    )
}

/// Run one analysis and write `samples.npy`, `summary.json` and `corner.png`.
pub fn infer(s: &InferSettings) -> Result<Posterior> {
    let name = SetupName::parse(&s.setup)?;
    let setup = Setup::new(name)?;
    if !["cl", "fullfield", "vmim", "mse", "mae"].contains(&s.method.as_str()) {
        bail!(
            "--method {:?}: expected one of cl, fullfield, vmim, mse, mae",
            s.method
        );
    }
    if !["npe", "nle"].contains(&s.estimator.as_str()) {
        bail!("--estimator {:?}: expected npe or nle", s.estimator);
    }
    let data = read_maps(&s.data, &setup)?;
    for f in ["samples.npy", "summary.json"] {
        crate::output::refuse_overwriting_inputs("--out", &s.out.join(f), &[("--data", &s.data)])?;
    }
    let mut inputs = vec![("--data", s.data.as_path())];
    if let Some(p) = &s.sims {
        inputs.push(("--sims", p.as_path()));
    }
    // resumable: a full-field chain continues from its checkpoint (the
    // other methods rewrite their outputs, so another method, data or
    // settings is another run)
    let kind = if s.method == "fullfield" {
        crate::run_dir::Kind::Resumable
    } else {
        crate::run_dir::Kind::Rewritten
    };
    let dir =
        crate::run_dir::RunDir::open(&s.out, "lensing-cosmology infer", s, s.reuse, kind, &inputs)?;
    let post = match s.method.as_str() {
        "fullfield" => infer_fullfield(s, setup, &data)?,
        "cl" => infer_cl(s, setup, &data)?,
        _ => infer_implicit(s, setup, &data)?,
    };
    write_outputs(s, &post)?;
    dir.finish()?;
    Ok(post)
}

/// Read `simulate`'s archive: `(theta, maps [n_bins][npix^2])` per simulation.
pub fn read_sims(path: &Path, setup: &Setup) -> Result<Vec<super::model::Simulation>> {
    let f = std::fs::File::open(path).with_context(|| format!("--sims {}", path.display()))?;
    let mut z = ndarray_npy::NpzReader::new(f)
        .with_context(|| format!("--sims {}: not an .npz archive", path.display()))?;
    let theta = crate::io::npz_float(&mut z, "theta")
        .with_context(|| format!("--sims {}: no float array 'theta'", path.display()))?;
    let maps = crate::io::npz_float(&mut z, "kappa_obs")
        .with_context(|| format!("--sims {}: no float array 'kappa_obs'", path.display()))?;
    let (n, nb, np) = (setup.npix, setup.n_bins(), setup.n_params());
    if theta.ndim() != 2 || theta.shape()[1] != np {
        bail!(
            "--sims {}: theta has shape {:?}, but set-up {} has {np} parameters ({})",
            path.display(),
            theta.shape(),
            setup.name.as_str(),
            setup.names.join(", ")
        );
    }
    let m = theta.shape()[0];
    if maps.shape() != [m, n, n, nb] {
        bail!(
            "--sims {}: kappa_obs has shape {:?}, expected [{m}, {n}, {n}, {nb}]",
            path.display(),
            maps.shape()
        );
    }
    if let Some(v) = theta.iter().chain(maps.iter()).find(|v| !v.is_finite()) {
        bail!("--sims {}: holds a non-finite value ({v})", path.display());
    }
    let flat = maps.as_slice().expect("standard layout").to_vec();
    let per = n * n * nb;
    Ok((0..m)
        .map(|i| {
            let t = (0..np).map(|k| theta[[i, k]]).collect();
            (t, maps_from_bins_last(&flat[i * per..(i + 1) * per], nb))
        })
        .collect())
}

fn infer_cl(s: &InferSettings, setup: Setup, data: &[Vec<f64>]) -> Result<Posterior> {
    let model = FieldModel::new(setup)?;
    let start = Instant::now();
    let (like, n_sims) = match &s.sims {
        Some(p) => {
            let sims = read_sims(p, &model.setup)?;
            let n = sims.len();
            (super::cl::ClMaps::with_simulations(&model, data, &sims)?, n)
        }
        None => (super::cl::ClMaps::new(&model, data)?, 0),
    };
    let settings = NutsSettings {
        chains: s.chains,
        warmup: s.warmup.unwrap_or(500),
        draws: s.draws.unwrap_or(2000),
        seed: s.seed,
        progress: !s.quiet,
        init: Some(model.setup.fiducial.clone()),
        init_radius: 0.5,
        ..Default::default()
    };
    let post = cosmodiff_infer::Posterior::new(&like, model.setup.priors.clone())?;
    let samples = cosmodiff_infer::run_nuts(&post, &settings)?;
    let np = model.setup.n_params();
    Ok(Posterior {
        setup: model.setup.name,
        names: model.setup.names.clone(),
        samples: samples
            .flat_draws()
            .chunks(np)
            .map(|c| c.to_vec())
            .collect(),
        n_simulations: n_sims,
        wall_seconds: start.elapsed().as_secs_f64(),
        chain: Some(samples),
        extra: serde_json::Value::Null,
    })
}

fn infer_fullfield(s: &InferSettings, setup: Setup, data: &[Vec<f64>]) -> Result<Posterior> {
    let model = FieldModel::new(setup)?;
    let start = Instant::now();
    // One gradient, timed, for the expected wall time.
    let like = fullfield::FullFieldLikelihood::new(&model, data);
    let theta0: Vec<f64> = model.setup.fiducial.clone();
    let mut x = theta0.clone();
    x.resize(cosmodiff_infer::LogDensity::dim(&like), 0.0);
    let mut g = vec![0.0; x.len()];
    cosmodiff_infer::LogDensity::logp_and_grad(&like, &x, &mut g)
        .context("evaluating the full-field posterior at the prior mean")?;
    let t = Instant::now();
    cosmodiff_infer::LogDensity::logp_and_grad(&like, &x, &mut g)?;
    let grad_s = t.elapsed().as_secs_f64();
    let warmup = s.warmup.unwrap_or(600);
    let draws = s.draws.unwrap_or(1300);
    // ~2^5 gradients per iteration in these posteriors; chains in parallel.
    let par = s.chains.min(rayon::current_num_threads()).max(1) as f64;
    let expect = grad_s * 32.0 * ((warmup + draws) * s.chains) as f64 / par;
    println!(
        "full-field NUTS over {} dimensions: {:.1} ms per gradient, expected wall time ~{:.0} min ({} chains x {} warm-up + {} draws)",
        x.len(),
        1e3 * grad_s,
        expect / 60.0,
        s.chains,
        warmup,
        draws
    );
    let settings = NutsSettings {
        chains: s.chains,
        warmup,
        draws,
        seed: s.seed,
        progress: !s.quiet,
        init_radius: 0.5,
        ..Default::default()
    };
    let ck = s.out.join("checkpoint.npz");
    let samples = fullfield::sample(&model, data, &theta0, settings, Some(&ck))?;
    let flat = samples.flat_draws();
    let np = model.setup.n_params();
    Ok(Posterior {
        setup: model.setup.name,
        names: model.setup.names.clone(),
        samples: flat.chunks(np).map(|c| c.to_vec()).collect(),
        n_simulations: 0,
        wall_seconds: start.elapsed().as_secs_f64(),
        chain: Some(samples),
        extra: serde_json::Value::Null,
    })
}

/// Largest training set held in memory (float64 map values): 8 GiB.
const MAX_TRAIN_VALUES: usize = 1 << 30;

fn infer_implicit(s: &InferSettings, setup: Setup, data: &[Vec<f64>]) -> Result<Posterior> {
    use super::implicit::{self, Compression, ImplicitOptions};
    let compression = Compression::parse(&s.method)?;
    let estimator = cosmodiff_sbi::Method::parse(&s.estimator)?;
    let model = FieldModel::new(setup)?;
    let start = Instant::now();
    let per = model.setup.n_bins() * model.setup.npix * model.setup.npix;
    let too_many = |n: usize| n.checked_mul(per).is_none_or(|v| v > MAX_TRAIN_VALUES);
    let (theta, x) = match &s.sims {
        Some(p) => {
            let sims = read_sims(p, &model.setup)?;
            if too_many(sims.len()) {
                bail!(
                    "--sims {}: {} simulations of {per} pixels exceed the 8 GiB training budget (at most {})",
                    p.display(),
                    sims.len(),
                    MAX_TRAIN_VALUES / per
                );
            }
            let np = model.setup.n_params();
            let mut theta = ndarray::Array2::zeros((sims.len(), np));
            let mut x = ndarray::Array2::zeros((sims.len(), per));
            for (i, (t, m)) in sims.iter().enumerate() {
                theta.row_mut(i).assign(&ndarray::ArrayView1::from(t));
                x.row_mut(i).assign(&ndarray::Array1::from(m.concat()));
            }
            (theta, x)
        }
        None => {
            let n = s.n_sims.unwrap_or(10_000);
            if n < 10 || too_many(n) {
                bail!(
                    "--n-sims {n}: need between 10 and {} simulations of {per} pixels (8 GiB)",
                    MAX_TRAIN_VALUES / per
                );
            }
            if !s.quiet {
                println!("simulating {n} training maps");
            }
            implicit::simulate_training_set(&model, n, s.seed ^ TRAIN_STREAM)?
        }
    };
    let mut opts = ImplicitOptions::new(compression, estimator);
    opts.pool = s.pool;
    opts.seed = s.seed;
    opts.progress = !s.quiet;
    if let Some(e) = s.epochs {
        if e == 0 {
            bail!("--epochs 0: train for at least one epoch");
        }
        opts.train.max_epochs = e;
    }
    let trained = implicit::train(&model, theta.view(), x.view(), &opts)?;
    drop(x);
    crate::output::write_folder_via(&s.out, |t| trained.save(t))?;
    let draws = trained.posterior(data, s.draws.unwrap_or(10_000), s.seed)?;
    let mut extra = serde_json::json!({
        "compression": compression.as_str(),
        "pool": s.pool,
        "estimator": estimator.name(),
        "compressor_epochs": trained.compressor_report.epochs,
        "compressor_validation_loss": trained.compressor_report.best_validation_loss,
        "compressor_training_seconds": trained.compressor_report.seconds,
    });
    if s.tarp > 0 {
        if s.tarp < 2 {
            bail!(
                "--tarp {}: the coverage test needs at least 2 simulations (0 skips it)",
                s.tarp
            );
        }
        let cal = trained.coverage(&model, s.tarp, 1000, s.seed ^ TARP_STREAM)?;
        let names: Vec<String> = model.setup.names.iter().map(|n| n.to_string()).collect();
        cal.write(
            &s.out,
            &names,
            &format!("{} + {}", compression.as_str(), estimator.name()),
        )?;
        extra["tarp_simulations"] = json!(s.tarp);
        extra["tarp_mean_deviation"] = json!(cal.tarp.mean_deviation);
        extra["tarp_max_deviation"] = json!(cal.tarp.max_deviation);
        extra["tarp_atc"] = json!(cal.tarp.atc);
    }
    Ok(Posterior {
        setup: model.setup.name,
        names: model.setup.names.clone(),
        samples: draws.outer_iter().map(|r| r.to_vec()).collect(),
        n_simulations: trained.n_simulations,
        wall_seconds: start.elapsed().as_secs_f64(),
        chain: None,
        extra,
    })
}

/// Seed streams of the internal training and coverage simulations (kept
/// apart from `simulate`'s streams, which start at the plain seed).
const TRAIN_STREAM: u64 = 0x7261_696e_0000_0001;
const TARP_STREAM: u64 = 0x7461_7270_0000_0002;

/// Mean, standard deviation and the figures of merit `1/sqrt(det Cov)` of
/// the benchmark's parameter pairs.
/// Mean, sd and figures of merit (`1 / sqrt(det Cov)` for each pair of
/// Omega_c, sigma8, w0 present) of flat draws `[n, d]`: the summary schema
/// shared by every posterior of a map (`names`, `mean`, `sd`, `fom` keyed
/// "Omega_c,sigma8", `n_samples`, `wall_seconds`).
pub fn summarize_samples<S: AsRef<str>>(
    names: &[S],
    samples: &ndarray::Array2<f64>,
    wall_seconds: f64,
) -> serde_json::Value {
    let n = samples.nrows() as f64;
    let d = names.len();
    let mean: Vec<f64> = (0..d).map(|k| samples.column(k).sum() / n).collect();
    let cov = |a: usize, b: usize| {
        samples
            .outer_iter()
            .map(|s| (s[a] - mean[a]) * (s[b] - mean[b]))
            .sum::<f64>()
            / (n - 1.0)
    };
    let sd: Vec<f64> = (0..d).map(|k| cov(k, k).sqrt()).collect();
    let idx = |name: &str| names.iter().position(|n| n.as_ref() == name);
    let mut fom = serde_json::Map::new();
    for (a, b) in [("Omega_c", "sigma8"), ("Omega_c", "w0"), ("sigma8", "w0")] {
        if let (Some(i), Some(j)) = (idx(a), idx(b)) {
            let det = cov(i, i) * cov(j, j) - cov(i, j) * cov(i, j);
            fom.insert(format!("{a},{b}"), json!(1.0 / det.sqrt()));
        }
    }
    json!({
        "names": names.iter().map(|n| n.as_ref()).collect::<Vec<_>>(),
        "mean": mean,
        "sd": sd,
        "fom": fom,
        "n_samples": samples.nrows(),
        "wall_seconds": wall_seconds,
    })
}

/// "name = mean +- sd, ..." and the figures of merit of a summary, for the
/// terminal.
pub fn describe(summary: &serde_json::Value) -> String {
    let nums = |k: &str| -> Vec<f64> {
        summary[k]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_f64()).collect())
            .unwrap_or_default()
    };
    let names: Vec<&str> = summary["names"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    let mut line = names
        .iter()
        .zip(nums("mean").iter().zip(nums("sd")))
        .map(|(n, (m, sd))| format!("{n} = {m:.4} +- {sd:.4}"))
        .collect::<Vec<_>>()
        .join(", ");
    if let Some(f) = summary["fom"].as_object() {
        for (k, v) in f {
            line.push_str(&format!(
                "; FoM({k}) = {:.0}",
                v.as_f64().unwrap_or(f64::NAN)
            ));
        }
    }
    line
}

/// `summary.json` of a posterior: [`summarize_samples`] plus the set-up,
/// the simulation count, method-specific numbers and chain diagnostics.
pub fn summarize(p: &Posterior) -> serde_json::Value {
    let arr = ndarray::Array2::from_shape_vec((p.samples.len(), p.names.len()), p.samples.concat())
        .expect("rows of equal length");
    let mut v = summarize_samples(&p.names, &arr, p.wall_seconds);
    v["setup"] = json!(p.setup.as_str());
    v["n_simulations"] = json!(p.n_simulations);
    if let serde_json::Value::Object(m) = &p.extra {
        for (k, x) in m {
            v[k] = x.clone();
        }
    }
    if let Some(c) = &p.chain {
        let sm = c.summary();
        v["r_hat"] = json!(sm.params.iter().map(|q| q.r_hat).collect::<Vec<_>>());
        v["ess_bulk"] = json!(sm.params.iter().map(|q| q.ess_bulk).collect::<Vec<_>>());
        v["divergences"] = json!(c.divergences());
    }
    v
}

fn write_outputs(s: &InferSettings, p: &Posterior) -> Result<()> {
    let d = p.names.len();
    let arr = ndarray::Array2::from_shape_vec((p.samples.len(), d), p.samples.concat())?;
    crate::output::write_npy(&s.out.join("samples.npy"), &arr)?;
    let summary = summarize(p);
    crate::output::write_bytes(
        &s.out.join("summary.json"),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    let setup = Setup::new(p.setup)?;
    match &p.chain {
        Some(c) => crate::sample::corner_plot(c, &s.out.join("corner.png"), Some(&setup.fiducial))?,
        None => crate::sample::corner_flat(
            &s.out.join("corner.png"),
            &p.samples.concat(),
            &p.names,
            Some(&setup.fiducial),
        )?,
    }
    println!(
        "{} posterior ({} samples, {:.0} s): {}",
        s.method,
        p.samples.len(),
        p.wall_seconds,
        p.names
            .iter()
            .zip(summary["mean"].as_array().unwrap())
            .zip(summary["sd"].as_array().unwrap())
            .map(|((n, m), sd)| format!(
                "{n} = {:.4} +- {:.4}",
                m.as_f64().unwrap(),
                sd.as_f64().unwrap()
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(f) = summary["fom"].as_object() {
        for (k, v) in f {
            println!("  FoM({k}) = {:.0}", v.as_f64().unwrap());
        }
    }
    Ok(())
}
