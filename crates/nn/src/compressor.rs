//! A summary network trained by regression: `t = f(x)` fitted to the
//! parameters that generated `x`, the "MSE" and "MAE" compressors that
//! sbi_lens (Zeghal et al. 2024, arXiv:2409.17975) compares with VMIM.
//!
//! With standardised parameters `y = (theta - mu) / sigma`, the losses are
//!
//! ```text
//! MSE: mean_i |f(x_i) - y_i|^2      (f -> E[y | x], the posterior mean)
//! MAE: mean_i |f(x_i) - y_i|_1      (f -> the posterior median per component)
//! ```
//!
//! Both give summaries as many as the parameters, which a density estimator
//! (NPE or NLE) then uses as data. Neither is sufficient in general: the
//! posterior mean discards the posterior's shape, which is why VMIM (a flow
//! trained jointly with `f`, [`crate::estimator`] with an embedding) does
//! better in the benchmark.

use std::path::Path;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use crate::embedding::{Embedding, EmbeddingConfig};
use crate::error::{invalid, NnError};
use crate::standardize::{check_finite, Standardizer};
use crate::tensor::{default_device, int_tensor, to_array2, to_tensor};
use crate::train::{fit, TrainConfig, TrainReport};

/// Regression loss of a [`Compressor`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegressionLoss {
    /// Mean squared error.
    Mse,
    /// Mean absolute error.
    Mae,
}

impl RegressionLoss {
    pub fn parse(s: &str) -> Result<Self, NnError> {
        match s {
            "mse" => Ok(Self::Mse),
            "mae" => Ok(Self::Mae),
            _ => invalid(format!(
                "unknown regression loss '{s}': expected mse or mae"
            )),
        }
    }

    /// Mean loss over a batch of predictions and targets `[B, d]`.
    fn mean(&self, pred: Tensor<2>, target: Tensor<2>) -> Tensor<1> {
        let r = pred - target;
        let per = match self {
            Self::Mse => r.clone() * r,
            Self::Mae => r.abs(),
        };
        // Summed over components, averaged over rows.
        let [b, _] = per.dims();
        per.sum().div_scalar(b as f64)
    }
}

/// Everything needed to rebuild a trained compressor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompressorConfig {
    pub embedding: EmbeddingConfig,
    pub loss: RegressionLoss,
    pub x_standardizer: Standardizer,
    pub y_standardizer: Standardizer,
    pub train: TrainConfig,
}

/// A trained regression compressor (inference mode).
pub struct Compressor {
    pub config: CompressorConfig,
    net: Embedding,
    device: Device,
}

const CONFIG: &str = "compressor.json";

