//! Particle-mesh forces and their VJP.
//!
//! With particles at `x = q + s` (mesh cells; stencils from the lattice
//! index plus the displacement, see [`crate::cic`]) on a mesh of side `nm`
//! and `np^3` particles, the unit force is
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
//! `sbar_p = sum_a Fbar_pa grad interp(f_a)(x_p) + c grad interp(deltabar)(x_p)`,
//! `deltabar = IFFT[ sum_a (-i g(w_a)/|w|^2) W^-2 FFT(paint(x, Fbar_a)) ]`.
//!
//! Work buffers (density, spectra, paint blocks) live in the solver and are
//! reused across calls (one call at a time; concurrent calls wait).

use crate::cic::{Lattice, Scratch};
use crate::kernels::{AxisKernels, GradientKernel};
use cosmodiff_field::fft3::Fft3;
use rayon::prelude::*;
use realfft::num_complex::Complex;
use std::sync::Mutex;

type C = Complex<f32>;

/// The force meshes at the last positions, interleaved per cell
/// (`[f_x, f_y, f_z, scratch]`; the VJP uses the fourth slot).
#[derive(Debug, Clone)]
pub struct ForceMeshes {
    pub f: Vec<[f32; 4]>,
}

impl ForceMeshes {
    pub fn new(nm: usize) -> Self {
        Self {
            f: vec![[0.0; 4]; nm * nm * nm],
        }
    }
    /// Component `a` as a separate mesh.
    pub fn component(&self, a: usize) -> Vec<f32> {
        self.f.iter().map(|v| v[a]).collect()
    }
}

#[derive(Default)]
struct Work {
    rho: Vec<f32>,
    dk: Vec<C>,
    xk: Vec<C>,
    h3: Vec<[f32; 3]>,
    h4: Vec<[f32; 4]>,
    /// The three force components before interleaving.
    fc: [Vec<f32>; 3],
    scratch: Scratch,
}

/// Poisson solver on the mesh.
pub struct ForceSolver {
    pub nm: usize,
    pub np: usize,
    pub deconvolve: bool,
    pub kernel: GradientKernel,
    pub lattice: Lattice,
    fft: Fft3<f32>,
    /// Per-axis gradient kernel `g(w_i)`.
    g: Vec<f32>,
    /// Per-axis `w_i^2`.
    w2: Vec<f32>,
    /// Per-axis `sinc^-4(w_i/2)` (CIC deconvolution of paint and readout).
    dec: Vec<f32>,
    work: Mutex<Work>,
}

impl ForceSolver {
    pub fn new(nm: usize, np: usize, kernel: GradientKernel, deconvolve: bool) -> Self {
        let k = AxisKernels::new(nm, kernel);
        Self {
            nm,
            np,
            deconvolve,
            kernel,
            lattice: Lattice::new(np, nm),
            fft: Fft3::new(nm),
            g: k.g.iter().map(|v| *v as f32).collect(),
            w2: k.w2.iter().map(|v| *v as f32).collect(),
            dec: k.cic.iter().map(|v| (1.0 / (v * v)) as f32).collect(),
            work: Mutex::new(Work::default()),
        }
    }

    /// Mean-density normalisation `c = nm^3 / np^3`.
    pub fn norm(&self) -> f32 {
        ((self.nm as f64 / self.np as f64).powi(3)) as f32
    }

    /// Multiplier `m_a = i g(w_a)/|w|^2` (times `W^-2` when deconvolving)
    /// with sign `sgn` applied to `src`: `dst = sgn m_a src` (`add`: `+=`).
    fn apply(&self, a: usize, sgn: f32, src: &[C], dst: &mut [C], add: bool) {
        let (nm, nh) = (self.nm, self.nm / 2 + 1);
        dst.par_chunks_mut(nm * nh)
            .zip(src.par_chunks(nm * nh))
            .enumerate()
            .for_each(|(ix, (pd, ps))| {
                for iy in 0..nm {
                    let w2xy = self.w2[ix] + self.w2[iy];
                    let dxy = self.dec[ix] * self.dec[iy];
                    let gxy = [self.g[ix], self.g[iy]];
                    let (rd, rs) = (&mut pd[iy * nh..(iy + 1) * nh], &ps[iy * nh..(iy + 1) * nh]);
                    for (iz, (d, s)) in rd.iter_mut().zip(rs).enumerate() {
                        let k2 = w2xy + self.w2[iz];
                        let mut m = if k2 > 0.0 { sgn / k2 } else { 0.0 };
                        if self.deconvolve {
                            m *= dxy * self.dec[iz];
                        }
                        m *= if a < 2 { gxy[a] } else { self.g[iz] };
                        let v = C::new(-m * s.im, m * s.re);
                        if add {
                            *d += v;
                        } else {
                            *d = v;
                        }
                    }
                }
            });
    }

