//! `cosmodiff fieldflow calibrate`: is a field flow's posterior honest, and
//! how much does it gain over the power spectrum? On held-out fields with
//! known parameters (a `simulate density` or `lensing-cosmology simulate`
//! file the flow never saw), each field's posterior of theta under a
//! uniform prior over the training range is computed on a grid
//! ([`grid_posterior`]); the 68% intervals must cover the truth in about
//! 68% of the fields. With `--pk-train`, the same is done for a Gaussian
//! likelihood of the binned log power spectrum ([`PkLikelihood`]) and the
//! figures of merit are compared field by field. The latent fields of the
//! held-out fields at their true parameters must be white noise (flat
//! power spectrum).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Result};
use cosmodiff_nn::trenf::{FieldFlow, FieldShape};
use nalgebra::DMatrix;
use ndarray::{Array2, ArrayView1, ArrayView2};
use serde_json::json;

use super::{check_theta, read_fields, shell_power_each};

/// `cosmodiff fieldflow calibrate`.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct CalibrateSettings {
    /// Model directory written by `fieldflow train`.
    #[cfg_attr(feature = "cli", arg(long))]
    pub model: PathBuf,
    /// Held-out fields with their true theta (.npz, as `fieldflow train` reads).
    #[cfg_attr(feature = "cli", arg(long))]
    pub fields: PathBuf,
    /// Output directory: calibration.json, per_field.csv, truth_vs_posterior.png.
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
    /// Training fields for a P(k)-only posterior to compare with (.npz).
    #[cfg_attr(feature = "cli", arg(long))]
    pub pk_train: Option<PathBuf>,
    /// Grid points per parameter (each of the two grid passes).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 24))]
    pub grid: usize,
    /// Use only the first N held-out fields.
    #[cfg_attr(feature = "cli", arg(long))]
    pub max_fields: Option<usize>,
    /// Likelihood temperature T: posteriors from p(field | theta)^(1/T) (as `fieldflow infer --temperature`).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 1.0))]
    pub temperature: f64,
    #[cfg_attr(feature = "cli", command(flatten))]
    pub reuse: crate::run_dir::Reuse,
}

/// A posterior tabulated on a grid of cell centres.
#[derive(Debug, Clone)]
pub struct GridPosterior {
    /// Posterior mean.
    pub mean: Vec<f64>,
    /// Posterior covariance.
    pub cov: Array2<f64>,
    /// Central 68% interval of each marginal.
    pub interval_68: Vec<[f64; 2]>,
}

impl GridPosterior {
    /// Figure of merit `1 / sqrt(det C)`.
    pub fn fom(&self) -> f64 {
        let c = DMatrix::from_fn(self.cov.nrows(), self.cov.ncols(), |i, j| self.cov[[i, j]]);
        1.0 / c.determinant().sqrt()
    }
}

/// The posterior `exp(logp)` of up to three parameters inside the box
/// `[low, high]`, in grid passes of `n` points per axis: the whole box,
/// then windows of +-6 sd (at least +-1.5 cells of the pass before) around
/// the previous pass's mean, until the posterior spans at least three cells
/// on every axis (at most six passes), so a posterior much narrower than
/// the prior is still resolved (a variance never below that of a uniform
/// cell, `width^2 / 12`). `logp` evaluates a batch of points `[m, p]`.
pub fn grid_posterior(
    logp: impl Fn(ArrayView2<f64>) -> Result<Vec<f64>>,
    low: &[f64],
    high: &[f64],
    n: usize,
) -> Result<GridPosterior> {
    let p = low.len();
    if !(1..=3).contains(&p) || high.len() != p {
        bail!("a grid posterior needs 1 to 3 parameters, got {p}");
    }
    if n < 4 {
        bail!("--grid {n}: need at least 4 points per parameter");
    }
    let (mut lo, mut hi) = (low.to_vec(), high.to_vec());
    let mut post = one_pass(&logp, &lo, &hi, n)?;
    for pass in 1..6 {
        let width: Vec<f64> = (0..p).map(|j| (hi[j] - lo[j]) / n as f64).collect();
        let resolved = (0..p).all(|j| post.cov[[j, j]].sqrt() >= 1.5 * width[j]);
        if pass > 1 && resolved {
            break;
        }
        for j in 0..p {
            let half = (6.0 * post.cov[[j, j]].sqrt()).max(1.5 * width[j]);
            lo[j] = (post.mean[j] - half).max(low[j]);
            hi[j] = (post.mean[j] + half).min(high[j]);
        }
        post = one_pass(&logp, &lo, &hi, n)?;
    }
    // Still within a cell or two: at least the spread of a uniform cell.
    for j in 0..p {
        let w = (hi[j] - lo[j]) / n as f64;
        post.cov[[j, j]] = post.cov[[j, j]].max(w * w / 12.0);
    }
    Ok(post)
}

