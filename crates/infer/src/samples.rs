//! Posterior draws, sampler statistics, summaries and output files.

use crate::diagnostics;
use crate::error::InferError;
use crate::runner::ChainOutput;
use ndarray::{Array2, Array3};
use ndarray_npy::{NpzWriter, WritableElement, WriteDataError};
use py_literal::Value as PyValue;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::Write;
use std::path::Path;

/// Draws of all chains (post-warmup) with per-draw sampler statistics.
#[derive(Debug, Clone)]
pub struct Samples {
    /// Parameter names (length `dim`).
    pub names: Vec<String>,
    /// Constrained draws `[chains, draws, dim]`.
    pub draws: Array3<f64>,
    /// Whether the trajectory of a draw diverged `[chains, draws]`.
    pub diverging: Array2<bool>,
    /// Leapfrog step size `[chains, draws]`.
    pub step_size: Array2<f64>,
    /// NUTS tree depth (0 for HMC) `[chains, draws]`.
    pub tree_depth: Array2<u64>,
    /// Leapfrog steps of the trajectory `[chains, draws]`.
    pub n_leapfrog: Array2<u64>,
    /// Hamiltonian `H = -log p + p^T M^{-1} p / 2` at the draw `[chains, draws]`.
    pub energy: Array2<f64>,
    /// Log density in sampling (unconstrained) space `[chains, draws]`.
    pub logp: Array2<f64>,
    /// Metropolis acceptance probability (HMC only; NaN for NUTS).
    pub accept_prob: Array2<f64>,
    /// "nuts" or "hmc".
    pub sampler: String,
    pub warmup: usize,
    /// Divergences during warmup (not included in `divergences()`).
    pub warmup_divergences: usize,
    pub seed: u64,
    /// Wall-clock seconds of the run.
    pub elapsed_s: f64,
    /// Human-readable problems seen during the run (failed evaluations...).
    pub warnings: Vec<String>,
}

/// Summary statistics of one parameter.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ParamSummary {
    pub name: String,
    pub mean: f64,
    pub sd: f64,
    pub q05: f64,
    pub q50: f64,
    pub q95: f64,
    pub r_hat: f64,
    pub ess_bulk: f64,
    pub ess_tail: f64,
}

/// Per-parameter summary table plus run information. Serialises to the
/// `summary.json` layout (NaN values become `null`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub sampler: String,
    pub chains: usize,
    pub draws: usize,
    pub warmup: usize,
    /// Post-warmup divergent transitions, all chains.
    pub divergences: usize,
    pub warmup_divergences: usize,
    pub elapsed_s: f64,
    pub params: Vec<ParamSummary>,
    pub warnings: Vec<String>,
}

impl Summary {
    /// Pretty JSON.
    pub fn to_json(&self) -> Result<String, InferError> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// Write pretty JSON to `path`.
    pub fn write_json(&self, path: &Path) -> Result<(), InferError> {
        std::fs::write(path, self.to_json()?).map_err(|e| io_err(path, e))
    }

    /// Largest R-hat and smallest bulk / tail ESS over parameters.
    pub fn worst(&self) -> (f64, f64, f64) {
        let r = self
            .params
            .iter()
            .map(|p| p.r_hat)
            .fold(f64::NEG_INFINITY, f64::max);
        let b = self
            .params
            .iter()
            .map(|p| p.ess_bulk)
            .fold(f64::INFINITY, f64::min);
        let t = self
            .params
            .iter()
            .map(|p| p.ess_tail)
            .fold(f64::INFINITY, f64::min);
        (r, b, t)
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = self
            .params
            .iter()
            .map(|p| p.name.len())
            .max()
            .unwrap_or(4)
            .max(5);
        writeln!(
            f,
            "{:<w$} {:>11} {:>10} {:>11} {:>11} {:>11} {:>7} {:>9} {:>9}",
            "param", "mean", "sd", "q05", "q50", "q95", "r_hat", "ess_bulk", "ess_tail"
        )?;
        for p in &self.params {
            writeln!(
                f,
                "{:<w$} {:>11.5} {:>10.4} {:>11.5} {:>11.5} {:>11.5} {:>7.3} {:>9.0} {:>9.0}",
                p.name, p.mean, p.sd, p.q05, p.q50, p.q95, p.r_hat, p.ess_bulk, p.ess_tail
            )?;
        }
        write!(
            f,
            "{}: {} chains x {} draws (warmup {}), {} divergent transitions, {:.2} s",
            self.sampler, self.chains, self.draws, self.warmup, self.divergences, self.elapsed_s
        )?;
        for w in &self.warnings {
            write!(f, "\nwarning: {w}")?;
        }
        Ok(())
    }
}

