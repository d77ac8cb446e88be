//! The No-U-Turn Sampler through the [`nuts_rs`] crate.
//!
//! NUTS (Hoffman & Gelman 2014, JMLR 15, 1593) builds a trajectory of
//! leapfrog steps by repeated doubling until the U-turn criterion
//! `p^- . M^{-1}(theta^+ - theta^-) < 0` (here in its generalised form,
//! Betancourt 2017, arXiv:1701.02434, sec. A.4.2) is met, and samples a
//! point from it with multinomial weights `exp(-H)`. `nuts-rs` implements
//! this as in Stan/PyMC; its warmup adapts
//! - the step size by dual averaging (Hoffman & Gelman 2014, sec. 3.2)
//!   towards a target acceptance statistic (default 0.8), and
//! - a diagonal mass matrix in windows that grow during warmup, estimated
//!   from the variances of draws *and* gradients,
//!   `M^{-1}_ii = sqrt(Var[x_i] / Var[d log p/dx_i])` (the nutpie scheme,
//!   exact for Gaussian targets), with a final step-size-only window.
//!
//! Every chain runs on its own thread (rayon) with a ChaCha8 generator
//! seeded from [`crate::runner::chain_seed`]`(seed, chain)`, so results do not
//! depend on the number of threads.

use crate::density::LogDensity;
use crate::error::InferError;
use crate::runner::{self, ChainOutput, Eval, Problems};
use crate::samples::Samples;
use nuts_rs::{
    Chain, CpuLogpFunc, CpuMath, CpuMathError, DiagNutsSettings, HasDims, LogpError,
    LowRankNutsSettings, Settings,
};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// Settings of [`run_nuts`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct NutsSettings {
    /// Number of chains (run in parallel).
    pub chains: usize,
    /// Warmup (adaptation) iterations per chain, discarded.
    pub warmup: usize,
    /// Post-warmup draws per chain.
    pub draws: usize,
    /// Seed of the whole run; chain seeds are derived from it.
    pub seed: u64,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// Maximum tree depth (at most `2^max_depth - 1` leapfrog steps).
    pub max_depth: u64,
    /// Target of the step-size adaptation (mean acceptance statistic).
    pub target_accept: f64,
    /// Optional starting point in *constrained* parameters (all chains);
    /// default: the origin of the unconstrained space (e.g. prior midpoints).
    pub init: Option<Vec<f64>>,
    /// Chains start at `unconstrain(init) + U(-r, r)` per coordinate (Stan's 2).
    pub init_radius: f64,
    /// Random starting points tried per chain before giving up.
    pub max_init_tries: usize,
    /// Mass-matrix adaptation.
    pub mass_matrix: MassMatrix,
    /// Store only the first `keep` constrained coordinates of each draw
    /// (e.g. the cosmological parameters of a field-level posterior whose
    /// latent field has 10^5 dimensions); `None` stores all.
    pub keep: Option<usize>,
    /// Exact starting points per chain in the *sampling* (unconstrained)
    /// space, e.g. the last positions of an interrupted run; overrides
    /// `init` and `init_radius`.
    #[serde(skip)]
    pub start: Option<Vec<Vec<f64>>>,
    /// A flag that, once set (e.g. by a Ctrl-C handler), stops every chain
    /// after its current iteration with [`InferError::Interrupted`]; the
    /// observer has seen every iteration before it, so a checkpoint can be
    /// written from what it kept.
    #[serde(skip)]
    pub stop: Option<&'static AtomicBool>,
}

/// Called after every iteration of every chain with the chain index, the
/// position in sampling space, and (after warm-up) the stored draw and
/// whether it diverged: the hook for checkpoints.
pub type Observer<'a> = &'a (dyn Fn(usize, &[f64], Option<(&[f64], bool)>) + Sync);

/// Mass-matrix adaptation of [`run_nuts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MassMatrix {
    /// Windowed diagonal mass matrix from draw and gradient variances.
    Diag,
    /// nuts-rs' diagonal plus low-rank mass matrix: the diagonal above
    /// corrected along the eigenvectors of the (draw, gradient) covariance
    /// whose eigenvalues leave `[1/2, 2]`; captures strong linear
    /// correlations such as the `sigma8`-`Omega_m` degeneracy.
    LowRank,
    /// `LowRank` up to [`AUTO_LOW_RANK_MAX_DIM`] parameters, `Diag` above.
    Auto,
}

/// Largest dimension for which [`MassMatrix::Auto`] picks the low-rank
/// adaptation.
pub const AUTO_LOW_RANK_MAX_DIM: usize = 20;

impl Default for NutsSettings {
    fn default() -> Self {
        Self {
            chains: 4,
            warmup: 500,
            draws: 1000,
            seed: 0,
            progress: true,
            max_depth: 10,
            target_accept: 0.8,
            init: None,
            init_radius: 2.0,
            max_init_tries: 100,
            mass_matrix: MassMatrix::Auto,
            keep: None,
            start: None,
            stop: None,
        }
    }
}

