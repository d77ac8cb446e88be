//! Classifier two-sample test (C2ST) exactly as sbibm defines it.
//!
//! Given reference draws `X` (`[n, d]`) and candidate draws `Y` (`[m, d]`),
//! sbibm (`sbibm/metrics/c2st.py`, Lueckmann et al. 2021; Lopez-Paz & Oquab
//! 2017):
//!
//! 1. z-scores both sets with the mean and standard deviation (`ddof = 1`,
//!    as `torch.std`) of the reference `X`;
//! 2. labels `X` with 0 and `Y` with 1;
//! 3. trains sklearn's `MLPClassifier(activation="relu",
//!    hidden_layer_sizes=(10 d, 10 d), max_iter=10000, solver="adam")`
//!    inside `cross_val_score(..., cv=KFold(5, shuffle=True), scoring="accuracy")`;
//! 4. returns the mean held-out accuracy: 0.5 when the classifier cannot
//!    tell the sets apart, 1 when it separates them perfectly.
//!
//! The classifier here re-implements sklearn's (v1.x) defaults step by
//! step: Glorot-uniform initialisation `W, b ~ U(-s, s)`,
//! `s = sqrt(6 / (fan_in + fan_out))`; one logistic output unit; per
//! minibatch `B` (`|B| = min(200, n_train)`, reshuffled every epoch) the loss
//!
//! ```text
//! L = -(1/|B|) sum_i [y_i ln p_i + (1 - y_i) ln(1 - p_i)] + alpha/(2|B|) sum_l ||W_l||_F^2
//! ```
//!
//! with `alpha = 1e-4` and `p` clipped to `[eps, 1 - eps]`; its gradient by
//! back-propagation (`delta_out = p - y`, ReLU derivative `1[a > 0]`);
//! Adam with `lr = 1e-3`, `beta1 = 0.9`, `beta2 = 0.999`, `eps = 1e-8` and
//! the bias correction folded into the step,
//! `lr_t = lr sqrt(1 - beta2^t) / (1 - beta1^t)`,
//! `theta -= lr_t m / (sqrt(v) + eps)`; training stops after `max_iter`
//! epochs or once the epoch loss (mean of the minibatch losses weighted by
//! batch size) has failed to decrease by `tol = 1e-4` below the best loss
//! for more than `n_iter_no_change = 10` consecutive epochs. A test point
//! is labelled 1 when `p > 0.5`.
//!
//! Differences from sklearn: the random numbers (ChaCha8 instead of
//! numpy's MT19937), so values agree with sbibm's to within the classifier's
//! own seed-to-seed scatter (about 0.005 at 10,000 vs 10,000 draws), not
//! bit for bit. The arithmetic is `f32`, which is also what sbibm's runs
//! use (its torch tensors are float32 and sklearn keeps float32 inputs in
//! float32).

use cosmodiff_infer::runner::chain_rng;
use cosmodiff_infer::InferError;
use ndarray::{ArrayView2, Axis};
use rand::{Rng, RngExt};
use rayon::prelude::*;

/// Floating-point type of the classifier.
type Real = f32;

/// Settings of [`c2st_with`]; the defaults are sbibm's.
#[derive(Debug, Clone, PartialEq)]
pub struct C2stOptions {
    /// Cross-validation folds (sbibm: 5).
    pub folds: usize,
    /// Hidden units per layer = `hidden_multiplier * dim` (sbibm: 10).
    pub hidden_multiplier: usize,
    /// Number of hidden layers (sbibm: 2).
    pub hidden_layers: usize,
    /// Maximum training epochs (sbibm: 10,000; the tolerance stops
    /// training long before).
    pub max_iter: usize,
    /// Seed of the fold split, the initial weights and the minibatch order.
    pub seed: u64,
    /// z-score both sets with the reference's mean and standard deviation.
    pub z_score: bool,
    /// L2 penalty (sklearn `alpha`, 1e-4).
    pub alpha: f64,
    /// Adam step size (sklearn `learning_rate_init`, 1e-3).
    pub learning_rate: f64,
    /// Minibatch size cap: `min(batch_size, n_train)` (sklearn "auto": 200).
    pub batch_size: usize,
    /// Loss improvement that counts as progress (sklearn `tol`, 1e-4).
    pub tol: f64,
    /// Epochs without progress before stopping (sklearn 10).
    pub n_iter_no_change: usize,
}

