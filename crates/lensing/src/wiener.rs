//! Wiener-filter mass maps for masked shear data with inhomogeneous noise,
//! exact by conjugate gradients, fast by the messenger field, and Wiener
//! posterior samples (constrained realisations).
//!
//! # Model
//! `d = P kappa_E + n` with `d = (gamma_1, gamma_2)` per pixel, `P` the
//! E-mode shear operator ([`crate::shear::ShearOp`]), noise covariance `N`
//! diagonal in pixels (per-component variance, infinite where masked) and a
//! Gaussian prior `kappa_E ~ N(0, S)` with `S` diagonal in Fourier space,
//! `S = IFFT diag(C_ell / A_pix) FFT` (pixel units). The posterior is Gaussian
//! with mean (the Wiener filter) and covariance
//!
//! `kappa_WF = (S^-1 + P^T N^-1 P)^-1 P^T N^-1 d`, `Cov = (S^-1 + P^T N^-1 P)^-1`.
//!
//! # Conjugate gradients (the reference)
//! Solved in the whitened variable `kappa = S^{1/2} xi`:
//! `(I + S^{1/2} P^T N^-1 P S^{1/2}) xi = S^{1/2} P^T N^-1 d`, which is SPD,
//! well conditioned and needs no `S^-1` (modes with zero prior power, like
//! `ell = 0`, are simply absent). As used for the DES SV mass maps (Jeffrey
//! et al. 2018, MNRAS 479, 2871).
//!
//! # Messenger field (Elsner & Wandelt 2013, A&A 549, A111)
//! With `tau = min N` and `Nbar = N - tau I`, the auxiliary field `t`
//! (covariance `lambda tau I`) alternates a pixel-space and a Fourier-space
//! update, both diagonal:
//!
//! `t = (Nbar^-1 d + (lambda tau)^-1 P s) / (Nbar^-1 + (lambda tau)^-1)`,
//! `s_hat = S conj(P) t_hat / (lambda tau + S |P|^2)` (E part),
//!
//! with the cooling parameter `lambda` decreased geometrically to 1; the fixed
//! point at `lambda = 1` is the Wiener filter (Jeffrey et al. 2018 used this
//! for shear). Masked pixels have `Nbar^-1 = 0`.
//!
//! # Constrained realisations (Hoffman & Ribak 1991, ApJ 380, L5)
//! `kappa_s = kappa_WF(d) + s' - kappa_WF(P s' + n')` with `s' ~ S`,
//! `n' ~ N`, is an exact posterior sample.

use crate::error::{check_len, value, LensingError, Result};
use crate::noise::inverse_variance;
use crate::shear::ShearOp;
use cosmodiff_field::grf2::white_noise_rng;
use cosmodiff_field::{ClTable, Grid2};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

/// Result of an iterative solve.
#[derive(Debug, Clone)]
pub struct Solve {
    pub kappa: Vec<f64>,
    pub iterations: usize,
    /// Relative residual (CG) or relative last update (messenger).
    pub residual: f64,
}

/// Messenger-field settings.
#[derive(Debug, Clone, Copy)]
pub struct MessengerOpts {
    /// Initial cooling parameter `lambda_0 >= 1`.
    pub lambda0: f64,
    /// Geometric cooling factor per iteration (0 < f < 1).
    pub cooling: f64,
    /// Stop at `lambda = 1` once the rms update is below `tol` times the rms map.
    pub tol: f64,
    pub max_iter: usize,
}

impl Default for MessengerOpts {
    fn default() -> Self {
        Self {
            lambda0: 1e3,
            cooling: 0.8,
            tol: 1e-7,
            max_iter: 20000,
        }
    }
}

/// Wiener filter for one map geometry, prior and noise model.
#[derive(Debug, Clone)]
pub struct Wiener {
    op: ShearOp,
    /// Prior power per mode in pixel units `C_k / A` (ell = 0 set to 0).
    s: Vec<f64>,
    sqrt_s: Vec<f64>,
    /// Per-pixel inverse noise variance, mask weights included (0 = unobserved).
    inv_var: Vec<f64>,
    /// Fused per-mode kernels `S^{1/2} P` and `S^{1/2} conj(P)`.
    h_fwd: Vec<cosmodiff_field::C64>,
    h_adj: Vec<cosmodiff_field::C64>,
}

