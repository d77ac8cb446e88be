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

pub mod calibrate;
pub mod fisher;

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
    #[cfg_attr(feature = "cli", command(flatten))]
    pub reuse: crate::run_dir::Reuse,
    #[cfg_attr(feature = "cli", command(flatten))]
    pub checkpoints: crate::run_dir::Checkpoints,
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
    s.checkpoints.check()?;
    let data = read_fields(&s.fields)?;
    crate::output::refuse_overwriting_inputs(
        "--out",
        &s.out.join("fieldflow.json"),
        &[("--fields", &s.fields)],
    )?;
    let mut inputs = vec![("--fields", s.fields.as_path())];
    if let Some(p) = &s.config {
        inputs.push(("--config", p.as_path()));
    }
    let dir = crate::run_dir::RunDir::open(
        &s.out,
        "fieldflow train",
        s,
        s.reuse,
        crate::run_dir::Kind::Training,
        &inputs,
    )?;
    let start = Instant::now();
    let train = TrainConfig {
        checkpoint: Some(dir.training_checkpoint(s.checkpoints)?),
        ..cfg.train.config()
    };
    let (flow, report) = {
        let _listening = crate::report::InterruptScope::new();
        dir.training_result(FieldFlow::fit(
            data.fields.view(),
            data.theta.view(),
            data.names.clone(),
            data.shape,
            cfg.flow.clone(),
            train,
        ))?
    };
    crate::output::write_folder_via(&s.out, |t| Ok(flow.save(t)?))?;
    dir.training_done()?;
    let flat = diagnostics(&flow, &data, &s.out)?;
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
        "latent_power_max_deviation": flat.max_deviation,
        "latent_power_max_deviation_all_shells": flat.max_deviation_all_shells,
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
    dir.finish()?;
    Ok(flow)
}

/// Power spectrum of the first channel of `fields` `[n, L * C]` in
/// unit-width `|k|` shells (grid units): `(k, P)` with `P = <|F x|^2> / L`,
/// shells without modes dropped.
pub fn shell_power(fields: ndarray::ArrayView2<f64>, shape: FieldShape) -> (Vec<f64>, Vec<f64>) {
    let (k, each) = shell_power_each(fields, shape);
    let mean = each
        .mean_axis(ndarray::Axis(0))
        .map_or_else(|| vec![0.0; k.len()], |m| m.to_vec());
    (k, mean)
}

/// [`shell_power`] of every field: the shells' `k` and `P` `[n, shells]`
/// (one FFT plan for all of them).
pub fn shell_power_each(
    fields: ndarray::ArrayView2<f64>,
    shape: FieldShape,
) -> (Vec<f64>, Array2<f64>) {
    use cosmodiff_nn::fourier_kernel::{mode_k, mode_weights};
    let (n, dims, c, l) = (shape.n, shape.dims, shape.channels, shape.pixels());
    let fft = cosmodiff_field::fft3::Fft3::<f64>::with_dims(n, dims);
    let (km, w) = (mode_k(n, dims), mode_weights(n, dims));
    let shells = km.iter().fold(0.0f64, |a, &k| a.max(k)).round() as usize + 1;
    let (mut cnt, mut ks) = (vec![0.0; shells], vec![0.0; shells]);
    for (&k, &wm) in km.iter().zip(&w) {
        let b = k.round() as usize;
        cnt[b] += wm;
        ks[b] += wm * k;
    }
    let kept: Vec<usize> = (1..shells).filter(|&b| cnt[b] > 0.0).collect();
    let mut out = Array2::zeros((fields.nrows(), kept.len()));
    let mut p = vec![0.0; shells];
    for (row, mut dst) in fields.outer_iter().zip(out.outer_iter_mut()) {
        let x: Vec<f64> = row.iter().step_by(c).copied().collect();
        p.fill(0.0);
        for ((xk, &k), &wm) in fft.forward(&x).iter().zip(&km).zip(&w) {
            p[k.round() as usize] += wm * xk.norm_sqr() / l as f64;
        }
        for (d, &b) in dst.iter_mut().zip(&kept) {
            *d = p[b] / cnt[b];
        }
    }
    (kept.iter().map(|&b| ks[b] / cnt[b]).collect(), out)
}

