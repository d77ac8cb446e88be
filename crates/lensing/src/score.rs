//! Score priors for convergence maps and the annealed shear likelihood.
//!
//! A score prior gives `s(kappa, sigma) = grad_kappa log p_sigma(kappa)`, the
//! score of the prior convolved with white noise of variance `sigma^2` per
//! pixel, `p_sigma = p * N(0, sigma^2 I)` (Song & Ermon 2019; Song et al.
//! 2021). It is either analytic ([`GaussianScore`], a Gaussian random field
//! with a theory `C_ell`) or learned by denoising score matching (the U-Net
//! of `cosmodiff-score`, which implements [`MapScore`]).
//!
//! The noise levels follow an SDE ([`Sde`]): variance exploding,
//! `sigma(t) = sigma_min (sigma_max / sigma_min)^t`, or variance preserving,
//! `x_t = alpha(t) x_0 + s(t) z` with `alpha^2 = exp(-int_0^t beta)` and
//! `beta(t) = beta_min + t (beta_max - beta_min)`, which in the scaled
//! variable `x_t / alpha(t)` *is* a variance-exploding process with
//! `sigma(t) = sqrt(1/alpha^2 - 1)` (Karras et al. 2022, sec. 2). Both are
//! therefore trained and sampled in the variance-exploding form; they differ
//! in the distribution of noise levels.
//!
//! The annealed likelihood of shear data `gamma = P kappa + n`,
//! `n ~ N(0, Sigma)` (per-pixel, per-component variance, masked pixels
//! `Sigma = inf`) at noise level `sigma` is `N(gamma; P kappa, Sigma + sigma^2 I)`
//! (Remy et al. 2022, A&A 672, A51, eq. 12), with score
//! `P^T (Sigma + sigma^2)^{-1} (gamma - P kappa)`; it is the true likelihood
//! at `sigma = 0`.

use crate::error::{check_len, value, Result};
use crate::noise::inverse_variance;
use crate::shear::ShearOp;
use cosmodiff_field::Grid2;
use rayon::prelude::*;

/// Score of a map prior convolved with `N(0, sigma^2 I)`, for a batch of maps
/// (each `npix * npix`, row-major).
pub trait MapScore: Sync {
    /// Side of the square maps the prior is defined on.
    fn side(&self) -> usize;
    /// `grad log p_sigma(x)` for every map of the batch.
    fn score(&self, maps: &[Vec<f64>], sigma: f64) -> Result<Vec<Vec<f64>>>;
}

/// Noise schedule of the diffusion, in variance-exploding form.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sde {
    /// `sigma(t) = sigma_min (sigma_max/sigma_min)^t`, `t in [0, 1]`.
    Ve { sigma_min: f64, sigma_max: f64 },
    /// `sigma(t) = sqrt(exp(beta_min t + (beta_max - beta_min) t^2 / 2) - 1)`,
    /// `t in [t_min, 1]` (Song et al. 2021 use `beta_min = 0.1`, `beta_max = 20`).
    Vp {
        beta_min: f64,
        beta_max: f64,
        t_min: f64,
    },
}

impl Sde {
    pub fn validate(&self) -> Result<()> {
        let ok = match *self {
            Sde::Ve {
                sigma_min,
                sigma_max,
            } => sigma_min > 0.0 && sigma_max > sigma_min && sigma_max.is_finite(),
            Sde::Vp {
                beta_min,
                beta_max,
                t_min,
            } => {
                beta_min >= 0.0
                    && beta_max > beta_min
                    && beta_max < 1e3
                    && t_min > 0.0
                    && t_min < 1.0
            }
        };
        if !ok {
            let (got, need) = match *self {
                Sde::Ve {
                    sigma_min,
                    sigma_max,
                } => (
                    format!("VE with sigma_min = {sigma_min}, sigma_max = {sigma_max}"),
                    "0 < sigma_min < sigma_max",
                ),
                Sde::Vp {
                    beta_min,
                    beta_max,
                    t_min,
                } => (
                    format!(
                        "VP with beta_min = {beta_min}, beta_max = {beta_max}, t_min = {t_min}"
                    ),
                    "0 <= beta_min < beta_max < 1000 and 0 < t_min < 1",
                ),
            };
            return Err(value("noise schedule", format!("{got}: need {need}")));
        }
        Ok(())
    }

    /// Noise standard deviation at diffusion time `t in [0, 1]`.
    pub fn sigma(&self, t: f64) -> f64 {
        match *self {
            Sde::Ve {
                sigma_min,
                sigma_max,
            } => sigma_min * (sigma_max / sigma_min).powf(t),
            Sde::Vp {
                beta_min,
                beta_max,
                t_min,
            } => {
                let t = t_min + (1.0 - t_min) * t;
                (beta_min * t + 0.5 * (beta_max - beta_min) * t * t)
                    .exp_m1()
                    .sqrt()
            }
        }
    }
    pub fn sigma_min(&self) -> f64 {
        self.sigma(0.0)
    }
    pub fn sigma_max(&self) -> f64 {
        self.sigma(1.0)
    }

