//! Pieces shared by the NUTS and HMC drivers: per-chain seeds, random
//! initialisation, guarded density evaluation, progress bars and the
//! per-chain output buffers.

use crate::density::LogDensity;
use crate::error::InferError;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::{rngs::ChaCha8Rng, RngExt, SeedableRng};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// SplitMix64 finaliser (Steele, Lea & Flood 2014).
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Seed of chain `chain` derived from the run seed: distinct, reproducible
/// and independent of how many chains run or in which order.
pub fn chain_seed(seed: u64, chain: usize) -> u64 {
    splitmix64(splitmix64(seed) ^ splitmix64(0xC0FFEE ^ chain as u64))
}

/// Most values the draws of one run may hold (1 GiB of f64).
const MAX_DRAW_VALUES: usize = 1 << 27;

/// Refuse a run whose size would exhaust memory before it starts:
/// `chains` at most 4096, `chains * draws * dim` values at most 2^27
/// (1 GiB), `chains * (warmup + draws)` iterations representable.
pub fn check_run_size(
    chains: usize,
    warmup: usize,
    draws: usize,
    dim: usize,
) -> Result<(), InferError> {
    if chains > 4096 {
        return Err(InferError::Settings(format!(
            "chains = {chains}: at most 4096"
        )));
    }
    let values = chains
        .checked_mul(draws)
        .and_then(|v| v.checked_mul(dim))
        .filter(|&v| v <= MAX_DRAW_VALUES);
    let iterations = warmup
        .checked_add(draws)
        .and_then(|v| v.checked_mul(chains));
    if values.is_none() || iterations.is_none() {
        return Err(InferError::Settings(format!(
            "{chains} chains x {draws} draws x {dim} parameters is more than {MAX_DRAW_VALUES} values (1 GiB); use fewer chains or draws"
        )));
    }
    Ok(())
}

/// Random number generator of one chain.
pub fn chain_rng(seed: u64, chain: usize) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(chain_seed(seed, chain))
}

/// Outcome of one guarded evaluation.
pub enum Eval {
    Ok(f64),
    /// Err (recoverable), NaN/inf value or non-finite gradient; message.
    Bad(String),
    /// An error the density declared unrecoverable.
    Fatal(String),
}

/// Evaluate `d` and turn errors and non-finite results into [`Eval::Bad`].
pub fn guarded<D: LogDensity + ?Sized>(d: &D, x: &[f64], grad: &mut [f64]) -> Eval {
    match d.logp_and_grad(x, grad) {
        Ok(v) if v.is_finite() => {
            if grad.iter().all(|g| g.is_finite()) {
                Eval::Ok(v)
            } else {
                Eval::Bad("non-finite gradient".into())
            }
        }
        Ok(v) => Eval::Bad(format!("non-finite log density ({v})")),
        Err(e) => {
            if d.is_recoverable(&e) {
                Eval::Bad(format!("evaluation failed: {e}"))
            } else {
                Eval::Fatal(e.to_string())
            }
        }
    }
}

/// Shared counters of failed evaluations of one chain.
#[derive(Default)]
pub struct Problems {
    pub failed: AtomicU64,
    pub first: Mutex<Option<String>>,
    pub fatal: Mutex<Option<String>>,
}

impl Problems {
    pub fn record(&self, msg: &str) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut f = self.first.lock().unwrap();
        if f.is_none() {
            *f = Some(msg.to_string());
        }
    }
    pub fn record_fatal(&self, msg: &str) {
        let mut f = self.fatal.lock().unwrap();
        if f.is_none() {
            *f = Some(msg.to_string());
        }
    }
}

/// Find a starting point `y = base + U(-r, r)^dim` with finite log density
/// and gradient.
pub fn find_init<D: LogDensity + ?Sized>(
    d: &D,
    base: &[f64],
    radius: f64,
    tries: usize,
    chain: usize,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<f64>, InferError> {
    let dim = base.len();
    let mut grad = vec![0.0; dim];
    let mut last = String::from("no attempt");
    for _ in 0..tries.max(1) {
        let y: Vec<f64> = base
            .iter()
            .map(|b| {
                if radius > 0.0 {
                    b + rng.random_range(-radius..radius)
                } else {
                    *b
                }
            })
            .collect();
        match guarded(d, &y, &mut grad) {
            Eval::Ok(_) => return Ok(y),
            Eval::Bad(m) => last = m,
            Eval::Fatal(m) => return Err(InferError::Density(m)),
        }
        if radius <= 0.0 {
            break;
        }
    }
    Err(InferError::Init { chain, tries, last })
}

/// Base point of the initialisation in sampling space.
pub fn init_base<D: LogDensity + ?Sized>(
    d: &D,
    init: Option<&[f64]>,
) -> Result<Vec<f64>, InferError> {
    match init {
        None => Ok(vec![0.0; d.dim()]),
        Some(x) => {
            if x.len() != d.dim() {
                return Err(InferError::Dim(format!(
                    "init has {} values, density has {} parameters",
                    x.len(),
                    d.dim()
                )));
            }
            d.unconstrain(x)
        }
    }
}

/// A progress bar over all chains' iterations (hidden when `show` is false).
pub fn progress_bar(total: u64, show: bool, label: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr_with_hz(5));
    let style = ProgressStyle::with_template(&format!(
        "{label} {{bar:40.cyan/blue}} {{pos}}/{{len}} [{{elapsed_precise}}<{{eta_precise}}, {{per_sec}}] {{msg}}"
    ))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    pb.set_style(style);
    pb
}

/// Post-warmup output of one chain.
#[derive(Debug, Clone, Default)]
pub struct ChainOutput {
    /// Constrained draws, `draws * dim`, row-major.
    pub draws: Vec<f64>,
    pub diverging: Vec<bool>,
    pub step_size: Vec<f64>,
    pub tree_depth: Vec<u64>,
    pub n_leapfrog: Vec<u64>,
    pub energy: Vec<f64>,
    pub logp: Vec<f64>,
    pub accept: Vec<f64>,
    pub warmup_divergences: usize,
    pub failed_evaluations: u64,
    pub first_problem: Option<String>,
}

/// Message of the error a chain returns when it stops because another
/// chain failed.
pub const ABORTED: &str = "stopped because another chain failed";

/// The error of a set of chains: the first real failure, ignoring chains
/// that only stopped because of it.
pub fn first_error(errors: Vec<InferError>) -> Option<InferError> {
    let mut fallback = None;
    for e in errors {
        match &e {
            InferError::Sampler { msg, .. } if msg == ABORTED => fallback = fallback.or(Some(e)),
            _ => return Some(e),
        }
    }
    fallback
}

/// Collect per-chain results: all outputs, or the first real error.
pub fn collect_chains(
    results: Vec<Result<ChainOutput, InferError>>,
) -> Result<Vec<ChainOutput>, InferError> {
    let mut ok = vec![];
    let mut errs = vec![];
    for r in results {
        match r {
            Ok(o) => ok.push(o),
            Err(e) => errs.push(e),
        }
    }
    match first_error(errs) {
        Some(e) => Err(e),
        None => Ok(ok),
    }
}