/// `filters.png` (each layer's learned `T(k)` at the mean theta, and the
/// whitening filter `sd / sqrt(P(k))` of the training fields) and
/// `latent_pk.png` (the power spectrum of up to 64 training fields mapped to
/// the latent space, flat at 1 for a perfect flow), returning that spectrum.
fn diagnostics(flow: &FieldFlow, data: &Fields, out: &Path) -> Result<LatentPower> {
    use cosmodiff_plot::lines::{LinePlot, Series};
    let shape = data.shape;
    let (k, p) = shell_power(data.fields.view(), shape);
    let sd = flow.config.field_sd[0];
    let white: Vec<f64> = p.iter().map(|p| sd / p.sqrt()).collect();
    let mut plot = LinePlot::new(
        "learned radial filters T(k) at the mean theta",
        "|k| [grid units]",
        "T(k)",
    )
    .log_x(true)
    .log_y(true)
    .add(Series::points(
        "sd / sqrt(P(k)) of the training fields",
        &k,
        &white,
        None,
    ));
    let filters = flow.radial_filters(&flow.config.theta_mean, &k)?;
    for (i, f) in filters.iter().enumerate() {
        plot = plot.add(Series::line(&format!("layer {}", i + 1), &k, &f[0]));
    }
    crate::output::write_via(&out.join("filters.png"), |t| Ok(plot.save(t)?))?;
    let m = data.fields.nrows().min(64);
    let z = flow.latent(
        data.fields.slice(ndarray::s![..m, ..]),
        data.theta.slice(ndarray::s![..m, ..]),
    )?;
    let lat = latent_power(z.view(), shape);
    let plot = LinePlot::new(
        "power spectrum of latent fields (1 = white)",
        "|k| [grid units]",
        "P_z(k)",
    )
    .log_x(true)
    .add(Series::points("latent fields", &lat.k, &lat.p, None))
    .add(Series::line("white noise", &lat.k, &vec![1.0; lat.k.len()]));
    crate::output::write_via(&out.join("latent_pk.png"), |t| Ok(plot.save(t)?))?;
    Ok(lat)
}

/// How white latent fields are.
pub(crate) struct LatentPower {
    /// Shell wavenumbers (grid units) and the latent power in them.
    pub k: Vec<f64>,
    pub p: Vec<f64>,
    /// Largest `|P_z - 1|` over shells inside the Nyquist sphere
    /// (`|k| <= n / 2`, complete shells) with at least 20 modes per field.
    pub max_deviation: f64,
    /// The same over every shell with 20 modes, the partial corner shells
    /// beyond the Nyquist sphere included (where the lattice, the CIC
    /// window and aliasing break isotropy, which a radial filter cannot
    /// follow).
    pub max_deviation_all_shells: f64,
}

/// The power spectrum of latent fields `z` and its deviations from white
/// noise (1).
pub(crate) fn latent_power(z: ndarray::ArrayView2<f64>, shape: FieldShape) -> LatentPower {
    let (k, p) = shell_power(z, shape);
    let modes = |k: f64| match shape.dims {
        2 => 2.0 * std::f64::consts::PI * k,
        _ => 4.0 * std::f64::consts::PI * k * k,
    };
    let worst = |kmax: f64| {
        k.iter()
            .zip(&p)
            .filter(|(k, _)| modes(**k) >= 20.0 && **k <= kmax)
            .map(|(_, p)| (p - 1.0).abs())
            .fold(0.0, f64::max)
    };
    LatentPower {
        max_deviation: worst(shape.n as f64 / 2.0),
        max_deviation_all_shells: worst(f64::INFINITY),
        k,
        p,
    }
}

/// Refuse a file of fields (`what`, e.g. `--fields F.npz`) whose fields
/// are not of the model's shape.
pub(crate) fn check_fields_shape(flow: &FieldFlow, f: &Fields, what: &str) -> Result<()> {
    let (got, want) = (f.shape, flow.config.shape);
    if got != want {
        bail!(
            "{what}: fields of {}^{} x {}, the model was trained on {}^{} x {}",
            got.n,
            got.dims,
            got.channels,
            want.n,
            want.dims,
            want.channels
        );
    }
    Ok(())
}

/// Read one observed field `.npy` of the model's shape, flattened channels
/// last.
pub fn read_field(path: &Path, flow: &FieldFlow) -> Result<Vec<f64>> {
    let a = crate::io::read_float_npy(path, "--field")?;
    check_field(
        flow,
        a.shape(),
        a.iter().copied().collect(),
        &format!("--field {}", path.display()),
    )
}

/// A field of array shape `dims` (`[N, N]`, `[N, N, C]` or `[N, N, N]`)
/// checked against the model: its shape and finite pixels.
pub fn check_field(
    flow: &FieldFlow,
    dims: &[usize],
    values: Vec<f64>,
    what: &str,
) -> Result<Vec<f64>> {
    let shape = field_shape(dims, what)?;
    let want = flow.config.shape;
    if shape != want {
        bail!(
            "{what}: a field of shape {dims:?}, but the model was trained on {}^{} x {} channel(s)",
            want.n,
            want.dims,
            want.channels
        );
    }
    if let Some(v) = values.iter().find(|v| !v.is_finite()) {
        bail!("{what}: holds a non-finite pixel ({v})");
    }
    Ok(values)
}