    /// `n >= 2` decreasing noise levels from `sigma_max` to `sigma_min`,
    /// uniform in diffusion time.
    pub fn levels(&self, n: usize) -> Vec<f64> {
        let n = n.max(2);
        (0..n)
            .map(|i| self.sigma(1.0 - i as f64 / (n - 1) as f64))
            .collect()
    }
}

/// Analytic score of a zero-mean Gaussian random field with per-mode power
/// `S_k = C(ell_k) / A_pix` (unitary FFT): `s(x, sigma) = -F^-1[x_k / (S_k + sigma^2)]`.
/// The `ell = 0` mode has zero prior power (zero-mean maps).
#[derive(Debug, Clone)]
pub struct GaussianScore {
    grid: Grid2,
    op: ShearOp,
    s: Vec<f64>,
}

impl GaussianScore {
    /// From per-mode power `C(ell_k)` in sr (row-major, e.g. `ClTable::on_grid`).
    pub fn new(grid: Grid2, mut power: Vec<f64>) -> Result<Self> {
        check_len("prior power", grid.npix(), power.len())?;
        if let Some(i) = power.iter().position(|p| !(p.is_finite() && *p >= 0.0)) {
            return Err(value(
                "prior power",
                format!("must be finite and >= 0 (mode {i})"),
            ));
        }
        cosmodiff_field::grf2::check_even(&grid, &power, "prior power")?;
        power[0] = 0.0;
        let a = grid.pixel_area_sr();
        Ok(Self {
            grid,
            op: ShearOp::new(grid),
            s: power.iter().map(|p| p / a).collect(),
        })
    }
    /// From per-mode variance in pixel units (unitary FFT, row-major);
    /// the `ell = 0` entry is ignored (zero-mean maps).
    pub fn from_mode_variance(grid: Grid2, s: Vec<f64>) -> Result<Self> {
        let a = grid.pixel_area_sr();
        Self::new(grid, s.into_iter().map(|v| v * a).collect())
    }
    /// Per-mode prior variance in pixel units (unitary FFT).
    pub fn mode_variance(&self) -> &[f64] {
        &self.s
    }
    /// Per-pixel prior variance, `sum_k S_k / npix`.
    pub fn pixel_variance(&self) -> f64 {
        self.s.iter().sum::<f64>() / self.grid.npix() as f64
    }
}

impl MapScore for GaussianScore {
    fn side(&self) -> usize {
        self.grid.n
    }
    fn score(&self, maps: &[Vec<f64>], sigma: f64) -> Result<Vec<Vec<f64>>> {
        if !(sigma > 0.0) {
            return Err(value(
                "noise level",
                format!("sigma must be > 0, got {sigma}"),
            ));
        }
        // One filter for the whole batch: -1 / (S_k + sigma^2).
        let s2 = sigma * sigma;
        let h: Vec<f64> = self.s.iter().map(|s| -1.0 / (s + s2)).collect();
        maps.par_iter()
            .map(|m| Ok(self.op.fft().filter_real(m, &h)?))
            .collect()
    }
}

/// Shear data and its annealed Gaussian likelihood.
#[derive(Debug, Clone)]
pub struct ShearLikelihood {
    op: ShearOp,
    g1: Vec<f64>,
    g2: Vec<f64>,
    /// `Sigma` per pixel (per component), `inf` where unobserved.
    var: Vec<f64>,
}

