//! A conditional density estimator `q(y | c)`: standardisation of `y` and
//! `c`, an optional embedding network `s = f(c)` and a conditional flow
//! `q(y | s)`, trained by maximum likelihood (minimising `-mean log q`).
//!
//! NPE uses it with `y = theta, c = x`; NLE with `y = x, c = theta`.

use std::path::Path;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::embedding::{Embedding, EmbeddingConfig, EmbeddingKind};
use crate::error::{invalid, NnError};
use crate::flow::{Flow, FlowConfig};
use crate::standardize::{check_finite, Standardizer};
use crate::tensor::{default_device, int_tensor, to_array2, to_tensor, to_vec};
use crate::train::{fit, TrainConfig, TrainReport};

/// Flow and embedding as one burn module.
#[derive(Module, Debug)]
pub struct DensityNet {
    pub flow: Flow,
    pub embedding: Option<Embedding>,
}

impl DensityNet {
    /// Summaries of standardised conditioning data.
    pub fn embed(&self, c: Tensor<2>) -> Tensor<2> {
        match &self.embedding {
            Some(e) => e.forward(c),
            None => c,
        }
    }

    /// `log q(y | c)` in standardised units, `[B]`.
    pub fn log_prob(&self, y: Tensor<2>, c: Tensor<2>) -> Tensor<1> {
        let s = self.embed(c);
        self.flow.log_prob(y, Some(s))
    }
}

/// Everything needed to rebuild a trained estimator (saved as JSON beside
/// the weights).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EstimatorConfig {
    /// Version of this file's layout ([`ESTIMATOR_FORMAT`]; files without
    /// it are version 1).
    #[serde(default = "crate::checkpoint::format_v1")]
    pub format_version: u32,
    pub flow: FlowConfig,
    pub embedding: EmbeddingConfig,
    pub y_standardizer: Standardizer,
    pub c_standardizer: Standardizer,
    pub train: TrainConfig,
}

/// The `format_version` written into `estimator.json`.
pub const ESTIMATOR_FORMAT: u32 = 1;

/// Largest network a model file may describe (hidden units per layer,
/// transforms): beyond any trained model, short of an allocation that
/// would exhaust the machine when a hand-edited file is loaded.
pub const MAX_HIDDEN: usize = 16_384;
pub const MAX_TRANSFORMS: usize = 256;
/// Most weights a flow and its embedding may have together (about 1 GiB
/// in float32): within the per-size limits a file can still ask for far
/// more than any machine holds.
pub const MAX_PARAMETERS: f64 = 2.7e8;

impl EstimatorConfig {
    /// Check a configuration read from a file against its own constraints:
    /// a version this build reads, sizes within bounds, standardisations
    /// matching the dimensions with positive standard deviations.
    pub fn validate(&self) -> Result<(), NnError> {
        crate::checkpoint::check_format_version(self.format_version, ESTIMATOR_FORMAT)
            .or_else(invalid)?;
        self.flow.validate()?;
        let f = &self.flow;
        if f.hidden > MAX_HIDDEN
            || f.num_transforms > MAX_TRANSFORMS
            || f.blocks > 64
            || f.bins > 1024
        {
            return invalid(format!(
                "flow of {} transforms, {} hidden units, {} blocks, {} bins: at most {MAX_TRANSFORMS}, {MAX_HIDDEN}, 64, 1024",
                f.num_transforms, f.hidden, f.blocks, f.bins
            ));
        }
        let e = &self.embedding;
        // an identity embedding's output is the data itself, of any size
        let outputs = if e.kind == EmbeddingKind::Identity {
            0
        } else {
            e.output_dim
        };
        if e.hidden > MAX_HIDDEN || e.layers > 64 || outputs > MAX_HIDDEN {
            return invalid(format!(
                "embedding of {} layers, {} hidden units, {} outputs: at most 64, {MAX_HIDDEN}, {MAX_HIDDEN}",
                e.layers, e.hidden, e.output_dim
            ));
        }
        // hidden-by-hidden layers dominate: per transform about blocks + 2
        let weights = f.num_transforms as f64 * (f.blocks as f64 + 2.0) * (f.hidden as f64).powi(2)
            + e.layers as f64 * (e.hidden as f64).powi(2);
        if weights > MAX_PARAMETERS {
            return invalid(format!(
                "a flow of {} transforms of {} hidden units and an embedding of {} layers of {} have about {weights:.2e} weights: at most {MAX_PARAMETERS:.1e} (1 GiB)",
                f.num_transforms, f.hidden, e.layers, e.hidden
            ));
        }
        self.y_standardizer.validate("y_standardizer", f.dim)?;
        self.c_standardizer
            .validate("c_standardizer", e.input_dim)?;
        Ok(())
    }

