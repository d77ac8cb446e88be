//! Correlated (tomographic) Gaussian and log-normal maps for `n_bins`
//! redshift bins with auto and cross spectra `C_ij(ell)`.
//!
//! Gaussian: for every Fourier mode the `n_bins x n_bins` matrix
//! `C_ij(ell_k) / A` is factored `L L^T` (Cholesky, positive
//! *semi*-definite allowed; an indefinite matrix is a
//! [`FieldError::NotPositiveDefinite`] error) and
//! `f_i = Re IFFT[ sum_j L_ij(k) FFT(w_j) ]` for independent white-noise maps
//! `w_j`, so `<FFT(f_i) FFT(f_j)*> = n^2 C_ij / A` exactly.
//!
//! Log-normal (Xavier et al. 2016): `kappa_i = s_i (exp(g_i - sigma_i^2/2) - 1)`
//! with the Gaussian cross spectra obtained on the periodic pixel grid,
//! `C^g_ij = A FFT[ ln(1 + IFFT[C_ij/A] / (s_i s_j)) ]`; each per-mode
//! Gaussian matrix is made positive semi-definite by clipping negative
//! eigenvalues to zero (counted in [`TomoField::clipped`]) and factored by its
//! symmetric square root.

use crate::error::{check_len, FieldError, Result};
use crate::fft2::{Fft2, C64};
use crate::grf2::{lognormal_gaussian_power, white_noise_rng};
use crate::grid2::Grid2;
use crate::linalg::{cholesky_psd, sym_eigen};
use crate::spectrum::ClMatrixTable;
use rayon::prelude::*;

/// Which one-point distribution the maps follow.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldKind {
    Gaussian,
    /// Log-normal with one shift parameter per bin.
    LogNormal {
        shifts: Vec<f64>,
    },
}

/// A tomographic map generator (plans and per-mode factors cached).
#[derive(Debug, Clone)]
pub struct TomoField {
    grid: Grid2,
    fft: Fft2,
    nb: usize,
    /// Per-mode factor, `[npix][nb*nb]` row-major, in pixel units (`C/A`).
    factor: Vec<Vec<f64>>,
    kind: FieldKind,
    sigma2: Vec<f64>,
    clipped: usize,
    clipped_frac: f64,
}

