//! Implicit inference with learned summaries, as in sbi_lens (Zeghal et al.
//! 2024, arXiv:2409.17975; Lanzieri, Zeghal et al. 2024): a ResNet
//! compresses each map set to `t = f(x)` with as many numbers as
//! parameters, then a density estimator learns the posterior from the
//! simulated pairs `(theta_i, t_i)`.
//!
//! Compressors ([`Compression`]):
//! - **VMIM** (variational mutual-information maximisation, Jeffrey,
//!   Alsing & Lanusse 2021): `f` and a conditional flow `q(theta | t)` are
//!   trained together by minimising `-mean log q(theta_i | f(x_i))`, a
//!   lower bound on the mutual information `I(theta; t)` up to a constant;
//!   its optimum makes `t` sufficient.
//! - **MSE** and **MAE**: `f` regresses the (standardised) parameters;
//!   `t` estimates the posterior mean or median (see
//!   [`cosmodiff_nn::compressor`]).
//!
//! The summaries are then frozen and NPE (a fresh neural spline flow) or
//! NLE (a MAF likelihood with slice sampling) is trained on them, both from
//! `cosmodiff_sbi`. The same simulations train both stages, as in the
//! benchmark; the count is reported.

use super::model::FieldModel;
use anyhow::{bail, Context, Result};
use cosmodiff_nn::{
    Compressor, EmbeddingConfig, EmbeddingKind, LrSchedule, RegressionLoss, TrainConfig,
    TrainReport,
};
use cosmodiff_sbi::calibration::{calibrate, Calibration};
use cosmodiff_sbi::{Method, SbiModel, SbiOptions, SbiPrior};
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;
use std::path::Path;

/// How the maps are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Vmim,
    Mse,
    Mae,
}

impl Compression {
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "vmim" => Self::Vmim,
            "mse" => Self::Mse,
            "mae" => Self::Mae,
            _ => bail!("unknown compression {s:?}: expected vmim, mse or mae"),
        })
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Vmim => "vmim",
            Self::Mse => "mse",
            Self::Mae => "mae",
        }
    }
}

/// Settings of the two training stages.
#[derive(Debug, Clone)]
pub struct ImplicitOptions {
    pub compression: Compression,
    /// Density estimator on the frozen summaries.
    pub estimator: Method,
    /// Channels of the ResNet's first stage.
    pub width: usize,
    /// Average-pool the maps by this factor before compressing (1: full
    /// resolution): `f^2` times less memory and compute, at the price of
    /// the scales below `f` pixels.
    pub pool: usize,
    /// Compressor training (VMIM: compressor and flow together).
    pub train: TrainConfig,
    pub seed: u64,
    pub progress: bool,
}

impl ImplicitOptions {
    /// Defaults sized for a CPU: Adam at 1e-3 with cosine decay, batches of
    /// 64 maps, at most 30 epochs with early stopping after 5 without a
    /// better validation loss (10% held out).
    pub fn new(compression: Compression, estimator: Method) -> Self {
        Self {
            compression,
            estimator,
            width: 8,
            pool: 1,
            train: TrainConfig {
                learning_rate: 1e-3,
                batch_size: 64,
                max_epochs: 30,
                patience: 5,
                schedule: LrSchedule::Cosine {
                    final_fraction: 0.05,
                },
                eval_batch_size: 128,
                ..Default::default()
            },
            seed: 0,
            progress: true,
        }
    }
}

/// Average-pool map sets `[n, n_bins * npix^2]` by `f` per side.
pub fn pool_maps(x: ArrayView2<f64>, n_bins: usize, npix: usize, f: usize) -> Array2<f64> {
    if f == 1 {
        return x.to_owned();
    }
    let s = npix / f;
    let w = 1.0 / (f * f) as f64;
    let mut out = Array2::zeros((x.nrows(), n_bins * s * s));
    for (row, mut o) in x.outer_iter().zip(out.outer_iter_mut()) {
        for b in 0..n_bins {
            for r in 0..npix {
                for c in 0..npix {
                    o[b * s * s + (r / f) * s + c / f] += w * row[b * npix * npix + r * npix + c];
                }
            }
        }
    }
    out
}

/// The first stage: maps -> summaries.
pub enum Summarizer {
    /// The embedding network of an NPE trained jointly with it.
    Vmim(Box<SbiModel>),
    Regression(Box<Compressor>),
}

impl Summarizer {
    /// Summaries of map sets `[n, n_bins * npix^2]` (bins first).
    pub fn summaries(&self, x: ArrayView2<f64>) -> Result<Array2<f64>> {
        Ok(match self {
            Self::Vmim(m) => m.summaries(x)?,
            Self::Regression(c) => c.summaries(x)?,
        })
    }
}

/// Both stages, trained.
pub struct Implicit {
    pub summarizer: Summarizer,
    /// Pooling factor of the maps before the summarizer.
    pub pool: usize,
    n_bins: usize,
    npix: usize,
    pub estimator: SbiModel,
    pub compressor_report: TrainReport,
    pub n_simulations: usize,
}

