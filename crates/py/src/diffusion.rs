//! Mass maps with a learned score (diffusion) prior: posterior samples of
//! one shear map, as `cosmodiff massmap --method diffusion` (same sampler
//! settings, `cosmodiff_score::posterior`; the same seed gives the same maps).

use crate::{bad, flat2, flat3, shear_inputs};
use cosmodiff_pipeline::massmap;
use cosmodiff_score::ScoreModel;
use numpy::PyReadonlyArrayDyn;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::PathBuf;

/// The score prior of a model directory, or the shipped default.
fn load_model(prior: Option<PathBuf>) -> PyResult<ScoreModel> {
    match prior {
        Some(d) => ScoreModel::load(&d).map_err(|e| bad(format!("prior: {e}"))),
        None => {
            ScoreModel::default_model().map_err(|e| bad(format!("default diffusion prior: {e}")))
        }
    }
}

/// Posterior samples with a score prior; see `cosmodiff.massmap_diffusion`.
/// The checks and the sampling are `cosmodiff_pipeline::massmap::reconstruct`,
/// as behind `cosmodiff massmap --method diffusion`.
#[pyfunction]
#[pyo3(signature = (e1, e2, noise_std, mask=None, pixel_arcmin=None, prior=None, samples=16, steps=300, seed=0, sampler="reverse_sde", independent=false, progress=false))]
#[allow(clippy::too_many_arguments)]
fn massmap_diffusion<'py>(
    py: Python<'py>,
    e1: PyReadonlyArrayDyn<'py, f64>,
    e2: PyReadonlyArrayDyn<'py, f64>,
    noise_std: PyReadonlyArrayDyn<'py, f64>,
    mask: Option<PyReadonlyArrayDyn<'py, f64>>,
    pixel_arcmin: Option<f64>,
    prior: Option<PathBuf>,
    samples: usize,
    steps: usize,
    seed: u64,
    sampler: &str,
    independent: bool,
    progress: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let (n, g1, g2, sd, m) = shear_inputs(&e1, &e2, &noise_std, &mask)?;
    let mut settings = massmap::Settings::new(massmap::Method::Diffusion);
    settings.sampler = Some(match sampler {
        "reverse_sde" => massmap::DiffusionSampler::ReverseSde,
        "annealed_hmc" => massmap::DiffusionSampler::AnnealedHmc,
        s => {
            return Err(bad(format!(
                "sampler = {s:?}: expected \"reverse_sde\" or \"annealed_hmc\""
            )))
        }
    });
    settings.samples = Some(samples);
    settings.steps = Some(steps);
    settings.seed = Some(seed);
    settings.independent = independent;
    settings.prior = prior;
    settings.pixel_arcmin = pixel_arcmin;
    let shear = massmap::ShearMaps {
        source: "maps".into(),
        npix: n,
        e1: vec![g1.to_vec()],
        e2: vec![g2.to_vec()],
        noise_std: vec![sd.to_vec()],
        mask: m.map(|m| vec![m.to_vec()]),
        pixel_arcmin: None,
        cl_theory: None,
        single_map: true,
    };
    let post = py
        .detach(|| {
            cosmodiff_pipeline::report::set_quiet(!progress);
            massmap::reconstruct(&settings, &shear)
        })
        .map_err(crate::one_line)?;
    let get = |k: &str| {
        post.get(k)
            .map(<[f64]>::to_vec)
            .ok_or_else(|| bad(format!("no {k} in the result")))
    };
    let d = PyDict::new(py);
    d.set_item("kappa_mean", flat2(py, get("kappa_mean")?, (n, n))?)?;
    d.set_item("kappa_std", flat2(py, get("kappa_std")?, (n, n))?)?;
    d.set_item("samples", flat3(py, get("samples")?, (samples, n, n))?)?;
    d.set_item("pixel_arcmin", post.pixel_arcmin)?;
    d.set_item("antithetic", post.antithetic)?;
    // a Metropolis acceptance exists for annealed HMC only
    d.set_item("acceptance", post.acceptance.first().copied())?;
    Ok(d)
}

/// The shape and pixel size of a score-prior model directory (or of the
/// shipped default with `prior=None`), and its noise schedule.
#[pyfunction]
#[pyo3(signature = (prior=None))]
fn diffusion_prior_info(py: Python<'_>, prior: Option<PathBuf>) -> PyResult<Bound<'_, PyDict>> {
    let model = load_model(prior)?;
    let c = &model.config;
    let d = PyDict::new(py);
    d.set_item("npix", c.side)?;
    d.set_item("pixel_arcmin", c.pixel_arcmin)?;
    d.set_item("hybrid", c.hybrid)?;
    d.set_item("channels", c.unet.channels.clone())?;
    Ok(d)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(massmap_diffusion, m)?)?;
    m.add_function(wrap_pyfunction!(diffusion_prior_info, m)?)?;
    Ok(())
}
