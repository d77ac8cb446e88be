//! The `cosmodiff fieldflow` workflows: train a TRENF field flow
//! ([`cosmodiff_nn::trenf`]) on simulated fields, evaluate its exact
//! log-likelihood `log p(field | theta)`, and sample the posterior of theta
//! for an observed field.
//!
//! Training files (`.npz`): `theta` `[n, p]`, optional `theta_names`, and
//! the fields as `field` (or `kappa_obs`, so `lensing-cosmology simulate`
//! output is read directly): 2-D maps `[n, N, N]` or `[n, N, N, C]`
//! (channels, e.g. tomographic bins, last), or 3-D boxes `[n, N, N, N]`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use cosmodiff_nn::trenf::{FieldFlow, FieldShape, LogProb, TrenfConfig};
use cosmodiff_nn::{LrSchedule, TrainConfig};
use cosmodiff_sbi::mcmc::{slice_sample_batched, SliceSettings};
use ndarray::{Array2, ArrayD};
use rand::{RngExt, SeedableRng};
use serde::Deserialize;
use serde_json::json;

/// `cosmodiff fieldflow train`.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct TrainSettings {
    /// Training fields (.npz): theta [n, p], theta_names, and field (or kappa_obs): maps [n, N, N(, C)] or boxes [n, N, N, N].
    #[cfg_attr(feature = "cli", arg(long))]
    pub fields: PathBuf,
    /// Model directory to write (weights.safetensors, fieldflow.json, train.json).
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
    /// TOML with [flow] (layers, knots, bins, bound, hidden, spline, actnorm) and [train] (epochs, batch_size, learning_rate, validation_fraction, patience, seed).
    #[cfg_attr(feature = "cli", arg(long))]
    pub config: Option<PathBuf>,
}

/// The training config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainToml {
    pub flow: TrenfConfig,
    pub train: TrainSection,
}

/// `[train]`: the optimiser's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainSection {
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub validation_fraction: f64,
    pub patience: usize,
    pub seed: u64,
}

impl Default for TrainSection {
    fn default() -> Self {
        Self {
            epochs: 30,
            batch_size: 16,
            learning_rate: 2e-3,
            validation_fraction: 0.1,
            patience: 5,
            seed: 0,
        }
    }
}

impl TrainSection {
    fn config(&self) -> TrainConfig {
        TrainConfig {
            learning_rate: self.learning_rate,
            batch_size: self.batch_size,
            max_epochs: self.epochs,
            validation_fraction: self.validation_fraction,
            patience: self.patience,
            schedule: LrSchedule::Cosine {
                final_fraction: 0.05,
            },
            seed: self.seed,
            progress: true,
            eval_batch_size: 16,
            ..Default::default()
        }
    }
}

/// Fields and their parameters, as a training file holds them.
pub struct Fields {
    pub theta: Array2<f64>,
    pub names: Vec<String>,
    /// `[n, L * C]`, channels last.
    pub fields: Array2<f64>,
    pub shape: FieldShape,
}

/// The shape of one field from its array shape (without the leading count):
/// `[N, N]`, `[N, N, C]` (maps, `C != N`) or `[N, N, N]` (a box).
pub fn field_shape(dims: &[usize], what: &str) -> Result<FieldShape> {
    let shape = match *dims {
        [a, b] if a == b => FieldShape {
            n: a,
            dims: 2,
            channels: 1,
        },
        [a, b, c] if a == b && b == c => FieldShape {
            n: a,
            dims: 3,
            channels: 1,
        },
        [a, b, c] if a == b => FieldShape {
            n: a,
            dims: 2,
            channels: c,
        },
        _ => bail!(
            "{what}: a field of shape {dims:?} is neither a square map [N, N(, C)] nor a cube [N, N, N]"
        ),
    };
    if shape.n < 4 || shape.channels == 0 {
        bail!("{what}: fields of shape {dims:?} are too small (at least 4 pixels a side)");
    }
    Ok(shape)
}

