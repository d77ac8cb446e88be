//! The two survey set-ups of the sbi_lens benchmark and their
//! `theta -> (C_ell, lambda)` maps with exact Jacobians.
//!
//! - `lsst-y10` (sbi_lens at d239796, `lensingLogNormal` with the LSST-Y10
//!   configuration; Lanzieri, Zeghal et al. 2024): 256^2 pixels over
//!   10 x 10 deg^2, 5 bins of equal galaxy number from a Smail n(z)
//!   (a = 2, b = 0.68, z0 = 0.11, z <= 10) seen through a photo-z error
//!   0.05 (1 + z), 27 galaxies/arcmin^2, sigma_e = 0.26; six parameters
//!   (Omega_c, Omega_b, sigma8, h, n_s, w0); C_ell on the nodes
//!   `2 pi |fftfreq(2n, L / 2n)|` (unsorted, interpolated as jax-cosmo's
//!   `interp` does on it); shifts from the (Omega_m, sigma8, w0) table.
//! - `sbi-lens-128` (sbi_lens at 3476824; Zeghal et al. 2024): 128^2 pixels
//!   over 5 x 5 deg^2, one bin with n(z) ~ z^0.5 exp(-z^2) (jax-cosmo's
//!   `smail_nz(a=0.5, b=2, z0=1)`), 30 galaxies/arcmin^2, sigma_e = 0.2;
//!   (Omega_c, sigma8) with the rest at Planck 2015; C_ell on
//!   `logspace(0, 4.5, 128)`; shifts from the (Omega_m, sigma8) table.
//!
//! Both use jax-cosmo's defaults for the spectra: Eisenstein & Hu transfer
//! function and halofit (Takahashi et al. 2012), Limber.

use anyhow::{anyhow, bail, Context, Result};
use cosmodiff_cosmo::cl::{angular_cl, ClOptions};
use cosmodiff_cosmo::nz::{Nz, RedshiftDistribution};
use cosmodiff_cosmo::tracers::Tracer;
use cosmodiff_cosmo::{Cosmology, Scalar};
use cosmodiff_field::grid2::Grid2;
use cosmodiff_infer::Prior;
use cosmodiff_lensing::shift_table::ShiftTable;
use cosmodiff_lensing::tomo_lognormal::TomoLogNormal;

/// Embedded copies of the benchmark's shift tables (`data/sbi_lens/README.md`).
const LSST_SHIFTS: &[u8] =
    include_bytes!("../../data/sbi_lens/lognormal_shifts_LSSTY10_om_s8_w_bin.npy");
const S128_SHIFTS: &str = include_str!("../../data/sbi_lens/lognormal_shift.csv");

/// `C_ell` on the nodes `[n_pairs][n_nodes]` and, if asked for, their
/// Jacobian `[n_pairs][n_nodes][n_params]`.
pub type Spectra = (Vec<Vec<f64>>, Option<Vec<Vec<Vec<f64>>>>);

/// Which benchmark set-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupName {
    LsstY10,
    SbiLens128,
}

impl SetupName {
    /// The names accepted by `--setup`.
    pub const ALL: [&'static str; 2] = ["lsst-y10", "sbi-lens-128"];

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "lsst-y10" => Ok(Self::LsstY10),
            "sbi-lens-128" => Ok(Self::SbiLens128),
            _ => bail!(
                "--setup {s:?}: unknown set-up (expected one of {})",
                Self::ALL.join(", ")
            ),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LsstY10 => "lsst-y10",
            Self::SbiLens128 => "sbi-lens-128",
        }
    }
}

/// Which cosmological parameter a sampled coordinate sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Param {
    OmegaC,
    OmegaB,
    Sigma8,
    H,
    Ns,
    W0,
}

