//! Initial conditions: white noise -> linear density -> 1LPT/2LPT
//! displacements, and their vector-Jacobian products.
//!
//! All on the particle grid of side `n` (particles start at the cell
//! centres `q`), in float64, displacements in particle-grid cells.
//!
//! - Linear field (the shared reference's convention):
//!   `delta_L = IFFT[ FFT(w) sqrt(P(|k|) n^3 / L^3) ]`, `P` in (Mpc/h)^3 at
//!   `a = 1`, `|k| = 2 pi |m| / L`; `P(0)` is whatever the closure returns at
//!   0 (a table clamps, like `jnp.interp`). The operator is real, symmetric.
//! - 1LPT: `s1 = -grad laplacian^-1 delta_L`, i.e. `s1_k = i g(w) delta_k / w^2`
//!   (so `delta = -div s1` for the exact kernel).
//! - 2LPT: `phi_ab = grad_a grad_b laplacian^-1 delta_L`,
//!   `delta2 = sum_{a<b} (phi_aa phi_bb - phi_ab^2)`, `s2 = -grad laplacian^-1 delta2`
//!   (Scoccimarro 1998; JaxPM's `lpt`), combined as `x = q + D1 s1 + 3/7 D2 s2`.
//!
//! VJPs: a Fourier multiplier `m(k)` that is Hermitian (`m(-k) = conj m(k)`)
//! defines a real operator whose transpose has multiplier `conj m(k)`;
//! `delta2` is differentiated by the product rule.

use crate::kernels::{AxisKernels, GradientKernel};
use cosmodiff_field::fft3::{freq, Fft3};
use rayon::prelude::*;
use realfft::num_complex::Complex;
use std::f64::consts::PI;

type C = Complex<f64>;

/// Fourier helper on the particle grid.
pub struct LptSolver {
    pub n: usize,
    kernel: GradientKernel,
    fft: Fft3<f64>,
    k: AxisKernels,
}

/// First- and second-order displacement fields (3 components each, `n^3`).
#[derive(Debug, Clone)]
pub struct LptFields {
    pub s1: [Vec<f64>; 3],
    /// Zero when `order == 1`.
    pub s2: [Vec<f64>; 3],
    /// The `phi_ab` (00, 11, 22, 01, 02, 12), kept for the VJP (empty for 1LPT).
    phi: Vec<Vec<f64>>,
}

const PAIRS: [(usize, usize); 6] = [(0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2)];

impl LptSolver {
    pub fn new(n: usize, kernel: GradientKernel) -> Self {
        Self {
            n,
            kernel,
            fft: Fft3::new(n),
            k: AxisKernels::new(n, kernel),
        }
    }

    /// Apply `mult(ix, iy, iz)` to a half-complex field (in place), parallel.
    fn apply(&self, xk: &mut [C], mult: impl Fn(usize, usize, usize) -> C + Sync) {
        let n = self.n;
        let nh = n / 2 + 1;
        xk.par_chunks_mut(n * nh).enumerate().for_each(|(ix, pl)| {
            for iy in 0..n {
                for iz in 0..nh {
                    let v = &mut pl[iy * nh + iz];
                    *v *= mult(ix, iy, iz);
                }
            }
        });
    }

    fn irfft(&self, mut xk: Vec<C>) -> Vec<f64> {
        let mut out = vec![0.0; self.n * self.n * self.n];
        self.fft.inverse_inplace(&mut xk, &mut out);
        out
    }

    /// `delta_L = IFFT[FFT(w) sqrt(P(k) n^3/L^3)]`, `pk` in (Mpc/h)^3 of `k` in h/Mpc.
    pub fn linear_field(
        &self,
        white: &[f64],
        box_size: f64,
        pk: &(dyn Fn(f64) -> f64 + Sync),
    ) -> Vec<f64> {
        let mut xk = self.fft.forward(white);
        let t = self.transfer(box_size, pk);
        self.apply(&mut xk, |ix, iy, iz| C::new(t[self.idx(ix, iy, iz)], 0.0));
        self.irfft(xk)
    }

    /// The VJP of [`Self::linear_field`] (the operator is symmetric).
    pub fn linear_field_vjp(
        &self,
        dbar: &[f64],
        box_size: f64,
        pk: &(dyn Fn(f64) -> f64 + Sync),
    ) -> Vec<f64> {
        self.linear_field(dbar, box_size, pk)
    }

    #[inline]
    fn idx(&self, ix: usize, iy: usize, iz: usize) -> usize {
        (ix * self.n + iy) * (self.n / 2 + 1) + iz
    }

