//! TRENF field flows: the `fieldflow` workflows (train, log-likelihood,
//! posterior, Fisher matrix, calibration) and the density campaigns they
//! train on, numpy conversion only.

use crate::{bad, one_line, slice};
use cosmodiff_nn::trenf::FieldFlow;
use cosmodiff_pipeline::fieldflow::calibrate::CalibrateSettings;
use cosmodiff_pipeline::fieldflow::fisher::FisherSettings;
use cosmodiff_pipeline::fieldflow::{self as ff, InferSettings, TrainSettings};
use cosmodiff_pipeline::halos::campaign::{run_density, CampaignSettings};
use cosmodiff_pipeline::run_dir::Reuse;
use numpy::{IntoPyArray, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::PathBuf;

fn json<'py>(py: Python<'py>, v: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    py.import("json")?.call_method1("loads", (v.to_string(),))
}

/// `cosmodiff.fieldflow_train`: trains, writes the model directory `out`,
/// returns its `train.json`.
#[pyfunction]
#[pyo3(signature = (fields, out, config=None, overwrite=false))]
fn fieldflow_train<'py>(
    py: Python<'py>,
    fields: PathBuf,
    out: PathBuf,
    config: Option<PathBuf>,
    overwrite: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let s = TrainSettings {
        fields,
        out: out.clone(),
        config,
        reuse: Reuse { overwrite },
        checkpoints: Default::default(),
    };
    py.detach(|| ff::train(&s)).map_err(one_line)?;
    let text = std::fs::read_to_string(out.join("train.json")).map_err(|e| bad(e.to_string()))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    json(py, &v)
}

/// `cosmodiff.fieldflow_logprob`: `log p(field | theta)` with its parts.
#[pyfunction]
fn fieldflow_logprob<'py>(
    py: Python<'py>,
    model: PathBuf,
    field: PyReadonlyArrayDyn<'py, f64>,
    theta: Vec<f64>,
) -> PyResult<Bound<'py, PyDict>> {
    let flow = FieldFlow::load(&model).map_err(|e| bad(e.to_string()))?;
    let values = ff::check_field(
        &flow,
        field.shape(),
        slice(&field, "field")?.to_vec(),
        "field",
    )
    .map_err(one_line)?;
    let lp = py
        .detach(|| ff::evaluate(&flow, values, &theta))
        .map_err(one_line)?;
    let d = PyDict::new(py);
    d.set_item("logprob", lp.logprob)?;
    d.set_item("logdet", lp.logdet)?;
    d.set_item("base_logprob", lp.base_logprob)?;
    Ok(d)
}

/// `cosmodiff.fieldflow_infer`: writes `out/` and returns the summary and
/// samples.
#[pyfunction]
#[pyo3(signature = (model, field, out, prior=None, samples=2000, seed=0, temperature=1.0, overwrite=false))]
#[allow(clippy::too_many_arguments)]
fn fieldflow_infer<'py>(
    py: Python<'py>,
    model: PathBuf,
    field: PathBuf,
    out: PathBuf,
    prior: Option<PathBuf>,
    samples: usize,
    seed: u64,
    temperature: f64,
    overwrite: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let s = InferSettings {
        model: Some(model),
        setup: None,
        field,
        out,
        prior,
        samples,
        seed,
        temperature,
        reuse: Reuse { overwrite },
    };
    let p = py.detach(|| ff::infer(&s)).map_err(one_line)?;
    let d = PyDict::new(py);
    d.set_item("summary", json(py, &p.summary)?)?;
    d.set_item("samples", p.samples.into_pyarray(py))?;
    Ok(d)
}

/// `cosmodiff.fieldflow_fisher`: the flow likelihood's Fisher matrix at
/// `theta`, written to `out` and returned with its summary.
#[pyfunction]
#[pyo3(signature = (model, theta, out, fields=None, samples=64, step=0.05, seed=0))]
#[allow(clippy::too_many_arguments)]
fn fieldflow_fisher<'py>(
    py: Python<'py>,
    model: PathBuf,
    theta: Vec<f64>,
    out: PathBuf,
    fields: Option<PathBuf>,
    samples: usize,
    step: f64,
    seed: u64,
) -> PyResult<Bound<'py, PyDict>> {
    let s = FisherSettings {
        model,
        theta: theta
            .iter()
            .map(f64::to_string)
            .collect::<Vec<_>>()
            .join(","),
        fields,
        samples,
        step,
        seed,
        out,
    };
    let f = py.detach(|| ff::fisher::fisher(&s)).map_err(one_line)?;
    let d = PyDict::new(py);
    d.set_item("fisher", f.fisher.into_pyarray(py))?;
    d.set_item("summary", json(py, &f.summary)?)?;
    Ok(d)
}

/// `cosmodiff.fieldflow_calibrate`: writes `out/` and returns
/// `calibration.json`.
#[pyfunction]
#[pyo3(signature = (model, fields, out, pk_train=None, grid=24, max_fields=None, temperature=1.0, overwrite=false))]
#[allow(clippy::too_many_arguments)]
fn fieldflow_calibrate<'py>(
    py: Python<'py>,
    model: PathBuf,
    fields: PathBuf,
    out: PathBuf,
    pk_train: Option<PathBuf>,
    grid: usize,
    max_fields: Option<usize>,
    temperature: f64,
    overwrite: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let s = CalibrateSettings {
        model,
        fields,
        out,
        pk_train,
        grid,
        max_fields,
        temperature,
        reuse: Reuse { overwrite },
    };
    let c = py
        .detach(|| ff::calibrate::calibrate(&s))
        .map_err(one_line)?;
    json(py, &c.summary)
}

/// `cosmodiff.simulate_density`: a resumable campaign of PM density boxes,
/// gathered into `out/fields.npz`.
#[pyfunction]
#[pyo3(signature = (config, out, workers=1, overwrite=false))]
fn simulate_density(
    py: Python<'_>,
    config: PathBuf,
    out: PathBuf,
    workers: usize,
    overwrite: bool,
) -> PyResult<()> {
    let s = CampaignSettings {
        config,
        out,
        workers,
        reuse: Reuse { overwrite },
    };
    py.detach(|| run_density(&s)).map_err(one_line)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(fieldflow_fisher, m)?)?;
    m.add_function(wrap_pyfunction!(fieldflow_calibrate, m)?)?;
    m.add_function(wrap_pyfunction!(simulate_density, m)?)?;
    m.add_function(wrap_pyfunction!(fieldflow_train, m)?)?;
    m.add_function(wrap_pyfunction!(fieldflow_logprob, m)?)?;
    m.add_function(wrap_pyfunction!(fieldflow_infer, m)?)?;
    Ok(())
}