/// Simulated map sets `x` `[n, n_bins * npix^2]` (each bin's map in turn,
/// noisy as observed) and their parameters `[n, n_params]`, drawn from the
/// prior in parallel; simulation `i` depends only on `(seed, i)`.
pub fn simulate_training_set(
    model: &FieldModel,
    n: usize,
    seed: u64,
) -> Result<(Array2<f64>, Array2<f64>)> {
    let np = model.setup.n_params();
    let per = model.setup.n_bins() * model.setup.npix * model.setup.npix;
    let sims: Vec<(Vec<f64>, Vec<f64>)> = (0..n)
        .into_par_iter()
        .map(|i| {
            let s = super::run::simulate_one(model, seed, i)?;
            Ok((s.theta, s.observed.concat()))
        })
        .collect::<Result<_>>()?;
    let mut theta = Array2::zeros((n, np));
    let mut x = Array2::zeros((n, per));
    for (i, (t, m)) in sims.into_iter().enumerate() {
        theta.row_mut(i).assign(&ndarray::ArrayView1::from(&t));
        x.row_mut(i).assign(&ndarray::ArrayView1::from(&m));
    }
    Ok((theta, x))
}

/// Train the compressor on `(theta, x)`, then the density estimator on the
/// frozen summaries of the same simulations.
pub fn train(
    model: &FieldModel,
    theta: ArrayView2<f64>,
    x: ArrayView2<f64>,
    opts: &ImplicitOptions,
) -> Result<Implicit> {
    let setup = &model.setup;
    let np = setup.n_params();
    let (nb, npix, f) = (setup.n_bins(), setup.npix, opts.pool);
    if f == 0 || npix % f != 0 || npix / f < 8 {
        bail!("pooling factor {f}: must divide the map side {npix} and leave at least 8 pixels");
    }
    if x.ncols() != nb * npix * npix {
        bail!(
            "training maps have {} values each, the set-up {}",
            x.ncols(),
            nb * npix * npix
        );
    }
    let pooled;
    let x = if f > 1 {
        pooled = pool_maps(x, nb, npix, f);
        pooled.view()
    } else {
        x
    };
    let prior = SbiPrior::new(setup.priors.clone())?;
    let mut emb = EmbeddingConfig::new(EmbeddingKind::ResNet, x.ncols());
    emb.channels = setup.n_bins();
    emb.hidden = opts.width;
    let mut train = opts.train.clone();
    train.seed = opts.seed;
    train.progress = opts.progress;
    let (summarizer, report) = match opts.compression {
        Compression::Vmim => {
            let mut o = SbiOptions::new(Method::Npe);
            o.embedding = EmbeddingKind::ResNet;
            o.summary_dim = Some(np);
            o.embedding_width = Some(opts.width);
            o.map_channels = Some(setup.n_bins());
            o.train = train;
            let m = SbiModel::train(theta, x, prior.clone(), &o)
                .context("training the VMIM compressor")?;
            let r = m.report.clone();
            (Summarizer::Vmim(Box::new(m)), r)
        }
        c => {
            let loss = if c == Compression::Mse {
                RegressionLoss::Mse
            } else {
                RegressionLoss::Mae
            };
            let (m, r) = Compressor::fit(x, theta, emb, loss, train)
                .with_context(|| format!("training the {} compressor", c.as_str()))?;
            (Summarizer::Regression(Box::new(m)), r)
        }
    };
    let t = summarizer.summaries(x)?;
    let mut o = SbiOptions::new(opts.estimator);
    o.train.seed = opts.seed.wrapping_add(1);
    o.train.progress = opts.progress;
    let estimator = SbiModel::train(theta, t.view(), prior, &o)
        .context("training the density estimator on the summaries")?;
    Ok(Implicit {
        summarizer,
        pool: f,
        n_bins: nb,
        npix,
        estimator,
        compressor_report: report,
        n_simulations: theta.nrows(),
    })
}

impl Implicit {
    /// `n` posterior draws for one observed map set `[n_bins][npix^2]`.
    pub fn posterior(&self, data: &[Vec<f64>], n: usize, seed: u64) -> Result<Array2<f64>> {
        let x = Array2::from_shape_vec((1, data.iter().map(|m| m.len()).sum()), data.concat())?;
        let t = self.summaries(x.view())?;
        Ok(self.estimator.sample(t.row(0), n, seed)?.0)
    }

    /// TARP and SBC of the posterior on `n` fresh simulations
    /// (`n_samples` draws each).
    pub fn coverage(
        &self,
        model: &FieldModel,
        n: usize,
        n_samples: usize,
        seed: u64,
    ) -> Result<Calibration> {
        let (theta, x) = simulate_training_set(model, n, seed)?;
        let t = self.summaries(x.view())?;
        Ok(calibrate(
            &self.estimator,
            theta.view(),
            t.view(),
            n_samples,
            seed,
        )?)
    }

    /// Summaries of full-resolution map sets `[n, n_bins * npix^2]`.
    pub fn summaries(&self, x: ArrayView2<f64>) -> Result<Array2<f64>> {
        let p = pool_maps(x, self.n_bins, self.npix, self.pool);
        self.summarizer.summaries(p.view())
    }

    /// `DIR/compressor/` (the VMIM NPE or the regression network) and
    /// `DIR/estimator/` (the NPE or NLE on the summaries).
    pub fn save(&self, dir: &Path) -> Result<()> {
        match &self.summarizer {
            Summarizer::Vmim(m) => m.save(&dir.join("compressor"))?,
            Summarizer::Regression(c) => c.save(&dir.join("compressor"))?,
        }
        self.estimator.save(&dir.join("estimator"))?;
        Ok(())
    }
}