    fn transfer(&self, box_size: f64, pk: &(dyn Fn(f64) -> f64 + Sync)) -> Vec<f64> {
        let n = self.n;
        let nh = n / 2 + 1;
        let norm = (n as f64).powi(3) / box_size.powi(3);
        let mut t = vec![0.0; n * n * nh];
        t.par_chunks_mut(n * nh).enumerate().for_each(|(ix, pl)| {
            for iy in 0..n {
                for iz in 0..nh {
                    let m2 = (freq(ix, n).pow(2) + freq(iy, n).pow(2) + freq(iz, n).pow(2)) as f64;
                    let k = 2.0 * PI / box_size * m2.sqrt();
                    pl[iy * nh + iz] = (pk(k).max(0.0) * norm).sqrt();
                }
            }
        });
        t
    }

    /// `s = -grad lap^-1 field` given `field_k` (3 components).
    fn displacement(&self, fk: &[C]) -> [Vec<f64>; 3] {
        std::array::from_fn(|a| {
            let mut xk = fk.to_vec();
            self.apply(&mut xk, |ix, iy, iz| {
                let g = self.k.g[[ix, iy, iz][a]];
                C::new(0.0, g * self.k.inv_k2(ix, iy, iz))
            });
            self.irfft(xk)
        })
    }

    /// `psi = IFFT[field_k / |w|^2]` (0 at `k = 0`).
    fn inv_lap(&self, fk: &mut [C]) -> Vec<f64> {
        self.apply(fk, |ix, iy, iz| C::new(self.k.inv_k2(ix, iy, iz), 0.0));
        let mut out = vec![0.0; self.n.pow(3)];
        self.fft.inverse_inplace(fk, &mut out);
        out
    }

    /// [`Self::fields`] for the 4-point kernel: the derivatives as real-space
    /// stencils of `psi = lap^-1 delta` (the same operators as the Fourier
    /// multipliers `i g(w_a)`), 4 FFTs instead of 14.
    fn fields_fd4(&self, delta_l: &[f64], order: usize, keep_phi: bool) -> LptFields {
        let n = self.n;
        let psi = self.inv_lap(&mut self.fft.forward(delta_l));
        let s1: [Vec<f64>; 3] = std::array::from_fn(|a| d_fd4(n, &psi, a));
        drop(psi);
        if order < 2 {
            let z = vec![0.0; delta_l.len()];
            return LptFields {
                s1,
                s2: [z.clone(), z.clone(), z],
                phi: vec![],
            };
        }
        if !keep_phi {
            // delta2 in one fused pass, the phi_ab never stored
            let d2 = delta2_fd4(n, &s1);
            let psi2 = self.inv_lap(&mut self.fft.forward(&d2));
            let s2: [Vec<f64>; 3] = std::array::from_fn(|a| d_fd4(n, &psi2, a));
            return LptFields {
                s1,
                s2,
                phi: vec![],
            };
        }
        // phi_ab = g_a g_b / w^2 delta = -D_b s1_a
        let phi: Vec<Vec<f64>> = PAIRS
            .iter()
            .map(|&(a, b)| {
                let mut v = d_fd4(n, &s1[a], b);
                v.par_iter_mut().for_each(|x| *x = -*x);
                v
            })
            .collect();
        let d2 = delta2(&phi);
        let psi2 = self.inv_lap(&mut self.fft.forward(&d2));
        let s2: [Vec<f64>; 3] = std::array::from_fn(|a| d_fd4(n, &psi2, a));
        LptFields { s1, s2, phi }
    }

    /// As [`Self::fields`] without keeping what only the VJP needs (the
    /// `phi_ab`; less memory, and with `fd4` one fused pass for `delta2`).
    pub fn fields_forward(&self, delta_l: &[f64], order: usize) -> LptFields {
        if self.kernel == GradientKernel::Fd4 {
            return self.fields_fd4(delta_l, order, false);
        }
        let mut f = self.fields(delta_l, order);
        f.phi = vec![];
        f
    }

    /// 1LPT (and 2LPT when `order == 2`) displacement fields of `delta_L`.
    pub fn fields(&self, delta_l: &[f64], order: usize) -> LptFields {
        if self.kernel == GradientKernel::Fd4 {
            return self.fields_fd4(delta_l, order, true);
        }
        let dk = self.fft.forward(delta_l);
        let s1 = self.displacement(&dk);
        if order < 2 {
            let z = vec![0.0; delta_l.len()];
            return LptFields {
                s1,
                s2: [z.clone(), z.clone(), z],
                phi: vec![],
            };
        }
        let phi: Vec<Vec<f64>> = PAIRS
            .iter()
            .map(|&(a, b)| {
                let mut xk = dk.clone();
                self.apply(&mut xk, |ix, iy, iz| {
                    let i3 = [ix, iy, iz];
                    C::new(
                        self.k.g[i3[a]] * self.k.g[i3[b]] * self.k.inv_k2(ix, iy, iz),
                        0.0,
                    )
                });
                self.irfft(xk)
            })
            .collect();
        let d2 = delta2(&phi);
        let s2 = self.displacement(&self.fft.forward(&d2));
        LptFields { s1, s2, phi }
    }

