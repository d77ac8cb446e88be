//! Gaussian covariance of angular power spectra, the Gaussian likelihood,
//! and Fisher matrices with exact derivatives.
//!
//! Knox (1995) covariance, for pairs (ab) and (cd) at the same multipole:
//!   Cov = (C_ac C_bd + C_ad C_bc) / ((2 ell + 1) Delta_ell f_sky),
//! with C the signal plus noise spectra and Delta_ell = numpy.gradient(ell)
//! (the jax-cosmo convention). The data vector and the covariance are
//! ordered pair-major: index = pair * n_ell + ell_index.
//!
//! log L(theta) = -1/2 r^T C^-1 r - 1/2 ln det C - n/2 ln 2 pi, r = d - mu(theta)
//! (jax-cosmo's `include_logdet` adds + ln det C: a sign error not copied here).
//! Fisher: F = J^T C^-1 J with J = d mu / d theta exact from dual numbers, and
//! equivalently F = -d^2 log L / d theta^2 at d = mu(theta_0) from hyper-dual
//! numbers (the two agree to rounding).

use crate::cl::{angular_cl, angular_cl_noise, tracer_pairs, ClOptions};
use crate::tracers::Tracer;
use crate::{CosmoError, Cosmology, Param, Result, Scalar};
use num_dual::{Dual64, HyperDual64};
use rayon::prelude::*;

/// numpy.gradient of ell (one-sided at the ends, central inside).
pub fn delta_ell(ell: &[f64]) -> Vec<f64> {
    let n = ell.len();
    if n == 1 {
        return vec![1.0];
    }
    (0..n)
        .map(|i| {
            if i == 0 {
                ell[1] - ell[0]
            } else if i == n - 1 {
                ell[n - 1] - ell[n - 2]
            } else {
                0.5 * (ell[i + 1] - ell[i - 1])
            }
        })
        .collect()
}

/// Knox covariance `[n_pairs*n_ell]^2` (row-major) from total spectra
/// `cl_total` `[n_pairs][n_ell]` (signal + noise) of `n_tracers` tracers.
pub fn gaussian_covariance(
    cl_total: &[Vec<f64>],
    n_tracers: usize,
    ell: &[f64],
    f_sky: f64,
) -> Result<Vec<f64>> {
    if !(f_sky > 0.0 && f_sky <= 1.0) {
        return Err(CosmoError::Input(format!(
            "f_sky = {f_sky} must be in (0, 1]"
        )));
    }
    // the Knox bin widths (numpy.gradient of ell) need increasing multipoles
    if ell.is_empty()
        || ell.iter().any(|l| !(l.is_finite() && *l > 0.0))
        || ell.windows(2).any(|w| w[1] <= w[0])
    {
        return Err(CosmoError::Input(
            "covariance: ell must be non-empty, positive and strictly increasing".into(),
        ));
    }
    // Shapes first: the pair list of a mistaken n_tracers may not fit in memory.
    let n_pairs = n_tracers
        .checked_mul(n_tracers + 1)
        .map(|v| v / 2)
        .unwrap_or(usize::MAX);
    if n_tracers == 0 || cl_total.len() != n_pairs || cl_total.iter().any(|c| c.len() != ell.len())
    {
        return Err(CosmoError::Input(format!(
            "covariance: expected spectra of shape [n_tracers (n_tracers + 1) / 2, len(ell)] = [{n_pairs}, {}] for n_tracers = {n_tracers}, got {} rows",
            ell.len(),
            cl_total.len()
        )));
    }
    if cl_total.iter().flatten().any(|v| !v.is_finite()) {
        return Err(CosmoError::Input(
            "covariance: the spectra contain NaN or inf".into(),
        ));
    }
    let pairs = tracer_pairs(n_tracers);
    let idx = |a: usize, b: usize| -> usize {
        let (i, j) = if a <= b { (a, b) } else { (b, a) };
        pairs.iter().position(|&p| p == (i, j)).unwrap()
    };
    let dl = delta_ell(ell);
    let ne = ell.len();
    let n = pairs.len() * ne;
    let mut cov = vec![0.0; n * n];
    for (p, &(a, b)) in pairs.iter().enumerate() {
        for (q, &(c, d)) in pairs.iter().enumerate() {
            for l in 0..ne {
                let norm = (2.0 * ell[l] + 1.0) * dl[l] * f_sky;
                let v = (cl_total[idx(a, c)][l] * cl_total[idx(b, d)][l]
                    + cl_total[idx(a, d)][l] * cl_total[idx(b, c)][l])
                    / norm;
                cov[(p * ne + l) * n + q * ne + l] = v;
            }
        }
    }
    Ok(cov)
}