impl NutsSettings {
    fn validate(&self) -> Result<(), InferError> {
        if self.chains == 0 || self.draws == 0 {
            return Err(InferError::Settings(
                "need at least one chain and one draw".into(),
            ));
        }
        if !(self.target_accept > 0.0 && self.target_accept < 1.0) {
            return Err(InferError::Settings(format!(
                "target_accept = {} not in (0, 1)",
                self.target_accept
            )));
        }
        if self.max_depth == 0 || self.max_depth > 30 {
            return Err(InferError::Settings(format!(
                "max_depth = {} not in 1..=30",
                self.max_depth
            )));
        }
        Ok(())
    }
}

/// Error passed to nuts-rs when an evaluation fails.
#[derive(Debug, thiserror::Error)]
#[error("{msg}")]
struct AdapterError {
    msg: String,
    recoverable: bool,
}

impl LogpError for AdapterError {
    fn is_recoverable(&self) -> bool {
        self.recoverable
    }
}

/// Bridges a [`LogDensity`] to nuts-rs' `CpuLogpFunc`.
struct Adapter<'a, D: LogDensity + ?Sized> {
    density: &'a D,
    dim: usize,
    problems: &'a Problems,
}

impl<D: LogDensity + ?Sized> HasDims for Adapter<'_, D> {
    fn dim_sizes(&self) -> HashMap<String, u64> {
        HashMap::from([
            ("unconstrained_parameter".to_string(), self.dim as u64),
            ("dim".to_string(), self.dim as u64),
        ])
    }
}

impl<D: LogDensity + ?Sized> CpuLogpFunc for Adapter<'_, D> {
    type LogpError = AdapterError;
    type FlowParameters = ();
    type ExpandedVector = Vec<f64>;

    fn dim(&self) -> usize {
        self.dim
    }

    fn logp(&mut self, position: &[f64], gradient: &mut [f64]) -> Result<f64, AdapterError> {
        match runner::guarded(self.density, position, gradient) {
            Eval::Ok(v) => Ok(v),
            Eval::Bad(msg) => {
                self.problems.record(&msg);
                Err(AdapterError {
                    msg,
                    recoverable: true,
                })
            }
            Eval::Fatal(msg) => {
                self.problems.record_fatal(&msg);
                Err(AdapterError {
                    msg,
                    recoverable: false,
                })
            }
        }
    }

    fn expand_vector<R: rand::Rng + ?Sized>(
        &mut self,
        _rng: &mut R,
        array: &[f64],
    ) -> Result<Vec<f64>, CpuMathError> {
        Ok(array.to_vec())
    }
}

/// Run NUTS on `density` (in its sampling space; draws are reported
/// through [`LogDensity::constrain`]).
///
/// Errors: invalid settings, no finite starting point
/// ([`InferError::Init`]), an unrecoverable density error
/// ([`InferError::Density`]) or an internal sampler failure. Recoverable
/// failures and non-finite values inside trajectories are divergences,
/// counted in [`Samples::divergences`] and listed in `Samples::warnings`.
pub fn run_nuts<D>(density: &D, settings: &NutsSettings) -> Result<Samples, InferError>
where
    D: LogDensity + Sync + ?Sized,
{
    let start = Instant::now();
    let outputs = run_nuts_chains(density, settings, &|_, _, _| {})?;
    let kept = settings.keep.unwrap_or(density.dim()).min(density.dim());
    let mut names = density.names();
    names.truncate(kept);
    Samples::from_chains(
        names,
        kept,
        outputs,
        "nuts",
        settings.warmup,
        settings.seed,
        start.elapsed().as_secs_f64(),
    )
}

/// [`run_nuts`] returning the per-chain outputs, with an [`Observer`]
/// called after every iteration (for checkpoints that outlive the process).
pub fn run_nuts_chains<D>(
    density: &D,
    settings: &NutsSettings,
    observer: Observer<'_>,
) -> Result<Vec<ChainOutput>, InferError>
where
    D: LogDensity + Sync + ?Sized,
{
    settings.validate()?;
    let dim = density.dim();
    if dim == 0 {
        return Err(InferError::Dim("density has no parameters".into()));
    }
    let kept = settings.keep.unwrap_or(dim).min(dim);
    if kept == 0 {
        return Err(InferError::Settings("keep = 0: nothing to store".into()));
    }
    runner::check_run_size(settings.chains, settings.warmup, settings.draws, kept)?;
    let base = runner::init_base(density, settings.init.as_deref())?;
    let total = (settings.chains * (settings.warmup + settings.draws)) as u64;
    let pb = runner::progress_bar(total, settings.progress, "NUTS");
    let divergences = AtomicU64::new(0);
    let abort = AtomicBool::new(false);
    if let Some(st) = &settings.start {
        if st.len() != settings.chains || st.iter().any(|p| p.len() != dim) {
            return Err(InferError::Dim(format!(
                "start: need {} positions of {dim} values",
                settings.chains
            )));
        }
    }

    let outputs: Vec<Result<ChainOutput, InferError>> = (0..settings.chains)
        .into_par_iter()
        .map(|c| {
            let r = run_chain(
                density,
                settings,
                &base,
                c,
                &pb,
                &divergences,
                &abort,
                observer,
            );
            if r.is_err() {
                abort.store(true, Ordering::Relaxed);
            }
            r
        })
        .collect();
    pb.finish_and_clear();
    runner::collect_chains(outputs)
}