/// The posterior on `n^p` cell centres of `[low, high]`.
fn one_pass(
    logp: &impl Fn(ArrayView2<f64>) -> Result<Vec<f64>>,
    low: &[f64],
    high: &[f64],
    n: usize,
) -> Result<GridPosterior> {
    let p = low.len();
    let m = n.pow(p as u32);
    let width: Vec<f64> = (0..p).map(|j| (high[j] - low[j]) / n as f64).collect();
    let index = |i: usize, j: usize| (i / n.pow((p - 1 - j) as u32)) % n;
    let pts = Array2::from_shape_fn((m, p), |(i, j)| {
        low[j] + (index(i, j) as f64 + 0.5) * width[j]
    });
    let lp = logp(pts.view())?;
    let top = lp.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !top.is_finite() {
        bail!("the log-posterior is not finite anywhere on the grid");
    }
    let w: Vec<f64> = lp.iter().map(|&v| (v - top).exp()).collect();
    let total: f64 = w.iter().sum();
    let mean: Vec<f64> = (0..p)
        .map(|j| (0..m).map(|i| w[i] * pts[[i, j]]).sum::<f64>() / total)
        .collect();
    // Cell-centre sums: the midpoint rule, exact to high order for a
    // smooth posterior resolved by the grid.
    let cov = Array2::from_shape_fn((p, p), |(a, b)| {
        (0..m)
            .map(|i| w[i] * (pts[[i, a]] - mean[a]) * (pts[[i, b]] - mean[b]))
            .sum::<f64>()
            / total
    });
    let interval_68 = (0..p)
        .map(|j| {
            let mut marg = vec![0.0; n];
            for i in 0..m {
                marg[index(i, j)] += w[i] / total;
            }
            [
                quantile(&marg, low[j], width[j], 0.16),
                quantile(&marg, low[j], width[j], 0.84),
            ]
        })
        .collect();
    Ok(GridPosterior {
        mean,
        cov,
        interval_68,
    })
}

/// Quantile `q` of a histogram density (`mass` per cell of `width` from
/// `low`), linear inside the cell.
fn quantile(mass: &[f64], low: f64, width: f64, q: f64) -> f64 {
    let mut acc = 0.0;
    for (c, &m) in mass.iter().enumerate() {
        if acc + m >= q && m > 0.0 {
            return low + width * (c as f64 + (q - acc) / m);
        }
        acc += m;
    }
    low + width * mass.len() as f64
}

/// A Gaussian likelihood of the binned log power spectrum `y_b = ln P_b`
/// with an emulated mean and a simulated covariance
/// ([`crate::emulator::QuadraticGaussian`]), the standard power-spectrum
/// analysis of simulation-based cosmology.
pub struct PkLikelihood {
    shape: FieldShape,
    gauss: crate::emulator::QuadraticGaussian,
}

impl PkLikelihood {
    /// Fit on training fields `[n, L * C]` (first channel) and their theta.
    pub fn fit(fields: ArrayView2<f64>, theta: ArrayView2<f64>, shape: FieldShape) -> Result<Self> {
        if theta.nrows() == 0 {
            bail!("--pk-train: no training fields");
        }
        let y = log_spectra(fields, shape);
        Ok(Self {
            shape,
            gauss: crate::emulator::QuadraticGaussian::fit(&y, theta, "--pk-train")?,
        })
    }