/// One survey set-up: the grid, the tracers, the priors and the shift table.
#[derive(Debug, Clone)]
pub struct Setup {
    pub name: SetupName,
    /// Pixels per side.
    pub npix: usize,
    /// Side of the map in degrees.
    pub map_size_deg: f64,
    /// Shape-noise dispersion per galaxy (both components).
    pub sigma_e: f64,
    /// Galaxies per arcmin^2 in each bin.
    pub gals_per_arcmin2: Vec<f64>,
    /// Parameter names in sampling order (`Omega_c, Omega_b, sigma8, h, n_s, w0`
    /// or `Omega_c, sigma8`).
    pub names: Vec<&'static str>,
    /// Priors, in the same order.
    pub priors: Vec<Prior>,
    /// The fiducial (truth of the observed maps) in the same order.
    pub fiducial: Vec<f64>,
    params: Vec<Param>,
    /// Values of the parameters that are not sampled.
    base: Cosmology<f64>,
    tracers: Vec<Tracer>,
    /// `C_ell` interpolation nodes.
    pub ell_nodes: Vec<f64>,
    shifts: ShiftTable,
    /// Shift-table axes: 0 = Omega_m, 1 = sigma8, 2 = w0.
    shift_axes: usize,
}

impl Setup {
    pub fn new(name: SetupName) -> Result<Self> {
        let pi = std::f64::consts::PI;
        match name {
            SetupName::LsstY10 => {
                let npix = 256;
                let size = 10.0;
                let parent = RedshiftDistribution::Smail {
                    a: 2.0,
                    b: 0.68,
                    z0: 0.11,
                    zmax: 10.0,
                };
                let (bins, _) = RedshiftDistribution::equal_number_bins(&parent, 5, 0.05)?;
                let ngal = 27.0 / 5.0;
                let tracers = bins
                    .into_iter()
                    .map(|b| Ok(Tracer::weak_lensing(Nz::new(b, 0.0)?, 0.26, ngal)))
                    .collect::<Result<Vec<_>>>()?;
                // sbi_lens' table, 2 pi |fftfreq(2 n, d = L / 2n)|, in its own
                // (unsorted) order: the interpolation depends on it.
                let size_rad = size * pi / 180.0;
                let ell_nodes = (0..2 * npix)
                    .map(|m| {
                        let f = if m < npix {
                            m as f64
                        } else {
                            (2 * npix - m) as f64
                        };
                        2.0 * pi * f / size_rad
                    })
                    .collect();
                Ok(Self {
                    name,
                    npix,
                    map_size_deg: size,
                    sigma_e: 0.26,
                    gals_per_arcmin2: vec![ngal; 5],
                    names: vec!["Omega_c", "Omega_b", "sigma8", "h", "n_s", "w0"],
                    priors: vec![
                        Prior::TruncatedNormal {
                            mean: 0.2664,
                            sd: 0.2,
                            low: 0.0,
                            high: f64::INFINITY,
                        },
                        Prior::Normal {
                            mean: 0.0492,
                            sd: 0.006,
                        },
                        Prior::Normal {
                            mean: 0.831,
                            sd: 0.14,
                        },
                        Prior::Normal {
                            mean: 0.6727,
                            sd: 0.063,
                        },
                        Prior::Normal {
                            mean: 0.9645,
                            sd: 0.08,
                        },
                        Prior::TruncatedNormal {
                            mean: -1.0,
                            sd: 0.9,
                            low: -2.0,
                            high: -0.3,
                        },
                    ],
                    fiducial: vec![0.2664, 0.0492, 0.831, 0.6727, 0.9645, -1.0],
                    params: vec![
                        Param::OmegaC,
                        Param::OmegaB,
                        Param::Sigma8,
                        Param::H,
                        Param::Ns,
                        Param::W0,
                    ],
                    base: Cosmology::planck15(),
                    tracers,
                    ell_nodes,
                    shifts: lsst_table()?,
                    shift_axes: 3,
                })
            }
            SetupName::SbiLens128 => {
                let parent = RedshiftDistribution::Smail {
                    a: 0.5,
                    b: 2.0,
                    z0: 1.0,
                    zmax: 10.0,
                };
                let tracers = vec![Tracer::weak_lensing(Nz::new(parent, 0.0)?, 0.2, 30.0)];
                let ell_nodes = (0..128)
                    .map(|i| 10f64.powf(4.5 * i as f64 / 127.0))
                    .collect();
                Ok(Self {
                    name,
                    npix: 128,
                    map_size_deg: 5.0,
                    sigma_e: 0.2,
                    gals_per_arcmin2: vec![30.0],
                    names: vec!["Omega_c", "sigma8"],
                    priors: vec![
                        Prior::Normal {
                            mean: 0.3,
                            sd: 0.05,
                        },
                        Prior::Normal {
                            mean: 0.8,
                            sd: 0.05,
                        },
                    ],
                    fiducial: vec![0.3, 0.8],
                    params: vec![Param::OmegaC, Param::Sigma8],
                    base: Cosmology::planck15(),
                    tracers,
                    ell_nodes,
                    shifts: s128_table()?,
                    shift_axes: 2,
                })
            }
        }
    }