impl Wiener {
    /// Prior from a `C_ell` table.
    pub fn from_cl(
        grid: Grid2,
        prior: &ClTable,
        noise_std: &[f64],
        mask: Option<&[f64]>,
    ) -> Result<Self> {
        Self::new(grid, prior.on_grid(&grid), noise_std, mask)
    }
    /// Prior from per-mode power `C(ell_k)` (sr units, row-major, >= 0).
    pub fn new(
        grid: Grid2,
        mut power: Vec<f64>,
        noise_std: &[f64],
        mask: Option<&[f64]>,
    ) -> Result<Self> {
        let np = grid.npix();
        check_len("prior power", np, power.len())?;
        check_len("noise_std", np, noise_std.len())?;
        if let Some(i) = power.iter().position(|p| !(p.is_finite() && *p >= 0.0)) {
            return Err(value(
                "prior power",
                format!("must be finite and >= 0 (mode {i})"),
            ));
        }
        cosmodiff_field::grf2::check_even(&grid, &power, "prior power")?;
        power[0] = 0.0;
        if power.iter().all(|p| *p == 0.0) {
            // the filter would return kappa = 0 whatever the data
            return Err(value(
                "prior power",
                "zero for every mode (an all-zero C_ell?)",
            ));
        }
        let inv_var = inverse_variance(noise_std, mask)?;
        if inv_var.iter().all(|&w| w == 0.0) {
            return Err(value("mask", "no observed pixels"));
        }
        let a = grid.pixel_area_sr();
        let s: Vec<f64> = power.iter().map(|p| p / a).collect();
        let sqrt_s = s.iter().map(|v| v.sqrt()).collect();
        let op = ShearOp::new(grid);
        let h_fwd: Vec<cosmodiff_field::C64> = op
            .kernel()
            .iter()
            .zip(&sqrt_s)
            .map(|(p, a): (&cosmodiff_field::C64, &f64)| p * *a)
            .collect();
        let h_adj = h_fwd.iter().map(|h| h.conj()).collect();
        Ok(Self {
            op,
            s,
            sqrt_s,
            inv_var,
            h_fwd,
            h_adj,
        })
    }
    pub fn grid(&self) -> &Grid2 {
        self.op.grid()
    }
    pub fn op(&self) -> &ShearOp {
        &self.op
    }
    /// Per-pixel inverse noise variance (0 where masked).
    pub fn inverse_variance(&self) -> &[f64] {
        &self.inv_var
    }
    /// `S^{1/2} x` (self-adjoint).
    pub fn sqrt_prior(&self, x: &[f64]) -> Result<Vec<f64>> {
        Ok(self.op.fft().filter_real(x, &self.sqrt_s)?)
    }
    /// `S^{1/2} P^T N^-1 d`, fused into one FFT pair: since `S^{1/2}` is a
    /// real even filter it commutes with taking the real part.
    fn sqrt_s_pt_ninv(&self, g1: &[f64], g2: &[f64]) -> Result<Vec<f64>> {
        let mut buf: Vec<cosmodiff_field::C64> = (0..g1.len())
            .into_par_iter()
            .map(|i| cosmodiff_field::C64::new(g1[i] * self.inv_var[i], g2[i] * self.inv_var[i]))
            .collect();
        let fft = self.op.fft();
        fft.forward_inplace(&mut buf)?;
        buf.par_iter_mut()
            .zip(self.h_adj.par_iter())
            .for_each(|(v, h)| *v *= h);
        fft.inverse_inplace(&mut buf)?;
        Ok(buf.into_iter().map(|c| c.re).collect())
    }
    /// The whitened system matrix `A xi = xi + S^{1/2} P^T N^-1 P S^{1/2} xi`
    /// (two FFT pairs per application).
    pub fn apply_system(&self, xi: &[f64]) -> Result<Vec<f64>> {
        check_len("xi", self.grid().npix(), xi.len())?;
        let fft = self.op.fft();
        let mut buf: Vec<cosmodiff_field::C64> = xi
            .iter()
            .map(|&x| cosmodiff_field::C64::new(x, 0.0))
            .collect();
        fft.forward_inplace(&mut buf)?;
        buf.par_iter_mut()
            .zip(self.h_fwd.par_iter())
            .for_each(|(v, h)| *v *= h);
        fft.inverse_inplace(&mut buf)?;
        let (g1, g2): (Vec<f64>, Vec<f64>) = buf.into_iter().map(|c| (c.re, c.im)).unzip();
        let w = self.sqrt_s_pt_ninv(&g1, &g2)?;
        Ok(xi.iter().zip(&w).map(|(a, b)| a + b).collect())
    }
    /// Right-hand side `S^{1/2} P^T N^-1 d`.
    pub fn rhs(&self, g1: &[f64], g2: &[f64]) -> Result<Vec<f64>> {
        let np = self.grid().npix();
        check_len("gamma1", np, g1.len())?;
        check_len("gamma2", np, g2.len())?;
        if g1
            .iter()
            .chain(g2)
            .zip(self.inv_var.iter().chain(&self.inv_var))
            .any(|(g, w)| *w > 0.0 && !g.is_finite())
        {
            return Err(value("shear", "non-finite value in an observed pixel"));
        }
        // Masked pixels may hold NaN: zero them before any FFT.
        let g1: Vec<f64> = g1
            .iter()
            .zip(&self.inv_var)
            .map(|(g, w)| if *w > 0.0 { *g } else { 0.0 })
            .collect();
        let g2: Vec<f64> = g2
            .iter()
            .zip(&self.inv_var)
            .map(|(g, w)| if *w > 0.0 { *g } else { 0.0 })
            .collect();
        self.sqrt_s_pt_ninv(&g1, &g2)
    }

