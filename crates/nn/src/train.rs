//! The training loop shared by every network in cosmodiff.
//!
//! Mini-batch Adam or AdamW (Loshchilov & Hutter 2019) with a learning-rate
//! schedule (constant, cosine or exponential decay), gradient clipping by
//! the global norm over all parameters (PyTorch's `clip_grad_norm_`, which
//! sbi uses; per tensor on request), a held-out validation
//! split with early stopping that restores the best weights (as sbi does),
//! reproducible seeds (weights, split and batch order), a progress bar
//! showing the losses, and checkpoints from which an interrupted run
//! continues to the same weights ([`crate::resume`]).

use std::time::Instant;

use burn::grad_clipping::GradientClippingConfig;
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer, OptimizerRecord};
use burn::tensor::{Bytes, Tensor};
use rand::rngs::ChaCha8Rng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::adam_kernel::FusedAdam;
use crate::checkpoint::checkpoint_error;
use crate::error::{invalid, NnError};
use crate::resume::{self, CheckpointSettings, LossState, Position, Snapshot};
use crate::tensor::scalar;

/// Learning-rate schedule over epochs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LrSchedule {
    Constant,
    /// Cosine decay from `lr` to `lr * final_fraction` over `max_epochs`.
    Cosine {
        final_fraction: f64,
    },
    /// `lr * gamma^epoch`.
    Exponential {
        gamma: f64,
    },
}

/// Settings of [`fit`]. Defaults follow sbi's `train()`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub learning_rate: f64,
    pub batch_size: usize,
    pub max_epochs: usize,
    /// Fraction of the rows held out for validation / early stopping.
    pub validation_fraction: f64,
    /// Stop after this many epochs without a better validation loss.
    pub patience: usize,
    /// Rescale the gradient when its global L2 norm (all parameters
    /// together) exceeds this value (None: no clipping).
    pub clip_norm: Option<f64>,
    /// Clip each parameter tensor's gradient to `clip_norm` separately
    /// (burn's convention) instead of the global norm.
    #[serde(default)]
    pub clip_per_tensor: bool,
    /// Decoupled weight decay (AdamW) if > 0, else plain Adam.
    pub weight_decay: f64,
    pub schedule: LrSchedule,
    pub seed: u64,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// Rows per forward pass when evaluating the validation loss (large for
    /// flows, small for convolutional networks on maps, whose activations
    /// grow with the batch).
    #[serde(default = "default_eval_batch")]
    pub eval_batch_size: usize,
    /// Write checkpoints and resume from them (not part of a saved model).
    #[serde(skip)]
    pub checkpoint: Option<CheckpointSettings>,
}

fn default_eval_batch() -> usize {
    4096
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            learning_rate: 5e-4,
            batch_size: 200,
            max_epochs: 2000,
            validation_fraction: 0.1,
            patience: 20,
            clip_norm: Some(5.0),
            clip_per_tensor: false,
            weight_decay: 0.0,
            schedule: LrSchedule::Constant,
            seed: 0,
            progress: false,
            eval_batch_size: default_eval_batch(),
            checkpoint: None,
        }
    }
}

impl TrainConfig {
    pub fn validate(&self, n: usize) -> Result<(), NnError> {
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return invalid(format!(
                "learning rate must be positive, got {}",
                self.learning_rate
            ));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return invalid(format!(
                "weight decay must be finite and >= 0, got {}",
                self.weight_decay
            ));
        }
        if self.batch_size == 0 || self.eval_batch_size == 0 {
            return invalid("batch sizes must be at least 1");
        }
        if self.max_epochs == 0 {
            return invalid("max epochs must be at least 1");
        }
        if !(0.0..0.9).contains(&self.validation_fraction) {
            return invalid(format!(
                "validation fraction must be in [0, 0.9), got {}",
                self.validation_fraction
            ));
        }
        let n_val = (self.validation_fraction * n as f64).round() as usize;
        if n < 2 || n - n_val < 1 || (self.validation_fraction > 0.0 && n_val == 0) {
            return invalid(format!(
                "{n} training rows are too few for a validation split"
            ));
        }
        Ok(())
    }

    fn lr(&self, epoch: usize) -> f64 {
        match self.schedule {
            LrSchedule::Constant => self.learning_rate,
            LrSchedule::Cosine { final_fraction } => {
                let t = (epoch as f64 / self.max_epochs.max(1) as f64).min(1.0);
                let f = final_fraction
                    + (1.0 - final_fraction) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos());
                self.learning_rate * f
            }
            LrSchedule::Exponential { gamma } => self.learning_rate * gamma.powi(epoch as i32),
        }
    }
}

