//! Tomographic weak-lensing map simulations from a table of theory spectra.
//!
//! Convergence maps for `n_bins` source bins are drawn with the auto and
//! cross spectra `C_ij(ell)` (Gaussian, or log-normal with a per-bin shift,
//! see [`cosmodiff_field::tomo2`]); the noiseless shear is `gamma = P kappa`
//! ([`crate::shear::ShearOp`], weak-shear limit: `e = gamma + noise`, no
//! reduced shear), and the observed ellipticity maps add per-component
//! Gaussian shape noise `sigma_e / sqrt(n_gal A_pix)` ([`crate::noise`]).

use crate::error::{check_len, value, Result};
use crate::noise::{add_shape_noise, pixel_noise_std};
use crate::shear::ShearOp;
use cosmodiff_field::tomo2::{FieldKind, TomoField};
use cosmodiff_field::{ClMatrixTable, Grid2};
use ndarray::Array3;
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Log-normal shift of the convergence for sources at redshift z
/// (fit of Hilbert, Hartlap & Schneider 2011, eq. 38, to ray-traced
/// Millennium convergence): kappa_0 = 0.008 z + 0.029 z^2 - 0.0079 z^3 + 0.00065 z^4,
/// with z capped at 3.
pub fn hilbert_shift(z: f64) -> f64 {
    let z = z.min(3.0);
    0.008 * z + 0.029 * z * z - 0.0079 * z.powi(3) + 0.00065 * z.powi(4)
}

/// Theory multipoles covering a map's modes: 96 log-spaced ell from half the
/// fundamental mode (at least 2) to 1.5 x the corner Nyquist mode.
pub fn theory_ells(grid: &Grid2) -> Vec<f64> {
    let side = grid.n as f64 * grid.pixel_arcmin * cosmodiff_field::ARCMIN;
    let l_min = (std::f64::consts::PI / side).max(2.0);
    let l_max = 1.5 * std::f64::consts::SQRT_2 * std::f64::consts::PI
        / (grid.pixel_arcmin * cosmodiff_field::ARCMIN);
    let n = 96;
    (0..n)
        .map(|i| l_min * (l_max / l_min).powf(i as f64 / (n - 1) as f64))
        .collect()
}

/// Observation settings of one source bin.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SourceBin {
    /// Intrinsic ellipticity dispersion per component.
    pub sigma_e: f64,
    /// Galaxies per arcmin^2.
    pub gals_per_arcmin2: f64,
}

/// Output of [`simulate_tomographic`]; every array is `[n_bins, npix, npix]`.
#[derive(Debug, Clone)]
pub struct TomoLensingSim {
    pub kappa: Array3<f64>,
    pub gamma1: Array3<f64>,
    pub gamma2: Array3<f64>,
    pub e1: Array3<f64>,
    pub e2: Array3<f64>,
    pub noise_std: Array3<f64>,
}

fn to_array3(n: usize, maps: Vec<Vec<f64>>) -> Array3<f64> {
    let nb = maps.len();
    Array3::from_shape_vec((nb, n, n), maps.into_iter().flatten().collect())
        .expect("maps are n x n")
}

/// Simulate tomographic convergence, shear and noisy ellipticity maps.
///
/// `cls`: theory spectra table (pairs `(i, j)`, `j >= i` in bin order);
/// `sources`: one entry per bin; `kind`: Gaussian or log-normal (per-bin
/// shifts); `seed`: the field white noise and then the shape noise are
/// drawn from one `StdRng` seeded with it.
pub fn simulate_tomographic(
    grid: Grid2,
    cls: &ClMatrixTable,
    sources: &[SourceBin],
    kind: &FieldKind,
    seed: u64,
) -> Result<TomoLensingSim> {
    let nb = cls.n_bins();
    check_len("source bins", nb, sources.len())?;
    let noise: Vec<f64> = sources
        .iter()
        .map(|s| pixel_noise_std(&grid, s.sigma_e, s.gals_per_arcmin2))
        .collect::<Result<_>>()?;
    if let FieldKind::LogNormal { shifts } = kind {
        if shifts.len() != nb {
            return Err(value(
                "log-normal shifts",
                format!("{} shifts for {nb} bins", shifts.len()),
            ));
        }
    }
    let field = TomoField::new(grid, cls, kind.clone())?;
    let op = ShearOp::new(grid);
    let mut rng = StdRng::seed_from_u64(seed);
    let kappa = field.sample(&mut rng);
    let np = grid.npix();
    let (mut g1s, mut g2s, mut e1s, mut e2s, mut ns) = (vec![], vec![], vec![], vec![], vec![]);
    for (i, k) in kappa.iter().enumerate() {
        let (g1, g2) = op.forward(k, None)?;
        let nstd = vec![noise[i]; np];
        let (e1, e2) = add_shape_noise(&g1, &g2, &nstd, &mut rng)?;
        g1s.push(g1);
        g2s.push(g2);
        e1s.push(e1);
        e2s.push(e2);
        ns.push(nstd);
    }
    let n = grid.n;
    Ok(TomoLensingSim {
        kappa: to_array3(n, kappa),
        gamma1: to_array3(n, g1s),
        gamma2: to_array3(n, g2s),
        e1: to_array3(n, e1s),
        e2: to_array3(n, e2s),
        noise_std: to_array3(n, ns),
    })
}
