//! Halo and galaxy catalogues on numpy arrays (`cosmodiff-catalog`):
//! friends-of-friends, the Zheng07 HOD, xi(r), P(k) of points and kNN-CDFs,
//! with the vector-Jacobian products in the point weights.

use crate::{bad, err, slice};
use cosmodiff_catalog::fof::particle_mass;
use cosmodiff_catalog::hod::Zheng07;
use cosmodiff_catalog::knn::{knn_cdf as knn_lib, KnnSettings};
use cosmodiff_catalog::pk_points::{
    pk_points as pk_lib, pk_points_vjp as pk_vjp_lib, PkPointsSettings,
};
use cosmodiff_catalog::{friends_of_friends, FofSettings};
use numpy::ndarray::{Array1, Array2};
use numpy::{IntoPyArray, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// `[n, 3]` float64 points as rows.
fn points(a: &PyReadonlyArrayDyn<'_, f64>, what: &str) -> PyResult<Vec<[f64; 3]>> {
    let s = a.shape();
    if s.len() != 2 || s[1] != 3 {
        return Err(bad(format!(
            "{what}: expected shape [n, 3] (Mpc/h), got {s:?}"
        )));
    }
    Ok(slice(a, what)?
        .chunks_exact(3)
        .map(|c| [c[0], c[1], c[2]])
        .collect())
}

/// A `[n]` float64 vector of the given length.
fn vector(a: &PyReadonlyArrayDyn<'_, f64>, n: usize, what: &str) -> PyResult<Vec<f64>> {
    if a.shape() != [n] {
        return Err(bad(format!(
            "{what}: expected shape [{n}], got {:?}",
            a.shape()
        )));
    }
    Ok(slice(a, what)?.to_vec())
}

/// The optional per-point `weights` `[n]`.
fn weights_of(w: &Option<PyReadonlyArrayDyn<'_, f64>>, n: usize) -> PyResult<Option<Vec<f64>>> {
    w.as_ref().map(|w| vector(w, n, "weights")).transpose()
}

fn rows(v: &[[f64; 3]]) -> Array2<f64> {
    Array2::from_shape_vec((v.len(), 3), v.iter().flatten().copied().collect()).expect("n x 3")
}

/// `cosmodiff.fof`.
#[pyfunction]
#[pyo3(signature = (positions, box_size, omega_m, velocities=None, linking_length=0.2, min_particles=20))]
fn fof<'py>(
    py: Python<'py>,
    positions: PyReadonlyArrayDyn<'py, f64>,
    box_size: f64,
    omega_m: f64,
    velocities: Option<PyReadonlyArrayDyn<'py, f64>>,
    linking_length: f64,
    min_particles: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let pos = points(&positions, "positions")?;
    let vel = match &velocities {
        Some(v) => Some(points(v, "velocities")?),
        None => None,
    };
    if !(omega_m > 0.0 && omega_m <= 2.0) {
        return Err(bad(format!("omega_m must be in (0, 2], got {omega_m}")));
    }
    let s = FofSettings {
        linking_length,
        min_particles,
    };
    let mp = particle_mass(omega_m, box_size, pos.len().max(1));
    let h = py
        .detach(|| friends_of_friends(&pos, vel.as_deref(), box_size, mp, &s))
        .map_err(err)?;
    let d = PyDict::new(py);
    d.set_item("position", rows(&h.position).into_pyarray(py))?;
    if let Some(v) = &h.velocity {
        d.set_item("velocity", rows(v).into_pyarray(py))?;
    }
    d.set_item("mass", Array1::from(h.mass).into_pyarray(py))?;
    d.set_item(
        "n_particles",
        Array1::from(h.n_particles.iter().map(|&c| c as i64).collect::<Vec<_>>()).into_pyarray(py),
    )?;
    d.set_item(
        "particle_halo",
        Array1::from(h.particle_halo).into_pyarray(py),
    )?;
    d.set_item("particle_mass", mp)?;
    Ok(d)
}

