//! Simulation-based inference with normalizing flows (`cosmodiff-sbi`):
//! train an NPE or NLE model on simulations, sample its posterior, save and
//! load model directories (the same format as `cosmodiff sbi train`).

use crate::{bad, err, vec2};
use cosmodiff_infer::Prior;
use cosmodiff_sbi::{Method, SbiModel, SbiOptions, SbiPrior};
use numpy::ndarray::{Array2, ArrayView1};
use numpy::{PyArray2, PyReadonlyArrayDyn};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::PathBuf;

/// Rows of an array-like (see `cosmodiff_sbi::arrays::rows`).
fn rows(a: &PyReadonlyArrayDyn<'_, f64>, what: &str) -> PyResult<Array2<f64>> {
    cosmodiff_sbi::arrays::rows(a.as_array(), what, false).map_err(err)
}

/// A trained neural posterior (NPE) or likelihood (NLE) estimator with its prior.
#[pyclass(name = "SbiModel", module = "cosmodiff", unsendable)]
pub struct PySbiModel {
    inner: SbiModel,
}

#[pymethods]
impl PySbiModel {
    /// "npe" or "nle".
    #[getter]
    fn method(&self) -> &'static str {
        self.inner.method.name()
    }
    #[getter]
    fn dim_theta(&self) -> usize {
        self.inner.dim_theta()
    }
    #[getter]
    fn dim_x(&self) -> usize {
        self.inner.dim_x
    }
    /// Parameter names of the prior (theta_0, ... unless a TOML prior named them).
    #[getter]
    fn param_names(&self) -> Vec<String> {
        self.inner.prior.names()
    }
    /// Training report: epochs, best_epoch, best_validation_loss, train_loss,
    /// validation_loss (per epoch, -mean log q), seconds, n_train, n_validation.
    #[getter]
    fn report<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let r = &self.inner.report;
        let d = PyDict::new(py);
        d.set_item("epochs", r.epochs)?;
        d.set_item("best_epoch", r.best_epoch)?;
        d.set_item("best_validation_loss", r.best_validation_loss)?;
        d.set_item("train_loss", r.train_loss.clone())?;
        d.set_item("validation_loss", r.validation_loss.clone())?;
        d.set_item("seconds", r.seconds)?;
        d.set_item("n_train", r.n_train)?;
        d.set_item("n_validation", r.n_validation)?;
        Ok(d)
    }
    /// `num_samples` posterior draws [num_samples, dim_theta] for one observation.
    #[pyo3(signature = (x_obs, num_samples, seed=0))]
    fn sample<'py>(
        &self,
        py: Python<'py>,
        x_obs: &Bound<'py, PyAny>,
        num_samples: i64,
        seed: i64,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        if !(1..=100_000_000).contains(&num_samples) {
            return Err(bad(format!(
                "num_samples = {num_samples}: expected 1 to 100000000"
            )));
        }
        if seed < 0 {
            return Err(bad(format!("seed = {seed}: expected an integer >= 0")));
        }
        let (num_samples, seed) = (num_samples as usize, seed as u64);
        let xo = self
            .inner
            .observation(crate::to_f64(x_obs, "x_obs")?.as_array(), "x_obs")
            .map_err(err)?;
        let (s, _) = self
            .inner
            .sample(xo.view(), num_samples, seed)
            .map_err(err)?;
        let d = self.inner.dim_theta();
        vec2(py, s.outer_iter().map(|r| r.to_vec()).collect(), d)
    }
    /// Learned summaries f(x) [N, summary_dim] of an NPE model with an embedding network.
    fn summaries<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let x = rows(&crate::to_f64(x, "x")?, "x")?;
        let s = self.inner.summaries(x.view()).map_err(err)?;
        let c = s.ncols();
        vec2(py, s.outer_iter().map(|r| r.to_vec()).collect(), c)
    }
    /// Log prior density of each row of theta [N, dim_theta] (-inf outside the support).
    fn prior_log_prob(&self, theta: &Bound<'_, PyAny>) -> PyResult<Vec<f64>> {
        let t = rows(&crate::to_f64(theta, "theta")?, "theta")?;
        self.inner
            .prior
            .check_dim(t.ncols(), "theta")
            .map_err(err)?;
        Ok(t.outer_iter()
            .map(|r: ArrayView1<f64>| self.inner.prior.log_prob(r))
            .collect())
    }
    /// Write the model directory (sbi.json + weights), readable by
    /// `cosmodiff sbi sample --model DIR` and `cosmodiff.sbi_load(DIR)`.
    fn save(&self, dir: PathBuf) -> PyResult<()> {
        cosmodiff_pipeline::output::write_folder_via(&dir, |t| Ok(self.inner.save(t)?))
            .map_err(crate::one_line)
    }
    fn __repr__(&self) -> String {
        format!(
            "SbiModel(method={:?}, dim_theta={}, dim_x={}, flow={:?})",
            self.inner.method.name(),
            self.inner.dim_theta(),
            self.inner.dim_x,
            self.inner.options.flow.name()
        )
    }
}

