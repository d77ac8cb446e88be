//! Flat-sky lensing maps: tomographic simulation, Kaiser-Squires, Wiener
//! filter with posterior samples, C_ell estimators and map metrics.

use crate::cosmo::{PyCosmology, PyTracer};
use crate::{bad, err, flat2, flat3, shear_inputs, slice, square_map, vec1};
use cosmodiff_cosmo::tracers::TracerKind;
use cosmodiff_cosmo::{angular_cl, ClOptions, NonLinear, TransferFunction};
use cosmodiff_field::cl2::{cl_cross, EllBins};
use cosmodiff_field::tomo2::FieldKind;
use cosmodiff_field::{ClMatrixTable, ClTable, Fft2, Grid2};
use cosmodiff_lensing::metrics::{pearson, rmse};
use cosmodiff_lensing::wiener::{pixel_std, rotate_b_to_e};
use cosmodiff_lensing::{
    hilbert_shift, simulate_tomographic, theory_ells, ShearOp, SourceBin, Wiener,
};
use numpy::ndarray::Array1;
use numpy::{IntoPyArray, PyArray2, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Tomographic lensing maps conditioned on a cosmology; see `cosmodiff.simulate_lensing`.
#[pyfunction]
#[pyo3(signature = (cosmo, tracers, npix=128, pixel_arcmin=2.0, kind="lognormal", seed=1, lognormal_shifts=None, transfer="eisenstein_hu", nonlinear="halofit"))]
#[allow(clippy::too_many_arguments)]
fn simulate_lensing<'py>(
    py: Python<'py>,
    cosmo: PyRef<'py, PyCosmology>,
    tracers: Vec<PyRef<'py, PyTracer>>,
    npix: usize,
    pixel_arcmin: f64,
    kind: &str,
    seed: u64,
    lognormal_shifts: Option<Vec<Option<f64>>>,
    transfer: &str,
    nonlinear: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let c = cosmo.inner;
    let opts = ClOptions {
        transfer: transfer.parse::<TransferFunction>().map_err(err)?,
        nonlinear: nonlinear.parse::<NonLinear>().map_err(err)?,
        ..Default::default()
    };
    if !(8..=8192).contains(&npix) {
        return Err(bad(format!("npix = {npix}: expected 8 <= npix <= 8192")));
    }
    if !(pixel_arcmin > 0.0 && pixel_arcmin < 600.0) {
        return Err(bad(format!(
            "pixel_arcmin = {pixel_arcmin}: expected a value in (0, 600) arcmin"
        )));
    }
    let ts = crate::cosmo::tracers(&tracers)?;
    let mut bins = vec![];
    for (i, t) in ts.iter().enumerate() {
        match t.kind {
            TracerKind::WeakLensing { sigma_e, .. } => bins.push(SourceBin {
                sigma_e,
                gals_per_arcmin2: t.gals_per_arcmin2,
            }),
            _ => {
                return Err(bad(format!(
                    "sources[{i}]: expected a WeakLensing tracer (source bin), got number counts"
                )))
            }
        }
    }
    let shifts: Vec<f64> = match &lognormal_shifts {
        None => ts.iter().map(|t| hilbert_shift(t.nz.mean_z())).collect(),
        Some(v) if v.len() == ts.len() => v
            .iter()
            .zip(&ts)
            .map(|(s, t)| s.unwrap_or_else(|| hilbert_shift(t.nz.mean_z())))
            .collect(),
        Some(v) => {
            return Err(bad(format!(
                "lognormal_shifts: expected {} values (one per source bin), got {}",
                ts.len(),
                v.len()
            )))
        }
    };
    let fk = match kind {
        "gaussian" if lognormal_shifts.is_some() => {
            return Err(bad("lognormal_shifts applies to kind=\"lognormal\" only"))
        }
        "gaussian" => FieldKind::Gaussian,
        "lognormal" => FieldKind::LogNormal {
            shifts: shifts.clone(),
        },
        k => {
            return Err(bad(format!(
                "kind = \"{k}\": expected \"gaussian\" or \"lognormal\""
            )))
        }
    };
    let grid = Grid2::new(npix, pixel_arcmin).map_err(err)?;
    let (sim, ell, cl) = py
        .detach(|| -> Result<_, String> {
            let ell = theory_ells(&grid);
            let cl = angular_cl(&c, &ts, &ell, &opts).map_err(|e| e.to_string())?;
            let table = ClMatrixTable::new(ell.clone(), cl.clone())
                .map_err(|e| format!("theory C_ell: {e}"))?;
            let sim = simulate_tomographic(grid, &table, &bins, &fk, seed)
                .map_err(|e| format!("simulation: {e}"))?;
            Ok((sim, ell, cl))
        })
        .map_err(bad)?;
    let d = PyDict::new(py);
    let ne = ell.len();
    d.set_item("kappa", sim.kappa.into_pyarray(py))?;
    d.set_item("gamma1", sim.gamma1.into_pyarray(py))?;
    d.set_item("gamma2", sim.gamma2.into_pyarray(py))?;
    d.set_item("e1", sim.e1.into_pyarray(py))?;
    d.set_item("e2", sim.e2.into_pyarray(py))?;
    d.set_item("noise_std", sim.noise_std.into_pyarray(py))?;
    d.set_item("ell", vec1(py, ell))?;
    d.set_item(
        "cl_theory",
        flat2(py, cl.concat(), (ts.len() * (ts.len() + 1) / 2, ne))?,
    )?;
    d.set_item("pixel_arcmin", pixel_arcmin)?;
    d.set_item(
        "lognormal_shifts",
        vec1(py, if kind == "lognormal" { shifts } else { vec![] }),
    )?;
    Ok(d)
}