impl Default for C2stOptions {
    fn default() -> Self {
        Self {
            folds: 5,
            hidden_multiplier: 10,
            hidden_layers: 2,
            max_iter: 10_000,
            seed: 1,
            z_score: true,
            alpha: 1e-4,
            learning_rate: 1e-3,
            batch_size: 200,
            tol: 1e-4,
            n_iter_no_change: 10,
        }
    }
}

/// Outcome of [`c2st_with`].
#[derive(Debug, Clone, PartialEq)]
pub struct C2stResult {
    /// Mean held-out accuracy over the folds (the C2ST value).
    pub accuracy: f64,
    /// Held-out accuracy of each fold.
    pub fold_accuracy: Vec<f64>,
    /// Training epochs of each fold.
    pub epochs: Vec<usize>,
}

/// sbibm's C2ST of `candidate` against `reference` (both `[n, dim]`) with
/// the default [`C2stOptions`] and the given seed. Returns the mean
/// cross-validated accuracy (0.5 = indistinguishable).
pub fn c2st(
    reference: ArrayView2<f64>,
    candidate: ArrayView2<f64>,
    seed: u64,
) -> Result<f64, InferError> {
    let opts = C2stOptions {
        seed,
        ..Default::default()
    };
    c2st_with(reference, candidate, &opts).map(|r| r.accuracy)
}

/// C2ST with explicit settings; the folds train in parallel (rayon).
pub fn c2st_with(
    reference: ArrayView2<f64>,
    candidate: ArrayView2<f64>,
    opts: &C2stOptions,
) -> Result<C2stResult, InferError> {
    let d = reference.ncols();
    if candidate.ncols() != d || d == 0 {
        return Err(InferError::Dim(format!(
            "c2st: reference has {} columns, candidate {}",
            d,
            candidate.ncols()
        )));
    }
    if opts.folds < 2 || opts.hidden_multiplier == 0 || opts.batch_size == 0 {
        return Err(InferError::Settings(
            "c2st: need folds >= 2, hidden_multiplier >= 1, batch_size >= 1".into(),
        ));
    }
    let (n0, n1) = (reference.nrows(), candidate.nrows());
    if n0 < 2 || n1 < 1 || n0 + n1 < 2 * opts.folds {
        return Err(InferError::Dim(format!(
            "c2st: too few samples ({n0} reference, {n1} candidate) for {} folds",
            opts.folds
        )));
    }
    if reference
        .iter()
        .chain(candidate.iter())
        .any(|v| !v.is_finite())
    {
        return Err(InferError::Settings(
            "c2st: samples contain NaN or infinite values".into(),
        ));
    }
    // z-score with the reference's mean and unbiased standard deviation.
    let (mean, sd) = if opts.z_score {
        let mean = reference.mean_axis(Axis(0)).expect("n0 >= 2");
        let sd = reference.std_axis(Axis(0), 1.0);
        if let Some(j) = sd.iter().position(|&s| s <= 0.0) {
            return Err(InferError::Settings(format!(
                "c2st: reference column {j} is constant, cannot z-score"
            )));
        }
        (mean.to_vec(), sd.to_vec())
    } else {
        (vec![0.0; d], vec![1.0; d])
    };
    let n = n0 + n1;
    let mut data = Vec::with_capacity(n * d);
    for set in [reference, candidate] {
        for row in set.outer_iter() {
            data.extend(
                row.iter()
                    .zip(&mean)
                    .zip(&sd)
                    .map(|((v, m), s)| ((v - m) / s) as Real),
            );
        }
    }
    let labels: Vec<Real> = (0..n).map(|i| if i < n0 { 0.0 } else { 1.0 }).collect();

    // KFold(shuffle=True): a random permutation cut into `folds` contiguous
    // test blocks, the first `n % folds` one longer.
    let mut perm: Vec<usize> = (0..n).collect();
    shuffle(&mut perm, &mut chain_rng(opts.seed, usize::MAX));
    let k = opts.folds;
    let mut bounds = vec![0usize];
    for f in 0..k {
        bounds.push(bounds[f] + n / k + usize::from(f < n % k));
    }
    let hidden = opts.hidden_multiplier * d;
    let mut sizes = vec![d];
    sizes.extend(std::iter::repeat_n(hidden, opts.hidden_layers));
    sizes.push(1);

    let results: Vec<(f64, usize)> = (0..k)
        .into_par_iter()
        .map(|f| {
            let test = &perm[bounds[f]..bounds[f + 1]];
            let train: Vec<usize> = perm[..bounds[f]]
                .iter()
                .chain(&perm[bounds[f + 1]..])
                .copied()
                .collect();
            let gather = |idx: &[usize]| -> (Vec<Real>, Vec<Real>) {
                let mut x = Vec::with_capacity(idx.len() * d);
                for &i in idx {
                    x.extend_from_slice(&data[i * d..(i + 1) * d]);
                }
                (x, idx.iter().map(|&i| labels[i]).collect())
            };
            let (xtr, ytr) = gather(&train);
            let (xte, yte) = gather(test);
            let mut rng = chain_rng(opts.seed, f);
            let mut mlp = Mlp::new(&sizes, &mut rng);
            let epochs = mlp.fit(&xtr, &ytr, opts, &mut rng);
            let p = mlp.predict_proba(&xte);
            let correct = p
                .iter()
                .zip(&yte)
                .filter(|(p, y)| (**p > 0.5) == (**y > 0.5))
                .count();
            (correct as f64 / yte.len() as f64, epochs)
        })
        .collect();
    let fold_accuracy: Vec<f64> = results.iter().map(|r| r.0).collect();
    Ok(C2stResult {
        accuracy: fold_accuracy.iter().sum::<f64>() / k as f64,
        fold_accuracy,
        epochs: results.iter().map(|r| r.1).collect(),
    })
}

