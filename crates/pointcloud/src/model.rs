//! A conditional variational diffusion model of halo catalogues,
//! `p(cloud | theta)`: training, the ELBO as a log-likelihood, sampling and
//! model directories.
//!
//! A cloud is `N` elements with, per element, its position `[Mpc/h]` in a
//! periodic box of side `L`, optionally its velocity `[km/s]` and its log10
//! mass `[Msun/h]` (row-major `[N, F]` in that order). The network sees
//! positions as `u = (x / L - 1/2) sqrt(12)` (unit variance, box side
//! `sqrt(12)`) and every other column standardised by the training set's
//! mean and standard deviation; the ELBO in nats of the raw columns adds the
//! Jacobian `-N (3 log(L / sqrt 12) + sum_c log s_c)`.
//!
//! Training minimises the negative ELBO per dimension (nats) with the shared
//! loop ([`cosmodiff_nn::fit_with_state`]: Adam, cosine schedule, gradient
//! clipping, resumable checkpoints that include the noise stream), with each
//! batch augmented by a random symmetry of the cube (positions and
//! velocities) and a random periodic translation.

use std::cell::RefCell;
use std::path::Path;

use cosmodiff_nn::burn;
use cosmodiff_nn::checkpoint::{load_weights, read_config, save_model};
use cosmodiff_nn::tensor::{default_device, to_vec};
use cosmodiff_nn::{fit_with_state, CheckpointSettings, LrSchedule, TrainConfig, TrainReport};

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::error::{invalid, PointCloudError, Result};
use crate::net::{NetConfig, ScoreNet};
use crate::schedule::{NoiseSchedule, ScheduleConfig};
use crate::vdm::{batch_times, bound_terms, normal_noise, sample};

/// The side of the periodic box in network units: `sqrt(12)`, so that
/// uniform positions have unit variance.
pub const BOX_UNITS: f64 = 3.464_101_615_137_754_6;

/// The name of the configuration file of a model directory.
pub const CONFIG: &str = "pointcloud.json";

/// Version of the model-directory format.
pub const FORMAT: u32 = 1;

/// What a point-cloud model is: data layout, normalisation, networks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointVdmConfig {
    /// Model-directory format version.
    pub format: u32,
    /// Elements per cloud.
    pub n_points: usize,
    /// Side of the periodic box [Mpc/h].
    pub box_size: f64,
    /// Velocities are modelled (3 columns after the positions).
    pub velocity: bool,
    /// log10 masses are modelled (the last column).
    pub mass: bool,
    /// Names of the conditioning parameters.
    pub theta_names: Vec<String>,
    /// Mean of each parameter over the training set.
    pub theta_mean: Vec<f64>,
    /// Standard deviation of each parameter over the training set.
    pub theta_std: Vec<f64>,
    /// Training-set range `[lo, hi]` of each parameter.
    pub theta_range: Vec<[f64; 2]>,
    /// Mean of each non-position column.
    pub scalar_mean: Vec<f64>,
    /// Standard deviation of each non-position column.
    pub scalar_std: Vec<f64>,
    /// The network.
    pub net: NetConfig,
    /// The noise schedule.
    pub schedule: ScheduleConfig,
    /// Free-form record of how the training data were made (the workflow
    /// stores the simulation config and the halo selection here).
    #[serde(default)]
    pub simulation: serde_json::Value,
    /// The training run.
    #[serde(default)]
    pub report: Option<TrainReport>,
}

impl PointVdmConfig {
    /// Columns per element.
    pub fn features(&self) -> usize {
        3 + if self.velocity { 3 } else { 0 } + usize::from(self.mass)
    }
}

/// The trainable parts.
#[derive(Module, Debug)]
struct Vdm {
    schedule: NoiseSchedule,
    net: ScoreNet,
}

/// A trained (or freshly built) point-cloud diffusion model.
#[derive(Debug)]
pub struct PointVdm {
    /// Its configuration.
    pub config: PointVdmConfig,
    model: Vdm,
    device: Device,
}

