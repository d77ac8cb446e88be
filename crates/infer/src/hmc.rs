//! Plain Hamiltonian Monte Carlo with a fixed integration time (Duane et al.
//! 1987; Neal 2011, "MCMC using Hamiltonian dynamics"; Betancourt 2017).
//!
//! Each transition draws `p ~ N(0, M)`, integrates Hamilton's equations for
//! `H(x, p) = -log p(x) + p^T M^{-1} p / 2` with `L = max(1, round(T/eps))`
//! leapfrog steps
//! `p <- p + eps/2 grad; x <- x + eps M^{-1} p; p <- p + eps/2 grad`,
//! and accepts the end point with probability `min(1, exp(H_0 - H_L))`.
//! A trajectory whose energy error exceeds 1000 or whose density fails /
//! becomes non-finite is rejected and flagged divergent.
//!
//! Warmup adapts
//! - the step size by the dual averaging of Hoffman & Gelman (2014,
//!   Algorithm 5; `gamma = 0.05, t0 = 10, kappa = 0.75`, `mu = ln(10 eps_0)`,
//!   `eps_0` from their Algorithm 4), towards `target_accept`;
//! - a diagonal mass matrix `M^{-1} = diag(Var[x])` in Stan's windows
//!   (initial buffer 75, slow windows 25, 50, 100, ..., final buffer 50;
//!   scaled down for short warmups), regularised as
//!   `n/(n+5) Var + 1e-3 * 5/(n+5)`; the dual averaging restarts after each
//!   window.

