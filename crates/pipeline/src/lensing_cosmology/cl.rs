//! The power-spectrum posterior: binned auto and cross `C_ell` of the
//! maps with a Gaussian likelihood (the "C_ell" column of the benchmark).
//!
//! - Bins: sbi_lens' edges `100, 150, ..., 4950` (empty bins dropped).
//! - Estimator: [`cosmodiff_field::cl2::cl_cross`] for every pair `(i, j)`,
//!   noise not subtracted, data vector pair-major.
//! - Mean: the simulator's own per-mode spectrum averaged over the modes of
//!   each bin (the exact expectation of the estimator for these maps), plus
//!   the white shape-noise power `sigma_b^2 A_pix` on the auto spectra.
//! - Covariance: Gaussian (Knox) per bin at the fiducial cosmology,
//!   `Cov[C^ij, C^kl] = (C^ik C^jl + C^il C^jk) / N_modes` with noise;
//!   or from simulations: the scatter of each simulation's spectra about
//!   its own mean, with the Hartlap et al. (2007) factor
//!   `(N - d - 2) / (N - 1)` on the precision.
//! - Gradients in theta from the dual-number Jacobian of `C_ell`.

use super::model::FieldModel;
use anyhow::{bail, Result};
use cosmodiff_field::cl2::{cl_cross, EllBins};
use cosmodiff_field::fft2::Fft2;
use cosmodiff_infer::{DensityError, LogDensity};
use cosmodiff_lensing::tomo_lognormal::pairs;

/// The binned-spectrum likelihood of one observed map set.
pub struct ClMaps<'a> {
    model: &'a FieldModel,
    fft: Fft2,
    bins: EllBins,
    /// Per kept bin: `(node, weight)` of the mean over its modes.
    weights: Vec<Vec<(usize, f64)>>,
    /// Per kept bin: number of modes (full plane).
    n_modes: Vec<usize>,
    /// Kept bins (indices into `bins`).
    kept: Vec<usize>,
    noise: Vec<f64>,
    data: Vec<f64>,
    /// Precision matrix, row-major `d x d`.
    precision: Vec<f64>,
}

/// sbi_lens' multipole bin edges, `np.arange(100, 5000, 50)`.
pub fn benchmark_bins() -> EllBins {
    EllBins::from_edges((0..98).map(|i| 100.0 + 50.0 * i as f64).collect())
        .expect("increasing edges")
}

impl<'a> ClMaps<'a> {
    /// The data vector of `maps` (`[n_bins][npix^2]`), with the analytic
    /// covariance at the fiducial cosmology.
    pub fn new(model: &'a FieldModel, maps: &[Vec<f64>]) -> Result<Self> {
        let mut s = Self::empty(model)?;
        s.data = s.measure(maps)?;
        let mean = s.mean(&model.setup.fiducial.clone())?.0;
        s.precision = invert(&s.knox(&mean), s.data.len())?;
        Ok(s)
    }

    /// As [`ClMaps::new`], with the covariance of simulated spectra about
    /// their own means (`sims`: `(theta, maps)`), Hartlap-corrected.
    pub fn with_simulations(
        model: &'a FieldModel,
        maps: &[Vec<f64>],
        sims: &[super::model::Simulation],
    ) -> Result<Self> {
        let mut s = Self::empty(model)?;
        s.data = s.measure(maps)?;
        let d = s.data.len();
        let n = sims.len();
        if n < d + 3 {
            bail!(
                "--sims: {n} simulations for a {d}-element data vector; the Hartlap-corrected covariance needs at least {}",
                d + 3
            );
        }
        let resid: Vec<Vec<f64>> = sims
            .iter()
            .map(|(theta, m)| {
                let c = s.measure(m)?;
                let mu = s.mean(theta)?.0;
                Ok(c.iter().zip(&mu).map(|(a, b)| a - b).collect())
            })
            .collect::<Result<_>>()?;
        let avg: Vec<f64> = (0..d)
            .map(|i| resid.iter().map(|r| r[i]).sum::<f64>() / n as f64)
            .collect();
        let mut cov = vec![0.0; d * d];
        for r in &resid {
            for i in 0..d {
                let a = r[i] - avg[i];
                for j in 0..d {
                    cov[i * d + j] += a * (r[j] - avg[j]) / (n as f64 - 1.0);
                }
            }
        }
        let hartlap = (n as f64 - d as f64 - 2.0) / (n as f64 - 1.0);
        s.precision = invert(&cov, d)?.into_iter().map(|v| v * hartlap).collect();
        Ok(s)
    }

    fn empty(model: &'a FieldModel) -> Result<Self> {
        let grid = *model.simulator().grid();
        let bins = benchmark_bins();
        let ell = grid.ell_abs();
        let interp = model.simulator().mode_interp();
        let nbin = bins.nbins();
        let mut acc: Vec<std::collections::BTreeMap<usize, f64>> = vec![Default::default(); nbin];
        let mut n_modes = vec![0usize; nbin];
        for (k, &l) in ell.iter().enumerate().skip(1) {
            let e = &bins.edges;
            if l < e[0] || l >= e[nbin] {
                continue;
            }
            let b = e.partition_point(|&x| x <= l) - 1;
            let (a, c, t) = interp[k];
            *acc[b].entry(a).or_default() += 1.0 - t;
            *acc[b].entry(c).or_default() += t;
            n_modes[b] += 1;
        }
        let kept: Vec<usize> = (0..nbin).filter(|&b| n_modes[b] > 0).collect();
        let weights = kept
            .iter()
            .map(|&b| {
                acc[b]
                    .iter()
                    .map(|(&n, &w)| (n, w / n_modes[b] as f64))
                    .collect()
            })
            .collect();
        let a_pix = grid.pixel_area_sr();
        let noise = model.noise_sd().iter().map(|s| s * s * a_pix).collect();
        Ok(Self {
            model,
            fft: Fft2::new(grid.n),
            bins,
            weights,
            n_modes: kept.iter().map(|&b| n_modes[b]).collect(),
            kept,
            noise,
            data: vec![],
            precision: vec![],
        })
    }