/// What happened during training.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    pub epochs: usize,
    /// Epoch (from 0) whose weights were kept.
    pub best_epoch: usize,
    /// Loss of the kept weights on the validation rows; without a validation
    /// split (`n_validation == 0`), the lowest epoch-mean training loss.
    pub best_validation_loss: f64,
    /// Epoch-mean training loss (averaged while the weights change).
    pub train_loss: Vec<f64>,
    /// Loss on the validation rows after each epoch; empty without a
    /// validation split.
    pub validation_loss: Vec<f64>,
    pub seconds: f64,
    pub n_train: usize,
    pub n_validation: usize,
}

/// Split `0..n` into shuffled training and validation indices.
pub fn train_validation_split(n: usize, fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut idx: Vec<usize> = (0..n).collect();
    let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_5917);
    idx.shuffle(&mut rng);
    let n_val = (fraction * n as f64).round() as usize;
    let val = idx[..n_val].to_vec();
    let train = idx[n_val..].to_vec();
    (train, val)
}

/// Squared L2 norms of the gradients of a module's float parameters.
struct GradSquares<'a> {
    grads: &'a GradientsParams,
    sum: Vec<Tensor<1>>,
}

impl ModuleVisitor for GradSquares<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            self.sum.push(g.powi_scalar(2).sum());
        }
    }
}

/// Multiplies the gradients of a module's float parameters by `factor`.
struct GradScale<'a> {
    grads: &'a mut GradientsParams,
    factor: f64,
}

impl ModuleVisitor for GradScale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.remove::<D>(param.id) {
            self.grads.register(param.id, g * self.factor);
        }
    }
}

/// Global-norm clipping: `g <- g * min(1, max / (|g| + 1e-6))` with `|g|`
/// the L2 norm over all parameters (PyTorch's `clip_grad_norm_`). Returns
/// the norm before clipping.
pub fn clip_global_norm<M: Module>(model: &M, grads: &mut GradientsParams, max: f64) -> f64 {
    let mut sq = GradSquares {
        grads,
        sum: Vec::new(),
    };
    model.visit(&mut sq);
    if sq.sum.is_empty() {
        return 0.0;
    }
    let norm = scalar(Tensor::cat(sq.sum, 0).sum()).sqrt();
    if norm.is_finite() && norm > max {
        let mut scale = GradScale {
            grads,
            factor: max / (norm + 1e-6),
        };
        model.visit(&mut scale);
    }
    norm
}

/// Train `model` (whose parameters live on an autodiff device) by minimising
/// `loss(model, rows)`, the mean loss over the given data rows, returned as
/// a one-element tensor. Returns the weights with the best validation loss.
///
/// With [`TrainConfig::checkpoint`] the run is resumable: see
/// [`fit_with_state`].
pub fn fit<M, F>(
    model: M,
    n: usize,
    cfg: &TrainConfig,
    loss: F,
) -> Result<(M, TrainReport), NnError>
where
    M: Module + Clone,
    F: Fn(&M, &[usize]) -> Tensor<1>,
{
    fit_with_state(model, n, cfg, &(), loss)
}

