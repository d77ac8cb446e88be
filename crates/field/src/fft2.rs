//! Square 2-D complex FFT with cached rustfft plans, rayon over rows.
//!
//! # Convention
//! *Unnormalised* (the default, numpy's `fft2`/`ifft2`):
//! `F[k] = sum_x f[x] exp(-2 pi i k.x / n)`, and the inverse
//! `f[x] = (1/n^2) sum_k F[k] exp(+2 pi i k.x / n)`.
//! *Unitary*: both directions scaled by `1/n`, so Parseval reads
//! `sum |f|^2 = sum |F|^2` ([`Fft2::forward_unitary`], [`Fft2::inverse_unitary`]).
//!
//! Real maps are transformed as complex arrays with zero imaginary part; a
//! multiplier that is even in `k` and real (e.g. `sqrt(C_ell)`) keeps real
//! maps real, and every real-output routine in this crate takes the real
//! part, which makes each operator exactly (real-)linear and gives exact
//! adjoints even where roundoff would leave an imaginary residue.

use crate::error::{check_len, Result};
use rayon::prelude::*;
use rustfft::{num_complex::Complex64, Fft, FftPlanner};
use std::sync::Arc;

pub type C64 = Complex64;

/// Cached forward and inverse plans for `n x n` transforms.
#[derive(Clone)]
pub struct Fft2 {
    n: usize,
    fwd: Arc<dyn Fft<f64>>,
    inv: Arc<dyn Fft<f64>>,
}

impl std::fmt::Debug for Fft2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fft2({}x{})", self.n, self.n)
    }
}

impl Fft2 {
    pub fn new(n: usize) -> Self {
        let mut p = FftPlanner::new();
        Self {
            n,
            fwd: p.plan_fft_forward(n.max(1)),
            inv: p.plan_fft_inverse(n.max(1)),
        }
    }
    pub fn n(&self) -> usize {
        self.n
    }

    fn pass(&self, plan: &Arc<dyn Fft<f64>>, buf: &mut [C64]) {
        let n = self.n;
        let slen = plan.get_inplace_scratch_len();
        // Several rows per task keep rayon overhead small on small grids.
        let rows = (4096 / n.max(1)).clamp(1, n.max(1));
        buf.par_chunks_mut(n * rows).for_each_init(
            || vec![C64::default(); slen],
            |s, chunk| plan.process_with_scratch(chunk, s),
        );
    }

    fn transform(&self, plan: &Arc<dyn Fft<f64>>, buf: &mut [C64]) {
        self.pass(plan, buf);
        transpose(buf, self.n);
        self.pass(plan, buf);
        transpose(buf, self.n);
    }

    /// Unnormalised forward transform in place.
    pub fn forward_inplace(&self, buf: &mut [C64]) -> Result<()> {
        check_len("fft2 buffer", self.n * self.n, buf.len())?;
        self.transform(&self.fwd, buf);
        Ok(())
    }
    /// Inverse transform in place, normalised by `1/n^2`.
    pub fn inverse_inplace(&self, buf: &mut [C64]) -> Result<()> {
        check_len("fft2 buffer", self.n * self.n, buf.len())?;
        self.transform(&self.inv, buf);
        let s = 1.0 / (self.n * self.n) as f64;
        buf.par_iter_mut().for_each(|v| *v *= s);
        Ok(())
    }
    /// Unitary forward transform in place (scaled by `1/n`).
    pub fn forward_unitary(&self, buf: &mut [C64]) -> Result<()> {
        self.forward_inplace(buf)?;
        let s = 1.0 / self.n as f64;
        buf.par_iter_mut().for_each(|v| *v *= s);
        Ok(())
    }
    /// Unitary inverse transform in place (scaled by `1/n`).
    pub fn inverse_unitary(&self, buf: &mut [C64]) -> Result<()> {
        check_len("fft2 buffer", self.n * self.n, buf.len())?;
        self.transform(&self.inv, buf);
        let s = 1.0 / self.n as f64;
        buf.par_iter_mut().for_each(|v| *v *= s);
        Ok(())
    }
    /// Unnormalised forward transform of a real map.
    pub fn forward_real(&self, x: &[f64]) -> Result<Vec<C64>> {
        check_len("map", self.n * self.n, x.len())?;
        let mut b: Vec<C64> = x.iter().map(|&v| C64::new(v, 0.0)).collect();
        self.transform(&self.fwd, &mut b);
        Ok(b)
    }
    /// Inverse transform (1/n^2) keeping the real part.
    pub fn inverse_real(&self, mut b: Vec<C64>) -> Result<Vec<f64>> {
        self.inverse_inplace(&mut b)?;
        Ok(b.into_iter().map(|c| c.re).collect())
    }
    /// Orthonormal 2-D discrete Hartley transform (Bracewell 1983):
    /// `H[k] = (1/n) sum_x f[x] cas(2 pi k.x / n)`, `cas = cos + sin`, i.e.
    /// `Re F - Im F` of the unitary FFT. Real, symmetric and its own inverse
    /// (`H H = I`), so white noise stays white: a real Fourier basis for
    /// samplers whose mass matrix is diagonal in `k`.
    pub fn hartley(&self, x: &[f64]) -> Result<Vec<f64>> {
        let mut b = self.forward_real(x)?;
        let s = 1.0 / self.n as f64;
        Ok(b.iter_mut().map(|v| (v.re - v.im) * s).collect())
    }
    /// `Re IFFT(h * FFT(x))` for a per-mode real multiplier `h`.
    pub fn filter_real(&self, x: &[f64], h: &[f64]) -> Result<Vec<f64>> {
        check_len("filter", self.n * self.n, h.len())?;
        let mut b = self.forward_real(x)?;
        b.par_iter_mut()
            .zip(h.par_iter())
            .for_each(|(v, &w)| *v *= w);
        self.inverse_real(b)
    }
}