/// Kaiser-Squires inversion of one [npix, npix] shear map -> (kappa_E, kappa_B).
#[pyfunction]
#[pyo3(signature = (e1, e2, pixel_arcmin=1.0, smoothing_arcmin=0.0))]
fn kaiser_squires<'py>(
    py: Python<'py>,
    e1: PyReadonlyArrayDyn<'py, f64>,
    e2: PyReadonlyArrayDyn<'py, f64>,
    pixel_arcmin: f64,
    smoothing_arcmin: f64,
) -> PyResult<(Bound<'py, PyArray2<f64>>, Bound<'py, PyArray2<f64>>)> {
    let (n, g1) = square_map(&e1, "e1")?;
    let (m, g2) = square_map(&e2, "e2")?;
    if m != n {
        return Err(bad(format!("e2 is {m}x{m} but e1 is {n}x{n}")));
    }
    if !(smoothing_arcmin.is_finite() && smoothing_arcmin >= 0.0) {
        return Err(bad(format!(
            "smoothing_arcmin must be >= 0, got {smoothing_arcmin}"
        )));
    }
    let grid = Grid2::new(n, pixel_arcmin).map_err(err)?;
    let (ke, kb) = py
        .detach(|| {
            let op = ShearOp::new(grid);
            if smoothing_arcmin > 0.0 {
                op.kaiser_squires_smoothed(g1, g2, smoothing_arcmin)
            } else {
                op.kaiser_squires(g1, g2)
            }
        })
        .map_err(err)?;
    Ok((flat2(py, ke, (n, n))?, flat2(py, kb, (n, n))?))
}

