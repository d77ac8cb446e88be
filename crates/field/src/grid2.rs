//! 2-D flat-sky map geometry and the Fourier-grid conventions.
//!
//! A map is a square `n x n` array stored row-major, index `iy * n + ix`;
//! `x` runs along the columns (axis 1), `y` along the rows (axis 0). The
//! pixel side is `pixel_arcmin` arcminutes; angles enter Fourier space in
//! radians, so multipoles are `ell = 2 pi m / (n * dx_rad)` for the integer
//! frequency `m` in numpy `fftfreq` order (`0, 1, .., -1`; on even grids the
//! Nyquist index `n/2` is assigned `m = -n/2`).

use crate::error::{FieldError, Result};

/// Arcminutes to radians.
pub const ARCMIN: f64 = std::f64::consts::PI / (180.0 * 60.0);

/// Square flat-sky map geometry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grid2 {
    /// Pixels per side.
    pub n: usize,
    /// Pixel side in arcminutes.
    pub pixel_arcmin: f64,
}

impl Grid2 {
    /// Validate and build (`n >= 2`, finite positive pixel size).
    pub fn new(n: usize, pixel_arcmin: f64) -> Result<Self> {
        if n < 2 {
            return Err(FieldError::Grid(format!(
                "need at least 2 pixels per side, got {n}"
            )));
        }
        if n > 1 << 15 {
            return Err(FieldError::Grid(format!(
                "{n} pixels per side is too large"
            )));
        }
        if !(pixel_arcmin.is_finite() && pixel_arcmin > 0.0) {
            return Err(FieldError::Grid(format!(
                "pixel size must be positive and finite, got {pixel_arcmin}"
            )));
        }
        Ok(Self { n, pixel_arcmin })
    }
    /// Number of pixels `n^2`.
    pub fn npix(&self) -> usize {
        self.n * self.n
    }
    /// Pixel side in radians.
    pub fn pixel_rad(&self) -> f64 {
        self.pixel_arcmin * ARCMIN
    }
    /// Pixel solid angle in steradians.
    pub fn pixel_area_sr(&self) -> f64 {
        self.pixel_rad().powi(2)
    }
    /// Pixel area in arcmin^2.
    pub fn pixel_area_arcmin2(&self) -> f64 {
        self.pixel_arcmin.powi(2)
    }
    /// Map solid angle in steradians.
    pub fn area_sr(&self) -> f64 {
        self.pixel_area_sr() * self.npix() as f64
    }
    /// Integer frequency of FFT index `i` (numpy `fftfreq(n) * n`).
    pub fn freq_index(&self, i: usize) -> i64 {
        freq_index(self.n, i)
    }
    /// Whether FFT index `i` is the Nyquist frequency (even `n`, `i = n/2`).
    pub fn is_nyquist(&self, i: usize) -> bool {
        self.n.is_multiple_of(2) && i == self.n / 2
    }
    /// Fundamental multipole `2 pi / (n dx)`.
    pub fn ell_fundamental(&self) -> f64 {
        2.0 * std::f64::consts::PI / (self.n as f64 * self.pixel_rad())
    }
    /// Nyquist multipole `pi / dx` along an axis.
    pub fn ell_nyquist(&self) -> f64 {
        std::f64::consts::PI / self.pixel_rad()
    }
    /// `(ell_x, ell_y)` of Fourier mode `(iy, ix)`.
    pub fn ell_xy(&self, iy: usize, ix: usize) -> (f64, f64) {
        let f = self.ell_fundamental();
        (
            f * self.freq_index(ix) as f64,
            f * self.freq_index(iy) as f64,
        )
    }
    /// `|ell|` of every Fourier mode, row-major like the maps.
    pub fn ell_abs(&self) -> Vec<f64> {
        let n = self.n;
        let mut out = vec![0.0; n * n];
        for iy in 0..n {
            for ix in 0..n {
                let (lx, ly) = self.ell_xy(iy, ix);
                out[iy * n + ix] = (lx * lx + ly * ly).sqrt();
            }
        }
        out
    }
    /// Index of the mode `-k` for mode index `idx` (Hermitian partner).
    pub fn neg_index(&self, idx: usize) -> usize {
        let n = self.n;
        let (iy, ix) = (idx / n, idx % n);
        ((n - iy) % n) * n + (n - ix) % n
    }
}

/// Integer frequency of FFT index `i` on an `n` grid (numpy convention).
pub fn freq_index(n: usize, i: usize) -> i64 {
    if i < n.div_ceil(2) {
        i as i64
    } else {
        i as i64 - n as i64
    }
}