    pub fn n_params(&self) -> usize {
        self.params.len()
    }
    pub fn n_bins(&self) -> usize {
        self.tracers.len()
    }
    /// The map grid.
    pub fn grid(&self) -> Result<Grid2> {
        Ok(Grid2::new(
            self.npix,
            self.map_size_deg * 60.0 / self.npix as f64,
        )?)
    }
    /// The simulator on this set-up's grid and nodes.
    pub fn simulator(&self) -> Result<TomoLogNormal> {
        Ok(TomoLogNormal::new(
            self.grid()?,
            self.n_bins(),
            self.ell_nodes.clone(),
        )?)
    }
    /// Shape-noise standard deviation per pixel in each bin,
    /// `sigma_e / sqrt(n_gal A_pix)`.
    pub fn noise_sd(&self) -> Vec<f64> {
        let a = (self.map_size_deg * 60.0 / self.npix as f64).powi(2);
        self.gals_per_arcmin2
            .iter()
            .map(|n| self.sigma_e / (n * a).sqrt())
            .collect()
    }

    /// The cosmology at `theta` (sampling order).
    pub fn cosmology<T: Scalar>(&self, theta: &[T]) -> Cosmology<T> {
        let mut c = self.base.lift::<T>();
        for (p, v) in self.params.iter().zip(theta) {
            match p {
                Param::OmegaC => c.omega_c = *v,
                Param::OmegaB => c.omega_b = *v,
                Param::Sigma8 => c.sigma8 = *v,
                Param::H => c.h = *v,
                Param::Ns => c.n_s = *v,
                Param::W0 => c.w0 = *v,
            }
        }
        c
    }

    /// `C_ell` on the nodes `[n_pairs][n_nodes]` (zero on the nodes below
    /// ell = 2 and outside `used`, which the simulator never reads) and
    /// their Jacobian `[n_pairs][n_nodes][n_params]` if asked for.
    pub fn spectra(
        &self,
        theta: &[f64],
        used: std::ops::Range<usize>,
        jacobian: bool,
    ) -> Result<Spectra> {
        if !jacobian {
            let c = self.cosmology(theta);
            c.validate()?;
            return Ok((self.cl_on_nodes(&c, used)?, None));
        }
        match theta.len() {
            2 => self.spectra_n::<2>(theta, used),
            6 => self.spectra_n::<6>(theta, used),
            n => bail!("{n} parameters: the set-ups have 2 or 6"),
        }
    }

    fn spectra_n<const N: usize>(
        &self,
        theta: &[f64],
        used: std::ops::Range<usize>,
    ) -> Result<Spectra> {
        self.cosmology(theta).validate()?;
        let v = cosmodiff_cosmo::duals::seed_gradient::<N>(theta);
        let cl = self.cl_on_nodes(&self.cosmology(&v), used)?;
        let values = cl
            .iter()
            .map(|r| r.iter().map(|d| d.re).collect())
            .collect();
        let jac = cl
            .iter()
            .map(|r| r.iter().map(cosmodiff_cosmo::duals::gradient).collect())
            .collect();
        Ok((values, Some(jac)))
    }