// The nuts-rs settings are filled field by field inside `drive!`.
#[allow(clippy::field_reassign_with_default, clippy::too_many_arguments)]
fn run_chain<D>(
    density: &D,
    settings: &NutsSettings,
    base: &[f64],
    c: usize,
    pb: &indicatif::ProgressBar,
    divergences: &AtomicU64,
    abort: &AtomicBool,
    observer: Observer<'_>,
) -> Result<ChainOutput, InferError>
where
    D: LogDensity + ?Sized,
{
    let dim = density.dim();
    let mut rng = runner::chain_rng(settings.seed, c);
    let y0 = match &settings.start {
        Some(st) => st[c].clone(),
        None => runner::find_init(
            density,
            base,
            settings.init_radius,
            settings.max_init_tries,
            c,
            &mut rng,
        )?,
    };

    let problems = Problems::default();
    let sampler_err = |e: anyhow::Error, problems: &Problems| -> InferError {
        if let Some(m) = problems.fatal.lock().unwrap().clone() {
            InferError::Density(m)
        } else {
            InferError::Sampler {
                chain: c,
                msg: format!("{e:#}"),
            }
        }
    };
    let n = settings.draws;
    let mut out = ChainOutput {
        draws: Vec::with_capacity(n * settings.keep.unwrap_or(dim).min(dim)),
        diverging: Vec::with_capacity(n),
        step_size: Vec::with_capacity(n),
        tree_depth: Vec::with_capacity(n),
        n_leapfrog: Vec::with_capacity(n),
        energy: Vec::with_capacity(n),
        logp: Vec::with_capacity(n),
        ..Default::default()
    };

    // The chain types of the two mass-matrix variants differ, so the loop is
    // written once as a macro over the concrete settings value.
    macro_rules! drive {
        ($ns:expr) => {{
            let mut ns = $ns;
            ns.num_tune = settings.warmup as u64;
            ns.num_draws = settings.draws as u64;
            ns.num_chains = settings.chains;
            ns.seed = runner::chain_seed(settings.seed, c);
            ns.maxdepth = settings.max_depth;
            ns.adapt_options.step_size_settings.target_accept = settings.target_accept;
            let adapter = Adapter {
                density,
                dim,
                problems: &problems,
            };
            let mut chain = ns
                .new_chain(c as u64, CpuMath::new(adapter), &mut rng)
                .map_err(|e| sampler_err(e, &problems))?;
            chain
                .set_position(&y0)
                .map_err(|e| sampler_err(e, &problems))?;
            for it in 0..settings.warmup + settings.draws {
                if settings.stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
                    return Err(InferError::Interrupted);
                }
                if abort.load(Ordering::Relaxed) {
                    return Err(InferError::Sampler {
                        chain: c,
                        msg: runner::ABORTED.into(),
                    });
                }
                let (position, _expanded, stats, progress) = chain
                    .expanded_draw()
                    .map_err(|e| sampler_err(e, &problems))?;
                if progress.diverging {
                    let k = divergences.fetch_add(1, Ordering::Relaxed) + 1;
                    pb.set_message(format!("{k} divergent"));
                }
                pb.inc(1);
                if it < settings.warmup {
                    if progress.diverging {
                        out.warmup_divergences += 1;
                    }
                    observer(c, &position, None);
                    continue;
                }
                let x = density.constrain(&position);
                let kept = &x[..settings.keep.unwrap_or(dim).min(dim)];
                observer(c, &position, Some((kept, progress.diverging)));
                out.draws.extend_from_slice(kept);
                out.diverging.push(progress.diverging);
                out.step_size.push(stats.hamiltonian.step_size);
                out.tree_depth.push(stats.depth);
                out.n_leapfrog.push(progress.num_steps);
                out.energy.push(stats.point.energy);
                out.logp.push(stats.point.logp);
                // Mean Metropolis acceptance over the draw's trajectory tree.
                out.accept.push(stats.adapt.step_size.mean_tree_accept);
            }
        }};
    }
    let low_rank = match settings.mass_matrix {
        MassMatrix::Diag => false,
        MassMatrix::LowRank => true,
        MassMatrix::Auto => dim <= AUTO_LOW_RANK_MAX_DIM,
    };
    if low_rank {
        drive!(LowRankNutsSettings::default())
    } else {
        drive!(DiagNutsSettings::default())
    }
    out.failed_evaluations = problems.failed.load(Ordering::Relaxed);
    out.first_problem = problems.first.lock().unwrap().clone();
    Ok(out)
}
