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
        Self {
            nm,
            np,
            deconvolve,
            fft: Fft3::new(nm),
            k: AxisKernels::new(nm, kernel),
        }
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
        // the three read-outs fused (one stencil per particle)
        let mut fp = vec![[0.0f32; 3]; pos.len()];
        fp.par_iter_mut().zip(pos.par_iter()).for_each(|(o, p)| {
            let (xs, ys, zs, d) = cic::corners(p, nm);
            let wx = [1.0 - d[0], d[0]];
            let wy = [1.0 - d[1], d[1]];
            let wz = [1.0 - d[2], d[2]];
            let mut s = [0.0f32; 3];
            for a in 0..2 {
                for b in 0..2 {
                    let row = (xs[a] * nm + ys[b]) * nm;
                    let w = wx[a] * wy[b];
                    for c in 0..2 {
                        let wc = w * wz[c];
                        let i = row + zs[c];
                        s[0] += wc * f[0][i];
                        s[1] += wc * f[1][i];
                        s[2] += wc * f[2][i];
                    }
                }
            }
            *o = s;
        });
        (fp, ForceMeshes { f })
    }

    /// VJP of [`Self::forces`] with respect to the positions.
    pub fn forces_vjp(
        &self,
        pos: &[[f32; 3]],
        meshes: &ForceMeshes,
        fbar: &[[f32; 3]],
    ) -> Vec<[f32; 3]> {
        let (nm, nh) = (self.nm, self.nm / 2 + 1);
        let mut acc = vec![C::new(0.0, 0.0); nm * nm * nh];
        let hs = cic::paint3(nm, pos, fbar);
        for (a, h) in hs.iter().enumerate() {
            let hk = self.fft.forward(h);
            acc.par_chunks_mut(nm * nh)
                .zip(hk.par_chunks(nm * nh))
                .enumerate()
                .for_each(|(ix, (pl, hp))| {
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
        // xbar_p = sum_a Fbar_pa grad interp(f_a) + c grad interp(deltabar), fused
        let f = &meshes.f;
        let mut xbar = vec![[0.0f32; 3]; pos.len()];
        xbar.par_iter_mut()
            .zip(pos.par_iter().zip(fbar))
            .for_each(|(o, (p, fb))| {
                let (xs, ys, zs, d) = cic::corners(p, nm);
                let w = [[1.0 - d[0], d[0]], [1.0 - d[1], d[1]], [1.0 - d[2], d[2]]];
                const S: [f32; 2] = [-1.0, 1.0];
                let mut g = [0.0f32; 3];
                for a in 0..2 {
                    for b in 0..2 {
                        let row = (xs[a] * nm + ys[b]) * nm;
                        for cc in 0..2 {
                            let i = row + zs[cc];
                            let v =
                                fb[0] * f[0][i] + fb[1] * f[1][i] + fb[2] * f[2][i] + c * dbar[i];
                            g[0] += S[a] * w[1][b] * w[2][cc] * v;
                            g[1] += w[0][a] * S[b] * w[2][cc] * v;
                            g[2] += w[0][a] * w[1][b] * S[cc] * v;
                        }
                    }
                }
                *o = g;
            });
        xbar
    }
}