/// Wiener-filter mass map of one [npix, npix] shear map; see `cosmodiff.wiener`.
#[pyfunction]
#[pyo3(signature = (e1, e2, noise_std, pixel_arcmin, ell, cl, mask=None, samples=0, seed=0, tol=1e-6, max_iter=20000, b_mode=true))]
#[allow(clippy::too_many_arguments)]
fn wiener<'py>(
    py: Python<'py>,
    e1: PyReadonlyArrayDyn<'py, f64>,
    e2: PyReadonlyArrayDyn<'py, f64>,
    noise_std: PyReadonlyArrayDyn<'py, f64>,
    pixel_arcmin: f64,
    ell: PyReadonlyArrayDyn<'py, f64>,
    cl: PyReadonlyArrayDyn<'py, f64>,
    mask: Option<PyReadonlyArrayDyn<'py, f64>>,
    samples: usize,
    seed: u64,
    tol: f64,
    max_iter: usize,
    b_mode: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let (n, g1, g2, sd, m) = shear_inputs(&e1, &e2, &noise_std, &mask)?;
    if !(tol > 0.0 && tol < 1.0) {
        return Err(bad(format!("tol must be in (0, 1), got {tol}")));
    }
    let prior =
        ClTable::new(slice(&ell, "ell")?.to_vec(), slice(&cl, "cl")?.to_vec()).map_err(err)?;
    let grid = Grid2::new(n, pixel_arcmin).map_err(err)?;
    struct Out {
        kappa: Vec<f64>,
        kappa_b: Option<Vec<f64>>,
        samples: Vec<Vec<f64>>,
        std: Option<Vec<f64>>,
        iterations: usize,
        residual: f64,
    }
    let out = py
        .detach(|| -> Result<Out, cosmodiff_lensing::LensingError> {
            let w = cosmodiff_lensing::noise::inverse_variance(sd, m)?;
            // Unobserved pixels may hold NaN: zero them (as `cosmodiff massmap`).
            let d1: Vec<f64> = g1
                .iter()
                .zip(&w)
                .map(|(g, w)| if *w > 0.0 { *g } else { 0.0 })
                .collect();
            let d2: Vec<f64> = g2
                .iter()
                .zip(&w)
                .map(|(g, w)| if *w > 0.0 { *g } else { 0.0 })
                .collect();
            let wf = Wiener::from_cl(grid, &prior, sd, m)?;
            let sol = wf.cg(&d1, &d2, tol, max_iter)?;
            let kappa_b = if b_mode {
                let (r1, r2) = rotate_b_to_e(&d1, &d2);
                Some(wf.cg(&r1, &r2, tol, max_iter)?.kappa)
            } else {
                None
            };
            let s = if samples > 0 {
                wf.samples(&sol.kappa, samples, seed, tol)?
            } else {
                vec![]
            };
            let std = if samples >= 2 {
                Some(pixel_std(&s)?)
            } else {
                None
            };
            Ok(Out {
                kappa: sol.kappa,
                kappa_b,
                samples: s,
                std,
                iterations: sol.iterations,
                residual: sol.residual,
            })
        })
        .map_err(err)?;
    let d = PyDict::new(py);
    d.set_item("kappa", flat2(py, out.kappa, (n, n))?)?;
    if let Some(kb) = out.kappa_b {
        d.set_item("kappa_b", flat2(py, kb, (n, n))?)?;
    }
    d.set_item("samples", flat3(py, out.samples.concat(), (samples, n, n))?)?;
    if let Some(s) = out.std {
        d.set_item("kappa_std", flat2(py, s, (n, n))?)?;
    }
    d.set_item("iterations", out.iterations)?;
    d.set_item("residual", out.residual)?;
    Ok(d)
}

fn pair<'a>(
    a: &'a PyReadonlyArrayDyn<'_, f64>,
    b: &'a PyReadonlyArrayDyn<'_, f64>,
    mask: &'a Option<PyReadonlyArrayDyn<'_, f64>>,
) -> PyResult<(&'a [f64], &'a [f64], Option<&'a [f64]>)> {
    if a.shape() != b.shape() {
        return Err(bad(format!(
            "maps have different shapes {:?} and {:?}",
            a.shape(),
            b.shape()
        )));
    }
    let m = match mask {
        Some(m) if m.shape() != a.shape() => {
            return Err(bad(format!(
                "mask has shape {:?}, maps {:?}",
                m.shape(),
                a.shape()
            )))
        }
        Some(m) => Some(slice(m, "mask")?),
        None => None,
    };
    Ok((slice(a, "a")?, slice(b, "b")?, m))
}

