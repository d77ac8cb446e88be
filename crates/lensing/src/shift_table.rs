//! Log-normal shift parameters `lambda_i(theta)` tabulated on a regular
//! grid and interpolated multilinearly, exactly as sbi_lens does with
//! `jax.scipy.ndimage.map_coordinates(order=1, mode="nearest")`: the
//! fractional index of `theta_d` on axis `d` with `n_d` nodes spanning
//! `[min_d, max_d]` is
//!
//! ```text
//! c_d = (theta_d - min_d) / (max_d - min_d) * n_d - 0.5
//! ```
//!
//! (this does not land on the nodes exactly; the benchmark's simulator uses
//! it as it is, so a faithful reproduction does too), and indices outside
//! `[0, n_d - 1]` are clamped to the edge (so the derivative vanishes there).

use crate::error::{check_len, value, Result};

/// Shifts of `n_bins` bins on a regular grid in `ndim` parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct ShiftTable {
    /// Per axis: `(min, max, n)`.
    axes: Vec<(f64, f64, usize)>,
    /// Per bin: values on the grid, row-major over the axes.
    values: Vec<Vec<f64>>,
}

impl ShiftTable {
    /// `axes[d] = (min, max, n)`; `values[bin]` row-major over the axes.
    pub fn new(axes: Vec<(f64, f64, usize)>, values: Vec<Vec<f64>>) -> Result<Self> {
        if axes.is_empty() || values.is_empty() {
            return Err(value("shift table", "needs at least one axis and one bin"));
        }
        if let Some(a) = axes
            .iter()
            .find(|(lo, hi, n)| !(lo.is_finite() && hi.is_finite() && hi > lo && *n >= 2))
        {
            return Err(value(
                "shift table",
                format!("axis {a:?} needs finite min < max and at least 2 nodes"),
            ));
        }
        let size: usize = axes.iter().map(|a| a.2).product();
        for v in &values {
            check_len("shift table values", size, v.len())?;
            if v.iter().any(|x| !(x.is_finite() && *x > 0.0)) {
                return Err(value("shift table", "values must be finite and > 0"));
            }
        }
        Ok(Self { axes, values })
    }

    pub fn n_bins(&self) -> usize {
        self.values.len()
    }
    pub fn ndim(&self) -> usize {
        self.axes.len()
    }

    /// Shifts at `theta` and their Jacobian `d lambda_i / d theta_d`
    /// (`[n_bins][ndim]`).
    pub fn eval(&self, theta: &[f64]) -> Result<(Vec<f64>, Vec<Vec<f64>>)> {
        let nd = self.ndim();
        check_len("shift-table parameters", nd, theta.len())?;
        if let Some(t) = theta.iter().find(|t| !t.is_finite()) {
            return Err(value("shift-table parameter", format!("{t} is not finite")));
        }
        // Per axis: clamped lower/upper node, weight of the upper, d weight / d theta.
        let mut lo = vec![0usize; nd];
        let mut hi = vec![0usize; nd];
        let mut t = vec![0.0; nd];
        let mut dt = vec![0.0; nd];
        for d in 0..nd {
            let (a, b, n) = self.axes[d];
            let c = (theta[d] - a) / (b - a) * n as f64 - 0.5;
            let f = c.floor();
            let clamp = |i: f64| i.clamp(0.0, (n - 1) as f64) as usize;
            lo[d] = clamp(f);
            hi[d] = clamp(f + 1.0);
            t[d] = c - f;
            dt[d] = if lo[d] == hi[d] {
                0.0
            } else {
                n as f64 / (b - a)
            };
        }
        let mut strides = vec![1usize; nd];
        for d in (0..nd - 1).rev() {
            strides[d] = strides[d + 1] * self.axes[d + 1].2;
        }
        let mut shifts = vec![0.0; self.n_bins()];
        let mut jac = vec![vec![0.0; nd]; self.n_bins()];
        for corner in 0..(1usize << nd) {
            let mut idx = 0;
            let mut w = 1.0;
            // d w / d theta_d = w / w_d * (+-1) dt_d
            let mut dw = vec![0.0; nd];
            let mut ws = vec![0.0; nd];
            for d in 0..nd {
                let up = (corner >> d) & 1 == 1;
                idx += strides[d] * if up { hi[d] } else { lo[d] };
                ws[d] = if up { t[d] } else { 1.0 - t[d] };
                w *= ws[d];
            }
            for d in 0..nd {
                let up = (corner >> d) & 1 == 1;
                let others: f64 = (0..nd).filter(|&e| e != d).map(|e| ws[e]).product();
                dw[d] = others * if up { dt[d] } else { -dt[d] };
            }
            for (b, vals) in self.values.iter().enumerate() {
                shifts[b] += w * vals[idx];
                for d in 0..nd {
                    jac[b][d] += dw[d] * vals[idx];
                }
            }
        }
        Ok((shifts, jac))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A multilinear function is reproduced exactly inside the table (with
    /// the half-cell offset of the index formula), clamped outside, and the
    /// Jacobian matches finite differences.
    #[test]
    fn multilinear_values_and_jacobian() {
        let axes = vec![(0.1, 0.9, 8), (0.3, 1.3, 8), (-2.0, -0.3, 8)];
        // Node m of axis d sits at theta = min + (m + 0.5) (max - min) / n.
        let node = |d: usize, m: usize| {
            let (a, b, n) = axes[d];
            a + (m as f64 + 0.5) * (b - a) / n as f64
        };
        let f = |x: f64, y: f64, w: f64| 0.02 + 0.01 * x + 0.03 * y * x + 0.002 * w;
        let mut vals = vec![];
        for i in 0..8 {
            for j in 0..8 {
                for k in 0..8 {
                    vals.push(f(node(0, i), node(1, j), node(2, k)));
                }
            }
        }
        let tab = ShiftTable::new(axes.clone(), vec![vals.clone(), vals]).unwrap();
        let th = [0.33, 0.81, -1.0];
        let (s, jac) = tab.eval(&th).unwrap();
        assert!((s[0] - f(0.33, 0.81, -1.0)).abs() < 1e-14 && s[0] == s[1]);
        for d in 0..3 {
            let h = 1e-7;
            let mut p = th;
            p[d] += h;
            let mut m = th;
            m[d] -= h;
            let fd = (tab.eval(&p).unwrap().0[0] - tab.eval(&m).unwrap().0[0]) / (2.0 * h);
            assert!(
                (fd - jac[0][d]).abs() < 1e-7,
                "axis {d}: {fd} vs {}",
                jac[0][d]
            );
        }
        // Beyond the last node centre the value is clamped and flat.
        let (s, jac) = tab.eval(&[0.89, 0.81, -1.0]).unwrap();
        assert!((s[0] - f(node(0, 7), 0.81, -1.0)).abs() < 1e-14);
        assert_eq!(jac[0][0], 0.0);
        assert!(tab.eval(&[f64::NAN, 0.8, -1.0]).is_err());
        assert!(ShiftTable::new(axes, vec![vec![0.0; 512]]).is_err());
    }
}