/// Settings of [`train`].
#[derive(Clone, Debug)]
pub struct TrainSettings {
    /// Clouds per optimiser step.
    pub batch_size: usize,
    /// Optimiser steps (rounded up to whole epochs).
    pub steps: usize,
    /// Peak learning rate of the cosine schedule.
    pub learning_rate: f64,
    /// Seed of the weights, batches, augmentations and noise.
    pub seed: u64,
    /// Random cube symmetries and periodic translations of each batch.
    pub augment: bool,
    /// Show a progress bar.
    pub progress: bool,
    /// Resumable checkpoints.
    pub checkpoint: Option<CheckpointSettings>,
}

impl Default for TrainSettings {
    fn default() -> Self {
        Self {
            batch_size: 16,
            steps: 2000,
            learning_rate: 1e-3,
            seed: 0,
            augment: true,
            progress: false,
            checkpoint: None,
        }
    }
}

fn mean_std(values: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let n = values.clone().count().max(1) as f64;
    let mean = values.clone().sum::<f64>() / n;
    let var = values.map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt().max(1e-12))
}

/// Check clouds (`n_points x features` finite numbers, positions inside the
/// box) and their parameters.
pub fn check_clouds(cfg: &PointVdmConfig, clouds: &[Vec<f64>], theta: &[Vec<f64>]) -> Result<()> {
    let f = cfg.features();
    if clouds.len() != theta.len() {
        return invalid(format!(
            "{} clouds but {} parameter rows",
            clouds.len(),
            theta.len()
        ));
    }
    for (i, c) in clouds.iter().enumerate() {
        if c.len() != cfg.n_points * f {
            return invalid(format!(
                "cloud {i} has {} values, expected {} points x {f} columns",
                c.len(),
                cfg.n_points
            ));
        }
        if let Some(j) = c.iter().position(|v| !v.is_finite()) {
            return invalid(format!("cloud {i}: value {j} is not finite"));
        }
        for p in 0..cfg.n_points {
            if c[p * f..p * f + 3]
                .iter()
                .any(|&x| !(0.0..cfg.box_size).contains(&x))
            {
                return invalid(format!(
                    "cloud {i}: point {p} lies outside the box [0, {}) Mpc/h",
                    cfg.box_size
                ));
            }
        }
    }
    for (i, t) in theta.iter().enumerate() {
        if t.len() != cfg.theta_names.len() || t.iter().any(|v| !v.is_finite()) {
            return invalid(format!(
                "parameter row {i} must hold {} finite values",
                cfg.theta_names.len()
            ));
        }
    }
    Ok(())
}

impl PointVdm {
    /// A fresh model for `cfg` (its normalisation already filled in).
    fn build(config: PointVdmConfig, device: &Device) -> Result<Self> {
        let model = Vdm {
            schedule: NoiseSchedule::new(&config.schedule, device)?,
            net: ScoreNet::new(
                &config.net,
                config.features(),
                config.theta_names.len(),
                BOX_UNITS,
                device,
            )?,
        };
        if config.n_points <= config.net.k {
            return invalid(format!(
                "clouds of {} points are too small for k = {} neighbours",
                config.n_points, config.net.k
            ));
        }
        Ok(Self {
            config,
            model,
            device: device.clone(),
        })
    }

    /// Network units of raw clouds, `[clouds.len() * n_points * F]`.
    fn normalise(&self, clouds: &[&[f64]]) -> Vec<f32> {
        normalise(&self.config, clouds)
    }

    fn theta_tensor(&self, theta: &[Vec<f64>], device: &Device) -> Tensor<2> {
        theta_tensor(&self.config, theta, device)
    }

    /// The trained schedule's endpoints `(gamma(0), gamma(1))`.
    pub fn endpoints(&self) -> (f64, f64) {
        let (a, b) = self.model.schedule.endpoints();
        (to_vec(a)[0], to_vec(b)[0])
    }

    /// `log |d u / d x|` of one cloud: raw columns to network units.
    pub fn log_jacobian(&self) -> f64 {
        let c = &self.config;
        -(c.n_points as f64)
            * (3.0 * (c.box_size / BOX_UNITS).ln()
                + c.scalar_std.iter().map(|s| s.ln()).sum::<f64>())
    }

