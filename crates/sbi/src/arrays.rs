//! Simulation tables and observations from arrays of any rank, shared by
//! `cosmodiff sbi` (.npy files) and the Python package (numpy arrays).

use ndarray::{Array2, ArrayViewD};

use crate::error::{invalid, SbiError};

/// Rows of an array: `[N]` -> `[N, 1]` (or one row with `one_row`),
/// `[N, ...]` -> `[N, prod(...)]` (maps flattened row-major); finite values
/// only. `what` names the array in errors.
pub fn rows(a: ArrayViewD<f64>, what: &str, one_row: bool) -> Result<Array2<f64>, SbiError> {
    let shape = a.shape().to_vec();
    let (r, c) = match shape.len() {
        0 => return invalid(format!("{what} is a scalar; expected an array")),
        1 if one_row => (1, shape[0]),
        1 => (shape[0], 1),
        _ => (shape[0], shape[1..].iter().product()),
    };
    if r == 0 || c == 0 {
        return invalid(format!("{what} is empty (shape {shape:?})"));
    }
    let v: Vec<f64> = a.iter().copied().collect();
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return invalid(format!("{what} has non-finite values in row {}", i / c));
    }
    Ok(Array2::from_shape_vec((r, c), v).expect("r * c values"))
}
