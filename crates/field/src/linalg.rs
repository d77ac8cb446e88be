//! Small dense linear algebra (row-major `n x n`), enough for per-mode
//! tomographic covariance matrices and for dense reference solutions in tests.
//!
//! The symmetric eigensolver is `nalgebra`'s. The Cholesky factorisation is
//! written here because it must accept positive *semi*-definite matrices
//! (zero pivots of bins without power at some `ell` give a zero column),
//! which `nalgebra`'s and `faer`'s Cholesky refuse; the positive definite
//! factorisations elsewhere (`cosmodiff_infer::linalg`) use `nalgebra`.

/// Cholesky `A = L L^T` of a symmetric positive *semi*-definite matrix.
///
/// Pivots with `|d| <= tol * max_diag` are treated as exact zeros (the
/// column of `L` is set to zero), so rank-deficient matrices (e.g. a bin
/// with no power at this `ell`) factor gracefully. A pivot below
/// `-tol * max_diag` is an error, returned as `Err(pivot)`.
pub fn cholesky_psd(a: &[f64], n: usize, tol: f64) -> Result<Vec<f64>, f64> {
    let maxd = (0..n).map(|i| a[i * n + i].abs()).fold(0.0, f64::max);
    let thr = tol * maxd.max(f64::MIN_POSITIVE);
    let mut l = vec![0.0; n * n];
    for j in 0..n {
        let mut d = a[j * n + j];
        for k in 0..j {
            d -= l[j * n + k] * l[j * n + k];
        }
        if d < -thr {
            return Err(d);
        }
        if d <= thr {
            // Semi-definite direction: the off-diagonal entries must vanish too.
            for i in j + 1..n {
                let mut s = a[i * n + j];
                for k in 0..j {
                    s -= l[i * n + k] * l[j * n + k];
                }
                if s.abs() > thr.sqrt() * maxd.sqrt() * 1e3 {
                    return Err(d.min(-thr));
                }
            }
            continue;
        }
        let dj = d.sqrt();
        l[j * n + j] = dj;
        for i in j + 1..n {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= l[i * n + k] * l[j * n + k];
            }
            l[i * n + j] = s / dj;
        }
    }
    Ok(l)
}

/// Eigen-decomposition of a symmetric matrix (`nalgebra`'s symmetric QR
/// algorithm). Returns `(eigenvalues, V)` with `A = V diag(w) V^T`, `V`
/// row-major with eigenvectors in columns (in no particular order).
pub fn sym_eigen(a: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let e = nalgebra::DMatrix::from_row_slice(n, n, a).symmetric_eigen();
    let v = e.eigenvectors.transpose().as_slice().to_vec();
    (e.eigenvalues.as_slice().to_vec(), v)
}

/// Solve `A x = b` given the Cholesky factor `L` of `A` (full rank).
pub fn cholesky_solve(l: &[f64], n: usize, b: &[f64]) -> Vec<f64> {
    let mut y = b.to_vec();
    for i in 0..n {
        let mut s = y[i];
        for k in 0..i {
            s -= l[i * n + k] * y[k];
        }
        y[i] = s / l[i * n + i];
    }
    for i in (0..n).rev() {
        let mut s = y[i];
        for k in i + 1..n {
            s -= l[k * n + i] * y[k];
        }
        y[i] = s / l[i * n + i];
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn chol_eigen_solve() {
        let a = [4.0, 2.0, 0.6, 2.0, 3.0, 0.4, 0.6, 0.4, 2.0];
        let l = cholesky_psd(&a, 3, 1e-12).unwrap();
        let x = cholesky_solve(&l, 3, &[1.0, 2.0, 3.0]);
        for i in 0..3 {
            let r: f64 = (0..3).map(|j| a[i * 3 + j] * x[j]).sum::<f64>() - [1.0, 2.0, 3.0][i];
            assert!(r.abs() < 1e-13);
        }
        let (w, v) = sym_eigen(&a, 3);
        for i in 0..3 {
            for j in 0..3 {
                let r: f64 = (0..3).map(|k| v[i * 3 + k] * w[k] * v[j * 3 + k]).sum();
                assert!((r - a[i * 3 + j]).abs() < 1e-12);
            }
        }
        // Rank-deficient but PSD, and indefinite.
        assert!(cholesky_psd(&[1.0, 1.0, 1.0, 1.0], 2, 1e-12).is_ok());
        assert!(cholesky_psd(&[1.0, 2.0, 2.0, 1.0], 2, 1e-12).is_err());
    }
}
