//! Particle-mesh forces and their VJP.
//!
//! With particles at `x` (mesh cells) on a mesh of side `nm` and `np^3`
//! particles, the unit force is
//!
//! `delta = c * paint(x) - 1`,  `c = nm^3/np^3`,
//! `f_a = IFFT[ i g(w_a) / |w|^2 * W(w)^-2? * FFT(delta) ]`,  `F_a(x_p) = readout(f_a, x_p)`,
//!
//! i.e. `F = -grad phi`, `laplacian phi = delta` in cell units
//! (`W^-2`, the CIC window of paint and readout, only with `deconvolve`).
//! The physical acceleration multiplies this by `1.5 Omega_m` (in the kick
//! factors).
//!
//! VJP for a cotangent `Fbar_p` (chain rule through readout, the Fourier
//! multipliers and paint; the multiplier `i g/w^2` is Hermitian, its
//! transpose is `-i g/w^2`):
//!
//! `xbar_p = sum_a Fbar_pa grad interp(f_a)(x_p) + c grad interp(deltabar)(x_p)`,
//! `deltabar = IFFT[ sum_a (-i g(w_a)/|w|^2) W^-2 FFT(paint(x, Fbar_a)) ]`.

use crate::kernels::{AxisKernels, GradientKernel};
use cosmodiff_field::{cic, fft3::Fft3};
use rayon::prelude::*;
use realfft::num_complex::Complex;

type C = Complex<f32>;

/// The force meshes `f_a` at the last positions (needed by the VJP).
#[derive(Debug, Clone)]
pub struct ForceMeshes {
    pub f: [Vec<f32>; 3],
}

/// Poisson solver on the mesh.
pub struct ForceSolver {
    pub nm: usize,
    pub np: usize,
    pub deconvolve: bool,
    fft: Fft3<f32>,
    k: AxisKernels,
}

impl ForceSolver {
    pub fn new(nm: usize, np: usize, kernel: GradientKernel, deconvolve: bool) -> Self {
        Self { nm, np, deconvolve, fft: Fft3::new(nm), k: AxisKernels::new(nm, kernel) }
    }

    /// Mean-density normalisation `c = nm^3 / np^3`.
    pub fn norm(&self) -> f32 {
        ((self.nm as f64 / self.np as f64).powi(3)) as f32
    }

    /// Multiplier `i g(w_a)/|w|^2` (times `W^-2` when deconvolving) at a mode,
    /// as (imaginary part) f32.
    #[inline]
    fn mult(&self, a: usize, ix: usize, iy: usize, iz: usize) -> f32 {
        let i3 = [ix, iy, iz];
        let mut m = self.k.g[i3[a]] * self.k.inv_k2(ix, iy, iz);
        if self.deconvolve {
            let w = self.k.cic[ix] * self.k.cic[iy] * self.k.cic[iz];
            m /= w * w;
        }
        m as f32
    }

    /// CIC density contrast on the mesh.
    pub fn density(&self, pos: &[[f32; 3]]) -> Vec<f32> {
        let mut rho = vec![0.0f32; self.nm.pow(3)];
        cic::paint(self.nm, pos, None, &mut rho);
        let c = self.norm();
        rho.par_iter_mut().for_each(|v| *v = *v * c - 1.0);
        rho
    }

    /// Unit forces at `pos`, and the force meshes.
    pub fn forces(&self, pos: &[[f32; 3]]) -> (Vec<[f32; 3]>, ForceMeshes) {
        let delta = self.density(pos);
        let dk = self.fft.forward(&delta);
        drop(delta);
        let (nm, nh) = (self.nm, self.nm / 2 + 1);
        let f: [Vec<f32>; 3] = std::array::from_fn(|a| {
            let mut xk = dk.clone();
            xk.par_chunks_mut(nm * nh).enumerate().for_each(|(ix, pl)| {
                for iy in 0..nm {
                    for iz in 0..nh {
                        let m = self.mult(a, ix, iy, iz);
                        let v = &mut pl[iy * nh + iz];
                        *v = C::new(-m * v.im, m * v.re);
                    }
                }
            });
            let mut out = vec![0.0f32; nm * nm * nm];
            self.fft.inverse_inplace(&mut xk, &mut out);
            out
        });
        let mut fp = vec![[0.0f32; 3]; pos.len()];
        for a in 0..3 {
            let r = cic::readout(nm, &f[a], pos);
            fp.par_iter_mut().zip(&r).for_each(|(o, v)| o[a] = *v);
        }
        (fp, ForceMeshes { f })
    }

    /// VJP of [`Self::forces`] with respect to the positions.
    pub fn forces_vjp(&self, pos: &[[f32; 3]], meshes: &ForceMeshes, fbar: &[[f32; 3]]) -> Vec<[f32; 3]> {
        let (nm, nh) = (self.nm, self.nm / 2 + 1);
        let mut xbar = vec![[0.0f32; 3]; pos.len()];
        let mut acc = vec![C::new(0.0, 0.0); nm * nm * nh];
        let mut comp = vec![0.0f32; pos.len()];
        for a in 0..3 {
            comp.par_iter_mut().zip(fbar).for_each(|(c, f)| *c = f[a]);
            cic::readout_grad_acc(nm, &meshes.f[a], pos, Some(&comp), &mut xbar);
            let h = cic::readout_vjp_mesh(nm, pos, &comp);
            let hk = self.fft.forward(&h);
            acc.par_chunks_mut(nm * nh).zip(hk.par_chunks(nm * nh)).enumerate().for_each(|(ix, (pl, hp))| {
                for iy in 0..nm {
                    for iz in 0..nh {
                        let m = -self.mult(a, ix, iy, iz);
                        let v = hp[iy * nh + iz];
                        pl[iy * nh + iz] += C::new(-m * v.im, m * v.re);
                    }
                }
            });
        }
        let mut dbar = vec![0.0f32; nm * nm * nm];
        self.fft.inverse_inplace(&mut acc, &mut dbar);
        let c = self.norm();
        let sc = vec![c; pos.len()];
        cic::readout_grad_acc(nm, &dbar, pos, Some(&sc), &mut xbar);
        xbar
    }
}