    /// Wiener filter by conjugate gradients to relative residual `tol`.
    pub fn cg(&self, g1: &[f64], g2: &[f64], tol: f64, max_iter: usize) -> Result<Solve> {
        let b = self.rhs(g1, g2)?;
        let bn = norm(&b);
        let np = b.len();
        if bn == 0.0 {
            return Ok(Solve {
                kappa: vec![0.0; np],
                iterations: 0,
                residual: 0.0,
            });
        }
        let mut x = vec![0.0; np];
        let mut r = b.clone();
        let mut p = r.clone();
        let mut rr = dot(&r, &r);
        let mut it = 0;
        while it < max_iter && rr.sqrt() > tol * bn {
            let ap = self.apply_system(&p)?;
            let alpha = rr / dot(&p, &ap);
            x.par_iter_mut()
                .zip(p.par_iter())
                .for_each(|(x, p)| *x += alpha * p);
            r.par_iter_mut()
                .zip(ap.par_iter())
                .for_each(|(r, a)| *r -= alpha * a);
            let rr_new = dot(&r, &r);
            let beta = rr_new / rr;
            p.par_iter_mut()
                .zip(r.par_iter())
                .for_each(|(p, r)| *p = r + beta * *p);
            rr = rr_new;
            it += 1;
        }
        let res = rr.sqrt() / bn;
        if res > tol {
            return Err(LensingError::NotConverged {
                what: "Wiener CG".into(),
                iterations: it,
                residual: res,
            });
        }
        Ok(Solve {
            kappa: self.sqrt_prior(&x)?,
            iterations: it,
            residual: res,
        })
    }

    /// Wiener filter by the messenger-field method.
    pub fn messenger(&self, g1: &[f64], g2: &[f64], opts: &MessengerOpts) -> Result<Solve> {
        let np = self.grid().npix();
        check_len("gamma1", np, g1.len())?;
        check_len("gamma2", np, g2.len())?;
        if !(opts.lambda0 >= 1.0 && opts.cooling > 0.0 && opts.cooling < 1.0 && opts.tol > 0.0) {
            return Err(value(
                "messenger options",
                "need lambda0 >= 1, 0 < cooling < 1, tol > 0",
            ));
        }
        // The per-pixel noise variance N = 1/inv_var: a mask value m in
        // (0, 1] weights the pixel (N = sigma^2 / m), as in the CG solver.
        let tau = self
            .inv_var
            .iter()
            .filter(|&&w| w > 0.0)
            .map(|w| 1.0 / w)
            .fold(f64::INFINITY, f64::min);
        // Nbar^-1 per pixel: inf where N == tau (t = d there), 0 where masked.
        let nbar_inv: Vec<f64> = self
            .inv_var
            .iter()
            .map(|&w| {
                let v = 1.0 / w - tau;
                if w == 0.0 {
                    0.0
                } else if v <= 1e-14 * tau {
                    f64::INFINITY
                } else {
                    1.0 / v
                }
            })
            .collect();
        let d: Vec<(f64, f64)> = (0..np)
            .map(|i| {
                if self.inv_var[i] > 0.0 {
                    (g1[i], g2[i])
                } else {
                    (0.0, 0.0)
                }
            })
            .collect();
        let pn2 = self.op.kernel_norm2();
        let kern = self.op.kernel();
        let fft = self.op.fft();
        let mut s = vec![0.0; np];
        let mut lambda = opts.lambda0;
        let mut it = 0;
        let mut change = f64::INFINITY;
        while it < opts.max_iter {
            let (ps1, ps2) = self.op.forward(&s, None)?;
            let lt = lambda * tau;
            let mut t: Vec<cosmodiff_field::C64> = (0..np)
                .into_par_iter()
                .map(|i| {
                    let w = nbar_inv[i];
                    let (a, b) = if w == f64::INFINITY {
                        d[i]
                    } else {
                        let den = w + 1.0 / lt;
                        (
                            (w * d[i].0 + ps1[i] / lt) / den,
                            (w * d[i].1 + ps2[i] / lt) / den,
                        )
                    };
                    cosmodiff_field::C64::new(a, b)
                })
                .collect();
            fft.forward_inplace(&mut t)?;
            t.par_iter_mut().enumerate().for_each(|(k, v)| {
                let h = self.s[k] / (lt + self.s[k] * pn2[k]);
                *v = kern[k].conj() * *v * h;
            });
            fft.inverse_inplace(&mut t)?;
            let s_new: Vec<f64> = t.iter().map(|c| c.re).collect();
            let num: f64 = s_new.iter().zip(&s).map(|(a, b)| (a - b).powi(2)).sum();
            let den: f64 = s_new.iter().map(|a| a * a).sum();
            change = (num / den.max(f64::MIN_POSITIVE)).sqrt();
            s = s_new;
            it += 1;
            if lambda > 1.0 {
                lambda = (lambda * opts.cooling).max(1.0);
            } else if change < opts.tol {
                break;
            }
        }
        if change >= opts.tol {
            return Err(LensingError::NotConverged {
                what: "messenger field".into(),
                iterations: it,
                residual: change,
            });
        }
        Ok(Solve {
            kappa: s,
            iterations: it,
            residual: change,
        })
    }