    /// The ELBO `<= log p(cloud | theta)` in nats of the raw columns, per
    /// cloud, with common random numbers: the diffusion term averages the
    /// midpoints of `times` equal time intervals, with noise drawn from
    /// `seed` (the same draws for every `theta`, so differences in theta are
    /// smooth).
    pub fn elbo(
        &self,
        clouds: &[Vec<f64>],
        theta: &[Vec<f64>],
        times: usize,
        seed: u64,
    ) -> Result<Vec<f64>> {
        check_clouds(&self.config, clouds, theta)?;
        if times == 0 {
            return invalid("the ELBO needs at least one time");
        }
        let (n, f) = (self.config.n_points, self.config.features());
        let dev = &self.device;
        let jac = self.log_jacobian();
        let mut out = Vec::with_capacity(clouds.len());
        for (c, t) in clouds.iter().zip(theta) {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut total = 0.0;
            let mut prior_recon = 0.0;
            // the time grid in chunks of at most 16 copies of the cloud
            let mut start = 0;
            while start < times {
                let b = (times - start).min(16);
                let x = self.normalise(&vec![c.as_slice(); b]);
                let x = Tensor::<3>::from_data(TensorData::new(x, [b, n, f]), dev);
                let tt: Vec<f32> = (start..start + b)
                    .map(|i| ((i as f64 + 0.5) / times as f64) as f32)
                    .collect();
                let tt = Tensor::<1>::from_data(TensorData::new(tt, [b]), dev);
                let eps = normal_noise([b, n, f], &mut rng, dev);
                let terms = bound_terms(
                    &self.model.schedule,
                    &self.model.net,
                    x,
                    Tensor::ones([b, n], dev),
                    self.theta_tensor(&vec![t.clone(); b], dev),
                    tt,
                    eps,
                );
                total += to_vec(terms.diffusion).iter().sum::<f64>() / times as f64;
                let pr = to_vec(terms.prior + terms.reconstruction);
                prior_recon = pr[0];
                start += b;
            }
            out.push(-(total + prior_recon) + jac);
        }
        Ok(out)
    }

    /// `n` clouds drawn at `theta` by ancestral sampling in `steps` steps,
    /// in raw units (positions wrapped into the box).
    pub fn sample(
        &self,
        theta: &[f64],
        n: usize,
        steps: usize,
        seed: u64,
    ) -> Result<Vec<Vec<f64>>> {
        if theta.len() != self.config.theta_names.len() || theta.iter().any(|v| !v.is_finite()) {
            return invalid(format!(
                "theta must hold {} finite values ({})",
                self.config.theta_names.len(),
                self.config.theta_names.join(", ")
            ));
        }
        let (np, f) = (self.config.n_points, self.config.features());
        let dev = &self.device;
        let mut out = vec![];
        for (chunk, start) in (0..n).step_by(16).enumerate() {
            let b = (n - start).min(16);
            let z = sample(
                &self.model.schedule,
                &self.model.net,
                self.theta_tensor(&vec![theta.to_vec(); b], dev),
                Tensor::ones([b, np], dev),
                f,
                steps,
                seed.wrapping_add(chunk as u64),
            );
            let v = to_vec(z);
            for cloud in v.chunks_exact(np * f) {
                out.push(denormalise(&self.config, cloud));
            }
        }
        Ok(out)
    }

    /// The exact log-likelihood `log p(cloud | theta)` [nats of the raw
    /// columns] of the probability-flow ODE of the trained model (Song et
    /// al. 2021, eq. 13), in the VDM parametrisation
    ///
    /// ```text
    /// dz/dt = 1/2 gamma'(t) (sigma_t eps_hat(z; t) - sigma_t^2 z),
    /// log p(x) = log N(z_1; 0, I) + int_0^1 tr(df/dz) dt + D log alpha_0 + log|du/dx|,
    /// ```
    ///
    /// from `z_0 = alpha_0 x` (the `sigma_0` noise of the data end is
    /// neglected, `O(sigma_0^2)`), with the trace exact or by Hutchinson
    /// ([`crate::ode::Trace`]). The same density the sampler's ODE defines,
    /// so `elbo <= log p` up to the solver tolerance and the network's
    /// departure from a true score.
    pub fn exact_log_likelihood(
        &self,
        cloud: &[f64],
        theta: &[f64],
        trace: &crate::ode::Trace,
        s: &crate::ode::OdeSettings,
    ) -> Result<(f64, crate::ode::OdeSolution)> {
        check_clouds(&self.config, &[cloud.to_vec()], &[theta.to_vec()])?;
        let (n, f) = (self.config.n_points, self.config.features());
        let dim = n * f;
        let ad = self.device.clone().autodiff();
        let model = self.model.clone().to_device(&ad);
        let ode = crate::vdm::ProbabilityFlow {
            schedule: &model.schedule,
            net: &model.net,
            theta: self.theta_tensor(&[theta.to_vec()], &ad),
            n,
            f,
        };
        let g0 = cosmodiff_nn::tensor::to_vec(self.model.schedule.endpoints().0)[0];
        let alpha0 = (1.0 / (1.0 + g0.exp())).sqrt();
        let x = self.normalise(&[cloud]);
        let z0: Vec<f64> = x.iter().map(|&v| alpha0 * v as f64).collect();
        let (z1, delta, sol) = crate::ode::flow(&ode, 0.0, 1.0, &z0, trace, s)?;
        let prior = -0.5 * z1.iter().map(|v| v * v).sum::<f64>()
            - 0.5 * dim as f64 * (2.0 * std::f64::consts::PI).ln();
        Ok((
            prior + delta + dim as f64 * alpha0.ln() + self.log_jacobian(),
            sol,
        ))
    }