    /// Transpose of [`Self::displacement`] summed over components, in Fourier space.
    fn displacement_t_k(&self, sbar: &[Vec<f64>; 3]) -> Vec<C> {
        let n = self.n;
        let mut acc = vec![C::new(0.0, 0.0); n * n * (n / 2 + 1)];
        for a in 0..3 {
            let mut xk = self.fft.forward(&sbar[a]);
            self.apply(&mut xk, |ix, iy, iz| {
                let g = self.k.g[[ix, iy, iz][a]];
                C::new(0.0, -g * self.k.inv_k2(ix, iy, iz))
            });
            acc.par_iter_mut().zip(&xk).for_each(|(s, v)| *s += v);
        }
        acc
    }

    /// `-sum_a D_a v_a` (the transpose of `v_a = D_a u`, `D^T = -D`).
    fn neg_div(&self, v: &[Vec<f64>; 3]) -> Vec<f64> {
        let n = self.n;
        let mut u = d_fd4(n, &v[0], 0);
        for a in 1..3 {
            let d = d_fd4(n, &v[a], a);
            u.par_iter_mut().zip(&d).for_each(|(x, y)| *x += y);
        }
        u.par_iter_mut().for_each(|x| *x = -*x);
        u
    }

    /// [`Self::fields_vjp`] for the 4-point kernel by real-space stencils:
    /// `dbar = lap^-1 [-sum_a D_a s1bar_a - sum_ab D_a D_b pbar_ab]` with
    /// `pbar` from `d2bar = lap^-1 [-sum_a D_a s2bar_a]` (4 FFTs).
    fn fields_vjp_fd4(
        &self,
        f: &LptFields,
        s1bar: &[Vec<f64>; 3],
        s2bar: Option<&[Vec<f64>; 3]>,
    ) -> Vec<f64> {
        let n = self.n;
        let mut u = self.neg_div(s1bar);
        if let (Some(s2bar), false) = (s2bar, f.phi.is_empty()) {
            let d2bar = self.inv_lap(&mut self.fft.forward(&self.neg_div(s2bar)));
            let phi = &f.phi;
            for (p, &(a, b)) in PAIRS.iter().enumerate() {
                let pbar: Vec<f64> = (0..d2bar.len())
                    .into_par_iter()
                    .map(|i| {
                        let s = d2bar[i];
                        match p {
                            0 => s * (phi[1][i] + phi[2][i]),
                            1 => s * (phi[0][i] + phi[2][i]),
                            2 => s * (phi[0][i] + phi[1][i]),
                            _ => -2.0 * s * phi[p][i],
                        }
                    })
                    .collect();
                // phi_ab = -D_b D_a psi: transpose -D_a^T D_b^T = -D_a D_b
                let t = d_fd4(n, &d_fd4(n, &pbar, b), a);
                u.par_iter_mut().zip(&t).for_each(|(x, y)| *x -= y);
            }
        }
        self.inv_lap(&mut self.fft.forward(&u))
    }

    /// VJP of [`Self::fields`]: cotangents of `s1` and `s2` -> cotangent of `delta_L`.
    pub fn fields_vjp(
        &self,
        f: &LptFields,
        s1bar: &[Vec<f64>; 3],
        s2bar: Option<&[Vec<f64>; 3]>,
    ) -> Vec<f64> {
        if self.kernel == GradientKernel::Fd4 {
            return self.fields_vjp_fd4(f, s1bar, s2bar);
        }
        let mut acc = self.displacement_t_k(s1bar);
        if let (Some(s2bar), false) = (s2bar, f.phi.is_empty()) {
            let d2bar = self.irfft(self.displacement_t_k(s2bar));
            let phi = &f.phi;
            for (p, &(a, b)) in PAIRS.iter().enumerate() {
                let pbar: Vec<f64> = (0..d2bar.len())
                    .into_par_iter()
                    .map(|i| {
                        let s = d2bar[i];
                        match p {
                            0 => s * (phi[1][i] + phi[2][i]),
                            1 => s * (phi[0][i] + phi[2][i]),
                            2 => s * (phi[0][i] + phi[1][i]),
                            _ => -2.0 * s * phi[p][i],
                        }
                    })
                    .collect();
                let mut xk = self.fft.forward(&pbar);
                self.apply(&mut xk, |ix, iy, iz| {
                    let i3 = [ix, iy, iz];
                    C::new(
                        self.k.g[i3[a]] * self.k.g[i3[b]] * self.k.inv_k2(ix, iy, iz),
                        0.0,
                    )
                });
                acc.par_iter_mut().zip(&xk).for_each(|(s, v)| *s += v);
            }
        }
        self.irfft(acc)
    }
}