    /// `x *= sgn / |w|^2` (times `W^-2` when deconvolving), in place.
    fn apply_inv_k2(&self, sgn: f32, x: &mut [C]) {
        let (nm, nh) = (self.nm, self.nm / 2 + 1);
        x.par_chunks_mut(nm * nh).enumerate().for_each(|(ix, pl)| {
            for iy in 0..nm {
                let w2xy = self.w2[ix] + self.w2[iy];
                let dxy = self.dec[ix] * self.dec[iy];
                for (iz, v) in pl[iy * nh..(iy + 1) * nh].iter_mut().enumerate() {
                    let k2 = w2xy + self.w2[iz];
                    let mut m = if k2 > 0.0 { sgn / k2 } else { 0.0 };
                    if self.deconvolve {
                        m *= dxy * self.dec[iz];
                    }
                    *v *= m;
                }
            }
        });
    }

    fn ensure(&self, w: &mut Work) {
        let n3 = self.nm.pow(3);
        let nc = self.nm * self.nm * (self.nm / 2 + 1);
        w.rho.resize(n3, 0.0);
        w.dk.resize(nc, C::new(0.0, 0.0));
        w.xk.resize(nc, C::new(0.0, 0.0));
        for f in w.fc.iter_mut() {
            f.resize(n3, 0.0);
        }
    }

    /// CIC density contrast on the mesh.
    pub fn density(&self, disp: &[[f32; 3]]) -> Vec<f32> {
        let mut rho = vec![0.0f32; self.nm.pow(3)];
        let mut w = self.work.lock().unwrap();
        self.lattice.paint(disp, &mut rho, &mut w.scratch);
        let c = self.norm();
        rho.par_iter_mut().for_each(|v| *v = *v * c - 1.0);
        rho
    }

    /// Unit forces at the particles with displacements `disp`, into `out`;
    /// the force meshes into `meshes` (kept for the VJP).
    pub fn forces_into(&self, disp: &[[f32; 3]], out: &mut [[f32; 3]], meshes: &mut ForceMeshes) {
        let nm = self.nm;
        let n3 = nm * nm * nm;
        meshes.f.resize(n3, [0.0; 4]);
        let mut guard = self.work.lock().unwrap();
        let w = &mut *guard;
        self.ensure(w);
        self.lattice.paint(disp, &mut w.rho, &mut w.scratch);
        let c = self.norm();
        w.rho.par_iter_mut().for_each(|v| *v = *v * c - 1.0);
        let Work {
            rho, dk, xk, fc, ..
        } = w;
        self.force_components(rho, dk, xk, fc);
        interleave(&mut meshes.f, fc, None);
        drop(guard);
        // the three read-outs fused (one stencil per particle)
        self.readout3(&meshes.f, disp, out);
    }

    /// Read out the first three components of the interleaved meshes
    /// (all four lanes are accumulated, SIMD-friendly; the fourth is dropped).
    fn readout3(&self, m: &[[f32; 4]], disp: &[[f32; 3]], out: &mut [[f32; 3]]) {
        self.lattice.readout_first::<4, 3>(m, disp, out);
    }

    /// Unit forces at `disp` and the force meshes (allocating).
    pub fn forces(&self, disp: &[[f32; 3]]) -> (Vec<[f32; 3]>, ForceMeshes) {
        let mut f = vec![[0.0f32; 3]; disp.len()];
        let mut m = ForceMeshes::new(self.nm);
        self.forces_into(disp, &mut f, &mut m);
        (f, m)
    }

    /// VJP of [`Self::forces_into`] with respect to the displacements, for
    /// the cotangent `fbar` of the forces; `meshes` must hold the force
    /// meshes at `disp` (its scratch slot is overwritten). Writes `out`
    /// (`add = true`: adds `scale * VJP` instead).
    pub fn forces_vjp_into(
        &self,
        disp: &[[f32; 3]],
        meshes: &mut ForceMeshes,
        fbar: &[[f32; 3]],
        out: &mut [[f32; 3]],
        scale: f32,
        add: bool,
    ) {
        let nm = self.nm;
        let n3 = nm * nm * nm;
        assert_eq!(meshes.f.len(), n3, "forces_vjp: meshes");
        let mut guard = self.work.lock().unwrap();
        let w = &mut *guard;
        self.ensure(w);
        w.h3.resize(n3, [0.0; 3]);
        self.lattice.paint3(disp, fbar, &mut w.h3, &mut w.scratch);
        let Work {
            rho, dk, xk, h3, ..
        } = w;
        self.deltabar_into::<3, 0>(h3, rho, dk, xk);
        let c = self.norm();
        meshes
            .f
            .par_chunks_mut(1 << 14)
            .zip(rho.par_chunks(1 << 14))
            .for_each(|(m, r)| {
                for (m, r) in m.iter_mut().zip(r) {
                    m[3] = c * *r;
                }
            });
        drop(guard);
        // sbar_p = sum_a Fbar_pa grad interp(f_a) + c grad interp(deltabar), fused
        let sc = scale;
        if add {
            self.lattice.readout_grad::<4>(
                &meshes.f,
                disp,
                |p| {
                    let f = fbar[p];
                    [sc * f[0], sc * f[1], sc * f[2], sc]
                },
                out,
                true,
            );
        } else {
            self.lattice.readout_grad::<4>(
                &meshes.f,
                disp,
                |p| {
                    let f = fbar[p];
                    [f[0], f[1], f[2], 1.0]
                },
                out,
                false,
            );
        }
    }