/// Read a training file (see the module docs).
pub fn read_fields(path: &Path) -> Result<Fields> {
    let what = format!("--fields {}", path.display());
    let f = std::fs::File::open(path).with_context(|| what.clone())?;
    let mut z =
        ndarray_npy::NpzReader::new(f).with_context(|| format!("{what}: not an .npz archive"))?;
    let theta = crate::io::npz_float(&mut z, "theta")
        .with_context(|| format!("{what}: no float array 'theta'"))?;
    let fields: ArrayD<f64> = match crate::io::npz_float(&mut z, "field") {
        Ok(a) => a,
        Err(_) => crate::io::npz_float(&mut z, "kappa_obs")
            .with_context(|| format!("{what}: no float array 'field' (or 'kappa_obs')"))?,
    };
    if theta.ndim() != 2 {
        bail!(
            "{what}: theta has shape {:?}, expected [n, p]",
            theta.shape()
        );
    }
    let (n, p) = (theta.shape()[0], theta.shape()[1]);
    if fields.ndim() < 3 || fields.shape()[0] != n {
        bail!(
            "{what}: field has shape {:?}, expected [{n}, N, N(, C)] or [{n}, N, N, N] for {n} rows of theta",
            fields.shape()
        );
    }
    let shape = field_shape(&fields.shape()[1..], &what)?;
    if let Some(v) = theta.iter().chain(fields.iter()).find(|v| !v.is_finite()) {
        bail!("{what}: holds a non-finite value ({v})");
    }
    let names = crate::io::npz_strings(path, "theta_names")?
        .unwrap_or_else(|| (0..p).map(|j| format!("theta_{j}")).collect());
    if names.len() != p {
        bail!("{what}: {} theta_names for {p} parameters", names.len());
    }
    Ok(Fields {
        theta: theta.into_dimensionality()?,
        names,
        fields: fields
            .into_shape_with_order((n, shape.len()))
            .context("field layout")?,
        shape,
    })
}

/// Train a flow and write its model directory.
pub fn train(s: &TrainSettings) -> Result<FieldFlow> {
    let cfg: TrainToml = match &s.config {
        Some(p) => crate::config::load(p)?,
        None => TrainToml::default(),
    };
    cfg.flow.validate()?;
    let data = read_fields(&s.fields)?;
    crate::output::refuse_overwriting_inputs(
        "--out",
        &s.out.join("fieldflow.json"),
        &[("--fields", &s.fields)],
    )?;
    let start = Instant::now();
    let (flow, report) = FieldFlow::fit(
        data.fields.view(),
        data.theta.view(),
        data.names.clone(),
        data.shape,
        cfg.flow.clone(),
        cfg.train.config(),
    )?;
    flow.save(&s.out)?;
    let per_field = data.shape.len() as f64;
    let summary = json!({
        "n_fields": data.fields.nrows(),
        "shape": [data.shape.n, data.shape.dims, data.shape.channels],
        "epochs": report.epochs,
        "best_epoch": report.best_epoch + 1,
        "train_nll_per_pixel": report.train_loss,
        "validation_nll_per_pixel": report.validation_loss,
        "best_validation_nll_per_field": report.best_validation_loss * per_field,
        "wall_seconds": start.elapsed().as_secs_f64(),
    });
    crate::output::write_bytes(
        &s.out.join("train.json"),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    println!(
        "trained a {}-layer field flow on {} fields ({}^{} x {}) in {:.0} s: validation NLL {:.4} nats per pixel (epoch {}); wrote {}",
        cfg.flow.layers,
        data.fields.nrows(),
        data.shape.n,
        data.shape.dims,
        data.shape.channels,
        start.elapsed().as_secs_f64(),
        report.best_validation_loss,
        report.best_epoch + 1,
        s.out.display()
    );
    Ok(flow)
}

/// Read one observed field `.npy` of the model's shape, flattened channels
/// last.
pub fn read_field(path: &Path, flow: &FieldFlow) -> Result<Vec<f64>> {
    let what = format!("--field {}", path.display());
    let a = crate::io::read_float_npy(path, "--field")?;
    let shape = field_shape(a.shape(), &what)?;
    let want = flow.config.shape;
    if shape != want {
        bail!(
            "{what}: a field of shape {:?}, but the model was trained on {}^{} x {} channel(s)",
            a.shape(),
            want.n,
            want.dims,
            want.channels
        );
    }
    if let Some(v) = a.iter().find(|v| !v.is_finite()) {
        bail!("{what}: holds a non-finite pixel ({v})");
    }
    Ok(a.iter().copied().collect())
}

/// Refuse parameters outside the training range (the flow has not seen
/// them, so its density there is an extrapolation).
fn check_theta(flow: &FieldFlow, theta: &[f64], what: &str) -> Result<()> {
    let c = &flow.config;
    if theta.len() != c.theta_names.len() {
        bail!(
            "{what}: {} values, the model has {} parameters ({})",
            theta.len(),
            c.theta_names.len(),
            c.theta_names.join(", ")
        );
    }
    for (j, &t) in theta.iter().enumerate() {
        if !t.is_finite() || t < c.theta_min[j] || t > c.theta_max[j] {
            bail!(
                "{what}: {} = {t} is outside the training range [{}, {}]",
                c.theta_names[j],
                c.theta_min[j],
                c.theta_max[j]
            );
        }
    }
    Ok(())
}

/// `cosmodiff fieldflow logprob`.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct LogprobSettings {
    /// Model directory written by `fieldflow train`.
    #[cfg_attr(feature = "cli", arg(long))]
    pub model: PathBuf,
    /// The field (.npy, the model's shape).
    #[cfg_attr(feature = "cli", arg(long))]
    pub field: PathBuf,
    /// Parameters, comma-separated in the model's order, e.g. "0.3,0.8".
    #[cfg_attr(feature = "cli", arg(long, allow_hyphen_values = true))]
    pub theta: String,
    /// Output JSON: logprob, logdet, base_logprob (nats).
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
}

