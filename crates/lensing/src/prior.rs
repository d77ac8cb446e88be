//! A crude signal prior for the Wiener filter when no theory spectrum is
//! supplied: a power law `C(ell) = A (ell / ell_0)^alpha` fitted (least
//! squares in log-log, weighted by mode counts) to `C_E - C_B` of the
//! Kaiser-Squires map of the data, in logarithmic `ell` bins between the
//! fundamental and the Nyquist multipole. The B-mode power stands in for the
//! noise power (shape noise is equally E and B), so no noise model enters.
//! Masked pixels are zeroed and the f_sky-corrected pseudo-C_ell is used.

use crate::error::{check_len, value, Result};
use crate::noise::inverse_variance;
use crate::shear::ShearOp;
use cosmodiff_field::cl2::{cl_auto, EllBins};
use cosmodiff_field::{ClTable, Grid2};

/// Fit the power-law prior; errors if fewer than 2 bins have `C_E > C_B`.
pub fn estimate_prior_from_shear(
    grid: Grid2,
    g1: &[f64],
    g2: &[f64],
    noise_std: &[f64],
    mask: Option<&[f64]>,
) -> Result<ClTable> {
    let np = grid.npix();
    check_len("gamma1", np, g1.len())?;
    check_len("gamma2", np, g2.len())?;
    let w = inverse_variance(noise_std, mask)?;
    let m: Vec<f64> = w.iter().map(|&x| if x > 0.0 { 1.0 } else { 0.0 }).collect();
    let a: Vec<f64> = g1
        .iter()
        .zip(&m)
        .map(|(g, m)| if *m > 0.0 { *g } else { 0.0 })
        .collect();
    let b: Vec<f64> = g2
        .iter()
        .zip(&m)
        .map(|(g, m)| if *m > 0.0 { *g } else { 0.0 })
        .collect();
    let op = ShearOp::new(grid);
    let (e, bb) = op.kaiser_squires(&a, &b)?;
    let bins = EllBins::log(grid.ell_fundamental(), grid.ell_nyquist(), 10)?;
    let ce = cl_auto(&grid, op.fft(), &e, &bins, Some(&m))?;
    let cb = cl_auto(&grid, op.fft(), &bb, &bins, Some(&m))?;
    let pts: Vec<(f64, f64, f64)> = (0..bins.nbins())
        .filter(|&i| ce.n_modes[i] > 0 && ce.cl[i] > cb.cl[i])
        .map(|i| {
            (
                ce.ell[i].ln(),
                (ce.cl[i] - cb.cl[i]).ln(),
                ce.n_modes[i] as f64,
            )
        })
        .collect();
    if pts.len() < 2 {
        return Err(value("data", "no E-mode signal above the B-mode (noise) power; cannot estimate a prior spectrum, supply the theory C_ell"));
    }
    let sw: f64 = pts.iter().map(|p| p.2).sum();
    let mx = pts.iter().map(|p| p.2 * p.0).sum::<f64>() / sw;
    let my = pts.iter().map(|p| p.2 * p.1).sum::<f64>() / sw;
    let sxx: f64 = pts.iter().map(|p| p.2 * (p.0 - mx).powi(2)).sum();
    let sxy: f64 = pts.iter().map(|p| p.2 * (p.0 - mx) * (p.1 - my)).sum();
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    let (l0, l1) = (
        0.5 * grid.ell_fundamental(),
        1.5 * std::f64::consts::SQRT_2 * grid.ell_nyquist(),
    );
    let ell: Vec<f64> = (0..128)
        .map(|i| l0 * (l1 / l0).powf(i as f64 / 127.0))
        .collect();
    let cl = ell
        .iter()
        .map(|l| (my + slope * (l.ln() - mx)).exp())
        .collect();
    Ok(ClTable::new(ell, cl)?)
}
