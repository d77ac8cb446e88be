//! Cosmology from lensing maps on the sbi_lens benchmark: the simulator
//! with its gradients, and the `lensing-cosmology` workflows.

use crate::{bad, err, one_line, slice};
use cosmodiff_pipeline::lensing_cosmology::{
    self as lc, FieldModel, InferSettings, Setup, SetupName, SimulateSettings,
};
use numpy::ndarray::{Array1, Array2, Array3};
use numpy::{IntoPyArray, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::PathBuf;

fn model(setup: &str) -> PyResult<FieldModel> {
    let s = Setup::new(SetupName::parse(setup).map_err(one_line)?).map_err(one_line)?;
    FieldModel::new(s).map_err(one_line)
}

/// `[n_bins, npix, npix]` numpy latent field -> `[n_bins][npix^2]`.
fn latent(z: &PyReadonlyArrayDyn<'_, f64>, m: &FieldModel) -> PyResult<Vec<Vec<f64>>> {
    let (n, nb) = (m.setup.npix, m.setup.n_bins());
    if z.shape() != [nb, n, n] {
        return Err(bad(format!(
            "z: shape {:?}, expected [n_bins, npix, npix] = [{nb}, {n}, {n}]",
            z.shape()
        )));
    }
    Ok(slice(z, "z")?.chunks(n * n).map(|c| c.to_vec()).collect())
}

/// `[npix, npix, n_bins]` (or `[npix, npix]`) maps -> `[n_bins][npix^2]`.
fn maps(x: &PyReadonlyArrayDyn<'_, f64>, m: &FieldModel) -> PyResult<Vec<Vec<f64>>> {
    lc::run::check_maps(x.shape(), slice(x, "data")?, &m.setup, "data").map_err(one_line)
}

fn as_maps(v: &[Vec<f64>], n: usize) -> PyResult<Array3<f64>> {
    Array3::from_shape_vec((n, n, v.len()), lc::run::maps_to_bins_last(v)).map_err(err)
}

/// `cosmodiff.sbi_lens_kappa`: noiseless maps `[npix, npix, n_bins]`.
#[pyfunction]
fn sbi_lens_kappa<'py>(
    py: Python<'py>,
    setup: &str,
    theta: Vec<f64>,
    z: PyReadonlyArrayDyn<'py, f64>,
) -> PyResult<Bound<'py, numpy::PyArray3<f64>>> {
    let m = model(setup)?;
    let zz = latent(&z, &m)?;
    let k = py.detach(|| m.kappa(&theta, &zz)).map_err(one_line)?;
    Ok(as_maps(&k, m.setup.npix)?.into_pyarray(py))
}

/// `cosmodiff.sbi_lens_log_likelihood`: `(log L, d/dtheta, d/dz)`.
#[pyfunction]
fn sbi_lens_log_likelihood<'py>(
    py: Python<'py>,
    setup: &str,
    data: PyReadonlyArrayDyn<'py, f64>,
    theta: Vec<f64>,
    z: PyReadonlyArrayDyn<'py, f64>,
) -> PyResult<(
    f64,
    Bound<'py, numpy::PyArray1<f64>>,
    Bound<'py, numpy::PyArray3<f64>>,
)> {
    let m = model(setup)?;
    let x = maps(&data, &m)?;
    let zz = latent(&z, &m)?;
    if theta.len() != m.setup.n_params() {
        return Err(bad(format!(
            "theta: {} values, set-up {setup} has {} ({})",
            theta.len(),
            m.setup.n_params(),
            m.setup.names.join(", ")
        )));
    }
    let g = py
        .detach(|| m.log_likelihood(&x, &theta, &zz))
        .map_err(one_line)?;
    let n = m.setup.npix;
    let gz = Array3::from_shape_vec((g.z.len(), n, n), g.z.concat()).map_err(err)?;
    Ok((
        g.value,
        Array1::from(g.theta).into_pyarray(py),
        gz.into_pyarray(py),
    ))
}

/// `cosmodiff.lensing_cosmology_simulate`.
#[pyfunction]
#[pyo3(signature = (setup, out, n=1000, seed=0))]
fn lensing_cosmology_simulate(
    py: Python<'_>,
    setup: String,
    out: PathBuf,
    n: usize,
    seed: u64,
) -> PyResult<()> {
    let s = SimulateSettings {
        setup,
        out,
        n,
        seed,
    };
    py.detach(|| lc::simulate(&s)).map_err(one_line)
}

/// `cosmodiff.lensing_cosmology_infer`: writes `out/` and returns the summary and samples.
#[pyfunction]
#[pyo3(signature = (setup, method, data, out, sims=None, estimator="npe".to_string(), draws=None, warmup=None, chains=2, seed=0, n_sims=None, tarp=200, epochs=None, pool=1, overwrite=false))]
#[allow(clippy::too_many_arguments)]
fn lensing_cosmology_infer<'py>(
    py: Python<'py>,
    setup: String,
    method: String,
    data: PathBuf,
    out: PathBuf,
    sims: Option<PathBuf>,
    estimator: String,
    draws: Option<usize>,
    warmup: Option<usize>,
    chains: usize,
    seed: u64,
    n_sims: Option<usize>,
    tarp: usize,
    epochs: Option<usize>,
    pool: usize,
    overwrite: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let s = InferSettings {
        setup,
        method,
        data,
        out,
        sims,
        n_sims,
        tarp,
        epochs,
        pool,
        estimator,
        draws,
        warmup,
        chains,
        seed,
        quiet: true,
        reuse: cosmodiff_pipeline::run_dir::Reuse { overwrite },
    };
    let p = py.detach(|| lc::infer(&s)).map_err(one_line)?;
    let summary = lc::run::summarize(&p);
    let d = PyDict::new(py);
    let json = py.import("json")?;
    d.set_item(
        "summary",
        json.call_method1("loads", (summary.to_string(),))?,
    )?;
    let np = p.names.len();
    let a = Array2::from_shape_vec((p.samples.len(), np), p.samples.concat()).map_err(err)?;
    d.set_item("samples", a.into_pyarray(py))?;
    d.set_item("names", p.names.clone())?;
    Ok(d)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(sbi_lens_kappa, m)?)?;
    m.add_function(wrap_pyfunction!(sbi_lens_log_likelihood, m)?)?;
    m.add_function(wrap_pyfunction!(lensing_cosmology_simulate, m)?)?;
    m.add_function(wrap_pyfunction!(lensing_cosmology_infer, m)?)?;
    Ok(())
}