/// `log p(field | theta)` of one checked field, with theta checked against
/// the training range (what `fieldflow logprob` and Python evaluate).
pub fn evaluate(flow: &FieldFlow, field: Vec<f64>, theta: &[f64]) -> Result<LogProb> {
    check_theta(flow, theta, "--theta")?;
    let x = Array2::from_shape_vec((1, field.len()), field)?;
    let t = Array2::from_shape_vec((1, theta.len()), theta.to_vec())?;
    Ok(flow.log_prob(x.view(), t.view())?[0])
}

/// `--theta "0.3,0.8"` as numbers.
pub(crate) fn parse_theta(text: &str) -> Result<Vec<f64>> {
    text.split(',')
        .map(|v| {
            v.trim()
                .parse::<f64>()
                .with_context(|| format!("--theta {text:?}: {v:?} is not a number"))
        })
        .collect()
}

/// Refuse parameters outside the training range (the flow has not seen
/// them, so its density there is an extrapolation).
pub(crate) fn check_theta(flow: &FieldFlow, theta: &[f64], what: &str) -> Result<()> {
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
    let theta = parse_theta(&s.theta)?;
    let field = read_field(&s.field, &flow)?;
    crate::output::refuse_overwriting_inputs("--out", &s.out, &[("--field", &s.field)])?;
    // `evaluate` checks theta against the model.
    let lp = evaluate(&flow, field, &theta)?;
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
    /// Likelihood temperature T: sample p(field | theta)^(1/T) prior(theta); T > 1 widens an overconfident flow (`fieldflow calibrate` suggests one).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 1.0))]
    pub temperature: f64,
    #[cfg_attr(feature = "cli", command(flatten))]
    pub reuse: crate::run_dir::Reuse,
}