fn io_err(path: &Path, e: std::io::Error) -> InferError {
    InferError::Io {
        path: path.display().to_string(),
        source: e,
    }
}

/// Fixed-width numpy unicode string (`<U{N}`: N UCS-4 code points, little
/// endian, zero padded), so that `names` can live inside the `.npz`.
#[derive(Clone)]
struct NpyUnicode<const N: usize>([u32; N]);

impl<const N: usize> NpyUnicode<N> {
    fn new(s: &str) -> Self {
        let mut a = [0u32; N];
        for (slot, ch) in a.iter_mut().zip(s.chars()) {
            *slot = ch as u32;
        }
        Self(a)
    }
}

impl<const N: usize> WritableElement for NpyUnicode<N> {
    fn type_descriptor() -> PyValue {
        PyValue::String(format!("<U{N}"))
    }
    fn write<W: Write>(&self, mut writer: W) -> Result<(), WriteDataError> {
        for c in self.0 {
            writer.write_all(&c.to_le_bytes())?;
        }
        Ok(())
    }
    fn write_slice<W: Write>(slice: &[Self], mut writer: W) -> Result<(), WriteDataError> {
        for s in slice {
            s.write(&mut writer)?;
        }
        Ok(())
    }
}

fn add_names<W: Write + std::io::Seek>(
    npz: &mut NpzWriter<W>,
    names: &[String],
) -> Result<(), String> {
    let longest = names.iter().map(|s| s.chars().count()).max().unwrap_or(1);
    macro_rules! put {
        ($n:literal) => {{
            let arr = ndarray::Array1::from(
                names
                    .iter()
                    .map(|s| NpyUnicode::<$n>::new(s))
                    .collect::<Vec<_>>(),
            );
            npz.add_array("names", &arr).map_err(|e| e.to_string())
        }};
    }
    match longest {
        0..=16 => put!(16),
        17..=32 => put!(32),
        33..=64 => put!(64),
        65..=128 => put!(128),
        _ => put!(256),
    }
}

