//! The shear <-> convergence operator `P` on the flat sky (Kaiser & Squires
//! 1993, ApJ 404, 441).
//!
//! # Equations
//! With `kappa = kappa_E + i kappa_B` and `gamma = gamma_1 + i gamma_2` as
//! complex maps, in Fourier space (`ell = (l_x, l_y)`, `x` along columns)
//!
//! `gamma_hat(ell) = P(ell) kappa_hat(ell)`,
//! `P = D_1 + i D_2`, `D_1 = (l_x^2 - l_y^2)/l^2`, `D_2 = 2 l_x l_y / l^2`,
//!
//! i.e. `gamma_1 = (d_x^2 - d_y^2) psi / 2`, `gamma_2 = d_x d_y psi`,
//! `kappa = (d_x^2 + d_y^2) psi / 2`. The Kaiser-Squires inverse is
//! `kappa_hat = P^{-1} gamma_hat` with `P^{-1} = conj(P)/|P|^2`; away from the
//! special modes `|P| = 1` and `P^{-1} = conj(P)` = the adjoint `P^T`.
//!
//! # Special modes (documented treatment)
//! * `ell = 0`: `P = 0` (mass-sheet degeneracy); KS returns zero-mean maps.
//! * Nyquist lines of even grids (`|m_x| = n/2` or `|m_y| = n/2`): the index
//!   `n/2` is its own negative, so an odd function of `l_x` (or `l_y`) cannot
//!   be represented Hermitian-symmetrically; physically the sampled odd
//!   derivative of a Nyquist mode `(-1)^x` vanishes. We set `D_2 = 0` there
//!   and keep `D_1` (even), so real `kappa_E` gives real `gamma_1, gamma_2`.
//!   Then `|P| = |D_1| < 1` on those lines and KS uses the exact inverse
//!   `1/D_1`.
//! * The corner `(n/2, n/2)` of an even grid has `D_1 = D_2 = 0` after this
//!   treatment: no shear pattern on the grid corresponds to it. We set
//!   `P = 1` there (the mode `(-1)^(x+y)` of `kappa` maps to the same pattern
//!   in `gamma_1`), which keeps `P` invertible on every `ell != 0` mode.
//!
//! With this treatment KS inverts `P` to machine precision on odd and even
//! grids for zero-mean `kappa`, and E and B modes separate exactly.

use crate::error::{check_len, value, Result};
use cosmodiff_field::{Fft2, Grid2, C64};
use rayon::prelude::*;

/// Cached kernel and FFT plan for one grid.
#[derive(Debug, Clone)]
pub struct ShearOp {
    grid: Grid2,
    fft: Fft2,
    p: Vec<C64>,
    pinv: Vec<C64>,
}

impl ShearOp {
    pub fn new(grid: Grid2) -> Self {
        let n = grid.n;
        let mut p = vec![C64::default(); n * n];
        for iy in 0..n {
            for ix in 0..n {
                let k = iy * n + ix;
                if k == 0 {
                    continue;
                }
                let (lx, ly) = (grid.freq_index(ix) as f64, grid.freq_index(iy) as f64);
                let l2 = lx * lx + ly * ly;
                let d1 = (lx * lx - ly * ly) / l2;
                let mut d2 = 2.0 * lx * ly / l2;
                let (nx, ny) = (grid.is_nyquist(ix), grid.is_nyquist(iy));
                if nx || ny {
                    d2 = 0.0;
                }
                p[k] = if nx && ny {
                    C64::new(1.0, 0.0)
                } else {
                    C64::new(d1, d2)
                };
            }
        }
        let pinv = p
            .iter()
            .map(|v| {
                if v.norm_sqr() > 0.0 {
                    v.conj() / v.norm_sqr()
                } else {
                    C64::default()
                }
            })
            .collect();
        Self {
            grid,
            fft: Fft2::new(n),
            p,
            pinv,
        }
    }
    pub fn grid(&self) -> &Grid2 {
        &self.grid
    }
    pub fn fft(&self) -> &Fft2 {
        &self.fft
    }
    /// The kernel `P(ell_k)` (row-major Fourier modes).
    pub fn kernel(&self) -> &[C64] {
        &self.p
    }
    /// `|P(ell_k)|^2` per mode (even in `k`).
    pub fn kernel_norm2(&self) -> Vec<f64> {
        self.p.iter().map(|v| v.norm_sqr()).collect()
    }

