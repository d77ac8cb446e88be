//! A Chebyshev emulator of `theta -> ln C_ell` for set-ups with few
//! parameters: the spectra and their exact-derivative Jacobian cost
//! microseconds instead of a dual-number Limber integral per call (6.5 ms on
//! the single-bin set-up, which dominates a 64^2 full-field gradient).
//!
//! On a box `[a_k, b_k]` per parameter, with `t = (2 theta - a - b)/(b - a)`
//! and the `n` Chebyshev points of the first kind
//! `t_m = cos(pi (m + 1/2) / n)`, each `f = ln C_ell(node)` is interpolated
//! as the tensor product
//!
//! ```text
//! f(t) = sum_{j_1..j_D < n} c_{j_1..j_D} T_{j_1}(t_1) ... T_{j_D}(t_D),
//! c_j  = (2/n)^D prod_k (1/2 if j_k = 0) sum_m f(t_m) prod_k cos(pi j_k (m_k + 1/2) / n)
//! ```
//!
//! (the discrete cosine transform of the samples; exact for polynomials of
//! degree `< n`, spectrally accurate for smooth `f`: Trefethen, *Approximation
//! Theory and Approximation Practice*, ch. 3 and 8), and differentiated with
//! `T_j'(t) = j U_{j-1}(t)`. Outside the box the caller falls back to the
//! exact spectra. Tabulated by hand: the table is small and no maintained
//! crate does multivariate Chebyshev interpolation with derivatives.

use super::setup::{Setup, Spectra};
use anyhow::{bail, Result};
use rayon::prelude::*;

/// Points per parameter of the tables built by
/// [`super::FieldModel::with_emulator`].
pub const EMULATOR_POINTS: usize = 20;

/// `ln C_ell` on the used nodes, tabulated on a box of parameters.
#[derive(Debug, Clone)]
pub struct ClEmulator {
    lo: Vec<f64>,
    hi: Vec<f64>,
    n: usize,
    /// `[n_pairs][n_nodes]` coefficient tensors (`n^D` values, first
    /// parameter slowest), `None` where the spectrum is not used (zero).
    coeffs: Vec<Vec<Option<Vec<f64>>>>,
}

impl ClEmulator {
    /// Tabulate `setup`'s spectra on `used` over the box `[lo, hi]` with
    /// `n` points per parameter (`n^D` exact evaluations, in parallel).
    pub fn new(
        setup: &Setup,
        used: std::ops::Range<usize>,
        lo: Vec<f64>,
        hi: Vec<f64>,
        n: usize,
    ) -> Result<Self> {
        let d = setup.n_params();
        if d > 3 || lo.len() != d || hi.len() != d {
            bail!("the C_ell emulator tabulates 1 to 3 parameters with one box edge each");
        }
        if !(2..=64).contains(&n) || lo.iter().zip(&hi).any(|(a, b)| !(a < b)) {
            bail!("the C_ell emulator needs 2..=64 points and lo < hi on every axis");
        }
        let t: Vec<f64> = (0..n)
            .map(|m| (std::f64::consts::PI * (m as f64 + 0.5) / n as f64).cos())
            .collect();
        let total = n.pow(d as u32);
        let samples: Vec<Vec<Vec<f64>>> = (0..total)
            .into_par_iter()
            .map(|flat| {
                let theta: Vec<f64> = multi_index(flat, n, d)
                    .iter()
                    .enumerate()
                    .map(|(k, &m)| 0.5 * (lo[k] + hi[k]) + 0.5 * (hi[k] - lo[k]) * t[m])
                    .collect();
                Ok(setup.spectra(&theta, used.clone(), false)?.0)
            })
            .collect::<Result<_>>()?;
        let (np, nn) = (samples[0].len(), samples[0][0].len());
        // cos(pi j (m + 1/2) / n), [j][m].
        let cosines: Vec<Vec<f64>> = (0..n)
            .map(|j| {
                (0..n)
                    .map(|m| (std::f64::consts::PI * j as f64 * (m as f64 + 0.5) / n as f64).cos())
                    .collect()
            })
            .collect();
        let mut coeffs = vec![vec![None; nn]; np];
        for p in 0..np {
            for q in 0..nn {
                if samples.iter().all(|s| s[p][q] == 0.0) {
                    continue;
                }
                if let Some(s) = samples.iter().find(|s| !(s[p][q] > 0.0)) {
                    bail!(
                        "C_ell of pair {p} at node {q} is {} somewhere in the box; the emulator interpolates ln C_ell",
                        s[p][q]
                    );
                }
                let f: Vec<f64> = samples.iter().map(|s| s[p][q].ln()).collect();
                let c = (0..total)
                    .map(|jflat| {
                        let j = multi_index(jflat, n, d);
                        let norm: f64 = j
                            .iter()
                            .map(|&jk| {
                                if jk == 0 {
                                    1.0 / n as f64
                                } else {
                                    2.0 / n as f64
                                }
                            })
                            .product();
                        norm * (0..total)
                            .map(|mflat| {
                                let m = multi_index(mflat, n, d);
                                f[mflat] * (0..d).map(|k| cosines[j[k]][m[k]]).product::<f64>()
                            })
                            .sum::<f64>()
                    })
                    .collect();
                coeffs[p][q] = Some(c);
            }
        }
        Ok(Self { lo, hi, n, coeffs })
    }