/// Fisher-Yates shuffle.
fn shuffle<T, R: Rng + ?Sized>(v: &mut [T], rng: &mut R) {
    for i in (1..v.len()).rev() {
        let j = rng.random_range(0..=i);
        v.swap(i, j);
    }
}

/// Fully connected ReLU network with one logistic output; all weights in
/// one flat vector (layer `l`: `W_l` row-major `[fan_in, fan_out]` at
/// `w_off[l]`, then `b_l` at `b_off[l]`).
struct Mlp {
    sizes: Vec<usize>,
    w_off: Vec<usize>,
    b_off: Vec<usize>,
    params: Vec<Real>,
}

/// Activations and deltas of one minibatch, reused across batches.
struct Workspace {
    /// `acts[l]`: `[bs, sizes[l]]`.
    acts: Vec<Vec<Real>>,
    /// `deltas[l]`: gradient of the loss w.r.t. the pre-activation of
    /// layer `l + 1`, `[bs, sizes[l + 1]]`.
    deltas: Vec<Vec<Real>>,
}

impl Mlp {
    /// Glorot-uniform initialisation as sklearn's `_init_coef`.
    fn new<R: Rng + ?Sized>(sizes: &[usize], rng: &mut R) -> Self {
        let (mut w_off, mut b_off, mut params) = (vec![], vec![], vec![]);
        for l in 0..sizes.len() - 1 {
            let (fi, fo) = (sizes[l], sizes[l + 1]);
            let bound = (6.0 / (fi + fo) as f64).sqrt();
            w_off.push(params.len());
            params.extend((0..fi * fo).map(|_| rng.random_range(-bound..bound) as Real));
            b_off.push(params.len());
            params.extend((0..fo).map(|_| rng.random_range(-bound..bound) as Real));
        }
        Self {
            sizes: sizes.to_vec(),
            w_off,
            b_off,
            params,
        }
    }

    fn layers(&self) -> usize {
        self.sizes.len() - 1
    }

    fn workspace(&self, bs: usize) -> Workspace {
        Workspace {
            acts: self.sizes.iter().map(|&s| vec![0.0; bs * s]).collect(),
            deltas: self.sizes[1..].iter().map(|&s| vec![0.0; bs * s]).collect(),
        }
    }

    /// Forward pass of `bs` rows already in `ws.acts[0]`; the output layer
    /// holds probabilities.
    fn forward(&self, ws: &mut Workspace, bs: usize) {
        let nl = self.layers();
        for l in 0..nl {
            let (fi, fo) = (self.sizes[l], self.sizes[l + 1]);
            let w = &self.params[self.w_off[l]..self.w_off[l] + fi * fo];
            let b = &self.params[self.b_off[l]..self.b_off[l] + fo];
            let (lo, hi) = ws.acts.split_at_mut(l + 1);
            let a_in = &lo[l];
            let a_out = &mut hi[0];
            for r in 0..bs {
                let z = &mut a_out[r * fo..(r + 1) * fo];
                z.copy_from_slice(b);
                for (i, &a) in a_in[r * fi..(r + 1) * fi].iter().enumerate() {
                    if a != 0.0 {
                        for (zj, wj) in z.iter_mut().zip(&w[i * fo..(i + 1) * fo]) {
                            *zj += a * wj;
                        }
                    }
                }
                if l + 1 < nl {
                    for v in z.iter_mut() {
                        *v = v.max(0.0);
                    }
                } else {
                    for v in z.iter_mut() {
                        *v = logistic(*v);
                    }
                }
            }
        }
    }

