//! 3-D (and 2-D) real-to-complex FFT of periodic cubes (squares),
//! rayon-parallel over lines.
//!
//! Layout: a real cube of side `n` is a C-ordered slice of length `n^3`
//! (index `(ix * n + iy) * n + iz`); its half-complex transform has shape
//! `[n, n, n/2 + 1]` (index `(ix * n + iy) * (n/2 + 1) + iz`), like
//! `numpy.fft.rfftn`. A square map ([`Fft3::new_2d`]) is the same with the
//! first axis dropped: `n^2` cells, `[n, n/2 + 1]` modes.
//!
//! Conventions (numpy's):
//! - forward: `X(k) = sum_x x(x) exp(-2 pi i k.x / n)` (unnormalised);
//! - inverse: `x(x) = n^-3 sum_k X(k) exp(+2 pi i k.x / n)`, so
//!   `inverse(forward(x)) == x` to rounding.
//!
//! The inverse reads only the Hermitian half; the imaginary parts of the
//! self-conjugate modes (`iz = 0` and `iz = n/2` lines' own conjugates) are
//! ignored, as `numpy.fft.irfftn` does. Wavenumbers: [`freq`] gives the
//! signed integer frequency of an index (numpy `fftfreq * n`, so index `n/2`
//! maps to `-n/2` on full axes) and [`Fft3::nh`] the length of the last axis.
//!
//! Any `n >= 1` works (rustfft handles every length); the particle-mesh code
//! only requires `n` even.

use rayon::prelude::*;
use realfft::num_complex::Complex;
use realfft::{ComplexToReal, FftNum, RealFftPlanner, RealToComplex};
use rustfft::{Fft, FftPlanner};
use std::sync::Arc;

/// Signed integer frequency of FFT index `i` on an axis of length `n`
/// (numpy `fftfreq(n) * n`): `0, 1, ..., n/2 - 1, -n/2, ..., -1` for even `n`.
#[inline]
pub fn freq(i: usize, n: usize) -> i64 {
    if i < n.div_ceil(2) {
        i as i64
    } else {
        i as i64 - n as i64
    }
}

/// Plans for the 3-D real FFT of a cube of side `n`, or the 2-D one of a
/// square map (cached; cheap to share between threads: all methods take
/// `&self`).
pub struct Fft3<T: FftNum> {
    n: usize,
    /// Number of axes, 2 or 3.
    dims: u32,
    r2c: Arc<dyn RealToComplex<T>>,
    c2r: Arc<dyn ComplexToReal<T>>,
    fwd: Arc<dyn Fft<T>>,
    inv: Arc<dyn Fft<T>>,
}

impl<T: FftNum> std::fmt::Debug for Fft3<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fft3 {{ n: {}, dims: {} }}", self.n, self.dims)
    }
}

/// A raw pointer that may cross threads; every use writes disjoint indices.
#[derive(Clone, Copy)]
struct SendPtr<C>(*mut C);
unsafe impl<C> Send for SendPtr<C> {}
unsafe impl<C> Sync for SendPtr<C> {}

impl<T: FftNum> Fft3<T> {
    /// Plans for a cube of side `n` (panics if `n == 0`).
    pub fn new(n: usize) -> Self {
        Self::with_dims(n, 3)
    }

    /// Plans for a square map of side `n` (panics if `n == 0`).
    pub fn new_2d(n: usize) -> Self {
        Self::with_dims(n, 2)
    }

    /// Plans for a square map (`dims = 2`) or a cube (`dims = 3`) of side
    /// `n` (panics if `n == 0` or `dims` is neither).
    pub fn with_dims(n: usize, dims: usize) -> Self {
        assert!(n > 0, "Fft3: n must be positive");
        assert!(dims == 2 || dims == 3, "Fft3: dims must be 2 or 3");
        let dims = dims as u32;
        let mut rp = RealFftPlanner::<T>::new();
        let mut cp = FftPlanner::<T>::new();
        Self {
            n,
            dims,
            r2c: rp.plan_fft_forward(n),
            c2r: rp.plan_fft_inverse(n),
            fwd: cp.plan_fft_forward(n),
            inv: cp.plan_fft_inverse(n),
        }
    }
    /// Side of the cube (map).
    pub fn n(&self) -> usize {
        self.n
    }
    /// Number of axes: 3 for a cube, 2 for a map.
    pub fn dims(&self) -> usize {
        self.dims as usize
    }
    /// Length of the last (half-complex) axis, `n/2 + 1`.
    pub fn nh(&self) -> usize {
        self.n / 2 + 1
    }
    /// Number of real cells, `n^3` (`n^2` for a map).
    pub fn len_real(&self) -> usize {
        self.n.pow(self.dims)
    }
    /// Number of half-complex modes, `n * n * (n/2 + 1)` (`n (n/2 + 1)` for
    /// a map).
    pub fn len_complex(&self) -> usize {
        self.n.pow(self.dims - 1) * self.nh()
    }