/// `log p(field | theta)` with its parts, written as JSON.
pub fn logprob(s: &LogprobSettings) -> Result<LogProb> {
    let flow = FieldFlow::load(&s.model)?;
    let theta: Vec<f64> = s
        .theta
        .split(',')
        .map(|v| {
            v.trim()
                .parse::<f64>()
                .with_context(|| format!("--theta {:?}: {v:?} is not a number", s.theta))
        })
        .collect::<Result<_>>()?;
    check_theta(&flow, &theta, "--theta")?;
    let field = read_field(&s.field, &flow)?;
    crate::output::refuse_overwriting_inputs("--out", &s.out, &[("--field", &s.field)])?;
    let x = Array2::from_shape_vec((1, field.len()), field)?;
    let t = Array2::from_shape_vec((1, theta.len()), theta.clone())?;
    let lp = flow.log_prob(x.view(), t.view())?[0];
    let v = json!({
        "logprob": lp.logprob,
        "logdet": lp.logdet,
        "base_logprob": lp.base_logprob,
        "theta": theta,
        "names": flow.config.theta_names,
    });
    crate::output::write_bytes(&s.out, serde_json::to_string_pretty(&v)?.as_bytes())?;
    println!(
        "log p(field | theta) = {:.3} nats (log-det {:.3}, base {:.3})",
        lp.logprob, lp.logdet, lp.base_logprob
    );
    Ok(lp)
}

/// `cosmodiff fieldflow infer`.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct InferSettings {
    /// Model directory written by `fieldflow train`.
    #[cfg_attr(feature = "cli", arg(long))]
    pub model: Option<PathBuf>,
    /// A model shipped with cosmodiff instead of --model (sbi-lens-128).
    #[cfg_attr(feature = "cli", arg(long))]
    pub setup: Option<String>,
    /// The observed field (.npy, the model's shape).
    #[cfg_attr(feature = "cli", arg(long))]
    pub field: PathBuf,
    /// Output directory: samples.npy, summary.json, corner.png.
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
    /// Prior TOML: one table per parameter with low and high (uniform) or mean and sd (Gaussian); default uniform over the training range.
    #[cfg_attr(feature = "cli", arg(long))]
    pub prior: Option<PathBuf>,
    /// Posterior samples to draw.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 2000))]
    pub samples: usize,
    /// Random seed.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0))]
    pub seed: u64,
}

/// One parameter's prior in `prior.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorEntry {
    pub low: Option<f64>,
    pub high: Option<f64>,
    pub mean: Option<f64>,
    pub sd: Option<f64>,
}

/// `log prior(theta)` (up to a constant) on the training range.
struct Prior {
    low: Vec<f64>,
    high: Vec<f64>,
    gauss: Vec<Option<(f64, f64)>>,
}

impl Prior {
    fn new(flow: &FieldFlow, path: Option<&Path>) -> Result<Self> {
        let c = &flow.config;
        let mut p = Self {
            low: c.theta_min.clone(),
            high: c.theta_max.clone(),
            gauss: vec![None; c.theta_names.len()],
        };
        let Some(path) = path else { return Ok(p) };
        let table: std::collections::BTreeMap<String, PriorEntry> = crate::config::load(path)?;
        for (name, e) in table {
            let Some(j) = c.theta_names.iter().position(|n| *n == name) else {
                bail!(
                    "--prior {}: unknown parameter {name:?} (the model has {})",
                    path.display(),
                    c.theta_names.join(", ")
                );
            };
            // The posterior stays inside the training range, where the flow
            // was fitted.
            if let Some(l) = e.low {
                p.low[j] = l.max(c.theta_min[j]);
            }
            if let Some(h) = e.high {
                p.high[j] = h.min(c.theta_max[j]);
            }
            if p.low[j] >= p.high[j] {
                bail!("--prior {}: {name} has an empty range", path.display());
            }
            match (e.mean, e.sd) {
                (Some(m), Some(s)) if s > 0.0 && m.is_finite() => p.gauss[j] = Some((m, s)),
                (None, None) => {}
                _ => bail!(
                    "--prior {}: {name} needs both mean and a positive sd",
                    path.display()
                ),
            }
        }
        Ok(p)
    }