    /// `ln L(theta_i)` of one field at every row of `theta`.
    pub fn log_likelihood(&self, field: ArrayView1<f64>, theta: ArrayView2<f64>) -> Vec<f64> {
        let y = log_spectra(field.insert_axis(ndarray::Axis(0)), self.shape);
        let y: Vec<f64> = y.row(0).iter().copied().collect();
        self.gauss.log_likelihood(&y, theta)
    }
}

/// `ln P_b` of each field, `[n, bins]`.
fn log_spectra(fields: ArrayView2<f64>, shape: FieldShape) -> DMatrix<f64> {
    let (_, pk) = shell_power_each(fields, shape);
    DMatrix::from_fn(pk.nrows(), pk.ncols(), |i, b| pk[[i, b]].max(1e-300).ln())
}

/// What [`calibrate`] returns (and writes as `calibration.json`).
pub struct Calibration {
    pub summary: serde_json::Value,
}

/// Grid posteriors of every held-out field, their coverage and figures of
/// merit (and the P(k)-only ones with `--pk-train`), the latent power of
/// the held-out fields.
pub fn calibrate(s: &CalibrateSettings) -> Result<Calibration> {
    let start = Instant::now();
    let flow = FieldFlow::load(&s.model)?;
    let test = read_fields(&s.fields)?;
    let c = &flow.config;
    super::check_fields_shape(&flow, &test, &format!("--fields {}", s.fields.display()))?;
    if test.names != c.theta_names {
        bail!(
            "--fields {}: parameters {:?}, the model's are {:?}",
            s.fields.display(),
            test.names,
            c.theta_names
        );
    }
    super::check_temperature(s.temperature)?;
    let n = s.max_fields.unwrap_or(usize::MAX).min(test.fields.nrows());
    if n == 0 {
        bail!("--fields {}: no fields to calibrate on", s.fields.display());
    }
    let p = c.theta_names.len();
    for (i, t) in test.theta.outer_iter().take(n).enumerate() {
        let what = format!("--fields {}: field {i}", s.fields.display());
        check_theta(&flow, t.as_slice().expect("row"), &what)?;
    }
    let pk = match &s.pk_train {
        Some(path) => {
            let train = read_fields(path)?;
            if train.shape != c.shape || train.names != c.theta_names {
                bail!(
                    "--pk-train {}: its fields or parameters differ from the model's",
                    path.display()
                );
            }
            Some(PkLikelihood::fit(
                train.fields.view(),
                train.theta.view(),
                train.shape,
            )?)
        }
        None => None,
    };
    let mut inputs = vec![("--fields", s.fields.as_path())];
    if let Some(t) = &s.pk_train {
        inputs.push(("--pk-train", t.as_path()));
    }
    for f in [
        "calibration.json",
        "per_field.csv",
        "truth_vs_posterior.png",
    ] {
        crate::output::refuse_overwriting_inputs("--out", &s.out.join(f), &inputs)?;
    }
    inputs.push(("--model", s.model.as_path()));
    let dir = crate::run_dir::RunDir::open(
        &s.out,
        "fieldflow calibrate",
        s,
        s.reuse,
        crate::run_dir::Kind::Rewritten,
        &inputs,
    )?;
    let pb = crate::report::progress(n as u64, "calibrate");
    let mut flow_post = Vec::with_capacity(n);
    let mut pk_post = Vec::with_capacity(n);
    for i in 0..n {
        let field = test.fields.row(i);
        let x = field.to_vec();
        flow_post.push(grid_posterior(
            |t| {
                Ok(flow
                    .log_prob_at(&x, t)?
                    .into_iter()
                    .map(|v| v / s.temperature)
                    .collect())
            },
            &c.theta_min,
            &c.theta_max,
            s.grid,
        )?);
        if let Some(pk) = &pk {
            pk_post.push(grid_posterior(
                |t| Ok(pk.log_likelihood(field, t)),
                &c.theta_min,
                &c.theta_max,
                s.grid,
            )?);
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    let truth = test.theta.slice(ndarray::s![..n, ..]);
    let coverage = |post: &[GridPosterior]| -> Vec<f64> {
        (0..p)
            .map(|j| {
                post.iter()
                    .zip(truth.outer_iter())
                    .filter(|(g, t)| g.interval_68[j][0] <= t[j] && t[j] <= g.interval_68[j][1])
                    .count() as f64
                    / post.len() as f64
            })
            .collect()
    };
    // <((mean - truth) / sd)^2> per parameter: 1 for a calibrated
    // posterior; for a Gaussian likelihood that is too sharp by a factor,
    // the temperature that calibrates it.
    let chi2 = |post: &[GridPosterior]| -> Vec<f64> {
        (0..p)
            .map(|j| {
                post.iter()
                    .zip(truth.outer_iter())
                    .map(|(g, t)| (g.mean[j] - t[j]).powi(2) / g.cov[[j, j]])
                    .sum::<f64>()
                    / post.len() as f64
            })
            .collect()
    };
    let rmse = |post: &[GridPosterior]| -> Vec<f64> {
        (0..p)
            .map(|j| {
                (post
                    .iter()
                    .zip(truth.outer_iter())
                    .map(|(g, t)| (g.mean[j] - t[j]).powi(2))
                    .sum::<f64>()
                    / post.len() as f64)
                    .sqrt()
            })
            .collect()
    };
    let fom_flow: Vec<f64> = flow_post.iter().map(GridPosterior::fom).collect();
    let fom_pk: Vec<f64> = pk_post.iter().map(GridPosterior::fom).collect();
    let ratio: Vec<f64> = fom_flow.iter().zip(&fom_pk).map(|(a, b)| a / b).collect();
    // Latent fields of the held-out fields at their true parameters.
    let m = n.min(64);
    let z = flow.latent(
        test.fields.slice(ndarray::s![..m, ..]),
        truth.slice(ndarray::s![..m, ..]),
    )?;
    let lat = super::latent_power(z.view(), test.shape);
    let named = |v: &[f64]| -> serde_json::Value {
        c.theta_names
            .iter()
            .zip(v)
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let mut summary = json!({
        "n_fields": n,
        "names": c.theta_names,
        "coverage_68": named(&coverage(&flow_post)),
        "coverage_68_binomial_sd": (0.68 * 0.32 / n as f64).sqrt(),
        "fom_median": median(&fom_flow),
        "chi2_per_field": named(&chi2(&flow_post)),
        "suggested_temperature": s.temperature * chi2(&flow_post).iter().sum::<f64>() / p as f64,
        "rmse_of_mean": named(&rmse(&flow_post)),
        "latent_power_max_deviation": lat.max_deviation,
        "latent_power_max_deviation_all_shells": lat.max_deviation_all_shells,
        "grid": s.grid,
        "temperature": s.temperature,
        "wall_seconds": start.elapsed().as_secs_f64(),
    });
    if pk.is_some() {
        summary["coverage_68_pk"] = named(&coverage(&pk_post));
        summary["fom_pk_median"] = json!(median(&fom_pk));
        summary["fom_ratio_median"] = json!(median(&ratio));
        summary["chi2_per_field_pk"] = named(&chi2(&pk_post));
        summary["rmse_of_mean_pk"] = named(&rmse(&pk_post));
    }
    let mut csv = String::from("index");
    for name in &c.theta_names {
        csv += &format!(",{name}_true,{name}_mean,{name}_sd,{name}_lo68,{name}_hi68");
        if pk.is_some() {
            csv += &format!(",{name}_pk_mean,{name}_pk_sd");
        }
    }
    csv += if pk.is_some() {
        ",fom,fom_pk\n"
    } else {
        ",fom\n"
    };
    for i in 0..n {
        csv += &i.to_string();
        for j in 0..p {
            let g = &flow_post[i];
            csv += &format!(
                ",{},{},{},{},{}",
                truth[[i, j]],
                g.mean[j],
                g.cov[[j, j]].sqrt(),
                g.interval_68[j][0],
                g.interval_68[j][1]
            );
            if let Some(q) = pk_post.get(i) {
                csv += &format!(",{},{}", q.mean[j], q.cov[[j, j]].sqrt());
            }
        }
        csv += &format!(",{}", fom_flow[i]);
        if let Some(f) = fom_pk.get(i) {
            csv += &format!(",{f}");
        }
        csv += "\n";
    }
    crate::output::write_bytes(&s.out.join("per_field.csv"), csv.as_bytes())?;
    truth_plot(
        &s.out.join("truth_vs_posterior.png"),
        &c.theta_names,
        truth,
        &flow_post,
    )?;
    crate::output::write_bytes(
        &s.out.join("calibration.json"),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    let cov = coverage(&flow_post);
    let mut line = format!(
        "calibration on {n} held-out fields: 68% coverage {}; median FoM {:.1}",
        c.theta_names
            .iter()
            .zip(&cov)
            .map(|(k, v)| format!("{k} {:.0}%", 100.0 * v))
            .collect::<Vec<_>>()
            .join(", "),
        median(&fom_flow)
    );
    if pk.is_some() {
        line += &format!(
            " ({:.2}x the P(k)-only {:.1})",
            median(&ratio),
            median(&fom_pk)
        );
    }
    println!(
        "{line}; latent power flat within {:.1}% inside the Nyquist sphere ({:.1}% over all shells)",
        100.0 * lat.max_deviation,
        100.0 * lat.max_deviation_all_shells
    );
    dir.finish()?;
    Ok(Calibration { summary })
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n.is_multiple_of(2) => 0.5 * (s[n / 2 - 1] + s[n / 2]),
        n => s[n / 2],
    }
}

/// Posterior mean +- sd against the truth, one panel per parameter stacked
/// into one figure by parameter offset: `truth_vs_posterior.png`.
fn truth_plot(
    path: &Path,
    names: &[String],
    truth: ArrayView2<f64>,
    post: &[GridPosterior],
) -> Result<()> {
    use cosmodiff_plot::lines::{LinePlot, Series};
    // One plot per parameter: name the file after the first and add the
    // others with a suffix.
    for (j, name) in names.iter().enumerate() {
        let mut order: Vec<usize> = (0..post.len()).collect();
        order.sort_by(|&a, &b| truth[[a, j]].total_cmp(&truth[[b, j]]));
        let x: Vec<f64> = order.iter().map(|&i| truth[[i, j]]).collect();
        let y: Vec<f64> = order.iter().map(|&i| post[i].mean[j]).collect();
        let e: Vec<f64> = order.iter().map(|&i| post[i].cov[[j, j]].sqrt()).collect();
        let plot = LinePlot::new(
            &format!("field-flow posterior of {name} on held-out fields"),
            &format!("true {name}"),
            &format!("posterior mean +- sd of {name}"),
        )
        .add(Series::points("posterior", &x, &y, Some(&e)))
        .add(Series::line("truth", &x, &x));
        let target = if j == 0 {
            path.to_path_buf()
        } else {
            path.with_file_name(format!(
                "{}_{name}.png",
                path.file_stem().and_then(|s| s.to_str()).unwrap_or("truth")
            ))
        };
        crate::output::write_via(&target, |t| Ok(plot.save(t)?))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Gaussian posterior on the grid: its mean, sd and 68% interval.
    #[test]
    fn grid_posterior_of_a_gaussian() {
        let (m, s) = ([0.31, 0.82], [0.01, 0.03]);
        let logp = |t: ArrayView2<f64>| -> Result<Vec<f64>> {
            Ok(t.outer_iter()
                .map(|r| -0.5 * (((r[0] - m[0]) / s[0]).powi(2) + ((r[1] - m[1]) / s[1]).powi(2)))
                .collect())
        };
        let g = grid_posterior(logp, &[0.1, 0.6], &[0.5, 1.0], 24).unwrap();
        for j in 0..2 {
            assert!((g.mean[j] - m[j]).abs() < 0.01 * s[j], "{g:?}");
            assert!((g.cov[[j, j]].sqrt() / s[j] - 1.0).abs() < 0.02, "{g:?}");
            assert!((g.interval_68[j][0] - (m[j] - 0.9945 * s[j])).abs() < 0.03 * s[j]);
            assert!((g.interval_68[j][1] - (m[j] + 0.9945 * s[j])).abs() < 0.03 * s[j]);
        }
        assert!((g.fom() * s[0] * s[1] - 1.0).abs() < 0.05);
    }
}