    fn init_net(&self, device: &Device) -> Result<DensityNet, NnError> {
        Ok(DensityNet {
            flow: self.flow.init(device)?,
            embedding: self.embedding.init(device)?,
        })
    }
}

/// A trained conditional density estimator (inference mode, CPU).
pub struct ConditionalEstimator {
    pub config: EstimatorConfig,
    net: DensityNet,
    device: Device,
}

const CONFIG: &str = "estimator.json";

impl ConditionalEstimator {
    /// Fit `q(y | c)` to paired rows of `y` and `c`.
    ///
    /// `flow.dim` / `flow.context_dim` and `embedding.input_dim` are set from
    /// the data; the flow's context is the embedding's output.
    pub fn fit(
        y: ArrayView2<f64>,
        c: ArrayView2<f64>,
        mut flow: FlowConfig,
        mut embedding: EmbeddingConfig,
        train: TrainConfig,
    ) -> Result<(Self, TrainReport), NnError> {
        if y.nrows() != c.nrows() {
            return invalid(format!(
                "{} rows of the modelled variable but {} rows of the conditioning data",
                y.nrows(),
                c.nrows()
            ));
        }
        check_finite(y, "modelled variable")?;
        check_finite(c, "conditioning data")?;
        let y_std = Standardizer::fit(y)?;
        let c_std = if embedding.kind.reads_maps() {
            Standardizer::fit_global(c)?
        } else {
            Standardizer::fit(c)?
        };
        embedding.input_dim = c.ncols();
        if embedding.kind == EmbeddingKind::Identity {
            embedding.output_dim = c.ncols();
        }
        flow.dim = y.ncols();
        flow.context_dim = embedding.summary_dim();
        let config = EstimatorConfig {
            format_version: ESTIMATOR_FORMAT,
            flow,
            embedding,
            y_standardizer: y_std,
            c_standardizer: c_std,
            train,
        };
        // what `load` checks, checked before the training it would waste
        config.validate()?;
        let device = default_device();
        let ad = device.clone().autodiff();
        ad.seed(config.train.seed);
        let net = config.init_net(&ad)?;
        let yt = to_tensor(config.y_standardizer.forward(y).view(), &device);
        let ct = to_tensor(config.c_standardizer.forward(c).view(), &device);
        let (net, report) = fit(
            net,
            y.nrows(),
            &config.train,
            |m: &DensityNet, rows: &[usize]| {
                let idx = int_tensor(rows, &device);
                let yb = yt.clone().select(0, idx.clone());
                let cb = ct.clone().select(0, idx);
                m.log_prob(yb, cb).mean().neg()
            },
        )?;
        Ok((
            Self {
                config,
                net: net.valid(),
                device,
            },
            report,
        ))
    }

    pub fn dim(&self) -> usize {
        self.config.flow.dim
    }
    /// The underlying burn module (inference mode).
    pub fn net(&self) -> &DensityNet {
        &self.net
    }
    pub fn context_dim(&self) -> usize {
        self.config.embedding.input_dim
    }

    fn check_context(&self, c: ArrayView2<f64>) -> Result<(), NnError> {
        if c.ncols() != self.context_dim() {
            return invalid(format!(
                "conditioning data have {} values per row, the model was trained on {}",
                c.ncols(),
                self.context_dim()
            ));
        }
        check_finite(c, "conditioning data")
    }