    /// Draw data-independent prior and noise realisations `(s', d' = P s' + n')`.
    fn draw_prior_data(&self, rng: &mut StdRng) -> Result<(Vec<f64>, Vec<f64>, Vec<f64>)> {
        let np = self.grid().npix();
        let w = white_noise_rng(np, rng);
        let s = self.sqrt_prior(&w)?;
        let (mut d1, mut d2) = self.op.forward(&s, None)?;
        for i in 0..np {
            let (a, b): (f64, f64) = (StandardNormal.sample(rng), StandardNormal.sample(rng));
            if self.inv_var[i] > 0.0 {
                let sd = 1.0 / self.inv_var[i].sqrt();
                d1[i] += sd * a;
                d2[i] += sd * b;
            }
        }
        Ok((s, d1, d2))
    }

    /// `n` Wiener posterior samples (constrained realisations) given the
    /// Wiener-filtered map `kappa_wf` of the data; CG to `tol`.
    pub fn samples(
        &self,
        kappa_wf: &[f64],
        n: usize,
        seed: u64,
        tol: f64,
    ) -> Result<Vec<Vec<f64>>> {
        check_len("Wiener map", self.grid().npix(), kappa_wf.len())?;
        if n.saturating_mul(kappa_wf.len()) > crate::error::MAX_SAMPLE_VALUES {
            return Err(value(
                "number of samples",
                format!(
                    "{n} samples of {} pixels need more than 1 GiB; use fewer samples",
                    kappa_wf.len()
                ),
            ));
        }
        (0..n)
            .into_par_iter()
            .map(|i| {
                let mut rng = StdRng::seed_from_u64(
                    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
                        .wrapping_add(i as u64),
                );
                let (s, d1, d2) = self.draw_prior_data(&mut rng)?;
                let f = self.cg(&d1, &d2, tol, 10_000)?;
                Ok(kappa_wf
                    .iter()
                    .zip(&s)
                    .zip(&f.kappa)
                    .map(|((m, s), f)| m + s - f)
                    .collect())
            })
            .collect()
    }
}

/// Per-pixel standard deviation over samples (`n >= 2`).
pub fn pixel_std(samples: &[Vec<f64>]) -> Result<Vec<f64>> {
    if samples.len() < 2 {
        return Err(value(
            "samples",
            "need at least 2 samples for a standard deviation",
        ));
    }
    let np = samples[0].len();
    let n = samples.len() as f64;
    Ok((0..np)
        .map(|i| {
            let m = samples.iter().map(|s| s[i]).sum::<f64>() / n;
            (samples.iter().map(|s| (s[i] - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        })
        .collect())
}

/// Rotate shear so that its B mode becomes the E mode: `gamma -> -i gamma`,
/// i.e. `(g1, g2) -> (g2, -g1)`. Wiener-filtering the rotated data with the
/// same prior gives the B-mode Wiener map (a null test).
pub fn rotate_b_to_e(g1: &[f64], g2: &[f64]) -> (Vec<f64>, Vec<f64>) {
    (g2.to_vec(), g1.iter().map(|x| -x).collect())
}

/// Dot product over fixed chunks summed in order (deterministic for any
/// number of threads, so seeded runs reproduce bit for bit).
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let parts: Vec<f64> = a
        .par_chunks(8192)
        .zip(b.par_chunks(8192))
        .map(|(x, y)| x.iter().zip(y).map(|(p, q)| p * q).sum::<f64>())
        .collect();
    parts.iter().sum()
}
fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}
