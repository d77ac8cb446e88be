//! Fourier-space kernels on a periodic mesh of side `n` (wavenumbers in
//! radians per cell, `w = 2 pi m / n`, `m` the signed FFT frequency).
//!
//! - Laplacian inverse: exact `-1/|w|^2` (0 at `w = 0`).
//! - Gradient `grad_a -> i g(w_a)`: `Exact` `g = w` (zero on the Nyquist
//!   plane, where `i w` would not be Hermitian), or `Fd4`
//!   `g = (8 sin w - sin 2w)/6`, the 4-point finite difference of
//!   FastPM/JaxPM (`[-1, 8, 0, -8, 1]/12` stencil in real space).
//! - CIC window `W(w) = prod_a sinc^2(w_a/2)` for optional deconvolution.

use cosmodiff_field::fft3::freq;
use std::f64::consts::PI;

/// Gradient kernel in Fourier space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GradientKernel {
    /// `i k` (spectral).
    Exact,
    /// `i (8 sin w - sin 2w) / 6` (FastPM/JaxPM 4-point finite difference).
    Fd4,
}

/// Per-axis kernel values (depend on one index only).
#[derive(Debug, Clone)]
pub struct AxisKernels {
    pub n: usize,
    /// Imaginary part of the gradient kernel, `g(w_i)`.
    pub g: Vec<f64>,
    /// `w_i^2`.
    pub w2: Vec<f64>,
    /// `sinc^2(w_i/2)` (CIC window per axis).
    pub cic: Vec<f64>,
}

impl AxisKernels {
    pub fn new(n: usize, kernel: GradientKernel) -> Self {
        let mut g = vec![0.0; n];
        let mut w2 = vec![0.0; n];
        let mut cic = vec![1.0; n];
        for i in 0..n {
            let m = freq(i, n);
            let w = 2.0 * PI * m as f64 / n as f64;
            w2[i] = w * w;
            g[i] = match kernel {
                GradientKernel::Exact => {
                    if n.is_multiple_of(2) && m == -(n as i64) / 2 {
                        0.0
                    } else {
                        w
                    }
                }
                GradientKernel::Fd4 => (8.0 * w.sin() - (2.0 * w).sin()) / 6.0,
            };
            let x = w / 2.0;
            cic[i] = if x == 0.0 { 1.0 } else { (x.sin() / x).powi(2) };
        }
        Self { n, g, w2, cic }
    }
    /// `1/|w|^2` at a mode (0 at the origin).
    #[inline]
    pub fn inv_k2(&self, ix: usize, iy: usize, iz: usize) -> f64 {
        let k2 = self.w2[ix] + self.w2[iy] + self.w2[iz];
        if k2 > 0.0 {
            1.0 / k2
        } else {
            0.0
        }
    }
}
