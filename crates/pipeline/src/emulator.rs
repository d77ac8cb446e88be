//! Gaussian likelihoods of summary statistics with emulated means: the
//! standard summary-statistics analysis of simulation-based cosmology.
//!
//! `-2 ln L(theta) = (y - mu(theta))^T C^-1 (y - mu(theta))`, `mu` a
//! quadratic polynomial in the standardised parameters least-squares fitted
//! to training simulations (an emulator), `C` the covariance of the fit's
//! residuals with the Hartlap, Simon & Schneider (2007) factor
//! `(n - d - 2) / (n - 1)` on its inverse. Used for P(k) of fields
//! (`fieldflow calibrate`) and xi(r) + masses of halos (`pointcloud
//! evaluate`).

use anyhow::{anyhow, bail, Result};
use nalgebra::{DMatrix, DVector};
use ndarray::{ArrayView1, ArrayView2};

/// A fitted emulator and covariance.
pub struct QuadraticGaussian {
    theta_mean: Vec<f64>,
    theta_sd: Vec<f64>,
    /// `[features, summaries]`.
    coef: DMatrix<f64>,
    precision: DMatrix<f64>,
}

impl QuadraticGaussian {
    /// Fit on summaries `y` `[n, d]` of simulations at `theta` `[n, p]`;
    /// `what` names the training set in errors.
    pub fn fit(y: &DMatrix<f64>, theta: ArrayView2<f64>, what: &str) -> Result<Self> {
        let (n, p) = theta.dim();
        if n == 0 || y.nrows() != n {
            bail!("{what}: {} summaries for {n} parameter rows", y.nrows());
        }
        let theta_mean: Vec<f64> = (0..p)
            .map(|j| theta.column(j).mean().unwrap_or(0.0))
            .collect();
        let theta_sd: Vec<f64> = (0..p)
            .map(|j| theta.column(j).std(1.0).max(1e-12))
            .collect();
        let mut this = Self {
            theta_mean,
            theta_sd,
            coef: DMatrix::zeros(0, 0),
            precision: DMatrix::zeros(0, 0),
        };
        let d = y.ncols();
        let rows: Vec<Vec<f64>> = theta.outer_iter().map(|t| this.features(t)).collect();
        let x = DMatrix::from_fn(n, rows[0].len(), |i, f| rows[i][f]);
        if n < x.ncols() + d + 3 {
            bail!("{what}: {n} simulations are too few for a covariance of {d} summaries");
        }
        let coef = x
            .clone()
            .svd(true, true)
            .solve(y, 1e-12)
            .map_err(|e| anyhow!("{what}: emulator fit: {e}"))?;
        let r = y - &x * &coef;
        let cov = r.transpose() * &r / (n - x.ncols()) as f64;
        let hartlap = (n - d - 2) as f64 / (n - 1) as f64;
        this.precision = cov
            .cholesky()
            .ok_or_else(|| anyhow!("{what}: the summary covariance is singular"))?
            .inverse()
            * hartlap;
        this.coef = coef;
        Ok(this)
    }

    /// `1, t_j, t_j t_k (j <= k)` of the standardised parameters.
    fn features(&self, theta: ArrayView1<f64>) -> Vec<f64> {
        let t: Vec<f64> = theta
            .iter()
            .enumerate()
            .map(|(j, v)| (v - self.theta_mean[j]) / self.theta_sd[j])
            .collect();
        let mut f = vec![1.0];
        f.extend(&t);
        for j in 0..t.len() {
            for k in j..t.len() {
                f.push(t[j] * t[k]);
            }
        }
        f
    }

    /// `ln L` (up to a constant) of the summaries `y` at every row of `theta`.
    pub fn log_likelihood(&self, y: &[f64], theta: ArrayView2<f64>) -> Vec<f64> {
        let y = DVector::from_column_slice(y);
        theta
            .outer_iter()
            .map(|t| {
                let f = DVector::from_vec(self.features(t));
                let r = &y - self.coef.transpose() * f;
                -0.5 * (r.transpose() * &self.precision * &r)[(0, 0)]
            })
            .collect()
    }
}