    /// Length of the data vector (`n_pairs x n_kept_bins`).
    pub fn len(&self) -> usize {
        self.data.len()
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    pub fn data(&self) -> &[f64] {
        &self.data
    }
    /// Shape-noise power `sigma_b^2 A_pix` added to the auto spectra of bin `b`.
    pub fn noise_power(&self) -> &[f64] {
        &self.noise
    }
    /// Number of kept multipole bins (per pair).
    pub fn n_ell_bins(&self) -> usize {
        self.kept.len()
    }

    /// Binned auto and cross spectra of `maps`, pair-major.
    pub fn measure(&self, maps: &[Vec<f64>]) -> Result<Vec<f64>> {
        let grid = self.model.simulator().grid();
        let mut out = vec![];
        for (i, j) in pairs(maps.len()) {
            let c = cl_cross(grid, &self.fft, &maps[i], &maps[j], &self.bins, None)?;
            out.extend(self.kept.iter().map(|&b| c.cl[b]));
        }
        Ok(out)
    }

    /// Mean data vector at `theta` and its Jacobian `[d][n_params]`.
    pub fn mean(&self, theta: &[f64]) -> Result<(Vec<f64>, Vec<Vec<f64>>)> {
        let setup = &self.model.setup;
        let (cl, jac) = self.model.spectra(theta, true)?;
        let jac = jac.expect("asked for the Jacobian");
        let np = theta.len();
        let mut mean = vec![];
        let mut dmean = vec![];
        for (p, (i, j)) in pairs(setup.n_bins()).into_iter().enumerate() {
            for w in &self.weights {
                let mut m = if i == j { self.noise[i] } else { 0.0 };
                let mut g = vec![0.0; np];
                for &(n, wt) in w {
                    m += wt * cl[p][n];
                    for (gk, jk) in g.iter_mut().zip(&jac[p][n]) {
                        *gk += wt * jk;
                    }
                }
                mean.push(m);
                dmean.push(g);
            }
        }
        Ok((mean, dmean))
    }

    /// Gaussian covariance of the binned spectra for the mean `mean`.
    fn knox(&self, mean: &[f64]) -> Vec<f64> {
        let nb = self.model.setup.n_bins();
        let nk = self.kept.len();
        let prs = pairs(nb);
        let pidx = |a: usize, b: usize| {
            let (a, b) = (a.min(b), a.max(b));
            prs.iter().position(|&p| p == (a, b)).unwrap()
        };
        let d = mean.len();
        let mut cov = vec![0.0; d * d];
        for (p, &(i, j)) in prs.iter().enumerate() {
            for (q, &(k, l)) in prs.iter().enumerate() {
                for b in 0..nk {
                    let c = |x: usize, y: usize| mean[pidx(x, y) * nk + b];
                    cov[(p * nk + b) * d + q * nk + b] =
                        (c(i, k) * c(j, l) + c(i, l) * c(j, k)) / self.n_modes[b] as f64;
                }
            }
        }
        cov
    }
}

/// Inverse of a symmetric positive-definite matrix (Cholesky).
fn invert(a: &[f64], n: usize) -> Result<Vec<f64>> {
    let m = nalgebra::DMatrix::from_row_slice(n, n, a);
    let c = m
        .cholesky()
        .ok_or_else(|| anyhow::anyhow!("the C_ell covariance is not positive definite"))?;
    let inv = c.inverse();
    Ok((0..n * n).map(|k| inv[(k / n, k % n)]).collect())
}

impl LogDensity for ClMaps<'_> {
    type Error = DensityError;
    fn dim(&self) -> usize {
        self.model.setup.n_params()
    }
    fn names(&self) -> Vec<String> {
        self.model
            .setup
            .names
            .iter()
            .map(|s| s.to_string())
            .collect()
    }
    /// `-1/2 r^T P r`, `r = data - mean(theta)`; gradient `J^T P r`.
    fn logp_and_grad(&self, x: &[f64], grad: &mut [f64]) -> Result<f64, DensityError> {
        let (mean, jac) = self.mean(x).map_err(|e| DensityError(format!("{e:#}")))?;
        let d = mean.len();
        let r: Vec<f64> = self.data.iter().zip(&mean).map(|(a, b)| a - b).collect();
        let pr: Vec<f64> = (0..d)
            .map(|i| (0..d).map(|j| self.precision[i * d + j] * r[j]).sum())
            .collect();
        grad.iter_mut().for_each(|g| *g = 0.0);
        for (row, p) in jac.iter().zip(&pr) {
            for (g, j) in grad.iter_mut().zip(row) {
                *g += j * p;
            }
        }
        Ok(-0.5 * r.iter().zip(&pr).map(|(a, b)| a * b).sum::<f64>())
    }
}