use crate::density::LogDensity;
use crate::error::InferError;
use crate::runner::{self, ChainOutput, Eval};
use crate::samples::Samples;
use rand::RngExt;
use rand_distr::StandardNormal;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Settings of [`run_hmc`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct HmcSettings {
    pub chains: usize,
    pub warmup: usize,
    pub draws: usize,
    pub seed: u64,
    pub progress: bool,
    /// Integration time `T = L eps` of every trajectory.
    pub path_length: f64,
    /// Upper bound on leapfrog steps per trajectory.
    pub max_steps: usize,
    /// After warmup each transition uses `eps * U(1 - j, 1 + j)` with the
    /// step count fixed by the un-jittered `eps`, so the integration time
    /// varies by +-j around `path_length`. This breaks the near-periodic
    /// orbits a fixed `T` produces for directions with frequency close to
    /// `2 pi k / T` (Neal 2011, sec. 5.4.2.2). 0 disables it.
    pub jitter: f64,
    /// Target Metropolis acceptance probability of the step-size adaptation.
    pub target_accept: f64,
    /// Adapt a diagonal mass matrix during warmup.
    pub adapt_mass_matrix: bool,
    /// Optional starting point in constrained parameters.
    pub init: Option<Vec<f64>>,
    pub init_radius: f64,
    pub max_init_tries: usize,
}

impl Default for HmcSettings {
    fn default() -> Self {
        Self {
            chains: 4,
            warmup: 500,
            draws: 1000,
            seed: 0,
            progress: true,
            path_length: 1.5,
            max_steps: 1024,
            jitter: 0.2,
            target_accept: 0.8,
            adapt_mass_matrix: true,
            init: None,
            init_radius: 2.0,
            max_init_tries: 100,
        }
    }
}

/// Dual-averaging step-size adaptation (Hoffman & Gelman 2014, sec. 3.2).
#[derive(Debug, Clone)]
pub struct DualAveraging {
    mu: f64,
    h_bar: f64,
    log_eps_bar: f64,
    m: f64,
    target: f64,
}

impl DualAveraging {
    const GAMMA: f64 = 0.05;
    const T0: f64 = 10.0;
    const KAPPA: f64 = 0.75;

    pub fn new(eps0: f64, target: f64) -> Self {
        Self {
            mu: (10.0 * eps0).ln(),
            h_bar: 0.0,
            log_eps_bar: 0.0,
            m: 0.0,
            target,
        }
    }

    /// Update with the acceptance statistic of the last transition; returns
    /// the step size for the next one.
    pub fn update(&mut self, accept: f64) -> f64 {
        self.m += 1.0;
        let w = 1.0 / (self.m + Self::T0);
        self.h_bar = (1.0 - w) * self.h_bar + w * (self.target - accept);
        let log_eps = self.mu - self.m.sqrt() / Self::GAMMA * self.h_bar;
        let eta = self.m.powf(-Self::KAPPA);
        self.log_eps_bar = eta * log_eps + (1.0 - eta) * self.log_eps_bar;
        log_eps.exp()
    }

    /// The averaged step size `eps_bar`, used after warmup.
    pub fn final_step(&self) -> f64 {
        self.log_eps_bar.exp()
    }
}

/// End iterations (exclusive) of Stan's slow mass-matrix windows.
fn window_ends(warmup: usize) -> Vec<usize> {
    if warmup < 20 {
        return vec![];
    }
    let (init, term, base) = if warmup < 75 + 50 + 25 {
        (
            (0.15 * warmup as f64) as usize,
            (0.1 * warmup as f64) as usize,
            0,
        )
    } else {
        (75, 50, 25)
    };
    let end_slow = warmup - term;
    let base = if base == 0 { end_slow - init } else { base };
    let mut ends = vec![];
    let mut start = init;
    let mut size = base;
    while start < end_slow {
        let mut end = start + size;
        // Stretch the last window to the end of the slow phase.
        if end + 2 * size > end_slow {
            end = end_slow;
        }
        ends.push(end);
        start = end;
        size *= 2;
    }
    ends
}

struct State {
    x: Vec<f64>,
    grad: Vec<f64>,
    logp: f64,
}

enum Trajectory {
    Done {
        x: Vec<f64>,
        grad: Vec<f64>,
        logp: f64,
        h: f64,
    },
    Diverged(Option<String>),
    Fatal(String),
}

#[allow(clippy::too_many_arguments)]
fn leapfrog_trajectory<D: LogDensity + ?Sized>(
    d: &D,
    s: &State,
    p: &mut [f64],
    minv: &[f64],
    eps: f64,
    steps: usize,
    h0: f64,
) -> Trajectory {
    let mut x = s.x.clone();
    let mut g = s.grad.clone();
    let mut logp = s.logp;
    for _ in 0..steps {
        for i in 0..x.len() {
            p[i] += 0.5 * eps * g[i];
            x[i] += eps * minv[i] * p[i];
        }
        match runner::guarded(d, &x, &mut g) {
            Eval::Ok(v) => logp = v,
            Eval::Bad(m) => return Trajectory::Diverged(Some(m)),
            Eval::Fatal(m) => return Trajectory::Fatal(m),
        }
        for i in 0..x.len() {
            p[i] += 0.5 * eps * g[i];
        }
    }
    let h = -logp + 0.5 * p.iter().zip(minv).map(|(pi, mi)| pi * pi * mi).sum::<f64>();
    if !h.is_finite() || h - h0 > 1000.0 {
        return Trajectory::Diverged(None);
    }
    Trajectory::Done {
        x,
        grad: g,
        logp,
        h,
    }
}

fn kinetic(p: &[f64], minv: &[f64]) -> f64 {
    0.5 * p.iter().zip(minv).map(|(pi, mi)| pi * pi * mi).sum::<f64>()
}

/// Run plain HMC with fixed integration time on `density`.
pub fn run_hmc<D>(density: &D, settings: &HmcSettings) -> Result<Samples, InferError>
where
    D: LogDensity + Sync + ?Sized,
{
    if settings.chains == 0 || settings.draws == 0 {
        return Err(InferError::Settings(
            "need at least one chain and one draw".into(),
        ));
    }
    if !(0.0..1.0).contains(&settings.jitter) {
        return Err(InferError::Settings(format!(
            "jitter = {} not in [0, 1)",
            settings.jitter
        )));
    }
    if !(settings.path_length > 0.0) || settings.max_steps == 0 {
        return Err(InferError::Settings(
            "path_length and max_steps must be positive".into(),
        ));
    }
    if !(settings.target_accept > 0.0 && settings.target_accept < 1.0) {
        return Err(InferError::Settings(
            "target_accept must be in (0, 1)".into(),
        ));
    }
    let dim = density.dim();
    if dim == 0 {
        return Err(InferError::Dim("density has no parameters".into()));
    }
    runner::check_run_size(settings.chains, settings.warmup, settings.draws, dim)?;
    let base = runner::init_base(density, settings.init.as_deref())?;
    let total = (settings.chains * (settings.warmup + settings.draws)) as u64;
    let pb = runner::progress_bar(total, settings.progress, "HMC");
    let start = Instant::now();
    let abort = AtomicBool::new(false);
    let outputs: Vec<Result<ChainOutput, InferError>> = (0..settings.chains)
        .into_par_iter()
        .map(|c| {
            let r = hmc_chain(density, settings, &base, c, &pb, &abort);
            if r.is_err() {
                abort.store(true, Ordering::Relaxed);
            }
            r
        })
        .collect();
    pb.finish_and_clear();
    let outputs = runner::collect_chains(outputs)?;
    Samples::from_chains(
        density.names(),
        dim,
        outputs,
        "hmc",
        settings.warmup,
        settings.seed,
        start.elapsed().as_secs_f64(),
    )
}

fn hmc_chain<D: LogDensity + ?Sized>(
    d: &D,
    st: &HmcSettings,
    base: &[f64],
    c: usize,
    pb: &indicatif::ProgressBar,
    abort: &AtomicBool,
) -> Result<ChainOutput, InferError> {
    let dim = d.dim();
    let mut rng = runner::chain_rng(st.seed, c);
    let x0 = runner::find_init(d, base, st.init_radius, st.max_init_tries, c, &mut rng)?;
    let mut grad = vec![0.0; dim];
    let logp = match runner::guarded(d, &x0, &mut grad) {
        Eval::Ok(v) => v,
        Eval::Bad(m) | Eval::Fatal(m) => return Err(InferError::Density(m)),
    };
    let mut s = State { x: x0, grad, logp };
    let mut minv = vec![1.0; dim];
    let mut out = ChainOutput::default();
    let mut failed = 0u64;
    let mut first_problem: Option<String> = None;

    // One transition; returns (accept prob, diverged, energy, steps).
    let mut transition = |s: &mut State,
                          minv: &[f64],
                          eps: f64,
                          jitter: f64,
                          rng: &mut rand::rngs::ChaCha8Rng|
     -> Result<(f64, bool, f64, usize), InferError> {
        let steps = ((st.path_length / eps).round() as usize).clamp(1, st.max_steps);
        let eps = if jitter > 0.0 {
            eps * rng.random_range(1.0 - jitter..1.0 + jitter)
        } else {
            eps
        };
        let mut p: Vec<f64> = minv
            .iter()
            .map(|mi| rng.sample::<f64, _>(StandardNormal) / mi.sqrt())
            .collect();
        let h0 = -s.logp + kinetic(&p, minv);
        match leapfrog_trajectory(d, s, &mut p, minv, eps, steps, h0) {
            Trajectory::Done { x, grad, logp, h } => {
                let a = (h0 - h).exp().min(1.0);
                let a = if a.is_nan() { 0.0 } else { a };
                let u: f64 = rng.random();
                if u < a {
                    *s = State { x, grad, logp };
                    Ok((a, false, h, steps))
                } else {
                    Ok((a, false, h0, steps))
                }
            }
            Trajectory::Diverged(msg) => {
                if let Some(m) = msg {
                    failed += 1;
                    first_problem.get_or_insert(m);
                }
                Ok((0.0, true, h0, steps))
            }
            Trajectory::Fatal(m) => Err(InferError::Density(m)),
        }
    };

    // Initial step size: Hoffman & Gelman (2014) Algorithm 4.
    let mut eps = {
        let mut eps: f64 = 1.0;
        let accept = |eps: f64, rng: &mut rand::rngs::ChaCha8Rng| -> f64 {
            let mut p: Vec<f64> = (0..dim)
                .map(|_| rng.sample::<f64, _>(StandardNormal))
                .collect();
            let h0 = -s.logp + kinetic(&p, &minv);
            match leapfrog_trajectory(d, &s, &mut p, &minv, eps, 1, h0) {
                Trajectory::Done { h, .. } => (h0 - h).exp().min(1.0),
                _ => 0.0,
            }
        };
        let a0 = accept(eps, &mut rng);
        let dir = if a0 > 0.5 { 1.0 } else { -1.0 };
        for _ in 0..100 {
            let a = accept(eps, &mut rng);
            if (dir > 0.0 && a <= 0.5) || (dir < 0.0 && a > 0.5) {
                break;
            }
            eps *= 2f64.powf(dir);
        }
        eps
    };
    let ends = if st.adapt_mass_matrix {
        window_ends(st.warmup)
    } else {
        vec![]
    };
    let mut window_start = ends
        .first()
        .map(|_| {
            if st.warmup < 150 {
                (0.15 * st.warmup as f64) as usize
            } else {
                75
            }
        })
        .unwrap_or(0);
    let mut next_end = 0usize;
    let mut da = DualAveraging::new(eps, st.target_accept);
    let mut win_draws: Vec<Vec<f64>> = vec![];

    for it in 0..st.warmup + st.draws {
        if abort.load(Ordering::Relaxed) {
            return Err(InferError::Sampler {
                chain: c,
                msg: runner::ABORTED.into(),
            });
        }
        let jitter = if it < st.warmup { 0.0 } else { st.jitter };
        let (a, div, h, steps) = transition(&mut s, &minv, eps, jitter, &mut rng)?;
        pb.inc(1);
        if it < st.warmup {
            if div {
                out.warmup_divergences += 1;
            }
            eps = da.update(a);
            if it >= window_start && next_end < ends.len() {
                win_draws.push(s.x.clone());
                if it + 1 == ends[next_end] {
                    let n = win_draws.len() as f64;
                    for k in 0..dim {
                        let m = win_draws.iter().map(|v| v[k]).sum::<f64>() / n;
                        let var = win_draws.iter().map(|v| (v[k] - m).powi(2)).sum::<f64>()
                            / (n - 1.0).max(1.0);
                        minv[k] = (n / (n + 5.0)) * var + 1e-3 * (5.0 / (n + 5.0));
                    }
                    win_draws.clear();
                    window_start = it + 1;
                    next_end += 1;
                    da = DualAveraging::new(eps, st.target_accept);
                }
            }
            if it + 1 == st.warmup {
                eps = da.final_step();
            }
            continue;
        }
        out.draws.extend(d.constrain(&s.x));
        out.diverging.push(div);
        out.step_size.push(eps);
        out.tree_depth.push(0);
        out.n_leapfrog.push(steps as u64);
        out.energy.push(h);
        out.logp.push(s.logp);
        out.accept.push(a);
    }
    out.failed_evaluations = failed;
    out.first_problem = first_problem;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stan_windows() {
        assert_eq!(window_ends(1000), vec![100, 150, 250, 450, 950]);
        let w = window_ends(100);
        assert_eq!(*w.last().unwrap(), 90);
        assert!(window_ends(10).is_empty());
    }

    #[test]
    fn dual_averaging_converges() {
        // Acceptance model a(eps) = exp(-eps^2): target 0.8 -> eps = sqrt(-ln 0.8).
        let mut da = DualAveraging::new(1.0, 0.8);
        let mut eps: f64 = 1.0;
        for _ in 0..2000 {
            eps = da.update((-eps * eps).exp());
        }
        let want = (-(0.8f64).ln()).sqrt();
        assert!(
            (da.final_step() - want).abs() < 0.02 * want,
            "{} vs {want}",
            da.final_step()
        );
    }
}
