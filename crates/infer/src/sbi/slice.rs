//! Coordinate-wise slice sampling (Neal 2003, Ann. Statist. 31, 705,
//! sections 4 and 5) for reference posteriors of gradient-free densities
//! (e.g. the `slcp` task), several independent chains in parallel.
//!
//! One update of coordinate `k` at the current point `x`:
//! 1. draw the slice level `ln y = ln p(x) - E`, `E ~ Exp(1)`;
//! 2. stepping out: place an interval of width `w` at a uniform offset
//!    around `x_k`, `L = x_k - w U`, `R = L + w`, then extend it by `w` to
//!    the left while `ln p(L) > ln y` and to the right while
//!    `ln p(R) > ln y`, with at most `m = 100` steps in total, split at a
//!    uniform random point between the two sides (Neal's Fig. 3);
//! 3. shrinkage: draw `x'_k ~ U(L, R)`; accept if `ln p(x') > ln y`,
//!    otherwise replace `L` (if `x'_k < x_k`) or `R` by `x'_k` and redraw.
//!
//! One iteration updates every coordinate in turn; the chain leaves
//! `p` invariant. The first `warmup` iterations are discarded and every
//! `thin`-th iteration is kept afterwards. Chain `c` uses the random stream
//! seeded by `(seed, c)` (as NUTS/HMC chains do), so results do not depend
//! on the number of threads.

use crate::error::InferError;
use crate::runner::chain_rng;
use ndarray::Array2;
use rand::{Rng, RngExt};
use rayon::prelude::*;

/// Maximum stepping-out steps `m` per coordinate update.
const MAX_STEPS: usize = 100;
/// Shrinkage steps after which an update gives up and keeps `x_k`
/// (only reachable with a NaN or discontinuous log density).
const MAX_SHRINK: usize = 200;

/// Slice sampling of the (unnormalised) log density `logp` with one chain
/// per entry of `init`; returns the kept draws `[chains * n_samples_per_chain,
/// dim]`, chain after chain.
///
/// Panics where [`try_slice_sample`] returns an error (inconsistent
/// `init` lengths, `width <= 0`, `thin == 0`, or a non-finite `logp` at a
/// starting point).
pub fn slice_sample<F>(
    logp: F,
    init: &[Vec<f64>],
    n_samples_per_chain: usize,
    warmup: usize,
    thin: usize,
    width: f64,
    seed: u64,
) -> Array2<f64>
where
    F: Fn(&[f64]) -> f64 + Sync,
{
    try_slice_sample(logp, init, n_samples_per_chain, warmup, thin, width, seed)
        .unwrap_or_else(|e| panic!("slice_sample: {e}"))
}

/// [`slice_sample`] returning an error instead of panicking.
pub fn try_slice_sample<F>(
    logp: F,
    init: &[Vec<f64>],
    n_samples_per_chain: usize,
    warmup: usize,
    thin: usize,
    width: f64,
    seed: u64,
) -> Result<Array2<f64>, InferError>
where
    F: Fn(&[f64]) -> f64 + Sync,
{
    if init.is_empty() || init[0].is_empty() {
        return Err(InferError::Settings(
            "slice sampler: need at least one chain with at least one dimension".into(),
        ));
    }
    let dim = init[0].len();
    if init.iter().any(|x| x.len() != dim) {
        return Err(InferError::Dim(
            "slice sampler: initial points of different lengths".into(),
        ));
    }
    if !(width > 0.0 && width.is_finite()) || thin == 0 {
        return Err(InferError::Settings(format!(
            "slice sampler: need width > 0 and thin >= 1 (got width {width}, thin {thin})"
        )));
    }
    for (c, x) in init.iter().enumerate() {
        let lp = logp(x);
        if !lp.is_finite() {
            return Err(InferError::Init {
                chain: c,
                tries: 1,
                last: format!("log density {lp} at the initial point {x:?}"),
            });
        }
    }
    let chains: Vec<Vec<f64>> = init
        .par_iter()
        .enumerate()
        .map(|(c, x0)| {
            let mut rng = chain_rng(seed, c);
            let mut x = x0.clone();
            let mut lp = logp(&x);
            let mut out = Vec::with_capacity(n_samples_per_chain * dim);
            let total = warmup + n_samples_per_chain * thin;
            for it in 0..total {
                for k in 0..dim {
                    lp = update_coordinate(&logp, &mut x, lp, k, width, &mut rng);
                }
                if it >= warmup && (it - warmup + 1).is_multiple_of(thin) {
                    out.extend_from_slice(&x);
                }
            }
            out
        })
        .collect();
    let flat: Vec<f64> = chains.into_iter().flatten().collect();
    Ok(
        Array2::from_shape_vec((init.len() * n_samples_per_chain, dim), flat)
            .expect("every chain keeps n_samples_per_chain draws"),
    )
}

/// One stepping-out + shrinkage update of coordinate `k`; returns the new
/// `ln p(x)`.
fn update_coordinate<F, R>(logp: &F, x: &mut [f64], lp: f64, k: usize, w: f64, rng: &mut R) -> f64
where
    F: Fn(&[f64]) -> f64,
    R: Rng + ?Sized,
{
    let x0 = x[k];
    let log_y = lp + (1.0 - rng.random::<f64>()).ln(); // ln p - Exp(1)
    let eval = |v: f64, x: &mut [f64]| {
        x[k] = v;
        logp(x)
    };
    let mut left = x0 - w * rng.random::<f64>();
    let mut right = left + w;
    let mut j = (MAX_STEPS as f64 * rng.random::<f64>()) as usize;
    let mut m = MAX_STEPS - 1 - j;
    while j > 0 && eval(left, x) > log_y {
        left -= w;
        j -= 1;
    }
    while m > 0 && eval(right, x) > log_y {
        right += w;
        m -= 1;
    }
    for _ in 0..MAX_SHRINK {
        let v = left + (right - left) * rng.random::<f64>();
        let lv = eval(v, x);
        if lv > log_y {
            return lv;
        }
        if v < x0 {
            left = v;
        } else {
            right = v;
        }
    }
    x[k] = x0;
    lp
}