impl TomoField {
    pub fn new(grid: Grid2, cls: &ClMatrixTable, kind: FieldKind) -> Result<Self> {
        let nb = cls.n_bins();
        let np = grid.npix();
        let fft = Fft2::new(grid.n);
        let a = grid.pixel_area_sr();
        let ell = grid.ell_abs();
        // Per-pair per-mode power (sr units) of the field that is factored.
        let mut pair_power: Vec<Vec<f64>> = Vec::with_capacity(nb * nb);
        for i in 0..nb {
            for j in 0..nb {
                let t = cls.pair(i, j);
                let mut p: Vec<f64> = ell.iter().map(|&l| t.eval(l)).collect();
                p[0] = 0.0;
                pair_power.push(p);
            }
        }
        let mut clipped = 0;
        let mut clipped_frac = 0.0;
        let factor: Vec<Vec<f64>> = match &kind {
            FieldKind::Gaussian => (0..np)
                .into_par_iter()
                .map(|k| {
                    let m: Vec<f64> = (0..nb * nb).map(|ij| pair_power[ij][k] / a).collect();
                    cholesky_psd(&m, nb, 1e-10).map_err(|pivot| FieldError::NotPositiveDefinite {
                        ell: ell[k],
                        pivot: pivot * a,
                    })
                })
                .collect::<Result<Vec<_>>>()?,
            FieldKind::LogNormal { shifts } => {
                check_len("log-normal shifts", nb, shifts.len())?;
                if let Some(s) = shifts.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
                    return Err(FieldError::Value {
                        what: "log-normal shift".into(),
                        msg: format!("must be positive, got {s}"),
                    });
                }
                let mut gp = vec![Vec::new(); nb * nb];
                for i in 0..nb {
                    for j in i..nb {
                        let (g, _c) = lognormal_gaussian_power(
                            &grid,
                            &fft,
                            &pair_power[i * nb + j],
                            shifts[i],
                            shifts[j],
                            (i, j),
                        )?;
                        // Symmetrise under k -> -k against roundoff.
                        let g: Vec<f64> = (0..np)
                            .map(|k| 0.5 * (g[k] + g[grid.neg_index(k)]))
                            .collect();
                        gp[i * nb + j] = g.clone();
                        gp[j * nb + i] = g;
                    }
                }
                let gmax = (0..nb)
                    .map(|i| gp[i * nb + i].iter().fold(0.0f64, |m, v| m.max(v.abs())))
                    .fold(0.0f64, f64::max)
                    / a;
                let res: Vec<(Vec<f64>, usize, f64)> = (0..np)
                    .into_par_iter()
                    .map(|k| {
                        let m: Vec<f64> = (0..nb * nb).map(|ij| gp[ij][k] / a).collect();
                        let (w, v) = sym_eigen(&m, nb);
                        let neg = if k == 0 {
                            0
                        } else {
                            w.iter().filter(|&&x| x < -1e-10 * gmax).count()
                        };
                        let negsum: f64 = if k == 0 {
                            0.0
                        } else {
                            w.iter().filter(|&&x| x < 0.0).map(|x| -x).sum()
                        };
                        let mut f = vec![0.0; nb * nb];
                        for i in 0..nb {
                            for j in 0..nb {
                                f[i * nb + j] = (0..nb)
                                    .map(|q| v[i * nb + q] * w[q].max(0.0).sqrt() * v[j * nb + q])
                                    .sum();
                            }
                        }
                        (f, neg, negsum)
                    })
                    .collect();
                clipped = res.iter().map(|r| r.1).sum();
                let total: f64 = (0..nb)
                    .map(|i| gp[i * nb + i].iter().sum::<f64>() / a)
                    .sum();
                clipped_frac = res.iter().map(|r| r.2).sum::<f64>() / total.max(f64::MIN_POSITIVE);
                res.into_iter().map(|r| r.0).collect()
            }
        };
        let sigma2 = (0..nb)
            .map(|i| {
                factor
                    .iter()
                    .map(|f| (0..nb).map(|q| f[i * nb + q].powi(2)).sum::<f64>())
                    .sum::<f64>()
                    / np as f64
            })
            .collect();
        Ok(Self {
            grid,
            fft,
            nb,
            factor,
            kind,
            sigma2,
            clipped,
            clipped_frac,
        })
    }
    pub fn grid(&self) -> &Grid2 {
        &self.grid
    }
    pub fn n_bins(&self) -> usize {
        self.nb
    }
    /// Negative Gaussian eigenvalues clipped (log-normal only).
    pub fn clipped(&self) -> usize {
        self.clipped
    }
    /// Clipped negative Gaussian eigenvalues as a fraction of the total
    /// Gaussian power (trace summed over modes); log-normal only.
    pub fn clipped_fraction(&self) -> f64 {
        self.clipped_frac
    }
    /// Pixel variance of the underlying Gaussian field per bin.
    pub fn gaussian_variance(&self) -> &[f64] {
        &self.sigma2
    }
    /// Expected one-point variance of the output maps per bin.
    pub fn variance(&self) -> Vec<f64> {
        match &self.kind {
            FieldKind::Gaussian => self.sigma2.clone(),
            FieldKind::LogNormal { shifts } => shifts
                .iter()
                .zip(&self.sigma2)
                .map(|(s, v)| s * s * v.exp_m1())
                .collect(),
        }
    }
    /// Per-mode mixing `out_i = Re IFFT[ sum_j M_ij(k) FFT(x_j) ]` with
    /// `M = L` (forward) or `M = L^T` (adjoint).
    fn mix(&self, x: &[Vec<f64>], transpose: bool) -> Result<Vec<Vec<f64>>> {
        check_len("white-noise maps", self.nb, x.len())?;
        let np = self.grid.npix();
        let xh = x
            .iter()
            .map(|v| {
                check_len("map", np, v.len())?;
                self.fft.forward_real(v)
            })
            .collect::<Result<Vec<_>>>()?;
        let nb = self.nb;
        (0..nb)
            .map(|i| {
                let b: Vec<C64> = (0..np)
                    .into_par_iter()
                    .map(|k| {
                        (0..nb)
                            .map(|j| {
                                xh[j][k]
                                    * if transpose {
                                        self.factor[k][j * nb + i]
                                    } else {
                                        self.factor[k][i * nb + j]
                                    }
                            })
                            .sum()
                    })
                    .collect();
                self.fft.inverse_real(b)
            })
            .collect()
    }
    /// Maps `[n_bins][npix]` from `n_bins` white-noise maps.
    pub fn maps_from_white(&self, w: &[Vec<f64>]) -> Result<Vec<Vec<f64>>> {
        let g = self.mix(w, false)?;
        Ok(match &self.kind {
            FieldKind::Gaussian => g,
            FieldKind::LogNormal { shifts } => g
                .into_iter()
                .enumerate()
                .map(|(i, g)| {
                    let (s, h) = (shifts[i], 0.5 * self.sigma2[i]);
                    g.into_iter().map(|x| s * (x - h).exp_m1()).collect()
                })
                .collect(),
        })
    }
    /// VJP with respect to the white-noise maps: `L^T` per mode (after the
    /// chain rule through `s_i exp(g_i - sigma_i^2/2)` for log-normal maps).
    pub fn vjp_white(&self, w: &[Vec<f64>], cot: &[Vec<f64>]) -> Result<Vec<Vec<f64>>> {
        check_len("cotangent maps", self.nb, cot.len())?;
        match &self.kind {
            FieldKind::Gaussian => self.mix(cot, true),
            FieldKind::LogNormal { shifts } => {
                let g = self.mix(w, false)?;
                let gb: Vec<Vec<f64>> = (0..self.nb)
                    .map(|i| {
                        check_len("cotangent", g[i].len(), cot[i].len())?;
                        let (s, h) = (shifts[i], 0.5 * self.sigma2[i]);
                        Ok(g[i]
                            .iter()
                            .zip(&cot[i])
                            .map(|(x, c)| c * s * (x - h).exp())
                            .collect())
                    })
                    .collect::<Result<_>>()?;
                self.mix(&gb, true)
            }
        }
    }
    /// Maps from a random generator (draws `n_bins` white-noise maps).
    pub fn sample<R: rand::Rng + ?Sized>(&self, rng: &mut R) -> Vec<Vec<f64>> {
        let w: Vec<Vec<f64>> = (0..self.nb)
            .map(|_| white_noise_rng(self.grid.npix(), rng))
            .collect();
        self.maps_from_white(&w).expect("shapes are consistent")
    }
}