    fn apply(
        &self,
        a: &[f64],
        b: Option<&[f64]>,
        h: &[C64],
        conj: bool,
    ) -> Result<(Vec<f64>, Vec<f64>)> {
        let np = self.grid.npix();
        check_len("map (real part)", np, a.len())?;
        let mut buf: Vec<C64> = match b {
            Some(b) => {
                check_len("map (imaginary part)", np, b.len())?;
                a.iter().zip(b).map(|(&x, &y)| C64::new(x, y)).collect()
            }
            None => a.iter().map(|&x| C64::new(x, 0.0)).collect(),
        };
        self.fft.forward_inplace(&mut buf)?;
        buf.par_iter_mut()
            .zip(h.par_iter())
            .for_each(|(v, w)| *v *= if conj { w.conj() } else { *w });
        self.fft.inverse_inplace(&mut buf)?;
        Ok(buf.into_iter().map(|c| (c.re, c.im)).unzip())
    }

    /// `gamma = P (kappa_E + i kappa_B)`; returns `(gamma_1, gamma_2)`.
    pub fn forward(
        &self,
        kappa_e: &[f64],
        kappa_b: Option<&[f64]>,
    ) -> Result<(Vec<f64>, Vec<f64>)> {
        self.apply(kappa_e, kappa_b, &self.p, false)
    }
    /// Adjoint `P^T gamma` (inverse FFT of `conj(P) gamma_hat`); returns `(E, B)`.
    pub fn adjoint(&self, g1: &[f64], g2: &[f64]) -> Result<(Vec<f64>, Vec<f64>)> {
        self.apply(g1, Some(g2), &self.p, true)
    }
    /// Adjoint of the E-only operator `kappa_E -> gamma` (the E part of [`ShearOp::adjoint`]).
    pub fn adjoint_e(&self, g1: &[f64], g2: &[f64]) -> Result<Vec<f64>> {
        Ok(self.adjoint(g1, g2)?.0)
    }
    /// Kaiser-Squires inverse `P^{-1} gamma`; returns `(kappa_E, kappa_B)`.
    pub fn kaiser_squires(&self, g1: &[f64], g2: &[f64]) -> Result<(Vec<f64>, Vec<f64>)> {
        // one NaN would spread over the whole map through the FFT
        if let Some(i) = g1.iter().chain(g2).position(|g| !g.is_finite()) {
            return Err(value(
                "shear",
                format!(
                    "non-finite value at pixel {} (Kaiser-Squires uses every pixel: set masked ones to 0)",
                    i % g1.len().max(1)
                ),
            ));
        }
        self.apply(g1, Some(g2), &self.pinv, false)
    }
    /// Kaiser-Squires followed by Gaussian smoothing of width `sigma_arcmin`
    /// (standard deviation of the Gaussian kernel; 0 = no smoothing).
    pub fn kaiser_squires_smoothed(
        &self,
        g1: &[f64],
        g2: &[f64],
        sigma_arcmin: f64,
    ) -> Result<(Vec<f64>, Vec<f64>)> {
        let (e, b) = self.kaiser_squires(g1, g2)?;
        let e = cosmodiff_field::cl2::smooth_gaussian(&self.grid, &self.fft, &e, sigma_arcmin)?;
        let b = cosmodiff_field::cl2::smooth_gaussian(&self.grid, &self.fft, &b, sigma_arcmin)?;
        Ok((e, b))
    }
}