    /// Unnormalised forward transform (allocating).
    pub fn forward(&self, x: &[T]) -> Vec<Complex<T>> {
        let mut out = vec![Complex::new(T::zero(), T::zero()); self.len_complex()];
        self.forward_into(x, &mut out);
        out
    }

    /// Forward transform into a caller-provided buffer of length
    /// [`Fft3::len_complex`]; `x` is not modified.
    pub fn forward_into(&self, x: &[T], out: &mut [Complex<T>]) {
        let (n, nh) = (self.n, self.nh());
        assert_eq!(x.len(), self.len_real(), "Fft3::forward: input length");
        assert_eq!(
            out.len(),
            self.len_complex(),
            "Fft3::forward: output length"
        );
        // 1. r2c along z, one line per (ix, iy).
        out.par_chunks_mut(nh * 64).enumerate().for_each(|(c, oc)| {
            let mut line = vec![T::zero(); n];
            let mut scratch = self.r2c.make_scratch_vec();
            for (l, o) in oc.chunks_mut(nh).enumerate() {
                let row = c * 64 + l;
                line.copy_from_slice(&x[row * n..(row + 1) * n]);
                let _ = self.r2c.process_with_scratch(&mut line, o, &mut scratch);
            }
        });
        // 2. along y (per x-plane), 3. along x (cubes only).
        self.axis_fft(out, n.pow(self.dims - 2), n, nh, &self.fwd);
        if self.dims == 3 {
            self.axis_fft(out, 1, n, n * nh, &self.fwd);
        }
    }

    /// Normalised inverse transform (allocating); `inverse(forward(x)) == x`.
    pub fn inverse(&self, k: &[Complex<T>]) -> Vec<T> {
        let mut tmp = k.to_vec();
        let mut out = vec![T::zero(); self.len_real()];
        self.inverse_inplace(&mut tmp, &mut out);
        out
    }

    /// Normalised inverse transform that uses `k` as workspace (its content
    /// is destroyed) and writes the real cube into `out`.
    pub fn inverse_inplace(&self, k: &mut [Complex<T>], out: &mut [T]) {
        let (n, nh) = (self.n, self.nh());
        assert_eq!(k.len(), self.len_complex(), "Fft3::inverse: input length");
        assert_eq!(out.len(), self.len_real(), "Fft3::inverse: output length");
        if self.dims == 3 {
            self.axis_fft(k, 1, n, n * nh, &self.inv);
        }
        self.axis_fft(k, n.pow(self.dims - 2), n, nh, &self.inv);
        let scale = T::one() / T::from_usize(self.len_real()).expect("n^d representable");
        out.par_chunks_mut(n * 64).enumerate().for_each(|(c, oc)| {
            let mut line = vec![Complex::new(T::zero(), T::zero()); nh];
            let mut scratch = self.c2r.make_scratch_vec();
            for (l, o) in oc.chunks_mut(n).enumerate() {
                let row = c * 64 + l;
                line.copy_from_slice(&k[row * nh..(row + 1) * nh]);
                // irfft convention: the imaginary parts of the DC and Nyquist
                // terms are ignored.
                line[0].im = T::zero();
                if n % 2 == 0 {
                    line[nh - 1].im = T::zero();
                }
                let _ = self.c2r.process_with_scratch(&mut line, o, &mut scratch);
                for v in o.iter_mut() {
                    *v = *v * scale;
                }
            }
        });
    }

