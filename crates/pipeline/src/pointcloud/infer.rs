//! `cosmodiff pointcloud infer`: the posterior of `(Omega_m, sigma8)` for one
//! halo catalogue from the diffusion model's ELBO, used as the
//! log-likelihood on a grid over the training design (flat prior there).
//!
//! The ELBO of every grid point uses the same diffusion times (the
//! midpoints of `--times` equal intervals) and the same noise draws
//! (`--seed`): common random numbers, so the surface is smooth in theta and
//! its differences carry no Monte Carlo noise of their own.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Result};
use cosmodiff_pointcloud::PointVdm;
use serde_json::json;

use super::{load_model, select, DataSection};

/// `cosmodiff pointcloud infer`.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct InferSettings {
    /// Model directory (default: the shipped model).
    #[cfg_attr(feature = "cli", arg(long))]
    pub model: Option<PathBuf>,
    /// The observed catalogue (.npz with position [n, 3] in Mpc/h and mass [n]; its most massive halos are used).
    #[cfg_attr(feature = "cli", arg(long))]
    pub catalog: PathBuf,
    /// Output folder: loglike.npz, summary.json, posterior.png.
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
    /// Grid points per parameter over the training design.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 15))]
    pub grid: usize,
    /// Seed of the noise draws of the ELBO (common to every grid point).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0))]
    pub seed: u64,
    /// Diffusion times per ELBO (midpoints of equal intervals).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 32))]
    pub times: usize,
    /// True parameters "Omega_m,sigma8" to mark on the plot (optional).
    #[cfg_attr(feature = "cli", arg(long, allow_hyphen_values = true))]
    pub truth: Option<String>,
    #[cfg_attr(feature = "cli", command(flatten))]
    pub reuse: crate::run_dir::Reuse,
}

/// A posterior tabulated on a grid: axes, log-likelihood and summaries.
#[derive(Debug, Clone)]
pub struct GridResult {
    /// Cell centres of Omega_m.
    pub omega_m: Vec<f64>,
    /// Cell centres of sigma8.
    pub sigma8: Vec<f64>,
    /// `loglike[i][j]` at `(omega_m[i], sigma8[j])` [nats].
    pub loglike: Vec<Vec<f64>>,
    /// Posterior means.
    pub mean: Vec<f64>,
    /// Posterior standard deviations.
    pub sd: Vec<f64>,
    /// Central 68% intervals.
    pub interval68: Vec<[f64; 2]>,
}

/// Cell centres of `n` equal cells of `[lo, hi]`.
fn centres(r: [f64; 2], n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| r[0] + (i as f64 + 0.5) * (r[1] - r[0]) / n as f64)
        .collect()
}

/// Quantile `q` of the marginal `mass` on cells of `width` starting at `lo`
/// (linear inside a cell).
fn quantile(mass: &[f64], lo: f64, width: f64, q: f64) -> f64 {
    let mut acc = 0.0;
    for (c, &m) in mass.iter().enumerate() {
        if acc + m >= q && m > 0.0 {
            return lo + width * (c as f64 + (q - acc) / m);
        }
        acc += m;
    }
    lo + width * mass.len() as f64
}

/// Posterior means, standard deviations and central 68% intervals.
pub type Summary = (Vec<f64>, Vec<f64>, Vec<[f64; 2]>);

/// Mean, sd and central 68% interval of the posterior `exp(loglike)` on the
/// grid of `ranges` (flat prior).
pub fn summarise(ranges: &[[f64; 2]], loglike: &[Vec<f64>]) -> Result<Summary> {
    let (na, nb) = (loglike.len(), loglike.first().map_or(0, Vec::len));
    let top = loglike
        .iter()
        .flatten()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    if !top.is_finite() {
        bail!("the log-likelihood is not finite anywhere on the grid");
    }
    let axes = [centres(ranges[0], na), centres(ranges[1], nb)];
    let w: Vec<Vec<f64>> = loglike
        .iter()
        .map(|row| row.iter().map(|v| (v - top).exp()).collect())
        .collect();
    let total: f64 = w.iter().flatten().sum();
    let marg = [
        w.iter()
            .map(|r| r.iter().sum::<f64>() / total)
            .collect::<Vec<_>>(),
        (0..nb)
            .map(|j| w.iter().map(|r| r[j]).sum::<f64>() / total)
            .collect(),
    ];
    let mut mean = vec![];
    let mut sd = vec![];
    let mut interval = vec![];
    for a in 0..2 {
        let m: f64 = marg[a].iter().zip(&axes[a]).map(|(p, x)| p * x).sum();
        let width = (ranges[a][1] - ranges[a][0]) / marg[a].len() as f64;
        // at least the spread of one uniform cell
        let v: f64 = marg[a]
            .iter()
            .zip(&axes[a])
            .map(|(p, x)| p * (x - m).powi(2))
            .sum();
        mean.push(m);
        sd.push(v.max(width * width / 12.0).sqrt());
        interval.push([
            quantile(&marg[a], ranges[a][0], width, 0.16),
            quantile(&marg[a], ranges[a][0], width, 0.84),
        ]);
    }
    Ok((mean, sd, interval))
}