    /// Write the model directory (`pointcloud.json`, `weights.safetensors`).
    pub fn save(&self, dir: &Path) -> Result<()> {
        Ok(save_model(dir, &self.model, CONFIG, &self.config)?)
    }

    /// Read a model directory written by [`PointVdm::save`].
    pub fn load(dir: &Path) -> Result<Self> {
        if !dir.join(CONFIG).is_file() {
            return invalid(format!(
                "{} is not a point-cloud model directory (no {CONFIG})",
                dir.display()
            ));
        }
        let config: PointVdmConfig = read_config(dir, CONFIG)?;
        if config.format != FORMAT {
            return invalid(format!(
                "{}: model format {} (this build reads {FORMAT})",
                dir.display(),
                config.format
            ));
        }
        let mut m = Self::build(config, &default_device())?;
        load_weights(dir, &mut m.model, CONFIG)?;
        Ok(m)
    }
}

/// Network units (see the module docs) of raw clouds.
fn normalise(cfg: &PointVdmConfig, clouds: &[&[f64]]) -> Vec<f32> {
    let f = cfg.features();
    let mut out = Vec::with_capacity(clouds.len() * cfg.n_points * f);
    for c in clouds {
        for row in c.chunks_exact(f) {
            for a in 0..3 {
                out.push(((row[a] / cfg.box_size - 0.5) * BOX_UNITS) as f32);
            }
            for (j, v) in row[3..].iter().enumerate() {
                out.push(((v - cfg.scalar_mean[j]) / cfg.scalar_std[j]) as f32);
            }
        }
    }
    out
}

/// Raw units of one cloud in network units (positions wrapped into the box).
fn denormalise(cfg: &PointVdmConfig, cloud: &[f64]) -> Vec<f64> {
    let f = cfg.features();
    let mut out = Vec::with_capacity(cloud.len());
    for row in cloud.chunks_exact(f) {
        for &u in &row[..3] {
            out.push(cosmodiff_catalog::wrap(
                (u / BOX_UNITS + 0.5) * cfg.box_size,
                cfg.box_size,
            ));
        }
        for (j, v) in row[3..].iter().enumerate() {
            out.push(v * cfg.scalar_std[j] + cfg.scalar_mean[j]);
        }
    }
    out
}

fn theta_tensor(cfg: &PointVdmConfig, theta: &[Vec<f64>], device: &Device) -> Tensor<2> {
    let p = cfg.theta_names.len();
    let v: Vec<f32> = theta
        .iter()
        .flat_map(|t| {
            t.iter()
                .enumerate()
                .map(|(j, x)| ((x - cfg.theta_mean[j]) / cfg.theta_std[j]) as f32)
        })
        .collect();
    Tensor::from_data(TensorData::new(v, [theta.len(), p]), device)
}

