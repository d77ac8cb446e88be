//! Small dense linear algebra on row-major `Vec<f64>` matrices: Cholesky
//! factorisation and SPD inverse (from `nalgebra`), and symmetrisation.
//! Sizes here are the number of parameters (at most a few hundred).

/// Lower Cholesky factor `L` with `A = L L^T` (row-major), or `None` when
/// `A` is not (numerically) symmetric positive definite (`nalgebra`).
pub fn cholesky(a: &[f64], n: usize) -> Option<Vec<f64>> {
    assert_eq!(a.len(), n * n);
    if a.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let m = nalgebra::DMatrix::from_row_slice(n, n, a);
    let l = m.cholesky()?.l();
    Some(row_major(&l))
}

/// Inverse of an SPD matrix through its Cholesky factor (`nalgebra`).
pub fn spd_inverse(a: &[f64], n: usize) -> Option<Vec<f64>> {
    assert_eq!(a.len(), n * n);
    if a.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let inv = nalgebra::DMatrix::from_row_slice(n, n, a)
        .cholesky()?
        .inverse();
    Some(row_major(&inv))
}

/// A matrix as a row-major vector.
fn row_major(m: &nalgebra::DMatrix<f64>) -> Vec<f64> {
    m.transpose().as_slice().to_vec()
}

/// Replace `A` by `(A + A^T)/2`.
pub fn symmetrize(a: &mut [f64], n: usize) {
    for i in 0..n {
        for j in 0..i {
            let m = 0.5 * (a[i * n + j] + a[j * n + i]);
            a[i * n + j] = m;
            a[j * n + i] = m;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_of_spd() {
        let a = vec![4.0, 2.0, 0.6, 2.0, 5.0, 1.0, 0.6, 1.0, 3.0];
        let inv = spd_inverse(&a, 3).unwrap();
        for i in 0..3 {
            for j in 0..3 {
                let s: f64 = (0..3).map(|k| a[i * 3 + k] * inv[k * 3 + j]).sum();
                assert!((s - if i == j { 1.0 } else { 0.0 }).abs() < 1e-12);
            }
        }
        assert!(cholesky(&[1.0, 2.0, 2.0, 1.0], 2).is_none());
    }
}