    /// The VJP's spectral part: from the painted cotangents `h` (lanes
    /// `O..O + 3` of `[f32; K]` cells) to
    /// `deltabar = IFFT[sum_a (-i g_a/|w|^2) W^-2 FFT(h_a)]` in `rho`.
    fn deltabar_into<const K: usize, const O: usize>(
        &self,
        h: &[[f32; K]],
        rho: &mut [f32],
        dk: &mut [C],
        xk: &mut [C],
    ) {
        let nm = self.nm;
        if self.kernel == GradientKernel::Fd4 {
            // sum_a conj(i g_a) FFT(h_a) / |w|^2 = FFT(sum_a D_a^T h_a) / |w|^2
            // with the real-space 4-point stencil D_a (symbol i g_a), D^T = -D:
            // one r2c instead of three (the stencil acts on the painted
            // cotangents, not on a smooth potential: no precision loss)
            neg_div_fd4::<K, O>(nm, h, rho);
            self.fft.forward_into(rho, dk);
            self.apply_inv_k2(1.0, dk);
        } else {
            for a in 0..3 {
                rho.par_chunks_mut(1 << 14)
                    .zip(h.par_chunks(1 << 14))
                    .for_each(|(r, h)| {
                        for (r, h) in r.iter_mut().zip(h) {
                            *r = h[O + a];
                        }
                    });
                self.fft.forward_into(rho, xk);
                self.apply(a, -1.0, xk, dk, a > 0);
            }
        }
        self.fft.inverse_inplace(dk, rho);
    }

    /// The forces' spectral part: from the density contrast in `rho` to the
    /// three force components in `fc` (`rho` is overwritten).
    fn force_components(
        &self,
        rho: &mut [f32],
        dk: &mut [C],
        xk: &mut [C],
        fc: &mut [Vec<f32>; 3],
    ) {
        self.fft.forward_into(rho, dk);
        for (a, f) in fc.iter_mut().enumerate() {
            self.apply(a, 1.0, dk, xk, false);
            self.fft.inverse_inplace(xk, f);
        }
    }

    /// [`Self::forces_into`] and [`Self::forces_vjp_into`] (with `add`) at
    /// the same positions, fused: `out = F(disp)` and
    /// `sbar += scale J(disp)^T fbar`, with one paint of `[1, fbar]` and one
    /// read-out pass (one stencil and one load of the four-lane force cells
    /// per particle) instead of two of each. Identical to the bit to
    /// `forces_into` followed by `forces_vjp_into(.., scale, true)`.
    /// `meshes` is left holding the force meshes at `disp`.
    #[allow(clippy::too_many_arguments)]
    pub fn forces_and_vjp_into(
        &self,
        disp: &[[f32; 3]],
        out: &mut [[f32; 3]],
        meshes: &mut ForceMeshes,
        fbar: &[[f32; 3]],
        sbar: &mut [[f32; 3]],
        scale: f32,
    ) {
        let nm = self.nm;
        let n3 = nm * nm * nm;
        assert_eq!(out.len(), disp.len());
        assert_eq!(sbar.len(), disp.len());
        meshes.f.resize(n3, [0.0; 4]);
        let mut guard = self.work.lock().unwrap();
        let w = &mut *guard;
        self.ensure(w);
        w.h4.resize(n3, [0.0; 4]);
        self.lattice
            .paint_count_and3(disp, fbar, &mut w.h4, &mut w.scratch);
        let c = self.norm();
        let Work {
            rho,
            dk,
            xk,
            h4,
            fc,
            ..
        } = w;
        rho.par_chunks_mut(1 << 14)
            .zip(h4.par_chunks(1 << 14))
            .for_each(|(r, h)| {
                for (r, h) in r.iter_mut().zip(h) {
                    *r = h[0] * c - 1.0;
                }
            });
        self.force_components(rho, dk, xk, fc);
        self.deltabar_into::<4, 1>(h4, rho, dk, xk);
        // one pass writes the four lanes [f_x, f_y, f_z, c deltabar]
        interleave(&mut meshes.f, fc, Some((rho, c)));
        drop(guard);
        self.lattice
            .readout3_and_grad(&meshes.f, disp, fbar, scale, out, sbar);
    }