/// `cosmodiff.hod_populate`.
#[pyfunction]
#[pyo3(signature = (halo_position, halo_mass, box_size, log_mmin=13.0, sigma_logm=0.5, log_m0=13.0, log_m1=14.0, alpha=1.0, relaxed_temperature=None, seed=0, modulate_with_cenocc=false))]
#[allow(clippy::too_many_arguments)]
fn hod_populate<'py>(
    py: Python<'py>,
    halo_position: PyReadonlyArrayDyn<'py, f64>,
    halo_mass: PyReadonlyArrayDyn<'py, f64>,
    box_size: f64,
    log_mmin: f64,
    sigma_logm: f64,
    log_m0: f64,
    log_m1: f64,
    alpha: f64,
    relaxed_temperature: Option<f64>,
    seed: u64,
    modulate_with_cenocc: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let pos = points(&halo_position, "halo_position")?;
    let mass = vector(&halo_mass, pos.len(), "halo_mass")?;
    let model = Zheng07 {
        log_mmin,
        sigma_logm,
        log_m0,
        log_m1,
        alpha,
        modulate_with_cenocc,
    };
    let g = py
        .detach(|| {
            cosmodiff_pipeline::hod::populate_halos(
                &model,
                relaxed_temperature,
                box_size,
                seed,
                &pos,
                &mass,
            )
        })
        .map_err(crate::one_line)?;
    let d = PyDict::new(py);
    d.set_item("position", rows(&g.position).into_pyarray(py))?;
    d.set_item("is_central", Array1::from(g.is_central).into_pyarray(py))?;
    d.set_item("weight", Array1::from(g.weight).into_pyarray(py))?;
    d.set_item(
        "halo",
        Array1::from(g.halo.iter().map(|&h| h as i64).collect::<Vec<_>>()).into_pyarray(py),
    )?;
    Ok(d)
}

/// `cosmodiff.hod_relaxed_vjp`.
#[pyfunction]
#[pyo3(signature = (halo_position, halo_mass, box_size, cotangent, log_mmin=13.0, sigma_logm=0.5, log_m0=13.0, log_m1=14.0, alpha=1.0, relaxed_temperature=0.1, seed=0, modulate_with_cenocc=false))]
#[allow(clippy::too_many_arguments)]
fn hod_relaxed_vjp<'py>(
    py: Python<'py>,
    halo_position: PyReadonlyArrayDyn<'py, f64>,
    halo_mass: PyReadonlyArrayDyn<'py, f64>,
    box_size: f64,
    cotangent: PyReadonlyArrayDyn<'py, f64>,
    log_mmin: f64,
    sigma_logm: f64,
    log_m0: f64,
    log_m1: f64,
    alpha: f64,
    relaxed_temperature: f64,
    seed: u64,
    modulate_with_cenocc: bool,
) -> PyResult<Bound<'py, numpy::PyArray1<f64>>> {
    let pos = points(&halo_position, "halo_position")?;
    let mass = vector(&halo_mass, pos.len(), "halo_mass")?;
    let wbar = slice(&cotangent, "cotangent")?.to_vec();
    let model = Zheng07 {
        log_mmin,
        sigma_logm,
        log_m0,
        log_m1,
        alpha,
        modulate_with_cenocc,
    };
    let g = py
        .detach(|| -> Result<[f64; 5], cosmodiff_catalog::CatalogError> {
            // the same candidates as hod_populate(..., relaxed_temperature, seed)
            let cand = model.relaxed_candidates(&pos, &mass, box_size, seed)?;
            model.relaxed_weights_vjp(&cand, relaxed_temperature, &wbar)
        })
        .map_err(err)?;
    Ok(Array1::from(g.to_vec()).into_pyarray(py))
}

/// `cosmodiff.xi`.
#[pyfunction]
#[pyo3(signature = (positions, box_size, r_edges, weights=None))]
fn xi<'py>(
    py: Python<'py>,
    positions: PyReadonlyArrayDyn<'py, f64>,
    box_size: f64,
    r_edges: Vec<f64>,
    weights: Option<PyReadonlyArrayDyn<'py, f64>>,
) -> PyResult<Bound<'py, PyDict>> {
    let pos = points(&positions, "positions")?;
    let w = weights_of(&weights, pos.len())?;
    let x = py
        .detach(|| cosmodiff_catalog::xi(&pos, w.as_deref(), box_size, &r_edges))
        .map_err(err)?;
    let d = PyDict::new(py);
    d.set_item("r", Array1::from(x.r).into_pyarray(py))?;
    d.set_item("xi", Array1::from(x.xi).into_pyarray(py))?;
    d.set_item("pair_counts", Array1::from(x.pair_counts).into_pyarray(py))?;
    d.set_item("rr", Array1::from(x.rr).into_pyarray(py))?;
    d.set_item("r_edges", Array1::from(x.edges).into_pyarray(py))?;
    Ok(d)
}