impl Samples {
    /// Assemble from per-chain outputs (all chains with the same number of
    /// draws).
    pub fn from_chains(
        names: Vec<String>,
        dim: usize,
        chains: Vec<ChainOutput>,
        sampler: &str,
        warmup: usize,
        seed: u64,
        elapsed_s: f64,
    ) -> Result<Self, InferError> {
        let m = chains.len();
        let n = chains.first().map(|c| c.diverging.len()).unwrap_or(0);
        if names.len() != dim {
            return Err(InferError::Dim(format!(
                "{} names for {} parameters",
                names.len(),
                dim
            )));
        }
        let mut draws = Array3::<f64>::zeros((m, n, dim));
        let mut diverging = Array2::from_elem((m, n), false);
        let mut step_size = Array2::<f64>::zeros((m, n));
        let mut tree_depth = Array2::<u64>::zeros((m, n));
        let mut n_leapfrog = Array2::<u64>::zeros((m, n));
        let mut energy = Array2::<f64>::zeros((m, n));
        let mut logp = Array2::<f64>::zeros((m, n));
        let mut accept_prob = Array2::<f64>::from_elem((m, n), f64::NAN);
        let mut warnings = vec![];
        let mut warmup_divergences = 0;
        for (c, ch) in chains.iter().enumerate() {
            for t in 0..n {
                for k in 0..dim {
                    draws[[c, t, k]] = ch.draws[t * dim + k];
                }
                diverging[[c, t]] = ch.diverging[t];
                step_size[[c, t]] = ch.step_size[t];
                tree_depth[[c, t]] = ch.tree_depth[t];
                n_leapfrog[[c, t]] = ch.n_leapfrog[t];
                energy[[c, t]] = ch.energy[t];
                logp[[c, t]] = ch.logp[t];
                if let Some(a) = ch.accept.get(t) {
                    accept_prob[[c, t]] = *a;
                }
            }
            warmup_divergences += ch.warmup_divergences;
            if ch.failed_evaluations > 0 {
                warnings.push(format!(
                    "chain {c}: {} log-density evaluations failed or were non-finite (treated as divergences); first: {}",
                    ch.failed_evaluations,
                    ch.first_problem.as_deref().unwrap_or("?")
                ));
            }
        }
        let s = Samples {
            names,
            draws,
            diverging,
            step_size,
            tree_depth,
            n_leapfrog,
            energy,
            logp,
            accept_prob,
            sampler: sampler.to_string(),
            warmup,
            warmup_divergences,
            seed,
            elapsed_s,
            warnings,
        };
        let div = s.divergences();
        let mut s = s;
        if div > 0 {
            s.warnings.push(format!(
                "{div} of {} post-warmup transitions diverged",
                m * n
            ));
        }
        Ok(s)
    }

    pub fn n_chains(&self) -> usize {
        self.draws.shape()[0]
    }
    pub fn n_draws(&self) -> usize {
        self.draws.shape()[1]
    }
    pub fn dim(&self) -> usize {
        self.draws.shape()[2]
    }

    /// Post-warmup divergent transitions over all chains.
    pub fn divergences(&self) -> usize {
        self.diverging.iter().filter(|d| **d).count()
    }

    /// Draws of parameter `k` as `chains[c][t]`.
    pub fn param_chains(&self, k: usize) -> Vec<Vec<f64>> {
        (0..self.n_chains())
            .map(|c| (0..self.n_draws()).map(|t| self.draws[[c, t, k]]).collect())
            .collect()
    }

    /// All draws pooled over chains, `[chains * draws, dim]` row-major.
    pub fn flat_draws(&self) -> Vec<f64> {
        self.draws.iter().copied().collect()
    }

    /// Posterior mean of every parameter.
    pub fn mean(&self) -> Vec<f64> {
        let d = self.dim();
        let s = (self.n_chains() * self.n_draws()) as f64;
        let mut m = vec![0.0; d];
        for row in self
            .draws
            .to_shape((self.n_chains() * self.n_draws(), d))
            .unwrap()
            .rows()
        {
            for k in 0..d {
                m[k] += row[k];
            }
        }
        m.iter_mut().for_each(|v| *v /= s);
        m
    }

    /// Posterior covariance (row-major `dim x dim`, denominator `S - 1`).
    pub fn covariance(&self) -> Vec<f64> {
        let d = self.dim();
        let s = self.n_chains() * self.n_draws();
        let mu = self.mean();
        let flat = self.flat_draws();
        let mut cov = vec![0.0; d * d];
        for r in 0..s {
            let row = &flat[r * d..(r + 1) * d];
            for i in 0..d {
                let di = row[i] - mu[i];
                for j in 0..=i {
                    cov[i * d + j] += di * (row[j] - mu[j]);
                }
            }
        }
        for i in 0..d {
            for j in 0..=i {
                let v = cov[i * d + j] / (s as f64 - 1.0);
                cov[i * d + j] = v;
                cov[j * d + i] = v;
            }
        }
        cov
    }