    /// VJP of [`Self::forces`] (allocating).
    pub fn forces_vjp(
        &self,
        disp: &[[f32; 3]],
        meshes: &mut ForceMeshes,
        fbar: &[[f32; 3]],
    ) -> Vec<[f32; 3]> {
        let mut out = vec![[0.0f32; 3]; disp.len()];
        self.forces_vjp_into(disp, meshes, fbar, &mut out, 1.0, false);
        out
    }

    /// CIC counts per mesh cell (mean `np^3/nm^3`).
    pub fn counts(&self, disp: &[[f32; 3]]) -> Vec<f32> {
        let mut rho = vec![0.0f32; self.nm.pow(3)];
        let mut w = self.work.lock().unwrap();
        self.lattice.paint(disp, &mut rho, &mut w.scratch);
        rho
    }

    /// `sum_c u(c) grad_s W(x_p - c)` per particle (the VJP of the counts
    /// with respect to the displacements, for the cotangent `u`).
    pub fn counts_vjp(&self, disp: &[[f32; 3]], u: &[f32]) -> Vec<[f32; 3]> {
        let mut out = vec![[0.0f32; 3]; disp.len()];
        self.lattice
            .readout_grad::<1>(crate::cic::as_k1(u), disp, |_| [1.0], &mut out, false);
        out
    }
}

/// `f[c] = [fc_x[c], fc_y[c], fc_z[c], s r[c]]` for `lane3 = Some((r, s))`,
/// else with 0 in the scratch lane: one write pass over the four-lane mesh.
fn interleave(f: &mut [[f32; 4]], fc: &[Vec<f32>; 3], lane3: Option<(&[f32], f32)>) {
    const CH: usize = 1 << 14;
    let [fx, fy, fz] = fc;
    f.par_chunks_mut(CH).enumerate().for_each(|(b, m)| {
        let o = b * CH;
        let n = m.len();
        let (x, y, z) = (&fx[o..o + n], &fy[o..o + n], &fz[o..o + n]);
        match lane3 {
            Some((r, s)) => {
                let r = &r[o..o + n];
                for i in 0..n {
                    m[i] = [x[i], y[i], z[i], s * r[i]];
                }
            }
            None => {
                for i in 0..n {
                    m[i] = [x[i], y[i], z[i], 0.0];
                }
            }
        }
    });
}

/// `out = -sum_a D_a h_a` for the interleaved `h` (`h_x, h_y, h_z` in lanes
/// `O..O + 3` of each cell), `D_a u = (8 (u[i+1] - u[i-1]) - (u[i+2] - u[i-2]))/12` along axis
/// `a` (periodic; Fourier symbol `i (8 sin w - sin 2w)/6`, the `fd4` kernel).
fn neg_div_fd4<const K: usize, const O: usize>(n: usize, h: &[[f32; K]], out: &mut [f32]) {
    let n2 = n * n;
    let nb: Vec<[usize; 4]> = (0..n)
        .map(|i| [(i + n - 2) % n, (i + n - 1) % n, (i + 1) % n, (i + 2) % n])
        .collect();
    out.par_chunks_mut(n2).enumerate().for_each(|(ix, o)| {
        let pl = |x: usize| &h[x * n2..(x + 1) * n2];
        let xn = nb[ix];
        let (xm2, xm1, xp1, xp2) = (pl(xn[0]), pl(xn[1]), pl(xn[2]), pl(xn[3]));
        let pc = pl(ix);
        for iy in 0..n {
            let yn = nb[iy];
            let r = iy * n;
            for iz in 0..n {
                let c = r + iz;
                let zn = nb[iz];
                let (x, y, z) = (O, O + 1, O + 2);
                let dx = 8.0 * (xp1[c][x] - xm1[c][x]) - (xp2[c][x] - xm2[c][x]);
                let dy = 8.0 * (pc[yn[2] * n + iz][y] - pc[yn[1] * n + iz][y])
                    - (pc[yn[3] * n + iz][y] - pc[yn[0] * n + iz][y]);
                let dz = 8.0 * (pc[r + zn[2]][z] - pc[r + zn[1]][z])
                    - (pc[r + zn[3]][z] - pc[r + zn[0]][z]);
                o[c] = -(dx + dy + dz) * (1.0 / 12.0);
            }
        }
    });
}