/// `delta2` from `s1` with `phi_ab = -D_b s1_a` evaluated on the fly (the
/// same arithmetic as [`d_fd4`] + [`delta2`], without storing the `phi_ab`).
fn delta2_fd4(n: usize, s1: &[Vec<f64>; 3]) -> Vec<f64> {
    let n2 = n * n;
    let nb: Vec<[usize; 4]> = (0..n)
        .map(|i| [(i + n - 2) % n, (i + n - 1) % n, (i + 1) % n, (i + 2) % n])
        .collect();
    let d = |m2: f64, m1: f64, p1: f64, p2: f64| (8.0 * (p1 - m1) - (p2 - m2)) / 12.0;
    let mut out = vec![0.0; n * n2];
    out.par_chunks_mut(n2).enumerate().for_each(|(ix, o)| {
        let xn = nb[ix];
        for iy in 0..n {
            let yn = nb[iy];
            for iz in 0..n {
                let zn = nb[iz];
                let c = iy * n + iz;
                let dx = |u: &[f64]| {
                    d(
                        u[xn[0] * n2 + c],
                        u[xn[1] * n2 + c],
                        u[xn[2] * n2 + c],
                        u[xn[3] * n2 + c],
                    )
                };
                let p = ix * n2;
                let dy = |u: &[f64]| {
                    d(
                        u[p + yn[0] * n + iz],
                        u[p + yn[1] * n + iz],
                        u[p + yn[2] * n + iz],
                        u[p + yn[3] * n + iz],
                    )
                };
                let r = p + iy * n;
                let dz = |u: &[f64]| d(u[r + zn[0]], u[r + zn[1]], u[r + zn[2]], u[r + zn[3]]);
                let (p00, p11, p22) = (-dx(&s1[0]), -dy(&s1[1]), -dz(&s1[2]));
                let (p01, p02, p12) = (-dy(&s1[0]), -dz(&s1[0]), -dz(&s1[1]));
                o[c] = p00 * p11 + p00 * p22 + p11 * p22 - p01 * p01 - p02 * p02 - p12 * p12;
            }
        }
    });
    out
}

/// `delta2 = sum_{a<b} (phi_aa phi_bb - phi_ab^2)`.
fn delta2(phi: &[Vec<f64>]) -> Vec<f64> {
    let mut d2 = vec![0.0; phi[0].len()];
    d2.par_iter_mut().enumerate().for_each(|(i, v)| {
        let (p00, p11, p22, p01, p02, p12) = (
            phi[0][i], phi[1][i], phi[2][i], phi[3][i], phi[4][i], phi[5][i],
        );
        *v = p00 * p11 + p00 * p22 + p11 * p22 - p01 * p01 - p02 * p02 - p12 * p12;
    });
    d2
}

/// 4-point derivative along `axis` of a periodic cube of side `n`:
/// `(8 (u[i+1] - u[i-1]) - (u[i+2] - u[i-2])) / 12`, Fourier symbol
/// `i (8 sin w - sin 2w)/6` (the `Fd4` kernel).
fn d_fd4(n: usize, u: &[f64], axis: usize) -> Vec<f64> {
    let n2 = n * n;
    // periodic neighbours i-2, i-1, i+1, i+2 on an axis
    let nb: Vec<[usize; 4]> = (0..n)
        .map(|i| [(i + n - 2) % n, (i + n - 1) % n, (i + 1) % n, (i + 2) % n])
        .collect();
    let d = |m2: f64, m1: f64, p1: f64, p2: f64| (8.0 * (p1 - m1) - (p2 - m2)) / 12.0;
    let mut out = vec![0.0; u.len()];
    out.par_chunks_mut(n2).enumerate().for_each(|(ix, o)| {
        let pl = |x: usize| &u[x * n2..(x + 1) * n2];
        match axis {
            0 => {
                let [a, b, c, e] = nb[ix];
                let (m2, m1, p1, p2) = (pl(a), pl(b), pl(c), pl(e));
                for (i, v) in o.iter_mut().enumerate() {
                    *v = d(m2[i], m1[i], p1[i], p2[i]);
                }
            }
            1 => {
                let p = pl(ix);
                for iy in 0..n {
                    let [a, b, c, e] = nb[iy];
                    for iz in 0..n {
                        o[iy * n + iz] =
                            d(p[a * n + iz], p[b * n + iz], p[c * n + iz], p[e * n + iz]);
                    }
                }
            }
            _ => {
                let p = pl(ix);
                for iy in 0..n {
                    let r = &p[iy * n..(iy + 1) * n];
                    for (iz, v) in o[iy * n..(iy + 1) * n].iter_mut().enumerate() {
                        let [a, b, c, e] = nb[iz];
                        *v = d(r[a], r[b], r[c], r[e]);
                    }
                }
            }
        }
    });
    out
}
