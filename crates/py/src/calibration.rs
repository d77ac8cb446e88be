//! Calibration metrics on the user's own samples (`cosmodiff-sbi`): the
//! classifier two-sample test as sbibm runs it, TARP expected coverage and
//! simulation-based calibration ranks.

use crate::{bad, err};
use numpy::ndarray::{Ix2, Ix3};
use numpy::{IntoPyArray, PyReadonlyArrayDyn};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// A float64 array of exactly `N` dimensions, finite, or a CosmodiffError
/// naming the argument and the expected shape.
fn finite<'a, D: numpy::ndarray::Dimension>(
    a: &'a PyReadonlyArrayDyn<'_, f64>,
    what: &str,
    shape: &str,
) -> PyResult<numpy::ndarray::ArrayView<'a, f64, D>> {
    let v = a.as_array();
    let nd = v.ndim();
    let v = v
        .into_dimensionality::<D>()
        .map_err(|_| bad(format!("{what}: expected {shape}, got {nd} dimensions")))?;
    if v.iter().any(|x| !x.is_finite()) {
        return Err(bad(format!("{what}: contains NaN or infinite values")));
    }
    Ok(v)
}

/// C2ST accuracy of `candidate` against `reference` samples (0.5: the same
/// distribution); see `cosmodiff.c2st`.
#[pyfunction]
#[pyo3(signature = (reference, candidate, seed=0))]
fn c2st(
    py: Python<'_>,
    reference: PyReadonlyArrayDyn<'_, f64>,
    candidate: PyReadonlyArrayDyn<'_, f64>,
    seed: u64,
) -> PyResult<f64> {
    let r = finite::<Ix2>(&reference, "reference", "[n, dim]")?.to_owned();
    let c = finite::<Ix2>(&candidate, "candidate", "[m, dim]")?.to_owned();
    py.detach(|| cosmodiff_sbi::c2st(r.view(), c.view(), seed))
        .map_err(err)
}

/// TARP expected coverage of posterior `samples` `[sims, draws, dim]` for
/// the true parameters `theta` `[sims, dim]`; see `cosmodiff.tarp`.
#[pyfunction]
#[pyo3(signature = (samples, theta, seed=0))]
fn tarp<'py>(
    py: Python<'py>,
    samples: PyReadonlyArrayDyn<'py, f64>,
    theta: PyReadonlyArrayDyn<'py, f64>,
    seed: u64,
) -> PyResult<Bound<'py, PyDict>> {
    let s = finite::<Ix3>(&samples, "samples", "[sims, draws, dim]")?.to_owned();
    let t = finite::<Ix2>(&theta, "theta", "[sims, dim]")?.to_owned();
    let r = py
        .detach(|| cosmodiff_sbi::tarp(s.view(), t.view(), seed))
        .map_err(err)?;
    let d = PyDict::new(py);
    d.set_item("alpha", r.alpha.into_pyarray(py))?;
    d.set_item("ecp", r.ecp.into_pyarray(py))?;
    d.set_item("atc", r.atc)?;
    d.set_item("max_deviation", r.max_deviation)?;
    d.set_item("ks_pvalue", r.ks_pvalue)?;
    d.set_item("credibility", r.credibility.into_pyarray(py))?;
    Ok(d)
}

/// SBC ranks of the true parameters among posterior `samples`; see
/// `cosmodiff.sbc`.
#[pyfunction]
fn sbc<'py>(
    py: Python<'py>,
    samples: PyReadonlyArrayDyn<'py, f64>,
    theta: PyReadonlyArrayDyn<'py, f64>,
) -> PyResult<Bound<'py, PyDict>> {
    let s = finite::<Ix3>(&samples, "samples", "[sims, draws, dim]")?.to_owned();
    let t = finite::<Ix2>(&theta, "theta", "[sims, dim]")?.to_owned();
    let r = py
        .detach(|| cosmodiff_sbi::sbc(s.view(), t.view()))
        .map_err(err)?;
    let d = PyDict::new(py);
    d.set_item("passes_1pct", r.passes(0.01))?;
    d.set_item("ranks", r.ranks.mapv(|v| v as i64).into_pyarray(py))?;
    d.set_item("n_samples", r.n_samples)?;
    d.set_item("bins", r.bins)?;
    d.set_item("ks_statistic", r.ks_statistic.into_pyarray(py))?;
    d.set_item("ks_pvalues", r.ks_pvalues.into_pyarray(py))?;
    d.set_item("chi2_statistic", r.chi2_statistic.into_pyarray(py))?;
    d.set_item("chi2_pvalues", r.chi2_pvalues.into_pyarray(py))?;
    Ok(d)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(c2st, m)?)?;
    m.add_function(wrap_pyfunction!(tarp, m)?)?;
    m.add_function(wrap_pyfunction!(sbc, m)?)?;
    Ok(())
}