impl ShearLikelihood {
    /// `noise_std` per pixel and component (`inf` = unobserved), optional mask.
    pub fn new(
        grid: Grid2,
        g1: &[f64],
        g2: &[f64],
        noise_std: &[f64],
        mask: Option<&[f64]>,
    ) -> Result<Self> {
        let np = grid.npix();
        check_len("gamma1", np, g1.len())?;
        check_len("gamma2", np, g2.len())?;
        let w = inverse_variance(noise_std, mask)?;
        if w.iter().all(|&w| w == 0.0) {
            return Err(value("mask", "no observed pixels"));
        }
        let var: Vec<f64> = w
            .iter()
            .map(|&w| if w > 0.0 { 1.0 / w } else { f64::INFINITY })
            .collect();
        let clean = |g: &[f64]| -> Vec<f64> {
            g.iter()
                .zip(&var)
                .map(|(g, v)| if v.is_finite() { *g } else { 0.0 })
                .collect()
        };
        // unobserved pixels may hold anything (NaN included); observed ones not
        if let Some(i) = g1
            .iter()
            .chain(g2)
            .enumerate()
            .position(|(i, g)| !g.is_finite() && var[i % np].is_finite())
        {
            return Err(value(
                "shear",
                format!("non-finite value at observed pixel {}", i % np),
            ));
        }
        Ok(Self {
            op: ShearOp::new(grid),
            g1: clean(g1),
            g2: clean(g2),
            var,
        })
    }
    pub fn grid(&self) -> &Grid2 {
        self.op.grid()
    }
    /// Smallest per-pixel noise variance of the observed pixels.
    pub fn min_variance(&self) -> f64 {
        self.var.iter().cloned().fold(f64::INFINITY, f64::min)
    }
    /// `log N(gamma; P kappa, Sigma)` up to a constant,
    /// `-1/2 sum_i |gamma_i - (P kappa)_i|^2 / Sigma_i` over observed pixels,
    /// and its gradient `P^T Sigma^-1 (gamma - P kappa)` in kappa.
    pub fn log_likelihood(&self, kappa: &[f64]) -> Result<(f64, Vec<f64>)> {
        let (p1, p2) = self.op.forward(kappa, None)?;
        let mut logl = 0.0;
        let (r1, r2): (Vec<f64>, Vec<f64>) = (0..p1.len())
            .map(|i| {
                let w = 1.0 / self.var[i];
                let (d1, d2) = (self.g1[i] - p1[i], self.g2[i] - p2[i]);
                logl -= 0.5 * w * (d1 * d1 + d2 * d2);
                (d1 * w, d2 * w)
            })
            .unzip();
        Ok((logl, self.op.adjoint_e(&r1, &r2)?))
    }
    /// `grad_kappa log N(gamma; P kappa, Sigma + sigma^2 I)`.
    pub fn score(&self, kappa: &[f64], sigma: f64) -> Result<Vec<f64>> {
        let (p1, p2) = self.op.forward(kappa, None)?;
        let s2 = sigma * sigma;
        let (r1, r2): (Vec<f64>, Vec<f64>) = (0..p1.len())
            .map(|i| {
                let w = 1.0 / (self.var[i] + s2);
                ((self.g1[i] - p1[i]) * w, (self.g2[i] - p2[i]) * w)
            })
            .unzip();
        self.op.adjoint_e(&r1, &r2)
    }
    /// The exact Gaussian posterior for a [`GaussianScore`] prior when the noise
    /// is uniform and nothing is masked (posterior diagonal in Fourier space):
    /// per-pixel posterior mean map and the (uniform) per-pixel posterior std.
    /// `None` if the noise is not uniform.
    pub fn gaussian_posterior(&self, prior: &GaussianScore) -> Result<Option<(Vec<f64>, f64)>> {
        let v0 = self.var[0];
        if !self.var.iter().all(|&v| v == v0) || !v0.is_finite() {
            return Ok(None);
        }
        let np = self.grid().npix();
        let p2 = self.op.kernel_norm2();
        let post: Vec<f64> = prior
            .s
            .iter()
            .zip(&p2)
            .map(|(&s, &q)| {
                if s > 0.0 {
                    1.0 / (1.0 / s + q / v0)
                } else {
                    0.0
                }
            })
            .collect();
        let h: Vec<f64> = post.iter().map(|c| c / v0).collect();
        let pt = self.op.adjoint_e(&self.g1, &self.g2)?;
        let mean = self.op.fft().filter_real(&pt, &h)?;
        let std = (post.iter().sum::<f64>() / np as f64).sqrt();
        Ok(Some((mean, std)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unobserved pixels may hold NaN (they are zeroed); a NaN in an
    /// observed pixel is an error wherever it sits, also after a NaN in an
    /// unobserved one.
    #[test]
    fn likelihood_takes_nan_only_in_unobserved_pixels() {
        let grid = Grid2::new(8, 2.0).unwrap();
        let np = grid.npix();
        let mut noise = vec![0.02; np];
        noise[0] = f64::INFINITY;
        let mut g1 = vec![0.01; np];
        let g2 = vec![0.0; np];
        g1[0] = f64::NAN;
        let lik = ShearLikelihood::new(grid, &g1, &g2, &noise, None).unwrap();
        let (l, g) = lik.log_likelihood(&vec![0.0; np]).unwrap();
        assert!(l.is_finite() && g.iter().all(|v| v.is_finite()));
        g1[5] = f64::NAN;
        let e = ShearLikelihood::new(grid, &g1, &g2, &noise, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("observed pixel 5"), "{e}");
        // the same through the mask
        let mut mask = vec![1.0; np];
        mask[5] = 0.0;
        assert!(ShearLikelihood::new(grid, &g1, &g2, &noise, Some(&mask)).is_ok());
    }
}