/// Train NPE or NLE; see `cosmodiff.sbi_train`.
#[pyfunction]
#[pyo3(signature = (theta, x, method, prior_file=None, prior_box=None, flow=None, embedding=None, summary_dim=None, transforms=5, hidden=50, bins=None, lr=5e-4, batch_size=200, max_epochs=2000, patience=20, weight_decay=0.0, cosine=false, seed=0, progress=false))]
#[allow(clippy::too_many_arguments)]
fn sbi_train(
    py: Python<'_>,
    theta: PyReadonlyArrayDyn<'_, f64>,
    x: PyReadonlyArrayDyn<'_, f64>,
    method: &str,
    prior_file: Option<PathBuf>,
    prior_box: Option<Vec<(f64, f64)>>,
    flow: Option<&str>,
    embedding: Option<&str>,
    summary_dim: Option<usize>,
    transforms: usize,
    hidden: usize,
    bins: Option<usize>,
    lr: f64,
    batch_size: usize,
    max_epochs: usize,
    patience: usize,
    weight_decay: f64,
    cosine: bool,
    seed: u64,
    progress: bool,
) -> PyResult<PySbiModel> {
    let method = Method::parse(method).map_err(err)?;
    let theta = rows(&theta, "theta")?;
    let x = rows(&x, "x")?;
    if theta.nrows() != x.nrows() {
        return Err(bad(format!(
            "theta has {} simulations but x has {}",
            theta.nrows(),
            x.nrows()
        )));
    }
    let prior = match (prior_file, prior_box) {
        (Some(_), Some(_)) => {
            return Err(bad(
                "give prior as a TOML file or as (low, high) bounds, not both",
            ))
        }
        (Some(p), None) => SbiPrior::from_toml_file(&p).map_err(err)?,
        (None, Some(b)) => SbiPrior::new(
            b.into_iter()
                .map(|(low, high)| Prior::Uniform { low, high })
                .collect(),
        )
        .map_err(err)?,
        (None, None) => SbiPrior::bounding_box(theta.view()).map_err(err)?,
    };
    let mut o = SbiOptions::from_names(method, flow, embedding, bins, cosine).map_err(err)?;
    o.summary_dim = summary_dim;
    o.num_transforms = transforms;
    o.hidden = hidden;
    o.train.learning_rate = lr;
    o.train.batch_size = batch_size;
    o.train.max_epochs = max_epochs;
    o.train.patience = patience;
    o.train.weight_decay = weight_decay;
    o.train.seed = seed;
    o.train.progress = progress;
    let inner = py
        .detach(|| SbiModel::train(theta.view(), x.view(), prior, &o))
        .map_err(err)?;
    Ok(PySbiModel { inner })
}

/// Load a model directory written by `cosmodiff sbi train` or `SbiModel.save`.
#[pyfunction]
fn sbi_load(dir: PathBuf) -> PyResult<PySbiModel> {
    Ok(PySbiModel {
        inner: SbiModel::load(&dir).map_err(err)?,
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PySbiModel>()?;
    m.add_function(wrap_pyfunction!(sbi_train, m)?)?;
    m.add_function(wrap_pyfunction!(sbi_load, m)?)?;
    Ok(())
}