/// In-place transpose of a square row-major array.
fn transpose(buf: &mut [C64], n: usize) {
    const B: usize = 32;
    for bi in (0..n).step_by(B) {
        for bj in (bi..n).step_by(B) {
            for i in bi..(bi + B).min(n) {
                let j0 = if bi == bj { i + 1 } else { bj };
                for j in j0..(bj + B).min(n) {
                    buf.swap(i * n + j, j * n + i);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Hartley transform is its own inverse and preserves the norm, and
    /// matches the direct cas sum.
    #[test]
    fn hartley_is_an_involution() {
        let n = 6;
        let f = Fft2::new(n);
        let x: Vec<f64> = (0..n * n)
            .map(|i| ((i * 7919) % 23) as f64 - 11.0)
            .collect();
        let h = f.hartley(&x).unwrap();
        let back = f.hartley(&h).unwrap();
        for (a, b) in x.iter().zip(&back) {
            assert!((a - b).abs() < 1e-12);
        }
        let (nx, nh): (f64, f64) = (x.iter().map(|v| v * v).sum(), h.iter().map(|v| v * v).sum());
        assert!((nx - nh).abs() < 1e-9 * nx);
        let (ky, kx) = (2, 5);
        let direct: f64 = (0..n * n)
            .map(|i| {
                let a =
                    2.0 * std::f64::consts::PI * ((ky * (i / n) + kx * (i % n)) as f64) / n as f64;
                x[i] * (a.cos() + a.sin())
            })
            .sum::<f64>()
            / n as f64;
        assert!((direct - h[ky * n + kx]).abs() < 1e-9);
    }

    fn naive_dft(x: &[C64], n: usize, sign: f64) -> Vec<C64> {
        let mut out = vec![C64::default(); n * n];
        for ky in 0..n {
            for kx in 0..n {
                let mut s = C64::default();
                for y in 0..n {
                    for x_ in 0..n {
                        let ph =
                            sign * 2.0 * std::f64::consts::PI * ((ky * y + kx * x_) % n) as f64
                                / n as f64;
                        s += x[y * n + x_] * C64::from_polar(1.0, ph);
                    }
                }
                out[ky * n + kx] = s;
            }
        }
        out
    }

    #[test]
    fn matches_naive_dft_and_roundtrips() {
        for n in [5usize, 8, 33] {
            let f = Fft2::new(n);
            let x: Vec<C64> = (0..n * n)
                .map(|i| C64::new((i as f64 * 0.37).sin(), (i as f64 * 0.11).cos()))
                .collect();
            let mut b = x.clone();
            f.forward_inplace(&mut b).unwrap();
            let r = naive_dft(&x, n, -1.0);
            let err = b
                .iter()
                .zip(&r)
                .map(|(a, b)| (a - b).norm())
                .fold(0.0, f64::max);
            assert!(err < 1e-10 * (n * n) as f64, "n={n} err={err}");
            f.inverse_inplace(&mut b).unwrap();
            let err = b
                .iter()
                .zip(&x)
                .map(|(a, b)| (a - b).norm())
                .fold(0.0, f64::max);
            assert!(err < 1e-13, "roundtrip {err}");
            let mut u = x.clone();
            f.forward_unitary(&mut u).unwrap();
            let e0: f64 = x.iter().map(|v| v.norm_sqr()).sum();
            let e1: f64 = u.iter().map(|v| v.norm_sqr()).sum();
            assert!((e0 - e1).abs() < 1e-11 * e0);
            f.inverse_unitary(&mut u).unwrap();
            let err = u
                .iter()
                .zip(&x)
                .map(|(a, b)| (a - b).norm())
                .fold(0.0, f64::max);
            assert!(err < 1e-13);
        }
    }

    #[test]
    fn rejects_wrong_length() {
        let f = Fft2::new(4);
        assert!(f.forward_real(&[0.0; 15]).is_err());
    }
}