    /// Loss of the batch (sklearn `_backprop`) and its gradient into `grad`.
    fn backprop(
        &self,
        ws: &mut Workspace,
        y: &[Real],
        bs: usize,
        alpha: Real,
        grad: &mut [Real],
    ) -> f64 {
        self.forward(ws, bs);
        let nl = self.layers();
        let eps = Real::EPSILON;
        let p = &ws.acts[nl];
        let mut loss = 0.0f64;
        for r in 0..bs {
            let pr = p[r].clamp(eps, 1.0 - eps);
            loss -= if y[r] > 0.5 {
                (pr as f64).ln()
            } else {
                (1.0 - pr as f64).ln()
            };
        }
        loss /= bs as f64;
        let mut sq = 0.0f64;
        for l in 0..nl {
            let len = self.sizes[l] * self.sizes[l + 1];
            sq += self.params[self.w_off[l]..self.w_off[l] + len]
                .iter()
                .map(|&v| (v as f64) * (v as f64))
                .sum::<f64>();
        }
        loss += 0.5 * alpha as f64 * sq / bs as f64;

        for r in 0..bs {
            ws.deltas[nl - 1][r] = p[r] - y[r];
        }
        let inv = 1.0 / bs as Real;
        for l in (0..nl).rev() {
            let (fi, fo) = (self.sizes[l], self.sizes[l + 1]);
            let (wo, bo) = (self.w_off[l], self.b_off[l]);
            let delta = &ws.deltas[l];
            let a_in = &ws.acts[l];
            // dL/dW = (A^T delta + alpha W) / bs, dL/db = sum_r delta / bs.
            let (gw, rest) = grad[wo..].split_at_mut(fi * fo);
            let gb = &mut rest[bo - wo - fi * fo..bo - wo - fi * fo + fo];
            gw.fill(0.0);
            gb.fill(0.0);
            for r in 0..bs {
                let dr = &delta[r * fo..(r + 1) * fo];
                for (g, dv) in gb.iter_mut().zip(dr) {
                    *g += dv;
                }
                for (i, &a) in a_in[r * fi..(r + 1) * fi].iter().enumerate() {
                    if a != 0.0 {
                        for (g, dv) in gw[i * fo..(i + 1) * fo].iter_mut().zip(dr) {
                            *g += a * dv;
                        }
                    }
                }
            }
            let w = &self.params[wo..wo + fi * fo];
            for (g, wv) in gw.iter_mut().zip(w) {
                *g = (*g + alpha * wv) * inv;
            }
            for g in gb.iter_mut() {
                *g *= inv;
            }
            if l > 0 {
                // delta_{l-1} = (delta_l W_l^T) * 1[a_l > 0].
                let (lo, hi) = ws.deltas.split_at_mut(l);
                let dprev = &mut lo[l - 1];
                let dcur = &hi[0];
                for r in 0..bs {
                    let dr = &dcur[r * fo..(r + 1) * fo];
                    for i in 0..fi {
                        dprev[r * fi + i] = if a_in[r * fi + i] > 0.0 {
                            dr.iter()
                                .zip(&w[i * fo..(i + 1) * fo])
                                .map(|(a, b)| a * b)
                                .sum()
                        } else {
                            0.0
                        };
                    }
                }
            }
        }
        loss
    }