    /// Whether `theta` lies inside the tabulated box.
    pub fn contains(&self, theta: &[f64]) -> bool {
        theta
            .iter()
            .zip(self.lo.iter().zip(&self.hi))
            .all(|(x, (a, b))| x >= a && x <= b)
    }

    /// `C_ell` `[n_pairs][n_nodes]` and, if asked for, the Jacobian
    /// `[n_pairs][n_nodes][n_params]`, as [`Setup::spectra`] gives them.
    pub fn spectra(&self, theta: &[f64], jacobian: bool) -> Spectra {
        let d = theta.len();
        let n = self.n;
        // Per axis: T_j(t), and dT_j/dtheta = j U_{j-1}(t) dt/dtheta.
        let mut tv = vec![vec![0.0; n]; d];
        let mut dv = vec![vec![0.0; n]; d];
        for k in 0..d {
            let scale = 2.0 / (self.hi[k] - self.lo[k]);
            let t = (theta[k] - 0.5 * (self.lo[k] + self.hi[k])) * scale;
            // T_0 = U_0 = 1, T_1 = t, U_1 = 2t, X_{j+1} = 2t X_j - X_{j-1}.
            let mut u = vec![1.0; n];
            tv[k][0] = 1.0;
            if n > 1 {
                tv[k][1] = t;
                u[1] = 2.0 * t;
            }
            for j in 2..n {
                tv[k][j] = 2.0 * t * tv[k][j - 1] - tv[k][j - 2];
                u[j] = 2.0 * t * u[j - 1] - u[j - 2];
            }
            for j in 1..n {
                dv[k][j] = j as f64 * u[j - 1] * scale;
            }
        }
        let total = n.pow(d as u32);
        // Basis products and their derivatives per multi-index.
        let mut basis = vec![0.0; total];
        let mut dbasis = vec![vec![0.0; total]; if jacobian { d } else { 0 }];
        for (flat, b) in basis.iter_mut().enumerate() {
            let j = multi_index(flat, n, d);
            *b = (0..d).map(|k| tv[k][j[k]]).product();
            for (k, db) in dbasis.iter_mut().enumerate() {
                db[flat] = (0..d)
                    .map(|i| if i == k { dv[i][j[i]] } else { tv[i][j[i]] })
                    .product();
            }
        }
        let dot = |c: &[f64], v: &[f64]| c.iter().zip(v).map(|(a, b)| a * b).sum::<f64>();
        let mut values = Vec::with_capacity(self.coeffs.len());
        let mut jac = Vec::with_capacity(self.coeffs.len());
        for row in &self.coeffs {
            let mut vrow = Vec::with_capacity(row.len());
            let mut jrow = Vec::with_capacity(row.len());
            for c in row {
                match c {
                    None => {
                        vrow.push(0.0);
                        jrow.push(vec![0.0; d]);
                    }
                    Some(c) => {
                        let v = dot(c, &basis).exp();
                        vrow.push(v);
                        jrow.push(dbasis.iter().map(|db| v * dot(c, db)).collect());
                    }
                }
            }
            values.push(vrow);
            jac.push(jrow);
        }
        (values, jacobian.then_some(jac))
    }
}

/// `flat -> (m_1, .., m_D)`, first index slowest.
fn multi_index(mut flat: usize, n: usize, d: usize) -> Vec<usize> {
    let mut m = vec![0; d];
    for k in (0..d).rev() {
        m[k] = flat % n;
        flat /= n;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lensing_cosmology::SetupName;

    /// Against the exact dual-number spectra at points inside the box:
    /// values and Jacobian to 1e-6 relative (of the largest entry).
    #[test]
    fn emulated_spectra_and_jacobian_match_the_exact_ones() {
        let setup = Setup::new(SetupName::SbiLens128).unwrap();
        let used = setup.simulator().unwrap().used_nodes();
        let emu =
            ClEmulator::new(&setup, used.clone(), vec![0.15, 0.6], vec![0.45, 1.0], 16).unwrap();
        for theta in [[0.3, 0.8], [0.21, 0.93], [0.44, 0.62]] {
            assert!(emu.contains(&theta));
            let (v, j) = emu.spectra(&theta, true);
            let (ve, je) = setup.spectra(&theta, used.clone(), true).unwrap();
            let (j, je) = (j.unwrap(), je.unwrap());
            for q in used.clone() {
                let (a, b) = (v[0][q], ve[0][q]);
                assert!(
                    (a - b).abs() <= 1e-6 * b.abs(),
                    "{theta:?} node {q}: {a} vs {b}"
                );
                for k in 0..2 {
                    let (a, b) = (j[0][q][k], je[0][q][k]);
                    let scale = je[0][q].iter().fold(0.0f64, |m, x| m.max(x.abs()));
                    assert!(
                        (a - b).abs() <= 1e-5 * scale,
                        "{theta:?} node {q} d/dtheta_{k}: {a} vs {b}"
                    );
                }
            }
        }
        assert!(!emu.contains(&[0.6, 0.8]));
    }
}