/// Cholesky factor L (lower, row-major) of a symmetric positive-definite matrix.
#[derive(Debug, Clone)]
pub struct Cholesky {
    n: usize,
    l: Vec<f64>,
}

impl Cholesky {
    pub fn new(a: &[f64], n: usize) -> Result<Self> {
        if a.len() != n * n {
            return Err(CosmoError::Input(format!(
                "matrix has {} entries, expected {n}x{n}",
                a.len()
            )));
        }
        let mut l = vec![0.0; n * n];
        for j in 0..n {
            let mut s = a[j * n + j];
            for k in 0..j {
                s -= l[j * n + k] * l[j * n + k];
            }
            if !(s > 0.0) {
                return Err(CosmoError::Numerical(format!(
                    "covariance not positive definite (pivot {j})"
                )));
            }
            let d = s.sqrt();
            l[j * n + j] = d;
            for i in j + 1..n {
                let mut s = a[i * n + j];
                for k in 0..j {
                    s -= l[i * n + k] * l[j * n + k];
                }
                l[i * n + j] = s / d;
            }
        }
        Ok(Self { n, l })
    }

    pub fn dim(&self) -> usize {
        self.n
    }

    /// Solve L y = b (forward substitution), generic in the right-hand side.
    pub fn forward<T: Scalar>(&self, b: &[T]) -> Vec<T> {
        let n = self.n;
        let mut y = b.to_vec();
        for i in 0..n {
            let mut s = y[i];
            for k in 0..i {
                let lik = self.l[i * n + k];
                if lik != 0.0 {
                    s -= y[k] * lik;
                }
            }
            y[i] = s * (1.0 / self.l[i * n + i]);
        }
        y
    }

    /// ln det A.
    pub fn logdet(&self) -> f64 {
        (0..self.n).map(|i| 2.0 * self.l[i * self.n + i].ln()).sum()
    }

    /// x^T A^-1 y.
    pub fn quad_form<T: Scalar>(&self, x: &[T], y: &[T]) -> T {
        let a = self.forward(x);
        let b = self.forward(y);
        a.iter().zip(&b).fold(T::zero(), |s, (u, v)| s + *u * *v)
    }
}

/// Gaussian log-likelihood of data d given mean mu and the Cholesky factor
/// of a fixed covariance: -1/2 r^T C^-1 r [- 1/2 ln det C - n/2 ln 2 pi].
pub fn gaussian_log_likelihood<T: Scalar>(
    data: &[f64],
    mean: &[T],
    chol: &Cholesky,
    include_logdet: bool,
) -> T {
    let r: Vec<T> = data.iter().zip(mean).map(|(d, m)| -*m + *d).collect();
    let chi2 = chol.quad_form(&r, &r);
    let mut l = chi2 * (-0.5);
    if include_logdet {
        l -= 0.5 * chol.logdet() + 0.5 * data.len() as f64 * (2.0 * std::f64::consts::PI).ln();
    }
    l
}