    /// sklearn's `_fit_stochastic` with Adam; returns the number of epochs.
    fn fit<R: Rng + ?Sized>(
        &mut self,
        x: &[Real],
        y: &[Real],
        o: &C2stOptions,
        rng: &mut R,
    ) -> usize {
        let d = self.sizes[0];
        let n = y.len();
        let bs_max = o.batch_size.min(n);
        let mut ws = self.workspace(bs_max);
        let np = self.params.len();
        let (mut grad, mut m, mut v) = (vec![0.0; np], vec![0.0; np], vec![0.0; np]);
        let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-8 as Real);
        let alpha = o.alpha as Real;
        let mut t = 0i32;
        let mut idx: Vec<usize> = (0..n).collect();
        let mut yb = vec![0.0; bs_max];
        let mut best = f64::INFINITY;
        let mut no_improve = 0;
        let mut epochs = 0;
        for _ in 0..o.max_iter {
            shuffle(&mut idx, rng);
            let mut acc = 0.0;
            for chunk in idx.chunks(bs_max) {
                let bs = chunk.len();
                for (r, &i) in chunk.iter().enumerate() {
                    ws.acts[0][r * d..(r + 1) * d].copy_from_slice(&x[i * d..(i + 1) * d]);
                    yb[r] = y[i];
                }
                acc += self.backprop(&mut ws, &yb[..bs], bs, alpha, &mut grad) * bs as f64;
                t += 1;
                let lr = (o.learning_rate * (1.0 - b2.powi(t)).sqrt() / (1.0 - b1.powi(t))) as Real;
                let (b1r, b2r) = (b1 as Real, b2 as Real);
                for k in 0..np {
                    let g = grad[k];
                    m[k] = b1r * m[k] + (1.0 - b1r) * g;
                    v[k] = b2r * v[k] + (1.0 - b2r) * g * g;
                    self.params[k] -= lr * m[k] / (v[k].sqrt() + eps);
                }
            }
            epochs += 1;
            let loss = acc / n as f64;
            if loss > best - o.tol {
                no_improve += 1;
            } else {
                no_improve = 0;
            }
            best = best.min(loss);
            if no_improve > o.n_iter_no_change {
                break;
            }
        }
        epochs
    }

    /// `P(label = 1 | x)` for each row of `x` (`[n, d]` row-major).
    fn predict_proba(&self, x: &[Real]) -> Vec<Real> {
        let d = self.sizes[0];
        let n = x.len() / d;
        let chunk = 512;
        let mut ws = self.workspace(chunk);
        let mut out = Vec::with_capacity(n);
        for rows in x.chunks(chunk * d) {
            let bs = rows.len() / d;
            ws.acts[0][..rows.len()].copy_from_slice(rows);
            self.forward(&mut ws, bs);
            out.extend_from_slice(&ws.acts[self.layers()][..bs]);
        }
        out
    }
}

/// Numerically safe logistic function `1 / (1 + e^{-z})`.
fn logistic(z: Real) -> Real {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// The accuracy of the Bayes-optimal classifier between two equal-weight
/// Gaussians with a common covariance: `Phi(Delta / 2)`, `Delta` the
/// Mahalanobis distance between the means. The C2ST of a perfect
/// classifier on infinitely many draws.
pub fn bayes_accuracy_gaussian_shift(mahalanobis: f64) -> f64 {
    cosmodiff_infer::special::norm_cdf(0.5 * mahalanobis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradient_matches_finite_differences() {
        let mut rng = chain_rng(3, 0);
        let mlp = Mlp::new(&[3, 5, 4, 1], &mut rng);
        let bs = 7;
        let mut ws = mlp.workspace(bs);
        let x: Vec<Real> = (0..bs * 3)
            .map(|i| ((i * 7 % 11) as Real - 5.0) / 3.0)
            .collect();
        let y: Vec<Real> = (0..bs).map(|i| (i % 2) as Real).collect();
        let mut grad = vec![0.0; mlp.params.len()];
        ws.acts[0].copy_from_slice(&x);
        mlp.backprop(&mut ws, &y, bs, 0.1, &mut grad);
        let mut m2 = Mlp {
            params: mlp.params.clone(),
            ..mlp
        };
        let mut scratch = vec![0.0; m2.params.len()];
        for k in 0..m2.params.len() {
            let h = 1e-2;
            let p0 = m2.params[k];
            m2.params[k] = p0 + h;
            ws.acts[0].copy_from_slice(&x);
            let lp = m2.backprop(&mut ws, &y, bs, 0.1, &mut scratch);
            m2.params[k] = p0 - h;
            ws.acts[0].copy_from_slice(&x);
            let lm = m2.backprop(&mut ws, &y, bs, 0.1, &mut scratch);
            m2.params[k] = p0;
            let num = (lp - lm) / (2.0 * h as f64);
            assert!(
                (num - grad[k] as f64).abs() < 2e-3 * (1.0 + num.abs()),
                "param {k}: analytic {} numeric {num}",
                grad[k]
            );
        }
    }
}