/// A likelihood temperature must be a positive number.
pub(crate) fn check_temperature(t: f64) -> Result<()> {
    if !(t.is_finite() && t > 0.0) {
        bail!("--temperature {t}: must be a positive number");
    }
    Ok(())
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

/// What [`infer`] returns (and writes).
pub struct FieldPosterior {
    /// `summary.json`: the `lensing-cosmology infer` schema.
    pub summary: serde_json::Value,
    /// Draws `[n, p]`.
    pub samples: Array2<f64>,
}

/// The model shipped for a set-up, and that set-up's Gaussian priors.
/// `sbi-lens-128`: trained on 4,000 `lensing-cosmology simulate --setup
/// sbi-lens-128` maps with `bench/fieldflow/sbi_lens_128.toml` (the command
/// is in docs/field-flows.md).
#[allow(clippy::type_complexity)]
fn shipped(name: &str) -> Result<(FieldFlow, Option<Vec<Option<(f64, f64)>>>)> {
    use crate::lensing_cosmology::{Setup, SetupName};
    use cosmodiff_infer::Prior as SetupPrior;
    let flow = match name {
        "sbi-lens-128" => FieldFlow::from_bytes(
            include_str!("../../data/fieldflow/sbi-lens-128/fieldflow.json"),
            include_bytes!("../../data/fieldflow/sbi-lens-128/weights.safetensors").to_vec(),
        )?,
        _ => bail!("--setup {name:?}: a field-flow model ships for sbi-lens-128 only; train one with `cosmodiff fieldflow train` and pass --model"),
    };
    let setup = Setup::new(SetupName::parse(name)?)?;
    let gauss = setup
        .priors
        .iter()
        .map(|p| match p {
            SetupPrior::Normal { mean, sd } | SetupPrior::TruncatedNormal { mean, sd, .. } => {
                Some((*mean, *sd))
            }
            _ => None,
        })
        .collect();
    Ok((flow, Some(gauss)))
}

/// Posterior samples of theta for one field, with the summary
/// `lensing-cosmology infer` writes.
pub fn infer(s: &InferSettings) -> Result<FieldPosterior> {
    if s.samples < 10 {
        bail!("--samples {}: need at least 10", s.samples);
    }
    check_temperature(s.temperature)?;
    let (flow, setup_prior) = match (&s.model, &s.setup) {
        (Some(m), None) => (FieldFlow::load(m)?, None),
        (None, Some(name)) => shipped(name)?,
        _ => bail!("give exactly one of --model DIR or --setup NAME"),
    };
    let mut prior = Prior::new(&flow, s.prior.as_deref())?;
    if let (Some(gauss), None) = (setup_prior, &s.prior) {
        prior.gauss = gauss;
    }
    let field = read_field(&s.field, &flow)?;
    for f in ["samples.npy", "summary.json"] {
        crate::output::refuse_overwriting_inputs(
            "--out",
            &s.out.join(f),
            &[("--field", &s.field)],
        )?;
    }
    let mut inputs = vec![("--field", s.field.as_path())];
    if let Some(p) = &s.prior {
        inputs.push(("--prior", p.as_path()));
    }
    if let Some(m) = &s.model {
        inputs.push(("--model", m.as_path()));
    }
    let dir = crate::run_dir::RunDir::open(
        &s.out,
        "fieldflow infer",
        s,
        s.reuse,
        crate::run_dir::Kind::Rewritten,
        &inputs,
    )?;
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
        if let Ok(lp) = flow.log_prob_at(&field, th.view()) {
            for (k, &i) in inside.iter().enumerate() {
                out[i] = lp[k] / s.temperature + lpr[i];
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
    dir.finish()?;
    Ok(FieldPosterior { summary, samples })
}

/// What the demo's field-flow step reports.
pub struct DemoStep {
    /// Markdown for report.md.
    pub report: String,
    /// One line for the terminal.
    pub summary_line: String,
}

/// The demo's step 8: a one-layer linear TRENF flow trained on Gaussian
/// maps with a known pixel power spectrum learns the whitening filter
/// `T(k) = 1 / sqrt(P(k))`: its likelihood is then the exact Gaussian one.
/// Writes `fieldflow_filter.png`.
pub fn demo_step(out: &Path, seed: u64, quick: bool) -> Result<DemoStep> {
    use cosmodiff_nn::fourier_kernel::gaussian_fields;
    use cosmodiff_plot::lines::{LinePlot, Series};
    let start = Instant::now();
    let (n, rows) = (32usize, if quick { 256 } else { 512 });
    let p_pix = |k: f64| 2.0 / (1.0 + k).powf(2.0) + 0.02;
    let maps = Array2::from_shape_vec(
        (rows, n * n),
        gaussian_fields(n, 2, rows, seed.wrapping_add(808), |_, k| p_pix(k)),
    )?;
    let theta = Array2::<f64>::zeros((rows, 0));
    let shape = FieldShape {
        n,
        dims: 2,
        channels: 1,
    };
    let flow_cfg = TrenfConfig {
        layers: 1,
        spline: false,
        actnorm: false,
        ..Default::default()
    };
    let train = TrainSection {
        epochs: 15,
        batch_size: 32,
        learning_rate: 3e-3,
        seed,
        ..Default::default()
    };
    let mut cfg = train.config();
    cfg.progress = false;
    let (flow, _) = FieldFlow::fit(maps.view(), theta.view(), vec![], shape, flow_cfg, cfg)?;
    let k: Vec<f64> = (1..n / 2).map(|k| k as f64).collect();
    let sd = flow.config.field_sd[0];
    let learned: Vec<f64> = flow.radial_filters(&[], &k)?[0][0]
        .iter()
        .map(|t| t / sd)
        .collect();
    let truth: Vec<f64> = k.iter().map(|&k| 1.0 / p_pix(k).sqrt()).collect();
    let worst = learned
        .iter()
        .zip(&truth)
        .skip(2)
        .map(|(a, b)| (a / b - 1.0).abs())
        .fold(0.0, f64::max);
    let plot = LinePlot::new(
        "TRENF: learned whitening filter of Gaussian maps",
        "|k| [grid units]",
        "T(k)",
    )
    .log_x(true)
    .log_y(true)
    .add(Series::points("learned T(k)", &k, &learned, None))
    .add(Series::line("1 / sqrt(P(k))", &k, &truth));
    crate::output::write_via(&out.join("fieldflow_filter.png"), |t| Ok(plot.save(t)?))?;
    let secs = start.elapsed().as_secs_f64();
    Ok(DemoStep {
        report: format!(
            "## 8. Field-level likelihoods: a TRENF flow\n\n\
             A one-layer translation- and rotation-equivariant flow (Dai & Seljak 2022), trained by maximum likelihood on {rows} Gaussian {n}x{n} maps in {secs:.1} s, learns the whitening filter T(k) = 1/sqrt(P(k)) (largest error {:.1}% for |k| >= 3), so its exact likelihood is the Gaussian field's. On non-Gaussian maps more layers with pixel-wise splines extract what P(k) misses (`cosmodiff fieldflow`, docs/field-flows.md).\n\n![filter](fieldflow_filter.png)\n",
            100.0 * worst
        ),
        summary_line: format!(
            "Field flow: learned T(k) within {:.1}% of 1/sqrt(P(k)) ({rows} maps, {secs:.1} s)",
            100.0 * worst
        ),
    })
}