    /// `log q(y_i | c_i)` in the original units (rows paired; a single
    /// row of `c` is broadcast).
    pub fn log_prob(&self, y: ArrayView2<f64>, c: ArrayView2<f64>) -> Result<Array1<f64>, NnError> {
        if y.ncols() != self.dim() {
            return invalid(format!(
                "values have {} columns, the model has {}",
                y.ncols(),
                self.dim()
            ));
        }
        self.check_context(c)?;
        let n = y.nrows();
        let c = if c.nrows() == 1 && n > 1 {
            c.broadcast((n, c.ncols()))
                .expect("broadcast one row")
                .to_owned()
        } else if c.nrows() == n {
            c.to_owned()
        } else {
            return invalid(format!(
                "{} rows of values but {} rows of conditioning data",
                n,
                c.nrows()
            ));
        };
        let ys = self.config.y_standardizer.forward(y);
        let cs = self.config.c_standardizer.forward(c.view());
        let offset = self.config.y_standardizer.log_abs_det();
        let mut out = Vec::with_capacity(n);
        for start in (0..n).step_by(8192) {
            let len = (n - start).min(8192);
            let yb = to_tensor(ys.slice(ndarray::s![start..start + len, ..]), &self.device);
            let cb = to_tensor(cs.slice(ndarray::s![start..start + len, ..]), &self.device);
            out.extend(
                to_vec(self.net.log_prob(yb, cb))
                    .into_iter()
                    .map(|v| v - offset),
            );
        }
        Ok(Array1::from(out))
    }

    /// `n` draws from `q(y | c)` for one conditioning row `c`.
    pub fn sample(&self, c: ArrayView1<f64>, n: usize, seed: u64) -> Result<Array2<f64>, NnError> {
        let c2 = c.insert_axis(Axis(0));
        self.check_context(c2)?;
        let cs = to_tensor(self.config.c_standardizer.forward(c2).view(), &self.device);
        let s = self.net.embed(cs);
        let d = self.dim();
        let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(seed);
        let mut out = Array2::zeros((n, d));
        let chunk = 10_000;
        for start in (0..n).step_by(chunk) {
            let len = (n - start).min(chunk);
            let z: Vec<f64> = (0..len * d)
                .map(|_| StandardNormal.sample(&mut rng))
                .collect();
            let zt = to_tensor(
                Array2::from_shape_vec((len, d), z).expect("shape").view(),
                &self.device,
            );
            let ctx = s.clone().expand([len, s.dims()[1]]);
            let y = to_array2(self.net.flow.from_noise(zt, Some(ctx)));
            let y = self.config.y_standardizer.inverse(y.view());
            out.slice_mut(ndarray::s![start..start + len, ..])
                .assign(&y);
        }
        Ok(out)
    }

    /// Summaries `f(c)` of the embedding network (the standardised data
    /// themselves for the identity embedding).
    pub fn summaries(&self, c: ArrayView2<f64>) -> Result<Array2<f64>, NnError> {
        self.check_context(c)?;
        let dim = self.config.embedding.summary_dim();
        let mut out = Array2::zeros((c.nrows(), dim));
        // In batches: a convolutional network's activations of thousands of
        // maps at once would not fit in memory.
        let rows = if self.config.embedding.kind.reads_maps() {
            256
        } else {
            8192
        };
        for start in (0..c.nrows()).step_by(rows) {
            let end = (start + rows).min(c.nrows());
            let cs = self
                .config
                .c_standardizer
                .forward(c.slice(ndarray::s![start..end, ..]));
            out.slice_mut(ndarray::s![start..end, ..])
                .assign(&to_array2(
                    self.net.embed(to_tensor(cs.view(), &self.device)),
                ));
        }
        Ok(out)
    }

    /// Write `DIR/weights.safetensors` and `DIR/estimator.json`.
    pub fn save(&self, dir: &Path) -> Result<(), NnError> {
        crate::checkpoint::save_model(dir, &self.net, CONFIG, &self.config)
    }

    /// Read an estimator written by [`save`](Self::save).
    pub fn load(dir: &Path) -> Result<Self, NnError> {
        let config: EstimatorConfig = crate::checkpoint::read_config(dir, CONFIG)?;
        config
            .validate()
            .map_err(|e| crate::checkpoint::checkpoint_error(&dir.join(CONFIG), e.to_string()))?;
        let device = default_device();
        let mut net = config.init_net(&device)?;
        crate::checkpoint::load_weights(dir, &mut net, CONFIG)?;
        Ok(Self {
            config,
            net,
            device,
        })
    }
}
