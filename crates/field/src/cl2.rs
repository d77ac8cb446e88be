//! Angular power spectrum estimators on flat-sky maps (auto and cross),
//! linear or logarithmic `ell` bins, mean `ell` per bin and mode counts.
//!
//! # Normalisation
//! For maps `a`, `b` (optionally multiplied by a mask `W`), with
//! `A = dx^2` and `n^2` pixels,
//!
//! `C_hat(ell_k) = A Re[FFT(Wa)_k conj(FFT(Wb)_k)] / n^2 / w2`,
//! `w2 = mean(W^2)`,
//!
//! averaged over all modes `k != 0` with `lo <= |ell_k| < hi` (both `k` and
//! `-k` are counted, so `n_modes` counts the full Fourier plane and a Gaussian
//! field's bin error is `C sqrt(2 / n_modes)`). The `1/w2` factor is the
//! first-order (f_sky) pseudo-C_ell correction: exact for the mean of a
//! white spectrum, approximate (mode coupling not deconvolved) otherwise.
//! Unmasked, `<C_hat> = C` exactly for the pixelised field.

use crate::error::{check_finite, check_len, FieldError, Result};
use crate::fft2::Fft2;
use crate::grid2::Grid2;

/// Most bins [`EllBins::linear`] and [`EllBins::log`] make (a 4096^2 map
/// has about 2900 Nyquist-limited ell modes along an axis).
pub const MAX_BINS: usize = 100_000;

/// Bin edges in `ell`.
#[derive(Debug, Clone, PartialEq)]
pub struct EllBins {
    pub edges: Vec<f64>,
}

impl EllBins {
    pub fn from_edges(edges: Vec<f64>) -> Result<Self> {
        if edges.len() < 2
            || edges.windows(2).any(|w| !(w[1] > w[0]))
            || edges.iter().any(|e| !e.is_finite())
        {
            return Err(FieldError::Value {
                what: "ell bin edges".into(),
                msg: "need >= 2 finite increasing edges".into(),
            });
        }
        Ok(Self { edges })
    }
    pub fn linear(lmin: f64, lmax: f64, nbins: usize) -> Result<Self> {
        if nbins == 0 || nbins > MAX_BINS {
            return Err(FieldError::Value {
                what: "ell bins".into(),
                msg: format!("need 1 to {MAX_BINS} bins, got {nbins}"),
            });
        }
        Self::from_edges(
            (0..=nbins)
                .map(|i| lmin + (lmax - lmin) * i as f64 / nbins as f64)
                .collect(),
        )
    }
    pub fn log(lmin: f64, lmax: f64, nbins: usize) -> Result<Self> {
        if !(lmin > 0.0) || nbins == 0 || nbins > MAX_BINS {
            return Err(FieldError::Value {
                what: "ell bins".into(),
                msg: format!("log bins need lmin > 0 and 1 to {MAX_BINS} bins (got lmin = {lmin}, {nbins} bins)"),
            });
        }
        let r = (lmax / lmin).ln();
        Self::from_edges(
            (0..=nbins)
                .map(|i| lmin * (r * i as f64 / nbins as f64).exp())
                .collect(),
        )
    }
    /// `nbins` linear bins from half the fundamental `ell` to the Nyquist `ell`.
    pub fn default_for(grid: &Grid2, nbins: usize) -> Result<Self> {
        Self::linear(0.5 * grid.ell_fundamental(), grid.ell_nyquist(), nbins)
    }
    pub fn nbins(&self) -> usize {
        self.edges.len() - 1
    }
    fn find(&self, l: f64) -> Option<usize> {
        let e = &self.edges;
        if l < e[0] || l >= e[e.len() - 1] {
            return None;
        }
        Some(e.partition_point(|&x| x <= l) - 1)
    }
}

/// A binned spectrum.
#[derive(Debug, Clone, PartialEq)]
pub struct ClEstimate {
    /// Mode-averaged `|ell|` per bin (bin centre if empty).
    pub ell: Vec<f64>,
    /// Binned `C_ell` (0 for empty bins).
    pub cl: Vec<f64>,
    /// Number of Fourier modes in each bin (full plane).
    pub n_modes: Vec<usize>,
    pub bins: EllBins,
}

impl ClEstimate {
    /// Gaussian error `|C| sqrt(2/n_modes)` per bin.
    pub fn gaussian_error(&self) -> Vec<f64> {
        self.cl
            .iter()
            .zip(&self.n_modes)
            .map(|(c, &m)| {
                if m > 0 {
                    c.abs() * (2.0 / m as f64).sqrt()
                } else {
                    f64::INFINITY
                }
            })
            .collect()
    }
}