    fn log_prob(&self, t: &[f64]) -> f64 {
        let mut lp = 0.0;
        for (j, &v) in t.iter().enumerate() {
            if !(v >= self.low[j] && v <= self.high[j]) {
                return f64::NEG_INFINITY;
            }
            if let Some((m, s)) = self.gauss[j] {
                lp -= 0.5 * ((v - m) / s).powi(2);
            }
        }
        lp
    }
}

/// Posterior samples of theta for one field, with the summary
/// `lensing-cosmology infer` writes.
pub fn infer(s: &InferSettings) -> Result<serde_json::Value> {
    let model = match (&s.model, &s.setup) {
        (Some(m), None) => m.clone(),
        (None, Some(name)) => bail!(
            "--setup {name}: no field-flow model ships with this build yet; train one with `cosmodiff fieldflow train` and pass --model"
        ),
        _ => bail!("give exactly one of --model DIR or --setup NAME"),
    };
    if s.samples < 10 {
        bail!("--samples {}: need at least 10", s.samples);
    }
    let flow = FieldFlow::load(&model)?;
    let prior = Prior::new(&flow, s.prior.as_deref())?;
    let field = read_field(&s.field, &flow)?;
    for f in ["samples.npy", "summary.json"] {
        crate::output::refuse_overwriting_inputs(
            "--out",
            &s.out.join(f),
            &[("--field", &s.field)],
        )?;
    }
    let start = Instant::now();
    let p = flow.config.theta_names.len();
    let logp = |t: ndarray::ArrayView2<f64>| -> Vec<f64> {
        let m = t.nrows();
        let lpr: Vec<f64> = t
            .outer_iter()
            .map(|r| prior.log_prob(r.as_slice().expect("row")))
            .collect();
        let inside: Vec<usize> = (0..m).filter(|&i| lpr[i].is_finite()).collect();
        let mut out = vec![f64::NEG_INFINITY; m];
        if inside.is_empty() {
            return out;
        }
        let th = t.select(ndarray::Axis(0), &inside);
        let x = Array2::from_shape_fn((inside.len(), field.len()), |(_, j)| field[j]);
        if let Ok(lp) = flow.log_prob(x.view(), th.view()) {
            for (k, &i) in inside.iter().enumerate() {
                out[i] = lp[k].logprob + lpr[i];
            }
        }
        out
    };
    let settings = SliceSettings {
        chains: 16,
        warmup: 40,
        thin: 2,
        width: 0.1,
        seed: s.seed,
        ..Default::default()
    };
    // Chains start at the centre of the prior box, jittered by a tenth of it.
    let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(s.seed);
    let init = Array2::from_shape_fn((settings.chains, p), |(_, j)| {
        let (l, h) = (prior.low[j], prior.high[j]);
        let u: f64 = rng.random();
        0.5 * (l + h) + 0.1 * (h - l) * (u - 0.5)
    });
    // The slice sampler's width is in the parameters' units: run it on
    // theta scaled to the prior box.
    let scale: Vec<f64> = (0..p).map(|j| prior.high[j] - prior.low[j]).collect();
    let unit_init = Array2::from_shape_fn(init.dim(), |(i, j)| init[[i, j]] / scale[j]);
    let unit_logp = |u: ndarray::ArrayView2<f64>| {
        let t = Array2::from_shape_fn(u.dim(), |(i, j)| u[[i, j]] * scale[j]);
        logp(t.view())
    };
    let unit = slice_sample_batched(unit_logp, unit_init.view(), s.samples, &settings);
    let samples = Array2::from_shape_fn(unit.dim(), |(i, j)| unit[[i, j]] * scale[j]);
    let names: Vec<&str> = flow.config.theta_names.iter().map(|s| s.as_str()).collect();
    let summary = crate::lensing_cosmology::summarize_samples(
        &names,
        &samples,
        start.elapsed().as_secs_f64(),
    );
    std::fs::create_dir_all(&s.out)
        .with_context(|| format!("creating --out {}", s.out.display()))?;
    crate::output::write_npy(&s.out.join("samples.npy"), &samples)?;
    crate::output::write_bytes(
        &s.out.join("summary.json"),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    crate::sample::corner_flat(
        &s.out.join("corner.png"),
        samples.as_slice().expect("standard layout"),
        &names,
        None,
    )?;
    println!(
        "field-flow posterior ({} samples, {:.0} s): {}",
        samples.nrows(),
        start.elapsed().as_secs_f64(),
        crate::lensing_cosmology::describe(&summary)
    );
    Ok(summary)
}