/// A Gaussian C_ell likelihood with covariance fixed at a fiducial cosmology.
#[derive(Debug, Clone)]
pub struct ClLikelihood {
    pub tracers: Vec<Tracer>,
    pub ell: Vec<f64>,
    pub opts: ClOptions,
    pub f_sky: f64,
    /// Data vector, pair-major [n_pairs * n_ell] (signal only: noise bias removed).
    pub data: Vec<f64>,
    /// Covariance (row-major) and its Cholesky factor.
    pub cov: Vec<f64>,
    pub chol: Cholesky,
    /// Fiducial cosmology; free parameters replace its values.
    pub fiducial: Cosmology<f64>,
    pub params: Vec<Param>,
}

impl ClLikelihood {
    /// Build with the Knox covariance at the fiducial cosmology. `data` of
    /// `None` uses the noiseless fiducial theory.
    pub fn new(
        fiducial: Cosmology<f64>,
        tracers: Vec<Tracer>,
        ell: Vec<f64>,
        f_sky: f64,
        opts: ClOptions,
        data: Option<Vec<f64>>,
        params: Vec<Param>,
    ) -> Result<Self> {
        let cl = angular_cl(&fiducial, &tracers, &ell, &opts)?;
        let noise = angular_cl_noise(&tracers, &ell);
        let total: Vec<Vec<f64>> = cl
            .iter()
            .zip(&noise)
            .map(|(c, n)| c.iter().zip(n).map(|(a, b)| a + b).collect())
            .collect();
        let cov = gaussian_covariance(&total, tracers.len(), &ell, f_sky)?;
        let n = cl.len() * ell.len();
        let chol = Cholesky::new(&cov, n)?;
        let data = match data {
            Some(d) => {
                if d.len() != n {
                    return Err(CosmoError::Input(format!(
                        "data vector has {} entries, expected n_pairs*n_ell = {n}",
                        d.len()
                    )));
                }
                d
            }
            None => cl.concat(),
        };
        Ok(Self {
            tracers,
            ell,
            opts,
            f_sky,
            data,
            cov,
            chol,
            fiducial,
            params,
        })
    }

    /// Cosmology with the free parameters set to `values` (seeded by `seed`).
    pub fn cosmology<T: Scalar>(&self, values: &[T]) -> Cosmology<T> {
        let mut c = self.fiducial.lift::<T>();
        for (p, v) in self.params.iter().zip(values) {
            c.set(*p, *v);
        }
        c
    }

    /// Model mean vector (signal C_ell, pair-major).
    pub fn mean<T: Scalar>(&self, c: &Cosmology<T>) -> Result<Vec<T>> {
        Ok(angular_cl(c, &self.tracers, &self.ell, &self.opts)?.concat())
    }

    pub fn log_likelihood<T: Scalar>(&self, c: &Cosmology<T>) -> Result<T> {
        let mu = self.mean(c)?;
        Ok(gaussian_log_likelihood(&self.data, &mu, &self.chol, false))
    }

    /// log L and its exact gradient with respect to the free parameters:
    /// one forward pass with a vector dual number for up to 6 parameters,
    /// otherwise one pass per parameter (in parallel).
    pub fn value_and_grad(&self, values: &[f64]) -> Result<(f64, Vec<f64>)> {
        match values.len() {
            1 => self.value_and_grad_n::<1>(values),
            2 => self.value_and_grad_n::<2>(values),
            3 => self.value_and_grad_n::<3>(values),
            4 => self.value_and_grad_n::<4>(values),
            5 => self.value_and_grad_n::<5>(values),
            6 => self.value_and_grad_n::<6>(values),
            _ => self.value_and_grad_per_param(values),
        }
    }

    fn value_and_grad_n<const N: usize>(&self, values: &[f64]) -> Result<(f64, Vec<f64>)> {
        let l = self.log_likelihood(&self.cosmology(&crate::duals::seed_gradient::<N>(values)))?;
        Ok((l.re, crate::duals::gradient(&l)))
    }