/// Root-mean-square difference of two maps over pixels with mask > 0.
#[pyfunction(name = "rmse")]
#[pyo3(signature = (a, b, mask=None))]
fn rmse_(
    a: PyReadonlyArrayDyn<'_, f64>,
    b: PyReadonlyArrayDyn<'_, f64>,
    mask: Option<PyReadonlyArrayDyn<'_, f64>>,
) -> PyResult<f64> {
    let (x, y, m) = pair(&a, &b, &mask)?;
    rmse(x, y, m).map_err(err)
}

/// Pearson correlation coefficient of two maps over pixels with mask > 0.
#[pyfunction(name = "pearson")]
#[pyo3(signature = (a, b, mask=None))]
fn pearson_(
    a: PyReadonlyArrayDyn<'_, f64>,
    b: PyReadonlyArrayDyn<'_, f64>,
    mask: Option<PyReadonlyArrayDyn<'_, f64>>,
) -> PyResult<f64> {
    let (x, y, m) = pair(&a, &b, &mask)?;
    pearson(x, y, m).map_err(err)
}

/// Binned auto/cross angular power spectrum of [npix, npix] maps; see `cosmodiff.measure_cl`.
/// Bins: `edges`, else `n_bins` log/linear bins from `lmin` (default 2 x the
/// fundamental) to `lmax` (default the Nyquist multipole), built exactly as
/// `cosmodiff demo` builds them.
#[pyfunction]
#[pyo3(signature = (a, b, pixel_arcmin, n_bins=8, lmin=None, lmax=None, spacing="log", edges=None, mask=None))]
#[allow(clippy::too_many_arguments)]
fn measure_cl<'py>(
    py: Python<'py>,
    a: PyReadonlyArrayDyn<'py, f64>,
    b: PyReadonlyArrayDyn<'py, f64>,
    pixel_arcmin: f64,
    n_bins: usize,
    lmin: Option<f64>,
    lmax: Option<f64>,
    spacing: &str,
    edges: Option<Vec<f64>>,
    mask: Option<PyReadonlyArrayDyn<'py, f64>>,
) -> PyResult<Bound<'py, PyDict>> {
    let (n, _) = square_map(&a, "a")?;
    let (x, y, m) = pair(&a, &b, &mask)?;
    let grid = Grid2::new(n, pixel_arcmin).map_err(err)?;
    let bins = match edges {
        Some(e) => EllBins::from_edges(e),
        None => {
            let lo = lmin.unwrap_or(2.0 * grid.ell_fundamental());
            let hi = lmax.unwrap_or(grid.ell_nyquist());
            match spacing {
                "log" => EllBins::log(lo, hi, n_bins),
                "linear" => EllBins::linear(lo, hi, n_bins),
                s => {
                    return Err(bad(format!(
                        "spacing = \"{s}\": expected \"log\" or \"linear\""
                    )))
                }
            }
        }
    }
    .map_err(err)?;
    let est = py
        .detach(|| cl_cross(&grid, &Fft2::new(n), x, y, &bins, m))
        .map_err(err)?;
    let d = PyDict::new(py);
    d.set_item("ell", vec1(py, est.ell))?;
    d.set_item("cl", vec1(py, est.cl))?;
    d.set_item(
        "n_modes",
        Array1::from_vec(est.n_modes.iter().map(|&k| k as i64).collect()).into_pyarray(py),
    )?;
    d.set_item("edges", vec1(py, est.bins.edges))?;
    Ok(d)
}

/// (ell_fundamental, ell_nyquist) of an npix x npix map of pixel_arcmin pixels.
#[pyfunction]
fn map_ell_range(npix: usize, pixel_arcmin: f64) -> PyResult<(f64, f64)> {
    let g = Grid2::new(npix, pixel_arcmin).map_err(err)?;
    Ok((g.ell_fundamental(), g.ell_nyquist()))
}