    fn cl_on_nodes<T: Scalar>(
        &self,
        c: &Cosmology<T>,
        used: std::ops::Range<usize>,
    ) -> Result<Vec<Vec<T>>> {
        let idx: Vec<usize> = used.filter(|&i| self.ell_nodes[i] >= 2.0).collect();
        let ell: Vec<f64> = idx.iter().map(|&i| self.ell_nodes[i]).collect();
        let cl = angular_cl(c, &self.tracers, &ell, &ClOptions::default())?;
        Ok(cl
            .into_iter()
            .map(|row| {
                let mut full = vec![T::zero(); self.ell_nodes.len()];
                for (&i, v) in idx.iter().zip(row) {
                    full[i] = v;
                }
                full
            })
            .collect())
    }

    /// Shifts `lambda_i(theta)` and `d lambda_i / d theta` (`[n_bins][n_params]`).
    pub fn shifts(&self, theta: &[f64]) -> Result<(Vec<f64>, Vec<Vec<f64>>)> {
        let c = self.cosmology(theta);
        let x = [c.omega_m(), c.sigma8, c.w0];
        let (s, j) = self.shifts.eval(&x[..self.shift_axes])?;
        // Chain rule from (Omega_m, sigma8, w0) to the sampled parameters.
        let jac = j
            .iter()
            .map(|row| {
                self.params
                    .iter()
                    .map(|p| match p {
                        Param::OmegaC | Param::OmegaB => row[0],
                        Param::Sigma8 => row[1],
                        Param::W0 if self.shift_axes > 2 => row[2],
                        _ => 0.0,
                    })
                    .collect()
            })
            .collect();
        Ok((s, jac))
    }
}

/// The (8, 8, 8, 5, 5) LSST-Y10 table: axes from the rows' own values.
fn lsst_table() -> Result<ShiftTable> {
    use ndarray_npy::ReadNpyExt;
    let a = ndarray::ArrayD::<f64>::read_npy(std::io::Cursor::new(LSST_SHIFTS))
        .context("embedded LSST-Y10 shift table")?;
    let sh = a.shape().to_vec();
    if sh != [8, 8, 8, 5, 5] {
        bail!("embedded LSST-Y10 shift table has shape {sh:?}");
    }
    let axes = (0..3)
        .map(|d| {
            let v = a.index_axis(ndarray::Axis(4), d);
            let (lo, hi) = v
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
                    (a.min(x), b.max(x))
                });
            (lo, hi, 8)
        })
        .collect();
    let values = (0..5)
        .map(|b| {
            let mut v = Vec::with_capacity(512);
            for i in 0..8 {
                for j in 0..8 {
                    for k in 0..8 {
                        v.push(a[[i, j, k, b, 4]]);
                    }
                }
            }
            v
        })
        .collect();
    Ok(ShiftTable::new(axes, values)?)
}

/// The 8 x 8 (Omega_m, sigma8) table of the 128^2 set-up, rows in
/// Omega_m-major order as in the csv.
fn s128_table() -> Result<ShiftTable> {
    let rows: Vec<[f64; 3]> = S128_SHIFTS
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Vec<f64> = l
                .split(',')
                .map(|x| x.trim().parse::<f64>())
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| anyhow!("embedded shift table: {e}"))?;
            Ok([v[0], v[1], v[2]])
        })
        .collect::<Result<_>>()?;
    if rows.len() != 64 {
        bail!("embedded shift table has {} rows, expected 64", rows.len());
    }
    let range = |c: usize| {
        rows.iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), r| {
                (a.min(r[c]), b.max(r[c]))
            })
    };
    let (a0, b0) = range(0);
    let (a1, b1) = range(1);
    Ok(ShiftTable::new(
        vec![(a0, b0, 8), (a1, b1, 8)],
        vec![rows.iter().map(|r| r[2]).collect()],
    )?)
}
