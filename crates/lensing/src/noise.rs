//! Shape noise and masks.
//!
//! Each galaxy's ellipticity is `e = gamma + e_int`, with intrinsic
//! ellipticity dispersion `sigma_e` **per component** (so the total
//! `<|e_int|^2> = 2 sigma_e^2`). Averaging `N = n_gal A_pix` galaxies in a
//! pixel of area `A_pix` (arcmin^2) gives Gaussian pixel noise per component
//!
//! `sigma_pix = sigma_e / sqrt(n_gal A_pix)`.
//!
//! Everywhere in this crate a noise map is the per-component standard
//! deviation; a pixel is unobserved (inverse variance 0) where the mask is 0
//! or the noise is `+inf`.

use crate::error::{check_len, value, Result};
use cosmodiff_field::Grid2;
use rand_distr::{Distribution, StandardNormal};

/// `sigma_e / sqrt(n_gal * A_pix)` per component.
pub fn pixel_noise_std(grid: &Grid2, sigma_e: f64, gals_per_arcmin2: f64) -> Result<f64> {
    if !(sigma_e.is_finite() && sigma_e >= 0.0) {
        return Err(value(
            "sigma_e",
            format!("must be finite and >= 0, got {sigma_e}"),
        ));
    }
    if !(gals_per_arcmin2.is_finite() && gals_per_arcmin2 > 0.0) {
        return Err(value(
            "galaxy density",
            format!("must be positive, got {gals_per_arcmin2}"),
        ));
    }
    Ok(sigma_e / (gals_per_arcmin2 * grid.pixel_area_arcmin2()).sqrt())
}

/// Per-pixel inverse variance `mask / sigma^2` (0 where masked or `sigma = inf`):
/// a mask value in (0, 1] is an inverse-variance weight, i.e. the pixel's
/// noise std becomes `sigma / sqrt(mask)` (Wiener filter, score likelihood).
/// Errors on negative, NaN or zero noise in an observed pixel.
pub fn inverse_variance(noise_std: &[f64], mask: Option<&[f64]>) -> Result<Vec<f64>> {
    if let Some(m) = mask {
        check_len("mask", noise_std.len(), m.len())?;
    }
    noise_std
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            let m = mask.map(|m| m[i]).unwrap_or(1.0);
            if !m.is_finite() || !(0.0..=1.0).contains(&m) {
                return Err(value(
                    "mask",
                    format!("values must be in [0, 1], got {m} at pixel {i}"),
                ));
            }
            if m == 0.0 || s == f64::INFINITY {
                return Ok(0.0);
            }
            if !(s.is_finite() && s > 0.0) {
                return Err(value(
                    "noise_std",
                    format!("must be positive in observed pixels, got {s} at pixel {i}"),
                ));
            }
            Ok(m / (s * s))
        })
        .collect()
}

/// Add independent Gaussian noise of per-pixel standard deviation
/// `noise_std` to `(g1, g2)` (pixels with infinite noise are set to 0).
pub fn add_shape_noise<R: rand::Rng + ?Sized>(
    g1: &[f64],
    g2: &[f64],
    noise_std: &[f64],
    rng: &mut R,
) -> Result<(Vec<f64>, Vec<f64>)> {
    check_len("gamma2", g1.len(), g2.len())?;
    check_len("noise_std", g1.len(), noise_std.len())?;
    let mut e1 = Vec::with_capacity(g1.len());
    let mut e2 = Vec::with_capacity(g1.len());
    for i in 0..g1.len() {
        let s = noise_std[i];
        let (a, b): (f64, f64) = (StandardNormal.sample(rng), StandardNormal.sample(rng));
        if s.is_finite() {
            e1.push(g1[i] + s * a);
            e2.push(g2[i] + s * b);
        } else {
            e1.push(0.0);
            e2.push(0.0);
        }
    }
    Ok((e1, e2))
}