/// [`fit`] for a loss that draws random numbers itself (`state`, e.g. the
/// noise of denoising score matching): the state is saved in checkpoints.
///
/// With [`TrainConfig::checkpoint`], a checkpoint ([`crate::resume`]) is
/// written every `every_seconds` (between batches) and when the stop flag
/// is set, which then ends training with [`NnError::Interrupted`]; if the
/// checkpoint file exists when training starts, training continues from it,
/// to the same final weights as an uninterrupted run. The caller deletes
/// the file once it has saved the trained model.
pub fn fit_with_state<M, F>(
    model: M,
    n: usize,
    cfg: &TrainConfig,
    state: &dyn LossState,
    loss: F,
) -> Result<(M, TrainReport), NnError>
where
    M: Module + Clone,
    F: Fn(&M, &[usize]) -> Tensor<1>,
{
    cfg.validate(n)?;
    let start = Instant::now();
    let (train, val) = train_validation_split(n, cfg.validation_fraction, cfg.seed);
    let (global_clip, tensor_clip) = match cfg.clip_norm {
        Some(c) if cfg.clip_per_tensor => (None, Some(GradientClippingConfig::Norm(c as f32))),
        c => (c, None),
    };
    let mut optim = if cfg.weight_decay > 0.0 {
        AdamWConfig::new()
            .with_weight_decay(cfg.weight_decay as f32)
            .with_epsilon(1e-8)
            .with_grad_clipping(tensor_clip)
            .init()
    } else {
        let optim = ModuleOptimizer::from(FusedAdam::new(0.9, 0.999, 1e-8));
        match tensor_clip {
            Some(c) => optim.with_grad_clipping(c.init()),
            None => optim,
        }
    };
    let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(cfg.seed.wrapping_add(1));
    let mut model = model;
    let mut best = model.clone();
    let mut pos = Position {
        order: train.clone(),
        best_loss: f64::INFINITY,
        ..Default::default()
    };
    // the checkpoint settings and what a checkpoint must match
    let resumable = cfg
        .checkpoint
        .as_ref()
        .map(|c| (c, resume::identity(n, cfg, &model)));
    if let Some((c, identity)) = &resumable {
        if c.file.is_file() {
            let fail = |msg: String| checkpoint_error(&c.file, msg);
            let snap = Snapshot::read(&c.file)?;
            if &snap.identity != identity {
                return Err(fail(
                    "belongs to another training (other data, settings or network); delete it to start again".into(),
                ));
            }
            let mut sorted = snap.position.order.clone();
            sorted.sort_unstable();
            let mut expected = train.clone();
            expected.sort_unstable();
            if sorted != expected {
                return Err(fail(
                    "its batch order is not one of this training's rows".into(),
                ));
            }
            let record = OptimizerRecord::from_bytes(Bytes::from_bytes_vec(snap.optimizer))
                .map_err(|e| fail(format!("unreadable optimiser state: {e}")))?;
            best = resume::restore(model.clone(), &snap.best).map_err(&fail)?;
            model = resume::restore(model, &snap.model).map_err(&fail)?;
            optim = optim.load_record(record);
            rng = resume::rng_from_bytes(&snap.rng).map_err(&fail)?;
            state.restore(&snap.loss).map_err(&fail)?;
            pos = snap.position;
        }
    }
    let save = |c: &CheckpointSettings,
                identity: &str,
                pos: &Position,
                model: &M,
                best: &M,
                optim: &ModuleOptimizer,
                rng: &ChaCha8Rng| {
        let optimizer = optim
            .to_record()
            .into_bytes()
            .map_err(|e| checkpoint_error(&c.file, format!("optimiser state: {e}")))?;
        let snap = Snapshot {
            identity: identity.to_string(),
            position: Position {
                seconds: pos.seconds + start.elapsed().as_secs_f64(),
                ..pos.clone()
            },
            rng: resume::rng_bytes(rng),
            loss: state.save(),
            model: resume::parameters(model),
            best: resume::parameters(best),
            optimizer: optimizer.to_vec(),
        };
        (c.write)(&c.file, &snap.to_bytes())
            .map_err(|e| checkpoint_error(&c.file, format!("cannot write: {e}")))
    };
    let pb = if cfg.progress {
        let pb = indicatif::ProgressBar::new(cfg.max_epochs as u64);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} training {pos} epochs {elapsed_precise}  {msg}",
            )
            .expect("valid template"),
        );
        pb.set_position(pos.epoch as u64);
        pb
    } else {
        indicatif::ProgressBar::hidden()
    };

    let mut last_save = Instant::now();
    let n_batches = train.len().div_ceil(cfg.batch_size);
    let mut stopped_early = false;
    while pos.epoch < cfg.max_epochs && !stopped_early {
        let epoch = pos.epoch;
        if pos.batch == 0 {
            pos.order.shuffle(&mut rng);
            pos.sum = 0.0;
            pos.count = 0;
        }
        let lr = cfg.lr(epoch);
        while pos.batch < n_batches {
            let lo = pos.batch * cfg.batch_size;
            let batch = &pos.order[lo..(lo + cfg.batch_size).min(pos.order.len())];
            let l = loss(&model, batch);
            let grads = l.backward();
            // The loss value is read from the same tensor (no second pass).
            let v = scalar(l.clone().detach().without_autodiff());
            if !v.is_finite() {
                pb.finish_and_clear();
                return Err(NnError::Diverged { epoch, loss: v });
            }
            pos.sum += v * batch.len() as f64;
            pos.count += batch.len();
            let mut grads = GradientsParams::from_grads(grads, &model);
            if let Some(max) = global_clip {
                clip_global_norm(&model, &mut grads, max);
            }
            model = optim.step(lr, model, grads);
            pos.batch += 1;
            if let Some((c, identity)) = &resumable {
                let stop = c.stop_requested();
                if stop || last_save.elapsed().as_secs_f64() >= c.every_seconds {
                    save(c, identity, &pos, &model, &best, &optim, &rng)?;
                    last_save = Instant::now();
                }
                if stop {
                    pb.finish_and_clear();
                    return Err(NnError::Interrupted {
                        epoch: epoch + 1,
                        path: c.file.display().to_string(),
                    });
                }
            }
        }
        let train_loss = pos.sum / pos.count.max(1) as f64;
        let val_loss = if val.is_empty() {
            train_loss
        } else {
            let m = model.valid();
            let mut s = 0.0;
            for chunk in val.chunks(cfg.eval_batch_size) {
                s += scalar(loss(&m, chunk)) * chunk.len() as f64;
            }
            s / val.len() as f64
        };
        pos.train_loss.push(train_loss);
        if !val.is_empty() {
            pos.validation_loss.push(val_loss);
        }
        if val_loss < pos.best_loss {
            pos.best_loss = val_loss;
            pos.best_epoch = epoch;
            best = model.clone();
            pos.since_best = 0;
        } else {
            pos.since_best += 1;
        }
        pos.epoch += 1;
        pos.batch = 0;
        pb.set_position(pos.epoch as u64);
        pb.set_message(format!(
            "train {train_loss:.4}  validation {val_loss:.4}  best {:.4} (epoch {})",
            pos.best_loss,
            pos.best_epoch + 1
        ));
        stopped_early = !val.is_empty() && pos.since_best >= cfg.patience;
    }
    pb.finish_and_clear();
    let report = TrainReport {
        epochs: pos.epoch,
        best_epoch: pos.best_epoch,
        best_validation_loss: pos.best_loss,
        train_loss: pos.train_loss,
        validation_loss: pos.validation_loss,
        seconds: pos.seconds + start.elapsed().as_secs_f64(),
        n_train: train.len(),
        n_validation: val.len(),
    };
    Ok((best, report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::{const2, default_device, to_vec};
    use burn::module::Module;
    use burn::nn::{Linear, LinearConfig};

    /// Gradients of `sum(W x + b)` for a 2x3 linear layer: dW_ij = x_i, db_j = 1.
    fn grads_of(lin: &Linear, x: [f32; 2]) -> GradientsParams {
        let dev = lin.weight.val().device();
        let input = const2(x.to_vec(), [1, 2], &dev);
        let g = lin.forward(input).sum().backward();
        GradientsParams::from_grads(g, lin)
    }

    #[test]
    fn global_norm_clipping_rescales_all_parameters_together() {
        let dev = default_device().autodiff();
        let lin = LinearConfig::new(2, 3).init(&dev);
        // |g|^2 = 3 (x1^2 + x2^2) + 3 = 3 * 25 + 3 = 78.
        let mut grads = grads_of(&lin, [3.0, 4.0]);
        let norm = clip_global_norm(&lin, &mut grads, 1.0);
        assert!((norm - 78f64.sqrt()).abs() < 1e-4, "norm {norm}");
        let w = to_vec(grads.get::<2>(lin.weight.id).unwrap());
        let b = to_vec(grads.get::<1>(lin.bias.as_ref().unwrap().id).unwrap());
        let after: f64 = w.iter().chain(&b).map(|v| v * v).sum::<f64>().sqrt();
        assert!((after - 1.0).abs() < 1e-4, "clipped norm {after}");
        // Directions kept: bias entries equal, weight rows in ratio 3:4.
        let f = 1.0 / 78f64.sqrt();
        assert!((b[0] - f).abs() < 1e-5);
        assert!((w[0] - 3.0 * f).abs() < 1e-5 && (w[3] - 4.0 * f).abs() < 1e-5);
        // Below the threshold nothing changes.
        let mut grads = grads_of(&lin, [3.0, 4.0]);
        clip_global_norm(&lin, &mut grads, 100.0);
        let b = to_vec(grads.get::<1>(lin.bias.as_ref().unwrap().id).unwrap());
        assert!((b[0] - 1.0).abs() < 1e-6);
    }

    /// Least squares `y = 2 x + 1` with a 1x1 linear layer: the fitted
    /// weights approach (2, 1); the report's curves have one value per
    /// epoch, the validation curve only when there is a validation split,
    /// and the kept weights are those of the best epoch.
    #[test]
    fn fit_recovers_a_line_and_reports_honest_curves() {
        let dev = default_device();
        let xs: Vec<f32> = (0..64).map(|i| i as f32 / 32.0 - 1.0).collect();
        let ys: Vec<f32> = xs.iter().map(|x| 2.0 * x + 1.0).collect();
        for fraction in [0.0, 0.25] {
            let ad = dev.clone().autodiff();
            ad.seed(3);
            let lin = LinearConfig::new(1, 1).init(&ad);
            let cfg = TrainConfig {
                learning_rate: 0.05,
                batch_size: 16,
                max_epochs: 150,
                validation_fraction: fraction,
                patience: 1000,
                clip_norm: None,
                ..Default::default()
            };
            let (fitted, report) = fit(lin, xs.len(), &cfg, |m: &Linear, rows: &[usize]| {
                let d = m.weight.val().device();
                let x = const2(rows.iter().map(|&r| xs[r]).collect(), [rows.len(), 1], &d);
                let y = const2(rows.iter().map(|&r| ys[r]).collect(), [rows.len(), 1], &d);
                let r = m.forward(x) - y;
                (r.clone() * r).mean().reshape([1])
            })
            .unwrap();
            let w = to_vec(fitted.weight.val());
            let b = to_vec(fitted.bias.as_ref().unwrap().val());
            assert!(
                (w[0] - 2.0).abs() < 0.02 && (b[0] - 1.0).abs() < 0.02,
                "w {w:?} b {b:?}"
            );
            assert_eq!(report.epochs, 150);
            assert_eq!(report.train_loss.len(), 150);
            assert_eq!(report.n_validation, (fraction * 64.0) as usize);
            assert_eq!(report.n_train + report.n_validation, 64);
            let curve = if fraction > 0.0 {
                assert_eq!(report.validation_loss.len(), 150);
                &report.validation_loss
            } else {
                assert!(report.validation_loss.is_empty());
                &report.train_loss
            };
            let min = curve.iter().cloned().fold(f64::INFINITY, f64::min);
            assert_eq!(report.best_validation_loss, min);
            assert_eq!(curve[report.best_epoch], min);
            assert!(
                min < 1e-3 * report.train_loss[0],
                "loss {min} vs {}",
                report.train_loss[0]
            );
        }
    }

    #[derive(Module, Debug)]
    struct Mlp {
        a: Linear,
        b: Linear,
    }

    /// Gives every parameter a new id.
    struct NewIds;

    impl burn::module::ModuleMapper for NewIds {
        fn map_float<const D: usize>(&mut self, p: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let (_, t, _) = p.consume();
            Param::initialized(burn::module::ParamId::new(), t)
        }
    }

    static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

    /// An interrupted training (stopped mid-epoch by the flag, checkpoint
    /// written, restarted from a freshly initialised network whose
    /// parameter ids differ) ends with the same weights and curves, bit
    /// for bit, as an uninterrupted one: Adam and AdamW, global and
    /// per-tensor clipping, a loss with its own random stream. A
    /// checkpoint of other settings is refused.
    #[test]
    fn an_interrupted_training_resumes_to_the_same_weights() {
        use std::cell::{Cell, RefCell};
        use std::sync::atomic::Ordering;
        let dev = default_device();
        let xs: Vec<f32> = (0..50).map(|i| i as f32 / 25.0 - 1.0).collect();
        let ys: Vec<f32> = xs.iter().map(|x| (3.0 * x).sin()).collect();
        let dir = std::env::temp_dir().join(format!("cosmodiff-resume-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("training.ckpt");
        let write: std::sync::Arc<crate::resume::WriteFn> =
            std::sync::Arc::new(|p: &std::path::Path, b: &[u8]| std::fs::write(p, b));
        let ad = dev.clone().autodiff();
        let base = Mlp {
            a: LinearConfig::new(1, 16).init(&ad),
            b: LinearConfig::new(16, 1).init(&ad),
        };
        // `stop_at`: the loss call after which Ctrl-C arrives.
        let run = |cfg: &TrainConfig, stop_at: Option<usize>| {
            // the same initial weights under new parameter ids, as a
            // restarted process has
            let net = base.clone().map(&mut NewIds);
            let noise = RefCell::new(ChaCha8Rng::seed_from_u64(5));
            let calls = Cell::new(0usize);
            let out = fit_with_state(net, xs.len(), cfg, &noise, |m: &Mlp, rows: &[usize]| {
                calls.set(calls.get() + 1);
                if stop_at == Some(calls.get()) {
                    STOP.store(true, Ordering::SeqCst);
                }
                let d = m.a.weight.val().device();
                let mut rng = noise.borrow_mut();
                let x: Vec<f32> = rows
                    .iter()
                    .map(|&r| xs[r] + 0.01 * rand::RngExt::random::<f32>(&mut *rng))
                    .collect();
                let x = const2(x, [rows.len(), 1], &d);
                let y = const2(rows.iter().map(|&r| ys[r]).collect(), [rows.len(), 1], &d);
                let h = burn::tensor::activation::tanh(m.a.forward(x));
                let r = m.b.forward(h) - y;
                (r.clone() * r).mean().reshape([1])
            });
            STOP.store(false, Ordering::SeqCst);
            out.map(|(m, report)| {
                let mut w = to_vec(m.a.weight.val());
                w.extend(to_vec(m.b.weight.val()));
                w.extend(to_vec(m.b.bias.unwrap().val()));
                (w, report)
            })
        };
        for (weight_decay, per_tensor) in [(0.0, false), (0.01, true)] {
            let plain = TrainConfig {
                learning_rate: 0.02,
                batch_size: 8,
                max_epochs: 12,
                validation_fraction: 0.2,
                patience: 4,
                clip_norm: Some(0.5),
                clip_per_tensor: per_tensor,
                weight_decay,
                schedule: LrSchedule::Cosine {
                    final_fraction: 0.1,
                },
                ..Default::default()
            };
            let (w0, r0) = run(&plain, None).unwrap();
            let _ = std::fs::remove_file(&file);
            let resumable = TrainConfig {
                checkpoint: Some(
                    CheckpointSettings::new(&file, 1e9, write.clone()).with_stop(&STOP),
                ),
                ..plain.clone()
            };
            // 5 batches per epoch: stopped in the middle of the third epoch,
            // then at the end of the fifth, then run to the end
            match run(&resumable, Some(13)) {
                Err(NnError::Interrupted { epoch: 3, .. }) => {}
                other => panic!("expected an interruption, got {:?}", other.map(|r| r.1)),
            }
            assert!(file.is_file());
            assert!(matches!(
                run(&resumable, Some(12)),
                Err(NnError::Interrupted { epoch: 5, .. })
            ));
            let (w1, r1) = run(&resumable, None).unwrap();
            assert_eq!(w0, w1, "weights differ after resuming");
            assert_eq!(r0.train_loss, r1.train_loss);
            assert_eq!(r0.validation_loss, r1.validation_loss);
            assert_eq!((r0.epochs, r0.best_epoch), (r1.epochs, r1.best_epoch));
            // a checkpoint of other settings is not continued
            run(&resumable, Some(2)).unwrap_err();
            let other = TrainConfig {
                learning_rate: 0.03,
                ..resumable.clone()
            };
            match run(&other, None) {
                Err(NnError::Checkpoint { msg, .. }) => {
                    assert!(msg.contains("another training"), "{msg}")
                }
                r => panic!("expected a refused checkpoint, got {:?}", r.map(|r| r.1)),
            }
            std::fs::remove_file(&file).unwrap();
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