/// Shear, noise and mask maps from galaxy catalogues (files or dicts of
/// columns); see `cosmodiff.bin_shear`.
#[pyfunction]
#[pyo3(signature = (catalogs, npix, pixel_arcmin, unit="arcmin", center=None, origin_arcmin=None, sigma_e=None))]
#[allow(clippy::too_many_arguments)]
fn bin_shear<'py>(
    py: Python<'py>,
    catalogs: Vec<Bound<'py, PyAny>>,
    npix: usize,
    pixel_arcmin: f64,
    unit: &str,
    center: Option<(f64, f64)>,
    origin_arcmin: Option<(f64, f64)>,
    sigma_e: Option<f64>,
) -> PyResult<Bound<'py, PyDict>> {
    use cosmodiff_pipeline::bin_shear::{angle_unit, bin, read_catalogs, Source};
    let mut sources = vec![];
    for (i, c) in catalogs.iter().enumerate() {
        if let Ok(d) = c.cast::<PyDict>() {
            let mut columns = vec![];
            for (k, v) in d.iter() {
                let name: String = k
                    .extract()
                    .map_err(|_| bad(format!("catalogs[{i}]: column names must be strings")))?;
                let a = crate::to_f64(&v, &format!("catalogs[{i}]['{name}']"))?;
                if a.ndim() != 1 {
                    return Err(bad(format!(
                        "catalogs[{i}]['{name}']: expected a 1-D array, got {} dimensions",
                        a.ndim()
                    )));
                }
                columns.push((name, a.as_array().iter().copied().collect()));
            }
            sources.push(Source::Columns {
                what: format!("catalogs[{i}]"),
                columns,
            });
        } else {
            let p: std::path::PathBuf = c.extract().map_err(|_| {
                bad(format!(
                    "catalogs[{i}]: expected a file path or a dict of columns"
                ))
            })?;
            sources.push(Source::File(p));
        }
    }
    let b = py
        .detach(|| -> anyhow::Result<_> {
            let unit = angle_unit(unit)?;
            let cats = read_catalogs(sources, unit, center)?;
            bin(&cats, npix, pixel_arcmin, origin_arcmin, sigma_e)
        })
        .map_err(crate::one_line)?;
    let d = PyDict::new(py);
    let (n, nb) = (b.npix, b.e1.len());
    let maps = |v: &[Vec<f64>]| -> PyResult<Bound<'py, PyAny>> {
        Ok(if nb == 1 {
            flat2(py, v.concat(), (n, n))?.into_any()
        } else {
            flat3(py, v.concat(), (nb, n, n))?.into_any()
        })
    };
    d.set_item("e1", maps(&b.e1)?)?;
    d.set_item("e2", maps(&b.e2)?)?;
    d.set_item("noise_std", maps(&b.noise_std)?)?;
    d.set_item("mask", maps(&b.mask)?)?;
    let counts: Vec<Vec<f64>> = b
        .counts
        .iter()
        .map(|c| c.iter().map(|&v| v as f64).collect())
        .collect();
    d.set_item("counts", maps(&counts)?)?;
    d.set_item("pixel_arcmin", b.pixel_arcmin)?;
    d.set_item("sigma_e", vec1(py, b.sigma_e.clone()))?;
    d.set_item("outside", b.outside.clone())?;
    d.set_item(
        "origin_arcmin",
        vec1(py, vec![b.origin_arcmin.0, b.origin_arcmin.1]),
    )?;
    if let Some((ra, dec)) = b.center_deg {
        d.set_item("center_deg", vec1(py, vec![ra, dec]))?;
    }
    Ok(d)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(simulate_lensing, m)?)?;
    m.add_function(wrap_pyfunction!(bin_shear, m)?)?;
    m.add_function(wrap_pyfunction!(kaiser_squires, m)?)?;
    m.add_function(wrap_pyfunction!(wiener, m)?)?;
    m.add_function(wrap_pyfunction!(rmse_, m)?)?;
    m.add_function(wrap_pyfunction!(pearson_, m)?)?;
    m.add_function(wrap_pyfunction!(measure_cl, m)?)?;
    m.add_function(wrap_pyfunction!(map_ell_range, m)?)?;
    Ok(())
}
