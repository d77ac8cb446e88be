//! Standardisation (z-scoring) of parameters and data.

use ndarray::{Array1, Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

use crate::error::{invalid, NnError};

/// Per-column affine map `u = (v - mean) / std`.
///
/// For a density over `v`, `log p(v) = log p_u(u) - sum_j log std_j`
/// ([`Standardizer::log_abs_det`]).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Standardizer {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

impl Standardizer {
    /// Mean and standard deviation of each column. Columns with zero spread
    /// get `std = 1` (they are constants and carry no information).
    pub fn fit(a: ArrayView2<f64>) -> Result<Self, NnError> {
        if a.nrows() < 2 {
            return invalid(format!(
                "need at least 2 rows to standardise, got {}",
                a.nrows()
            ));
        }
        check_finite(a, "training array")?;
        let mean = a.mean_axis(Axis(0)).expect("rows > 0");
        let std = a.std_axis(Axis(0), 1.0);
        let std = std.mapv(|s| {
            if s > 1e-14 * (1.0 + s) && s.is_finite() {
                s
            } else {
                1.0
            }
        });
        Ok(Self {
            mean: mean.to_vec(),
            std: std.to_vec(),
        })
    }

    /// The identity map for `dim` columns.
    pub fn identity(dim: usize) -> Self {
        Self {
            mean: vec![0.0; dim],
            std: vec![1.0; dim],
        }
    }

    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// Check a standardisation read from a file: `dim` finite means and
    /// positive finite standard deviations (`what` names it in the error).
    pub fn validate(&self, what: &str, dim: usize) -> Result<(), NnError> {
        if self.mean.len() != dim || self.std.len() != dim {
            return invalid(format!(
                "{what}: {} means and {} standard deviations for {dim} columns",
                self.mean.len(),
                self.std.len()
            ));
        }
        if let Some(m) = self.mean.iter().find(|m| !m.is_finite()) {
            return invalid(format!("{what}: mean {m} is not a finite number"));
        }
        if let Some(s) = self.std.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return invalid(format!(
                "{what}: standard deviation {s} must be a positive number"
            ));
        }
        Ok(())
    }

    /// `(v - mean) / std`, row by row.
    pub fn forward(&self, a: ArrayView2<f64>) -> Array2<f64> {
        let m = Array1::from(self.mean.clone());
        let s = Array1::from(self.std.clone());
        (&a - &m) / &s
    }

    /// `u * std + mean`, row by row.
    pub fn inverse(&self, a: ArrayView2<f64>) -> Array2<f64> {
        let m = Array1::from(self.mean.clone());
        let s = Array1::from(self.std.clone());
        &a * &s + &m
    }

    /// `sum_j log std_j`, to subtract from a log density in standardised units.
    pub fn log_abs_det(&self) -> f64 {
        self.std.iter().map(|s| s.ln()).sum()
    }
}

/// Reject NaN / infinite entries with the offending row.
pub fn check_finite(a: ArrayView2<f64>, what: &str) -> Result<(), NnError> {
    for (i, row) in a.outer_iter().enumerate() {
        if row.iter().any(|x| !x.is_finite()) {
            return Err(NnError::NonFinite {
                what: what.to_string(),
                row: i,
            });
        }
    }
    Ok(())
}

impl Standardizer {
    /// One mean and standard deviation for all columns (for maps, whose
    /// pixels share a distribution).
    pub fn fit_global(a: ArrayView2<f64>) -> Result<Self, NnError> {
        if a.len() < 2 {
            return invalid("need at least 2 values to standardise");
        }
        check_finite(a, "training array")?;
        let n = a.len() as f64;
        let m = a.sum() / n;
        let v = a.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0);
        let s = if v > 0.0 { v.sqrt() } else { 1.0 };
        Ok(Self {
            mean: vec![m; a.ncols()],
            std: vec![s; a.ncols()],
        })
    }
}