    /// Per-parameter summary: mean, sd, 5/50/95% quantiles, rank-normalised
    /// split R-hat, bulk and tail ESS (see [`crate::diagnostics`]).
    pub fn summary(&self) -> Summary {
        let params = (0..self.dim())
            .into_par_iter()
            .map(|k| {
                let chains = self.param_chains(k);
                let mut flat: Vec<f64> = chains.iter().flatten().copied().collect();
                let s = flat.len() as f64;
                let mean = flat.iter().sum::<f64>() / s;
                let sd =
                    (flat.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (s - 1.0)).sqrt();
                flat.sort_by(f64::total_cmp);
                ParamSummary {
                    name: self.names[k].clone(),
                    mean,
                    sd,
                    q05: diagnostics::quantile_sorted(&flat, 0.05),
                    q50: diagnostics::quantile_sorted(&flat, 0.5),
                    q95: diagnostics::quantile_sorted(&flat, 0.95),
                    r_hat: diagnostics::rhat(&chains),
                    ess_bulk: diagnostics::ess_bulk(&chains),
                    ess_tail: diagnostics::ess_tail(&chains),
                }
            })
            .collect::<Vec<ParamSummary>>();
        // Convergence checks of Vehtari et al. (2021): split R-hat below 1.01
        // and a bulk ESS of at least 100 before trusting the summaries.
        let mut warnings = self.warnings.clone();
        for p in &params {
            if p.r_hat > 1.01 {
                warnings.push(format!(
                    "{}: r_hat = {:.3} > 1.01 (chains disagree: more warmup or draws)",
                    p.name, p.r_hat
                ));
            }
            if p.ess_bulk < 100.0 {
                warnings.push(format!(
                    "{}: ess_bulk = {:.0} < 100 (too few effective draws for reliable quantiles)",
                    p.name, p.ess_bulk
                ));
            }
        }
        Summary {
            sampler: self.sampler.clone(),
            chains: self.n_chains(),
            draws: self.n_draws(),
            warmup: self.warmup,
            divergences: self.divergences(),
            warmup_divergences: self.warmup_divergences,
            elapsed_s: self.elapsed_s,
            params,
            warnings,
        }
    }

    /// Write an uncompressed `.npz` with
    /// - `draws` float64 `[chains, draws, dim]` (constrained parameters),
    /// - `names` numpy unicode `<U16`..`<U256` `[dim]` (names longer than 256
    ///   characters are truncated),
    /// - `diverging` bool, `step_size`, `energy`, `logp`, `accept_prob`
    ///   float64, `tree_depth`, `n_leapfrog` uint64, all `[chains, draws]`.
    pub fn write_npz(&self, path: &Path) -> Result<(), InferError> {
        let file = std::fs::File::create(path).map_err(|e| io_err(path, e))?;
        let mut npz = NpzWriter::new(file);
        let e = |msg: String| InferError::Npz {
            path: path.display().to_string(),
            msg,
        };
        npz.add_array("draws", &self.draws)
            .map_err(|x| e(x.to_string()))?;
        add_names(&mut npz, &self.names).map_err(e)?;
        npz.add_array("diverging", &self.diverging)
            .map_err(|x| e(x.to_string()))?;
        npz.add_array("step_size", &self.step_size)
            .map_err(|x| e(x.to_string()))?;
        npz.add_array("tree_depth", &self.tree_depth)
            .map_err(|x| e(x.to_string()))?;
        npz.add_array("n_leapfrog", &self.n_leapfrog)
            .map_err(|x| e(x.to_string()))?;
        npz.add_array("energy", &self.energy)
            .map_err(|x| e(x.to_string()))?;
        npz.add_array("logp", &self.logp)
            .map_err(|x| e(x.to_string()))?;
        npz.add_array("accept_prob", &self.accept_prob)
            .map_err(|x| e(x.to_string()))?;
        npz.finish().map_err(|x| e(x.to_string()))?;
        Ok(())
    }
}