    /// In-place complex FFT along the middle axis of data laid out as
    /// `[outer][len][inner]`, parallel over (outer, block of inner columns).
    fn axis_fft(
        &self,
        data: &mut [Complex<T>],
        outer: usize,
        len: usize,
        inner: usize,
        fft: &Arc<dyn Fft<T>>,
    ) {
        const BLOCK: usize = 16;
        let nblk = inner.div_ceil(BLOCK);
        let ptr = SendPtr(data.as_mut_ptr());
        let total = data.len();
        assert_eq!(total, outer * len * inner);
        (0..outer * nblk).into_par_iter().for_each_init(
            || {
                (
                    vec![Complex::new(T::zero(), T::zero()); BLOCK * len],
                    vec![Complex::new(T::zero(), T::zero()); fft.get_inplace_scratch_len()],
                )
            },
            |(buf, scratch): &mut (Vec<Complex<T>>, Vec<Complex<T>>), job: usize| {
                let p = ptr;
                let (o, b) = (job / nblk, job % nblk);
                let c0 = b * BLOCK;
                let c1 = (c0 + BLOCK).min(inner);
                let w = c1 - c0;
                let base = o * len * inner;
                // SAFETY: job (o, b) touches only indices base + i*inner + c
                // with c in [c0, c1): disjoint between jobs, all < total.
                unsafe {
                    for i in 0..len {
                        let src = p.0.add(base + i * inner + c0);
                        for c in 0..w {
                            buf[c * len + i] = *src.add(c);
                        }
                    }
                }
                fft.process_with_scratch(&mut buf[..w * len], scratch);
                unsafe {
                    for i in 0..len {
                        let dst = p.0.add(base + i * inner + c0);
                        for c in 0..w {
                            *dst.add(c) = buf[c * len + i];
                        }
                    }
                }
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> f64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 11) as f64) / ((1u64 << 53) as f64) - 0.5
    }

    /// Direct O(n^6) DFT for comparison.
    fn dft(x: &[f64], n: usize) -> Vec<Complex<f64>> {
        let nh = n / 2 + 1;
        let mut out = vec![Complex::new(0.0, 0.0); n * n * nh];
        for kx in 0..n {
            for ky in 0..n {
                for kz in 0..nh {
                    let mut s = Complex::new(0.0, 0.0);
                    for ix in 0..n {
                        for iy in 0..n {
                            for iz in 0..n {
                                let ph = -2.0
                                    * std::f64::consts::PI
                                    * ((kx * ix + ky * iy + kz * iz) as f64)
                                    / n as f64;
                                s += Complex::new(ph.cos(), ph.sin()) * x[(ix * n + iy) * n + iz];
                            }
                        }
                    }
                    out[(kx * n + ky) * nh + kz] = s;
                }
            }
        }
        out
    }

    #[test]
    fn matches_direct_dft_and_roundtrips() {
        for &n in &[1usize, 2, 4, 6, 8, 5] {
            let mut s = 7;
            let x: Vec<f64> = (0..n * n * n).map(|_| lcg(&mut s)).collect();
            let f = Fft3::<f64>::new(n);
            let k = f.forward(&x);
            let d = dft(&x, n);
            for (a, b) in k.iter().zip(&d) {
                assert!((a - b).norm() < 1e-10, "n={n}: {a} vs {b}");
            }
            let y = f.inverse(&k);
            for (a, b) in x.iter().zip(&y) {
                assert!((a - b).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn maps_match_direct_dft_and_roundtrip() {
        for &n in &[1usize, 2, 4, 6, 8, 5] {
            let mut s = 11;
            let x: Vec<f64> = (0..n * n).map(|_| lcg(&mut s)).collect();
            let f = Fft3::<f64>::new_2d(n);
            assert_eq!((f.len_real(), f.len_complex()), (n * n, n * (n / 2 + 1)));
            let k = f.forward(&x);
            let nh = n / 2 + 1;
            for ky in 0..n {
                for kx in 0..nh {
                    let mut d = Complex::new(0.0, 0.0);
                    for iy in 0..n {
                        for ix in 0..n {
                            let ph = -2.0 * std::f64::consts::PI * ((ky * iy + kx * ix) as f64)
                                / n as f64;
                            d += Complex::new(ph.cos(), ph.sin()) * x[iy * n + ix];
                        }
                    }
                    assert!((k[ky * nh + kx] - d).norm() < 1e-10, "n={n}");
                }
            }
            let y = f.inverse(&k);
            for (a, b) in x.iter().zip(&y) {
                assert!((a - b).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn roundtrip_f32_large() {
        let n = 32;
        let mut s = 3;
        let x: Vec<f32> = (0..n * n * n).map(|_| lcg(&mut s) as f32).collect();
        let f = Fft3::<f32>::new(n);
        let y = f.inverse(&f.forward(&x));
        let err = x
            .iter()
            .zip(&y)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(err < 1e-5, "{err}");
    }

    #[test]
    fn freq_matches_numpy() {
        assert_eq!(
            (0..4).map(|i| freq(i, 4)).collect::<Vec<_>>(),
            vec![0, 1, -2, -1]
        );
        assert_eq!(
            (0..5).map(|i| freq(i, 5)).collect::<Vec<_>>(),
            vec![0, 1, 2, -2, -1]
        );
    }
}
