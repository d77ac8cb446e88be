//! NUTS posterior and MAP of cosmological parameters from the Gaussian C_ell
//! likelihood (exact gradients and Hessians from dual numbers).

use crate::cosmo::PyClLikelihood;
use crate::{bad, err};
use cosmodiff_infer::{find_map, run_nuts, MapSettings, NutsSettings, Posterior, Prior};
use cosmodiff_pipeline::sample::ClDensity;
use numpy::IntoPyArray;
use pyo3::prelude::*;
use pyo3::types::PyDict;

fn posterior(like: &PyClLikelihood, priors: Vec<String>) -> PyResult<Posterior<ClDensity>> {
    let n = like.inner.params.len();
    if priors.len() != n {
        return Err(bad(format!(
            "priors: expected {n} priors (one per parameter), got {}",
            priors.len()
        )));
    }
    let mut ps = vec![];
    for (p, name) in priors.iter().zip(&like.inner.params) {
        let pr: Prior =
            serde_json::from_str(p).map_err(|e| bad(format!("prior of {}: {e}", name.name())))?;
        pr.validate()
            .map_err(|e| bad(format!("prior of {}: {e}", name.name())))?;
        ps.push(pr);
    }
    Posterior::new(
        ClDensity {
            like: like.inner.clone(),
        },
        ps,
    )
    .map_err(err)
}

/// NUTS on a likelihood with one prior per parameter (JSON strings in the
/// `cosmodiff sample` format, e.g. '{"prior": "uniform", "low": 0.1, "high": 0.5}').
#[pyfunction]
#[pyo3(signature = (likelihood, priors, chains=4, warmup=500, draws=1000, seed=0, progress=false, init=None, target_accept=0.8, max_depth=10))]
#[allow(clippy::too_many_arguments)]
fn run_nuts_cl<'py>(
    py: Python<'py>,
    likelihood: PyRef<'py, PyClLikelihood>,
    priors: Vec<String>,
    chains: usize,
    warmup: usize,
    draws: usize,
    seed: u64,
    progress: bool,
    init: Option<Vec<f64>>,
    target_accept: f64,
    max_depth: u64,
) -> PyResult<Bound<'py, PyDict>> {
    if chains == 0 || draws < 10 {
        return Err(bad(format!(
            "need chains >= 1 and draws >= 10 (got chains = {chains}, draws = {draws})"
        )));
    }
    let post = posterior(&likelihood, priors)?;
    let settings = NutsSettings {
        chains,
        warmup,
        draws,
        seed,
        progress,
        init,
        target_accept,
        max_depth,
        ..Default::default()
    };
    let s = py.detach(|| run_nuts(&post, &settings)).map_err(err)?;
    let summary = s.summary().to_json().map_err(err)?;
    let d = PyDict::new(py);
    d.set_item("names", s.names.clone())?;
    d.set_item("summary_json", summary)?;
    d.set_item("divergences", s.divergences())?;
    d.set_item("elapsed_s", s.elapsed_s)?;
    d.set_item("warnings", s.warnings.clone())?;
    d.set_item("draws", s.draws.into_pyarray(py))?;
    d.set_item("diverging", s.diverging.into_pyarray(py))?;
    d.set_item("step_size", s.step_size.into_pyarray(py))?;
    d.set_item("tree_depth", s.tree_depth.into_pyarray(py))?;
    d.set_item("n_leapfrog", s.n_leapfrog.into_pyarray(py))?;
    d.set_item("logp", s.logp.into_pyarray(py))?;
    d.set_item("accept_prob", s.accept_prob.into_pyarray(py))?;
    Ok(d)
}

/// MAP (L-BFGS) and Laplace covariance (exact Hessian); returns the JSON of
/// the library's MapResult.
#[pyfunction]
#[pyo3(signature = (likelihood, priors, init=None))]
fn find_map_cl(
    py: Python<'_>,
    likelihood: PyRef<'_, PyClLikelihood>,
    priors: Vec<String>,
    init: Option<Vec<f64>>,
) -> PyResult<String> {
    let post = posterior(&likelihood, priors)?;
    let settings = MapSettings {
        init,
        ..Default::default()
    };
    let m = py.detach(|| find_map(&post, &settings)).map_err(err)?;
    m.to_json().map_err(err)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(run_nuts_cl, m)?)?;
    m.add_function(wrap_pyfunction!(find_map_cl, m)?)?;
    Ok(())
}
