//! Denoising score matching (Vincent 2011; Song & Ermon 2019).
//!
//! For a training map `x_0` (normalised, randomly flipped / rotated by one of
//! the 8 symmetries of the square: the prior is isotropic), a noise level
//! `sigma = sigma(t)`, `t ~ U(0, 1)` from the schedule, and `z ~ N(0, I)`,
//! the noisy map is `x = x_0 + sigma z` and the loss, weighted by
//! `lambda(sigma) = sigma^2`, is
//!
//! `|| sigma s(x, sigma) + z ||^2 = || F(c_in x, ln sigma / 4) + z + sigma s_G(x, sigma) ||^2`
//!
//! per pixel (see [`crate::model`] for `F`, `c_in` and the optional Gaussian
//! part `s_G`). Its minimiser is the score of the noisy-map density
//! (Vincent 2011). Training uses the shared loop [`cosmodiff_nn::fit_with_state`]
//! (Adam, schedule, clipping, progress bar, seeds); an "epoch" is one pass
//! over the training maps with fresh noise.

use std::cell::RefCell;

use burn::module::Module;
use burn::tensor::{Tensor, TensorData};
use cosmodiff_lensing::score::MapScore;
use cosmodiff_nn::burn;
use cosmodiff_nn::tensor::default_device;
use cosmodiff_nn::{fit_with_state, CheckpointSettings, LrSchedule, TrainConfig, UNetConfig};
use rand::rngs::ChaCha8Rng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::error::{invalid, ScoreError};
use crate::model::{ScoreModel, ScoreModelConfig, SdeConfig};
use crate::power::radial_power;

/// Settings of [`train_score`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoreTrainConfig {
    /// The network.
    pub unet: UNetConfig,
    /// The noise schedule (in units of the data standard deviation).
    pub sde: SdeConfig,
    /// Learn only the residual of the analytic Gaussian score.
    pub hybrid: bool,
    /// Maps per optimiser step.
    pub batch_size: usize,
    /// Optimiser steps (rounded up to whole epochs).
    pub steps: usize,
    /// Adam's learning rate at the start of the cosine schedule.
    pub learning_rate: f64,
    /// Seed of the weights, the batch order and the noise.
    pub seed: u64,
    /// Show a progress bar.
    pub progress: bool,
    /// Write checkpoints and resume from them (the noise stream included).
    #[serde(skip)]
    pub checkpoint: Option<CheckpointSettings>,
}

impl Default for ScoreTrainConfig {
    fn default() -> Self {
        Self {
            unet: UNetConfig::default(),
            sde: SdeConfig::default(),
            hybrid: true,
            batch_size: 32,
            steps: 2000,
            learning_rate: 1e-3,
            seed: 0,
            progress: false,
            checkpoint: None,
        }
    }
}

/// Apply symmetry `k` (0..8) of the square to an `n x n` map.
pub fn dihedral(m: &[f64], n: usize, k: u8) -> Vec<f64> {
    let mut out = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            let (mut a, mut b) = (i, j);
            if k & 4 != 0 {
                std::mem::swap(&mut a, &mut b);
            }
            if k & 1 != 0 {
                a = n - 1 - a;
            }
            if k & 2 != 0 {
                b = n - 1 - b;
            }
            out[i * n + j] = m[a * n + b];
        }
    }
    out
}

