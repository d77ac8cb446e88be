//! Mass maps with a learned score (diffusion) prior: posterior samples of
//! one shear map, as `cosmodiff massmap --method diffusion` (same sampler
//! settings, `cosmodiff_score::posterior`; the same seed gives the same maps).

use crate::{bad, err, flat2, flat3, shear_inputs};
use cosmodiff_field::Grid2;
use cosmodiff_score::{map_posterior, PosteriorSettings, Sampler, ScoreModel};
use numpy::PyReadonlyArrayDyn;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::PathBuf;

/// The score prior of a model directory, or the shipped default.
fn load_model(prior: Option<PathBuf>) -> PyResult<ScoreModel> {
    match prior {
        Some(d) => ScoreModel::load(&d).map_err(|e| bad(format!("prior: {e}"))),
        None => ScoreModel::default_model().map_err(|e| bad(format!("default diffusion prior: {e}"))),
    }
}

/// Posterior samples with a score prior; see `cosmodiff.massmap_diffusion`.
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
    let sampler = match sampler {
        "reverse_sde" => Sampler::ReverseSde,
        "annealed_hmc" => Sampler::AnnealedHmc,
        s => return Err(bad(format!("sampler = {s:?}: expected \"reverse_sde\" or \"annealed_hmc\""))),
    };
    if independent && sampler == Sampler::AnnealedHmc {
        return Err(bad("independent applies to sampler=\"reverse_sde\" only (annealed-HMC chains are always independent)"));
    }
    if samples < 2 {
        return Err(bad(format!("samples = {samples}: need >= 2 (kappa_std is estimated from the samples)")));
    }
    if !(2..=100_000).contains(&steps) {
        return Err(bad(format!("steps = {steps}: expected 2 <= steps <= 100000")));
    }
    let model = load_model(prior)?;
    let c = &model.config;
    if n != c.side {
        return Err(bad(format!("maps are {n}x{n} pixels but the diffusion prior was trained on {}x{} maps; train one for this size with `cosmodiff prior train`", c.side, c.side)));
    }
    let pix = match pixel_arcmin {
        Some(v) if !v.is_finite() || ((v - c.pixel_arcmin) / c.pixel_arcmin).abs() > 1e-6 => {
            return Err(bad(format!("pixel_arcmin = {v} but the diffusion prior was trained on {} arcmin pixels", c.pixel_arcmin)));
        }
        _ => c.pixel_arcmin,
    };
    let grid = Grid2::new(n, pix).map_err(err)?;
    let settings = PosteriorSettings { sampler, steps, chains: samples, seed, antithetic: !independent, progress };
    let post = py.detach(|| map_posterior(&model, grid, g1, g2, sd, m, &settings)).map_err(err)?;
    let d = PyDict::new(py);
    d.set_item("kappa_mean", flat2(py, post.mean, (n, n))?)?;
    d.set_item("kappa_std", flat2(py, post.std, (n, n))?)?;
    d.set_item("samples", flat3(py, post.samples.concat(), (samples, n, n))?)?;
    d.set_item("pixel_arcmin", pix)?;
    d.set_item("antithetic", post.antithetic)?;
    // a Metropolis acceptance exists for annealed HMC only
    d.set_item("acceptance", (sampler == Sampler::AnnealedHmc).then_some(post.acceptance))?;
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