/// `cosmodiff.xi_vjp`.
#[pyfunction]
#[pyo3(signature = (positions, box_size, r_edges, cotangent, weights=None))]
fn xi_vjp<'py>(
    py: Python<'py>,
    positions: PyReadonlyArrayDyn<'py, f64>,
    box_size: f64,
    r_edges: Vec<f64>,
    cotangent: Vec<f64>,
    weights: Option<PyReadonlyArrayDyn<'py, f64>>,
) -> PyResult<Bound<'py, numpy::PyArray1<f64>>> {
    let pos = points(&positions, "positions")?;
    let w = weights_of(&weights, pos.len())?;
    let g = py
        .detach(|| {
            cosmodiff_catalog::pairs::xi_vjp(&pos, w.as_deref(), box_size, &r_edges, &cotangent)
        })
        .map_err(err)?;
    Ok(Array1::from(g).into_pyarray(py))
}

/// `cosmodiff.pk_points`.
#[pyfunction]
#[pyo3(signature = (positions, box_size, n_mesh=128, weights=None, interlacing=true))]
fn pk_points<'py>(
    py: Python<'py>,
    positions: PyReadonlyArrayDyn<'py, f64>,
    box_size: f64,
    n_mesh: usize,
    weights: Option<PyReadonlyArrayDyn<'py, f64>>,
    interlacing: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let pos = points(&positions, "positions")?;
    let w = weights_of(&weights, pos.len())?;
    let s = PkPointsSettings {
        n_mesh,
        interlacing,
        compensate: true,
    };
    let p = py
        .detach(|| pk_lib(&pos, w.as_deref(), box_size, &s))
        .map_err(err)?;
    let d = PyDict::new(py);
    d.set_item("k", Array1::from(p.k).into_pyarray(py))?;
    d.set_item("pk", Array1::from(p.pk).into_pyarray(py))?;
    d.set_item("n_modes", Array1::from(p.n_modes).into_pyarray(py))?;
    d.set_item("shot_noise", p.shot_noise)?;
    Ok(d)
}

/// `cosmodiff.pk_points_vjp`.
#[pyfunction]
#[pyo3(signature = (positions, box_size, cotangent, n_mesh=128, weights=None, interlacing=true))]
fn pk_points_vjp<'py>(
    py: Python<'py>,
    positions: PyReadonlyArrayDyn<'py, f64>,
    box_size: f64,
    cotangent: Vec<f64>,
    n_mesh: usize,
    weights: Option<PyReadonlyArrayDyn<'py, f64>>,
    interlacing: bool,
) -> PyResult<Bound<'py, numpy::PyArray1<f64>>> {
    let pos = points(&positions, "positions")?;
    let w = weights_of(&weights, pos.len())?;
    let s = PkPointsSettings {
        n_mesh,
        interlacing,
        compensate: true,
    };
    let g = py
        .detach(|| pk_vjp_lib(&pos, w.as_deref(), box_size, &s, &cotangent))
        .map_err(err)?;
    Ok(Array1::from(g).into_pyarray(py))
}

/// `cosmodiff.knn_cdf`.
#[pyfunction]
#[pyo3(signature = (positions, box_size, k=vec![1, 2, 3, 4, 5, 6, 7, 8, 9], n_query=100_000, r=None, seed=0))]
fn knn_cdf<'py>(
    py: Python<'py>,
    positions: PyReadonlyArrayDyn<'py, f64>,
    box_size: f64,
    k: Vec<usize>,
    n_query: usize,
    r: Option<Vec<f64>>,
    seed: u64,
) -> PyResult<Bound<'py, PyDict>> {
    let pos = points(&positions, "positions")?;
    let s = KnnSettings {
        k,
        n_query,
        r,
        seed,
    };
    let c = py.detach(|| knn_lib(&pos, box_size, &s)).map_err(err)?;
    let d = PyDict::new(py);
    d.set_item(
        "k",
        Array1::from(c.k.iter().map(|&k| k as i64).collect::<Vec<_>>()).into_pyarray(py),
    )?;
    let nr = c.r.len();
    d.set_item("r", Array1::from(c.r).into_pyarray(py))?;
    let cdf = Array2::from_shape_vec((c.cdf.len(), nr), c.cdf.concat()).expect("n_k x n_r");
    d.set_item("cdf", cdf.into_pyarray(py))?;
    Ok(d)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(fof, m)?)?;
    m.add_function(wrap_pyfunction!(hod_populate, m)?)?;
    m.add_function(wrap_pyfunction!(hod_relaxed_vjp, m)?)?;
    m.add_function(wrap_pyfunction!(xi, m)?)?;
    m.add_function(wrap_pyfunction!(xi_vjp, m)?)?;
    m.add_function(wrap_pyfunction!(pk_points, m)?)?;
    m.add_function(wrap_pyfunction!(pk_points_vjp, m)?)?;
    m.add_function(wrap_pyfunction!(knn_cdf, m)?)?;
    Ok(())
}