/// Train a score prior on zero-mean maps (`maps[i]` row-major, `side^2` values).
pub fn train_score(
    maps: &[Vec<f64>],
    side: usize,
    pixel_arcmin: f64,
    cfg: &ScoreTrainConfig,
) -> Result<ScoreModel, ScoreError> {
    cfg.unet.validate(side)?;
    if cfg.unet.in_channels != 1 {
        return invalid("score priors are for single-channel maps (in_channels = 1)");
    }
    if maps.len() < 4 {
        return invalid(format!("need at least 4 training maps, got {}", maps.len()));
    }
    if let Some(i) = maps.iter().position(|m| m.len() != side * side) {
        return invalid(format!(
            "training map {i} has {} pixels, expected {side}x{side}",
            maps[i].len()
        ));
    }
    if maps.iter().flatten().any(|v| !v.is_finite()) {
        return invalid("training maps contain non-finite values");
    }
    if cfg.batch_size == 0 || cfg.steps == 0 {
        return invalid("batch_size and steps must be at least 1");
    }
    cfg.sde.validate()?;
    // Zero-mean maps in units of their pixel std.
    let centred: Vec<Vec<f64>> = maps
        .iter()
        .map(|m| {
            let mu = m.iter().sum::<f64>() / m.len() as f64;
            m.iter().map(|v| v - mu).collect()
        })
        .collect();
    let var =
        centred.iter().flatten().map(|v| v * v).sum::<f64>() / (centred.len() * side * side) as f64;
    let data_std = var.sqrt();
    if !data_std.is_finite() {
        return invalid(
            "training maps too large: their pixel variance overflows float64 (convergence maps are O(0.01))",
        );
    }
    if !(data_std > 0.0) {
        return invalid("training maps are constant");
    }
    let norm: Vec<Vec<f64>> = centred
        .iter()
        .map(|m| m.iter().map(|v| v / data_std).collect())
        .collect();
    let config = ScoreModelConfig {
        side,
        pixel_arcmin,
        unet: cfg.unet.clone(),
        data_std,
        sde: cfg.sde,
        hybrid: cfg.hybrid,
        radial_power: radial_power(&norm, side),
        report: None,
    };
    let gaussian = ScoreModel::gaussian_for(&config)?;
    let sde = cfg.sde.sde(1.0);

    let device = default_device();
    let ad = device.clone().autodiff();
    ad.seed(cfg.seed);
    let net = cfg.unet.init(&ad);
    let n = maps.len();
    let train_cfg = TrainConfig {
        learning_rate: cfg.learning_rate,
        batch_size: cfg.batch_size,
        max_epochs: (cfg.steps * cfg.batch_size).div_ceil(n).max(1),
        validation_fraction: 0.0,
        patience: usize::MAX,
        clip_norm: Some(1.0),
        // Per tensor, as the shipped default model was trained.
        clip_per_tensor: true,
        weight_decay: 0.0,
        schedule: LrSchedule::Cosine {
            final_fraction: 0.05,
        },
        seed: cfg.seed,
        progress: cfg.progress,
        checkpoint: cfg.checkpoint.clone(),
        ..Default::default()
    };
    let rng = RefCell::new(ChaCha8Rng::seed_from_u64(cfg.seed ^ 0xd5d5_0001));
    let np = side * side;
    let (net, report) = fit_with_state(net, n, &train_cfg, &rng, |m, rows: &[usize]| {
        let b = rows.len();
        let mut rng = rng.borrow_mut();
        let mut input = Vec::with_capacity(b * np);
        let mut target = Vec::with_capacity(b * np);
        let mut codes = Vec::with_capacity(b);
        let mut noisy = Vec::with_capacity(b);
        let mut sigmas = Vec::with_capacity(b);
        for &r in rows {
            let k = (rand::RngExt::random::<u32>(&mut *rng) % 8) as u8;
            let x0 = dihedral(&norm[r], side, k);
            let t: f64 = rand::RngExt::random(&mut *rng);
            let sigma = sde.sigma(t);
            let c_in = 1.0 / (1.0 + sigma * sigma).sqrt();
            let z: Vec<f64> = (0..np).map(|_| StandardNormal.sample(&mut *rng)).collect();
            let x: Vec<f64> = x0.iter().zip(&z).map(|(a, e)| a + sigma * e).collect();
            input.extend(x.iter().map(|v| (c_in * v) as f32));
            target.extend(z.iter().map(|v| -(*v) as f32));
            codes.push((sigma.ln() / 4.0) as f32);
            noisy.push(x);
            sigmas.push(sigma);
        }
        if let Some(g) = &gaussian {
            // target -= sigma s_G(x, sigma), map by map (each has its own sigma).
            for (i, (x, &s)) in noisy.iter().zip(&sigmas).enumerate() {
                let sg = g.score(std::slice::from_ref(x), s).expect("grid matches");
                for (t, v) in target[i * np..(i + 1) * np].iter_mut().zip(&sg[0]) {
                    *t -= (s * v) as f32;
                }
            }
        }
        let xt: Tensor<4> = Tensor::from_data(TensorData::new(input, [b, 1, side, side]), &device);
        let tt: Tensor<4> = Tensor::from_data(TensorData::new(target, [b, 1, side, side]), &device);
        let r = m.forward(xt, &codes) - tt;
        (r.clone() * r).mean().reshape([1])
    })?;
    ScoreModel::from_parts(
        ScoreModelConfig {
            report: Some(report),
            ..config
        },
        net.valid(),
    )
}