    /// One Dual64 pass per parameter.
    pub fn value_and_grad_per_param(&self, values: &[f64]) -> Result<(f64, Vec<f64>)> {
        let n = self.params.len();
        let res: Result<Vec<(f64, f64)>> = (0..n)
            .into_par_iter()
            .map(|i| {
                let v: Vec<Dual64> = values
                    .iter()
                    .enumerate()
                    .map(|(j, x)| Dual64::new(*x, if i == j { 1.0 } else { 0.0 }))
                    .collect();
                let l = self.log_likelihood(&self.cosmology(&v))?;
                Ok((l.re, l.eps))
            })
            .collect();
        let res = res?;
        if n == 0 {
            return Ok((self.log_likelihood(&self.cosmology(values))?, vec![]));
        }
        Ok((res[0].0, res.iter().map(|r| r.1).collect()))
    }

    /// Jacobian d mu / d theta `[n_params][n_data]` (exact, forward mode).
    pub fn jacobian(&self, values: &[f64]) -> Result<Vec<Vec<f64>>> {
        (0..self.params.len())
            .into_par_iter()
            .map(|i| {
                let v: Vec<Dual64> = values
                    .iter()
                    .enumerate()
                    .map(|(j, x)| Dual64::new(*x, if i == j { 1.0 } else { 0.0 }))
                    .collect();
                Ok(self
                    .mean(&self.cosmology(&v))?
                    .iter()
                    .map(|d| d.eps)
                    .collect())
            })
            .collect()
    }

    /// Fisher matrix J^T C^-1 J at `values`.
    pub fn fisher(&self, values: &[f64]) -> Result<Vec<Vec<f64>>> {
        let j = self.jacobian(values)?;
        let n = j.len();
        let w: Vec<Vec<f64>> = j.iter().map(|ji| self.chol.forward(ji)).collect();
        Ok((0..n)
            .map(|a| {
                (0..n)
                    .map(|b| w[a].iter().zip(&w[b]).map(|(x, y)| x * y).sum())
                    .collect()
            })
            .collect())
    }

    /// Hessian of log L at `values` (exact, hyper-dual numbers).
    pub fn hessian(&self, values: &[f64]) -> Result<Vec<Vec<f64>>> {
        let n = self.params.len();
        let idx: Vec<(usize, usize)> = (0..n).flat_map(|i| (i..n).map(move |j| (i, j))).collect();
        let vals: Result<Vec<f64>> = idx
            .par_iter()
            .map(|&(a, b)| {
                let v: Vec<HyperDual64> = values
                    .iter()
                    .enumerate()
                    .map(|(j, x)| {
                        HyperDual64::new(
                            *x,
                            if j == a { 1.0 } else { 0.0 },
                            if j == b { 1.0 } else { 0.0 },
                            0.0,
                        )
                    })
                    .collect();
                Ok(self.log_likelihood(&self.cosmology(&v))?.eps1eps2)
            })
            .collect();
        let vals = vals?;
        let mut h = vec![vec![0.0; n]; n];
        for (&(a, b), v) in idx.iter().zip(vals) {
            h[a][b] = v;
            h[b][a] = v;
        }
        Ok(h)
    }
}

/// Fisher matrix F = J^T C^-1 J of `params` at the fiducial cosmology.
pub fn fisher_matrix(like: &ClLikelihood) -> Result<Vec<Vec<f64>>> {
    let v: Vec<f64> = like.params.iter().map(|p| like.fiducial.get(*p)).collect();
    like.fisher(&v)
}

/// Fisher matrix as minus the Hessian of log L, with the data set to the
/// fiducial mean (so it equals J^T C^-1 J exactly).
pub fn fisher_hessian(like: &ClLikelihood) -> Result<Vec<Vec<f64>>> {
    let mut l = like.clone();
    l.data = l.mean(&l.fiducial)?;
    let v: Vec<f64> = l.params.iter().map(|p| l.fiducial.get(*p)).collect();
    Ok(l.hessian(&v)?
        .into_iter()
        .map(|r| r.into_iter().map(|x| -x).collect())
        .collect())
}