impl Compressor {
    /// Fit `f(x) ~ y` on paired rows (`embedding.input_dim` and
    /// `output_dim` are set from the data).
    pub fn fit(
        x: ArrayView2<f64>,
        y: ArrayView2<f64>,
        mut embedding: EmbeddingConfig,
        loss: RegressionLoss,
        train: TrainConfig,
    ) -> Result<(Self, TrainReport), NnError> {
        if x.nrows() != y.nrows() {
            return invalid(format!(
                "{} rows of data but {} rows of targets",
                x.nrows(),
                y.nrows()
            ));
        }
        if y.ncols() == 0 {
            return invalid("the regression targets have no columns");
        }
        check_finite(x, "data")?;
        check_finite(y, "targets")?;
        embedding.input_dim = x.ncols();
        embedding.output_dim = y.ncols();
        let x_std = if embedding.kind.reads_maps() {
            Standardizer::fit_global(x)?
        } else {
            Standardizer::fit(x)?
        };
        let config = CompressorConfig {
            embedding,
            loss,
            x_standardizer: x_std,
            y_standardizer: Standardizer::fit(y)?,
            train,
        };
        let device = default_device();
        let ad = device.clone().autodiff();
        ad.seed(config.train.seed);
        let Some(net) = config.embedding.init(&ad)? else {
            return invalid("a compressor needs a network (mlp, cnn or resnet), not identity");
        };
        let xt = to_tensor(config.x_standardizer.forward(x).view(), &device);
        let yt = to_tensor(config.y_standardizer.forward(y).view(), &device);
        let (net, report) = fit(
            net,
            x.nrows(),
            &config.train,
            |m: &Embedding, rows: &[usize]| {
                let idx = int_tensor(rows, &device);
                let xb = xt.clone().select(0, idx.clone());
                let yb = yt.clone().select(0, idx);
                loss.mean(m.forward(xb), yb)
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

    /// Summaries `f(x)` `[n, n_targets]`, in standardised target units.
    pub fn summaries(&self, x: ArrayView2<f64>) -> Result<Array2<f64>, NnError> {
        let e = &self.config.embedding;
        if x.ncols() != e.input_dim {
            return invalid(format!(
                "data have {} values per row, the compressor was trained on {}",
                x.ncols(),
                e.input_dim
            ));
        }
        check_finite(x, "data")?;
        let mut out = Array2::zeros((x.nrows(), e.output_dim));
        for start in (0..x.nrows()).step_by(256) {
            let end = (start + 256).min(x.nrows());
            let xs = self
                .config
                .x_standardizer
                .forward(x.slice(ndarray::s![start..end, ..]));
            out.slice_mut(ndarray::s![start..end, ..])
                .assign(&to_array2(
                    self.net.forward(to_tensor(xs.view(), &self.device)),
                ));
        }
        Ok(out)
    }

    /// Predictions of the targets in their original units.
    pub fn predict(&self, x: ArrayView2<f64>) -> Result<Array2<f64>, NnError> {
        let s = self.summaries(x)?;
        Ok(self.config.y_standardizer.inverse(s.view()))
    }

    /// Write `DIR/weights.safetensors` and `DIR/compressor.json`.
    pub fn save(&self, dir: &Path) -> Result<(), NnError> {
        crate::checkpoint::save_model(dir, &self.net, CONFIG, &self.config)
    }

    /// Read a compressor written by [`save`](Self::save).
    pub fn load(dir: &Path) -> Result<Self, NnError> {
        let config: CompressorConfig = crate::checkpoint::read_config(dir, CONFIG)?;
        let device = default_device();
        let Some(mut net) = config.embedding.init(&device)? else {
            return Err(NnError::Checkpoint {
                path: dir.join(CONFIG).display().to_string(),
                msg: "the compressor has no network".into(),
            });
        };
        crate::checkpoint::load_weights(dir, &mut net, CONFIG)?;
        Ok(Self {
            config,
            net,
            device,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedding::EmbeddingKind;
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};

    /// Maps `x = a * pattern + noise` on 16x16 pixels: the MSE compressor
    /// recovers `a` (R^2 near the noise limit), the MAE one too, and a
    /// saved and reloaded compressor gives the same summaries.
    #[test]
    fn resnet_compressors_regress_an_amplitude_and_round_trip() {
        let (n, side) = (600, 16);
        let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(4);
        let pattern: Vec<f64> = (0..side * side)
            .map(|p| ((p % side) as f64 * 0.7).sin() + ((p / side) as f64 * 0.4).cos())
            .collect();
        let a: Vec<f64> = (0..n).map(|_| StandardNormal.sample(&mut rng)).collect();
        let x = Array2::from_shape_fn((n, side * side), |(i, p)| {
            let e: f64 = StandardNormal.sample(&mut rng);
            a[i] * pattern[p] + 0.3 * e
        });
        let y = Array2::from_shape_vec((n, 1), a.clone()).unwrap();
        for loss in [RegressionLoss::Mse, RegressionLoss::Mae] {
            let train = TrainConfig {
                learning_rate: 3e-3,
                batch_size: 50,
                max_epochs: 25,
                patience: 100,
                eval_batch_size: 128,
                ..Default::default()
            };
            let emb = EmbeddingConfig::new(EmbeddingKind::ResNet, side * side);
            let (c, report) = Compressor::fit(x.view(), y.view(), emb, loss, train).unwrap();
            assert!(report.best_validation_loss < 0.1, "{loss:?}: {report:?}");
            let pred = c.predict(x.view()).unwrap();
            let resid: f64 = (0..n).map(|i| (pred[[i, 0]] - a[i]).powi(2)).sum::<f64>() / n as f64;
            let var: f64 = a.iter().map(|v| v * v).sum::<f64>() / n as f64;
            assert!(
                1.0 - resid / var > 0.95,
                "{loss:?}: R^2 {}",
                1.0 - resid / var
            );
            let dir = std::env::temp_dir().join(format!("cosmodiff-compressor-{loss:?}"));
            c.save(&dir).unwrap();
            let back = Compressor::load(&dir).unwrap();
            let s0 = c.summaries(x.slice(ndarray::s![..5, ..])).unwrap();
            let s1 = back.summaries(x.slice(ndarray::s![..5, ..])).unwrap();
            assert!((&s0 - &s1).iter().all(|d| d.abs() < 1e-6));
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}