/// A random symmetry of the cube (axis permutation and reflections) and a
/// periodic translation applied to a cloud in network units, in place.
fn augment(cloud: &mut [f32], f: usize, velocity: bool, rng: &mut ChaCha8Rng) {
    let perms = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    let perm = perms[rng.random_range(0..6usize)];
    let flips: [f32; 3] = [0, 1, 2].map(|_| if rng.random::<bool>() { -1.0 } else { 1.0 });
    let shift: [f32; 3] = [0, 1, 2].map(|_| rng.random_range(0.0..BOX_UNITS) as f32);
    let half = (BOX_UNITS / 2.0) as f32;
    let l = BOX_UNITS as f32;
    for row in cloud.chunks_exact_mut(f) {
        let p = [row[0], row[1], row[2]];
        for a in 0..3 {
            let v = flips[a] * p[perm[a]] + shift[a] + half;
            row[a] = v - l * (v / l).floor() - half;
        }
        if velocity {
            let v = [row[3], row[4], row[5]];
            for a in 0..3 {
                row[3 + a] = flips[a] * v[perm[a]];
            }
        }
    }
}

/// Train a model of `clouds` (raw units, see the module docs) given `theta`.
/// `config`'s normalisation fields are computed here from the data.
pub fn train(
    clouds: &[Vec<f64>],
    theta: &[Vec<f64>],
    mut config: PointVdmConfig,
    s: &TrainSettings,
) -> Result<PointVdm> {
    let p = config.theta_names.len();
    config.theta_mean = vec![0.0; p];
    config.theta_std = vec![1.0; p];
    config.scalar_mean = vec![0.0; config.features() - 3];
    config.scalar_std = vec![1.0; config.features() - 3];
    check_clouds(&config, clouds, theta)?;
    if clouds.len() < 2 {
        return invalid(format!(
            "need at least 2 training clouds, got {}",
            clouds.len()
        ));
    }
    if s.batch_size == 0 || s.steps == 0 {
        return invalid("batch_size and steps must be at least 1");
    }
    let f = config.features();
    for j in 0..p {
        let (m, sd) = mean_std(theta.iter().map(|t| t[j]));
        config.theta_mean[j] = m;
        config.theta_std[j] = sd;
    }
    config.theta_range = (0..p)
        .map(|j| {
            let v = theta.iter().map(|t| t[j]);
            [
                v.clone().fold(f64::INFINITY, f64::min),
                v.fold(f64::NEG_INFINITY, f64::max),
            ]
        })
        .collect();
    for j in 3..f {
        let (m, sd) = mean_std(
            clouds
                .iter()
                .flat_map(|c| c.iter().skip(j).step_by(f).copied()),
        );
        config.scalar_mean[j - 3] = m;
        config.scalar_std[j - 3] = sd;
    }
    let device = default_device();
    let ad = device.clone().autodiff();
    ad.seed(s.seed);
    let model = PointVdm::build(config.clone(), &ad)?.model;
    let data: Vec<Vec<f32>> = clouds
        .iter()
        .map(|c| normalise(&config, &[c.as_slice()]))
        .collect();
    let n = config.n_points;
    let dims = (n * f) as f64;
    let train_cfg = TrainConfig {
        learning_rate: s.learning_rate,
        batch_size: s.batch_size.min(clouds.len()),
        max_epochs: (s.steps * s.batch_size).div_ceil(clouds.len()).max(1),
        validation_fraction: 0.0,
        patience: usize::MAX,
        clip_norm: Some(1.0),
        weight_decay: 0.0,
        schedule: LrSchedule::Cosine {
            final_fraction: 0.05,
        },
        seed: s.seed,
        progress: s.progress,
        checkpoint: s.checkpoint.clone(),
        ..Default::default()
    };
    let rng = RefCell::new(ChaCha8Rng::seed_from_u64(s.seed ^ 0x9c1d_0001));
    let thetas: Vec<Vec<f64>> = theta.to_vec();
    let (model, report) = fit_with_state(
        model,
        clouds.len(),
        &train_cfg,
        &rng,
        |m: &Vdm, rows: &[usize]| {
            let b = rows.len();
            let mut rng = rng.borrow_mut();
            let mut x = Vec::with_capacity(b * n * f);
            for &r in rows {
                let mut c = data[r].clone();
                if s.augment {
                    augment(&mut c, f, config.velocity, &mut rng);
                }
                x.extend(c);
            }
            let dev = &ad;
            let x = Tensor::<3>::from_data(TensorData::new(x, [b, n, f]), dev);
            let th: Vec<Vec<f64>> = rows.iter().map(|&r| thetas[r].clone()).collect();
            let u: f64 = rng.random();
            let eps = normal_noise([b, n, f], &mut rng, dev);
            let terms = bound_terms(
                &m.schedule,
                &m.net,
                x,
                Tensor::ones([b, n], dev),
                theta_tensor(&config, &th, dev),
                batch_times(b, u, dev),
                eps,
            );
            (terms.total().mean() / dims).reshape([1])
        },
    )
    .map_err(PointCloudError::from)?;
    config.report = Some(report);
    Ok(PointVdm {
        config,
        model: model.valid(),
        device,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::NetKind;

    fn config(kind: NetKind) -> PointVdmConfig {
        PointVdmConfig {
            format: FORMAT,
            n_points: 24,
            box_size: 100.0,
            velocity: false,
            mass: true,
            theta_names: vec!["a".into()],
            theta_mean: vec![],
            theta_std: vec![],
            theta_range: vec![],
            scalar_mean: vec![],
            scalar_std: vec![],
            net: NetConfig {
                kind,
                hidden: 16,
                layers: 2,
                k: 6,
                ..Default::default()
            },
            schedule: ScheduleConfig::default(),
            simulation: serde_json::Value::Null,
            report: None,
        }
    }

    /// Clouds of 24 points: clustered around 3 centres whose spread is the
    /// parameter, with a mass column.
    fn clouds(n: usize, seed: u64) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut cs = vec![];
        let mut th = vec![];
        for _ in 0..n {
            let a: f64 = rng.random_range(2.0..10.0);
            let centres: Vec<[f64; 3]> = (0..3)
                .map(|_| [0, 1, 2].map(|_| rng.random_range(0.0..100.0)))
                .collect();
            let mut c = vec![];
            for i in 0..24 {
                for x in centres[i % 3] {
                    let v: f64 = rng.sample(rand_distr::StandardNormal);
                    c.push(cosmodiff_catalog::wrap(x + a * v, 100.0));
                }
                c.push(12.0 + rng.random::<f64>());
            }
            cs.push(c);
            th.push(vec![a]);
        }
        (cs, th)
    }

    /// A short training lowers the bound, the saved model reloads to the
    /// same ELBO, the ELBO with common random numbers is deterministic and
    /// samples have the trained layout.
    #[test]
    fn trains_saves_reloads_and_samples() {
        let (cs, th) = clouds(32, 1);
        for kind in [NetKind::Gnn, NetKind::Egnn] {
            let s = TrainSettings {
                batch_size: 8,
                steps: 60,
                learning_rate: 3e-3,
                ..Default::default()
            };
            let m = train(&cs, &th, config(kind), &s).unwrap();
            let loss = &m.config.report.as_ref().unwrap().train_loss;
            let (first, last) = (loss[0], *loss.last().unwrap());
            assert!(last < first, "{kind:?}: loss {first} -> {last}");
            let e1 = m.elbo(&cs[..2], &th[..2], 8, 5).unwrap();
            let e2 = m.elbo(&cs[..2], &th[..2], 8, 5).unwrap();
            assert_eq!(e1, e2);
            let dir =
                std::env::temp_dir().join(format!("cosmodiff-pc-{kind:?}-{}", std::process::id()));
            m.save(&dir).unwrap();
            let back = PointVdm::load(&dir).unwrap();
            let e3 = back.elbo(&cs[..2], &th[..2], 8, 5).unwrap();
            for (a, b) in e1.iter().zip(&e3) {
                assert!((a - b).abs() < 1e-6 * a.abs().max(1.0), "{a} vs {b}");
            }
            let smp = back.sample(&[5.0], 3, 20, 0).unwrap();
            assert_eq!(smp.len(), 3);
            assert!(smp.iter().all(|c| c.len() == 24 * 4));
            assert!(smp.iter().flatten().all(|v| v.is_finite()));
            std::fs::remove_dir_all(&dir).ok();
        }
        // bad inputs are named
        let m = train(
            &cs,
            &th,
            config(NetKind::Gnn),
            &TrainSettings {
                steps: 1,
                ..Default::default()
            },
        )
        .unwrap();
        let mut bad = cs[0].clone();
        bad[0] = 100.5;
        let e = m.elbo(&[bad], &th[..1], 2, 0).unwrap_err();
        assert!(e.to_string().contains("outside the box"), "{e}");
        let e = m.elbo(&[cs[0][..40].to_vec()], &th[..1], 2, 0).unwrap_err();
        assert!(e.to_string().contains("expected 24 points"), "{e}");
    }
}