/// The ELBO grid of one cloud (`[n_halos, F]` rows, raw units).
pub fn grid_posterior(
    model: &PointVdm,
    cloud: &[f64],
    grid: usize,
    times: usize,
    seed: u64,
) -> Result<GridResult> {
    if grid < 3 {
        bail!("--grid {grid}: need at least 3 points per parameter");
    }
    if times == 0 {
        bail!("--times must be at least 1");
    }
    let r = &model.config.theta_range;
    let (om, s8) = (centres(r[0], grid), centres(r[1], grid));
    let pb = crate::report::progress((grid * grid) as u64, "ELBO grid");
    let mut loglike = vec![vec![0.0; grid]; grid];
    for (i, &a) in om.iter().enumerate() {
        for (j, &b) in s8.iter().enumerate() {
            loglike[i][j] = model.elbo(&[cloud.to_vec()], &[vec![a, b]], times, seed)?[0];
            pb.inc(1);
        }
    }
    pb.finish_and_clear();
    let (mean, sd, interval68) = summarise(&[r[0], r[1]], &loglike)?;
    Ok(GridResult {
        omega_m: om,
        sigma8: s8,
        loglike,
        mean,
        sd,
        interval68,
    })
}

/// Draws from the grid posterior (a cell by its probability, uniform inside
/// it) for plots.
pub fn grid_draws(g: &GridResult, ranges: &[[f64; 2]], n: usize, seed: u64) -> Vec<f64> {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let top = g
        .loglike
        .iter()
        .flatten()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = g
        .loglike
        .iter()
        .flatten()
        .map(|v| (v - top).exp())
        .collect();
    let total: f64 = w.iter().sum();
    let (na, nb) = (g.omega_m.len(), g.sigma8.len());
    let (wa, wb) = (
        (ranges[0][1] - ranges[0][0]) / na as f64,
        (ranges[1][1] - ranges[1][0]) / nb as f64,
    );
    let mut out = Vec::with_capacity(2 * n);
    for _ in 0..n {
        let mut u = rng.random::<f64>() * total;
        let mut k = 0;
        while k + 1 < w.len() && u > w[k] {
            u -= w[k];
            k += 1;
        }
        let (i, j) = (k / nb, k % nb);
        out.push(g.omega_m[i] + (rng.random::<f64>() - 0.5) * wa);
        out.push(g.sigma8[j] + (rng.random::<f64>() - 0.5) * wb);
    }
    out
}

/// The model's halo selection (from its simulation record, else its layout).
pub fn selection(model: &PointVdm) -> DataSection {
    serde_json::from_value(model.config.simulation["selection"].clone()).unwrap_or(DataSection {
        n_halos: model.config.n_points,
        velocity: model.config.velocity,
        mass: model.config.mass,
        dequantize: false,
    })
}

/// `cosmodiff pointcloud infer`.
pub fn infer(s: &InferSettings) -> Result<GridResult> {
    let model = load_model(s.model.as_deref())?;
    let truth = match &s.truth {
        Some(t) => Some(crate::fieldflow::parse_theta(t)?),
        None => None,
    };
    let cloud = select(
        &s.catalog,
        model.config.box_size,
        &selection(&model),
        "--catalog",
    )?;
    crate::output::refuse_overwriting_inputs(
        "--out",
        &s.out.join("loglike.npz"),
        &[("--catalog", &s.catalog)],
    )?;
    let dir = crate::run_dir::RunDir::open(
        &s.out,
        "pointcloud infer",
        s,
        s.reuse,
        crate::run_dir::Kind::Rewritten,
        &[("--catalog", &s.catalog)],
    )?;
    let start = Instant::now();
    let g = grid_posterior(&model, &cloud, s.grid, s.times, s.seed)?;
    write_result(&model, &g, truth.as_deref(), dir.path())?;
    println!(
        "Omega_m = {:.3} +- {:.3}, sigma8 = {:.3} +- {:.3} from {} halos ({}x{} ELBO grid, {:.0} s); wrote {}",
        g.mean[0],
        g.sd[0],
        g.mean[1],
        g.sd[1],
        model.config.n_points,
        s.grid,
        s.grid,
        start.elapsed().as_secs_f64(),
        s.out.display()
    );
    dir.finish()?;
    Ok(g)
}

/// `loglike.npz`, `summary.json` and `posterior.png` of a grid posterior.
pub fn write_result(
    model: &PointVdm,
    g: &GridResult,
    truth: Option<&[f64]>,
    out: &Path,
) -> Result<()> {
    let mut z = crate::io::Npz::new();
    z.add_1d("omega_m", &g.omega_m)?;
    z.add_1d("sigma8", &g.sigma8)?;
    z.add_2d("loglike", &g.loglike)?;
    z.write(&out.join("loglike.npz"))?;
    let summary = json!({
        "names": ["Omega_m", "sigma8"],
        "mean": g.mean,
        "sd": g.sd,
        "interval68": g.interval68,
        "truth": truth,
        "n_halos": model.config.n_points,
        "loglike": "ELBO of the point-cloud diffusion model [nats], flat prior on the training design",
    });
    crate::output::write_bytes(
        &out.join("summary.json"),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    let ranges = &model.config.theta_range;
    let draws = grid_draws(g, ranges, 20_000, 0);
    let names = vec!["Omega_m".to_string(), "sigma8".to_string()];
    let png = out.join("posterior.png");
    crate::output::write_via(&png, |t| {
        Ok(cosmodiff_plot::corner::CornerPlot::new(&names)
            .truths(truth)
            .title("p(Omega_m, sigma8 | halos): diffusion-model ELBO")
            .save(t, &draws)?)
    })?;
    Ok(())
}