/// Auto spectrum of `map` (see module docs for the normalisation).
pub fn cl_auto(
    grid: &Grid2,
    fft: &Fft2,
    map: &[f64],
    bins: &EllBins,
    mask: Option<&[f64]>,
) -> Result<ClEstimate> {
    cl_cross(grid, fft, map, map, bins, mask)
}

/// Cross spectrum of `a` and `b`.
pub fn cl_cross(
    grid: &Grid2,
    fft: &Fft2,
    a: &[f64],
    b: &[f64],
    bins: &EllBins,
    mask: Option<&[f64]>,
) -> Result<ClEstimate> {
    let np = grid.npix();
    check_len("map a", np, a.len())?;
    check_len("map b", np, b.len())?;
    check_len("fft size", grid.n, fft.n())?;
    let (fa, fb, w2) = match mask {
        Some(m) => {
            check_len("mask", np, m.len())?;
            if m.iter().any(|w| !(0.0..=1.0).contains(w)) {
                return Err(FieldError::Value {
                    what: "mask".into(),
                    msg: "values must be in [0, 1] (0: masked, 1: observed, fractions weight)"
                        .into(),
                });
            }
            let w2 = m.iter().map(|x| x * x).sum::<f64>() / np as f64;
            if !(w2 > 0.0) {
                return Err(FieldError::Value {
                    what: "mask".into(),
                    msg: "mask is empty".into(),
                });
            }
            // Masked pixels (weight 0) may hold anything, NaN included.
            let weigh = |x: &[f64]| -> Vec<f64> {
                x.iter()
                    .zip(m)
                    .map(|(v, &w)| if w > 0.0 { v * w } else { 0.0 })
                    .collect()
            };
            let (am, bm) = (weigh(a), weigh(b));
            check_finite("map a", &am)?;
            check_finite("map b", &bm)?;
            (fft.forward_real(&am)?, fft.forward_real(&bm)?, w2)
        }
        None => {
            check_finite("map a", a)?;
            check_finite("map b", b)?;
            (fft.forward_real(a)?, fft.forward_real(b)?, 1.0)
        }
    };
    let nb = bins.nbins();
    let mut sum = vec![0.0; nb];
    let mut lsum = vec![0.0; nb];
    let mut cnt = vec![0usize; nb];
    let norm = grid.pixel_area_sr() / np as f64 / w2;
    for (k, l) in grid.ell_abs().into_iter().enumerate() {
        if k == 0 {
            continue;
        }
        if let Some(i) = bins.find(l) {
            sum[i] += (fa[k] * fb[k].conj()).re * norm;
            lsum[i] += l;
            cnt[i] += 1;
        }
    }
    let ell = (0..nb)
        .map(|i| {
            if cnt[i] > 0 {
                lsum[i] / cnt[i] as f64
            } else {
                0.5 * (bins.edges[i] + bins.edges[i + 1])
            }
        })
        .collect();
    let cl = (0..nb)
        .map(|i| {
            if cnt[i] > 0 {
                sum[i] / cnt[i] as f64
            } else {
                0.0
            }
        })
        .collect();
    Ok(ClEstimate {
        ell,
        cl,
        n_modes: cnt,
        bins: bins.clone(),
    })
}

/// Gaussian smoothing `exp(-ell^2 sigma^2 / 2)` with `sigma` in arcmin
/// (`sigma = 0` returns the map unchanged).
pub fn smooth_gaussian(
    grid: &Grid2,
    fft: &Fft2,
    map: &[f64],
    sigma_arcmin: f64,
) -> Result<Vec<f64>> {
    if !(sigma_arcmin.is_finite() && sigma_arcmin >= 0.0) {
        return Err(FieldError::Value {
            what: "smoothing scale".into(),
            msg: format!("must be >= 0, got {sigma_arcmin}"),
        });
    }
    check_len("map", grid.npix(), map.len())?;
    if sigma_arcmin == 0.0 {
        return Ok(map.to_vec());
    }
    let s = sigma_arcmin * crate::grid2::ARCMIN;
    let h: Vec<f64> = grid
        .ell_abs()
        .iter()
        .map(|l| (-0.5 * l * l * s * s).exp())
        .collect();
    fft.filter_real(map, &h)
}
