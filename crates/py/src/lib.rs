//! `cosmodiff._core`: the compiled half of the `cosmodiff` Python package.
//!
//! Thin PyO3 bindings over the Rust library crates (`cosmodiff-cosmo`,
//! `cosmodiff-field`, `cosmodiff-lensing`, `cosmodiff-infer`, and the
//! burn-based `cosmodiff-score` and `cosmodiff-sbi`). Arrays cross
//! the boundary as float64 numpy arrays: inputs are borrowed read-only
//! (C-contiguous; the pure-Python layer `cosmodiff/__init__.py` converts
//! lists and scalars), outputs are built from Rust vectors by moving them
//! into numpy (no copy). Every library error becomes one
//! `cosmodiff.CosmodiffError` (a `ValueError`) carrying the library message.
//! Long computations release the GIL.
//!
//! Units: distances Mpc/h, wavenumbers h/Mpc, P(k) (Mpc/h)^3, H km/s/Mpc,
//! map pixels and smoothing scales in arcmin, galaxy densities arcmin^-2.

// Binding signatures return tuples of arrays by design.
#![allow(clippy::type_complexity)]

use numpy::ndarray::{Array1, Array2, Array3};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyArray3, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

mod calibration;
mod catalog;
mod cosmo;
mod diffusion;
mod fieldflow;
mod lensing;
mod lensing_cosmology;
mod sampling;
mod sbi;

pyo3::create_exception!(
    cosmodiff,
    CosmodiffError,
    PyValueError,
    "Invalid input or a failed computation in cosmodiff (a ValueError carrying the library's one-line message)."
);

/// Any displayable library error as a Python `CosmodiffError` (a `ValueError`).
pub(crate) fn err<E: std::fmt::Display>(e: E) -> PyErr {
    CosmodiffError::new_err(e.to_string())
}

/// A one-line `CosmodiffError` with a message.
pub(crate) fn bad(msg: impl Into<String>) -> PyErr {
    CosmodiffError::new_err(msg.into())
}

/// A workflow's error as a one-line `CosmodiffError` (the CLI's wording).
pub(crate) fn one_line(e: anyhow::Error) -> PyErr {
    bad(cosmodiff_pipeline::report::one_line(&e))
}

/// Borrow a C-contiguous float64 array as a slice (a Fortran-ordered one
/// would be read in the wrong order, so it is refused too).
pub(crate) fn slice<'a>(a: &'a PyReadonlyArrayDyn<'_, f64>, what: &str) -> PyResult<&'a [f64]> {
    if !a.is_c_contiguous() {
        return Err(bad(format!(
            "{what}: expected a C-contiguous float64 array"
        )));
    }
    a.as_slice()
        .map_err(|_| bad(format!("{what}: expected a C-contiguous float64 array")))
}

/// Any array-like (list, float32, int, strided or Fortran-ordered array) as
/// a C-contiguous float64 numpy array, for methods called without the
/// Python layer's conversion.
pub(crate) fn to_f64<'py>(
    obj: &Bound<'py, PyAny>,
    what: &str,
) -> PyResult<PyReadonlyArrayDyn<'py, f64>> {
    let np = obj.py().import("numpy")?;
    // numpy would drop the imaginary part with only a warning.
    if np.call_method1("iscomplexobj", (obj,))?.is_truthy()? {
        return Err(bad(format!("{what}: complex values; pass real arrays")));
    }
    let kw = pyo3::types::PyDict::new(obj.py());
    kw.set_item("dtype", "float64")?;
    let a = np
        .call_method("ascontiguousarray", (obj,), Some(&kw))
        .map_err(|e| bad(format!("{what}: not a float array ({e})")))?;
    a.extract::<PyReadonlyArrayDyn<'py, f64>>()
        .map_err(|e| bad(format!("{what}: not a float array ({e})")))
}

/// A square [n, n] map as (n, slice).
pub(crate) fn square_map<'a>(
    a: &'a PyReadonlyArrayDyn<'_, f64>,
    what: &str,
) -> PyResult<(usize, &'a [f64])> {
    let s = a.shape();
    if s.len() != 2 || s[0] != s[1] || s[0] < 2 {
        return Err(bad(format!(
            "{what}: expected a square map of shape [npix, npix] (npix >= 2), got shape {s:?}"
        )));
    }
    Ok((s[0], slice(a, what)?))
}

/// A map of shape [n, n] like `e1`, as a slice.
pub(crate) fn like_map<'a>(
    a: &'a PyReadonlyArrayDyn<'_, f64>,
    n: usize,
    what: &str,
) -> PyResult<&'a [f64]> {
    if a.shape() != [n, n] {
        return Err(bad(format!(
            "{what}: expected shape [{n}, {n}] like e1, got {:?}",
            a.shape()
        )));
    }
    slice(a, what)
}

/// One shear map's inputs: `e1` [n, n] and `e2`, `noise_std` and the
/// optional `mask` of the same shape, as slices.
pub(crate) type ShearInputs<'a> = (usize, &'a [f64], &'a [f64], &'a [f64], Option<&'a [f64]>);

