//! Tabulated angular power spectra `C_ell` and their evaluation on a grid.
//!
//! Tables are interpolated linearly in `ell` (exact for the VJP, and safe for
//! cross spectra that change sign); modes outside `[ell_min, ell_max]` of the
//! table get **zero** power, and the `ell = 0` mode always has zero power, so
//! simulated maps have exactly zero mean. Tables should therefore reach the
//! grid's largest `|ell| = sqrt(2) pi / dx`.

use crate::error::{check_finite, FieldError, Result};
use crate::grid2::Grid2;

/// One spectrum `C(ell)` on an increasing `ell` grid.
#[derive(Debug, Clone, PartialEq)]
pub struct ClTable {
    ell: Vec<f64>,
    cl: Vec<f64>,
}

impl ClTable {
    pub fn new(ell: Vec<f64>, cl: Vec<f64>) -> Result<Self> {
        if ell.len() != cl.len() {
            return Err(FieldError::Table(format!(
                "ell has {} entries but C_ell has {}",
                ell.len(),
                cl.len()
            )));
        }
        if ell.len() < 2 {
            return Err(FieldError::Table("need at least 2 ell values".into()));
        }
        check_finite("ell", &ell)?;
        check_finite("C_ell", &cl)?;
        if ell.windows(2).any(|w| w[1] <= w[0]) || ell[0] < 0.0 {
            return Err(FieldError::Table(
                "ell must be non-negative and strictly increasing".into(),
            ));
        }
        Ok(Self { ell, cl })
    }
    pub fn ell(&self) -> &[f64] {
        &self.ell
    }
    pub fn cl(&self) -> &[f64] {
        &self.cl
    }
    /// Interpolation weights: `C(l) = w0 C[i] + w1 C[i+1]`, `None` outside the table.
    pub fn weights(&self, l: f64) -> Option<(usize, f64, f64)> {
        let e = &self.ell;
        if !(l >= e[0] && l <= e[e.len() - 1]) || l == 0.0 {
            return None;
        }
        let i = e
            .partition_point(|&x| x <= l)
            .saturating_sub(1)
            .min(e.len() - 2);
        let t = (l - e[i]) / (e[i + 1] - e[i]);
        Some((i, 1.0 - t, t))
    }
    /// `C(l)`, zero outside the table and at `l = 0`.
    pub fn eval(&self, l: f64) -> f64 {
        self.weights(l)
            .map(|(i, a, b)| a * self.cl[i] + b * self.cl[i + 1])
            .unwrap_or(0.0)
    }
    /// `C(|ell_k|)` for every Fourier mode of `grid` (row-major).
    pub fn on_grid(&self, grid: &Grid2) -> Vec<f64> {
        use rayon::prelude::*;
        grid.ell_abs()
            .into_par_iter()
            .map(|l| self.eval(l))
            .collect()
    }
}

/// Auto and cross spectra of `n_bins` tomographic bins on a common `ell`
/// grid; rows are the pairs `(i, j)`, `j >= i`, in the order
/// `(0,0), (0,1), .., (0,n-1), (1,1), .., (n-1,n-1)`.
#[derive(Debug, Clone, PartialEq)]
pub struct ClMatrixTable {
    n_bins: usize,
    tables: Vec<ClTable>,
}

impl ClMatrixTable {
    /// `cls` is `[n_pairs][n_ell]`; `n_pairs` must be `n_bins (n_bins + 1) / 2`.
    pub fn new(ell: Vec<f64>, cls: Vec<Vec<f64>>) -> Result<Self> {
        let np = cls.len();
        let nb = ((((8 * np + 1) as f64).sqrt() - 1.0) / 2.0).round() as usize;
        if np == 0 || nb * (nb + 1) / 2 != np {
            return Err(FieldError::Table(format!(
                "{np} spectra is not n(n+1)/2 for any number of bins"
            )));
        }
        let tables = cls
            .into_iter()
            .enumerate()
            .map(|(p, c)| {
                ClTable::new(ell.clone(), c)
                    .map_err(|e| FieldError::Table(format!("pair {p}: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        for i in 0..nb {
            if tables[pair_index(nb, i, i)].cl().iter().any(|&c| c < 0.0) {
                return Err(FieldError::Table(format!(
                    "auto spectrum of bin {i} has negative values"
                )));
            }
        }
        Ok(Self { n_bins: nb, tables })
    }
    pub fn n_bins(&self) -> usize {
        self.n_bins
    }
    /// Table of pair `(i, j)` (either order).
    pub fn pair(&self, i: usize, j: usize) -> &ClTable {
        &self.tables[pair_index(self.n_bins, i.min(j), i.max(j))]
    }
}

/// Row of pair `(i, j)`, `i <= j`, in the bin-ordered pair list.
pub fn pair_index(n_bins: usize, i: usize, j: usize) -> usize {
    i * n_bins - i * i.saturating_sub(1) / 2 + (j - i)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn pair_order() {
        let nb = 4;
        let mut k = 0;
        for i in 0..nb {
            for j in i..nb {
                assert_eq!(pair_index(nb, i, j), k, "({i},{j})");
                k += 1;
            }
        }
    }
    #[test]
    fn interp_and_errors() {
        let t = ClTable::new(vec![10.0, 20.0, 40.0], vec![1.0, 3.0, 5.0]).unwrap();
        assert_eq!(t.eval(15.0), 2.0);
        assert_eq!(t.eval(40.0), 5.0);
        assert_eq!(t.eval(41.0), 0.0);
        assert!(ClTable::new(vec![1.0, 1.0], vec![0.0, 0.0]).is_err());
        assert!(ClMatrixTable::new(vec![1.0, 2.0], vec![vec![1.0, 1.0]; 2]).is_err());
    }
}