pub(crate) fn shear_inputs<'a>(
    e1: &'a PyReadonlyArrayDyn<'_, f64>,
    e2: &'a PyReadonlyArrayDyn<'_, f64>,
    noise_std: &'a PyReadonlyArrayDyn<'_, f64>,
    mask: &'a Option<PyReadonlyArrayDyn<'_, f64>>,
) -> PyResult<ShearInputs<'a>> {
    let (n, g1) = square_map(e1, "e1")?;
    let g2 = like_map(e2, n, "e2")?;
    let sd = like_map(noise_std, n, "noise_std")?;
    let m = match mask {
        Some(a) => Some(like_map(a, n, "mask")?),
        None => None,
    };
    Ok((n, g1, g2, sd, m))
}

pub(crate) fn vec1(py: Python<'_>, v: Vec<f64>) -> Bound<'_, PyArray1<f64>> {
    Array1::from_vec(v).into_pyarray(py)
}

/// Rows of equal length as a 2-D array (rows are concatenated once).
pub(crate) fn vec2(
    py: Python<'_>,
    rows: Vec<Vec<f64>>,
    ncol: usize,
) -> PyResult<Bound<'_, PyArray2<f64>>> {
    let nrow = rows.len();
    let flat: Vec<f64> = rows.concat();
    Ok(Array2::from_shape_vec((nrow, ncol), flat)
        .map_err(err)?
        .into_pyarray(py))
}

pub(crate) fn flat2(
    py: Python<'_>,
    v: Vec<f64>,
    shape: (usize, usize),
) -> PyResult<Bound<'_, PyArray2<f64>>> {
    Ok(Array2::from_shape_vec(shape, v)
        .map_err(err)?
        .into_pyarray(py))
}

pub(crate) fn flat3(
    py: Python<'_>,
    v: Vec<f64>,
    shape: (usize, usize, usize),
) -> PyResult<Bound<'_, PyArray3<f64>>> {
    Ok(Array3::from_shape_vec(shape, v)
        .map_err(err)?
        .into_pyarray(py))
}

/// `python -m cosmodiff ARGS`: the command line of the `cosmodiff` binary
/// (`argv[0]` is the program name); returns the exit code.
#[pyfunction]
fn cli_main(py: Python<'_>, argv: Vec<String>) -> i32 {
    py.detach(|| cosmodiff_cli::main_with_args(argv))
}

/// `cosmodiff.set_max_memory`: the memory limit of later calls (`None`: the
/// machine's available memory), as the CLI's `--max-memory`.
#[pyfunction]
#[pyo3(signature = (size=None))]
fn set_max_memory(size: Option<String>) -> PyResult<()> {
    let bytes = size
        .as_deref()
        .map(cosmodiff_pipeline::budget::parse_size)
        .transpose()
        .map_err(one_line)?;
    cosmodiff_pipeline::budget::set_max_memory(bytes);
    Ok(())
}

/// `cosmodiff.set_device`: the device of the networks created by later
/// calls, as the CLI's `--device`; returns its canonical name.
#[pyfunction]
fn set_device(name: String) -> PyResult<String> {
    let kind = cosmodiff_pipeline::nn_device::select_name(&name).map_err(|e| one_line(e.into()))?;
    Ok(kind.to_string())
}

/// `cosmodiff.device`: the name of the selected device.
#[pyfunction]
fn device() -> String {
    cosmodiff_pipeline::nn_device::selected().to_string()
}

/// `cosmodiff.devices`: the devices compiled into this build.
#[pyfunction]
fn devices() -> Vec<&'static str> {
    cosmodiff_pipeline::nn_device::compiled()
}

/// Panics on purpose, for the test of the panic guard in `__init__.py`.
#[pyfunction]
fn _panic_for_tests(msg: String) {
    panic!("{msg}");
}

/// Compiled core of cosmodiff. Use the `cosmodiff` package, which wraps
/// these functions with array conversion and documentation.
#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("CosmodiffError", m.py().get_type::<CosmodiffError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    cosmo::register(m)?;
    lensing::register(m)?;
    sampling::register(m)?;
    diffusion::register(m)?;
    sbi::register(m)?;
    calibration::register(m)?;
    catalog::register(m)?;
    lensing_cosmology::register(m)?;
    fieldflow::register(m)?;
    m.add_function(wrap_pyfunction!(cli_main, m)?)?;
    m.add_function(wrap_pyfunction!(_panic_for_tests, m)?)?;
    m.add_function(wrap_pyfunction!(set_max_memory, m)?)?;
    m.add_function(wrap_pyfunction!(set_device, m)?)?;
    m.add_function(wrap_pyfunction!(device, m)?)?;
    m.add_function(wrap_pyfunction!(devices, m)?)?;
    // A panic is reported once, as a one-line CosmodiffError raised by the
    // guard in `__init__.py`; Rust's own hook would print a backtrace note.
    std::panic::set_hook(Box::new(|_| {}));
    Ok(())
}
