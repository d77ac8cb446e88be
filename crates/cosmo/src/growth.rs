//! Linear and second-order growth of matter perturbations.
//!
//! In x = ln a, with ' = d/dx (Dodelson & Schmidt; Bouchet et al. 1995 for 2LPT):
//!   D1'' + (2 + dlnE/dlna) D1' = 3/2 Omega_m(a) D1
//!   D2'' + (2 + dlnE/dlna) D2' = 3/2 Omega_m(a) (D2 - D1^2)
//! valid for curvature and CPL dark energy (no clustering of dark energy).
//! Integrated with classical RK4 from a = 1e-5, where the growing modes are
//! D1 = a and D2 = -3/7 a^2, and tabulated for cubic Hermite interpolation
//! with the exact derivatives from the ODE right-hand side.
//! Normalisation: D1(a=1) = 1; D2 is in the same units (D2 ~ -3/7 D1^2
//! early on, negative), so the 2LPT displacement is D2 * psi2 with
//! psi2 from -(1/2) sum (phi_ii phi_jj - phi_ij^2) conventions of
//! Scoccimarro (1998). f1 = dlnD1/dlna, f2 = dlnD2/dlna.

use crate::background::{dlne_dlna, omega_m_a};
use crate::numerics::HermiteTable;
use crate::{Cosmology, Result, Scalar};

const A_START: f64 = 1e-5;
const N_NODES: usize = 1201;
const SUBSTEPS: usize = 2;

/// Growth functions of one cosmology, tabulated on a ln a grid.
#[derive(Debug, Clone)]
pub struct Growth<T> {
    d1: HermiteTable<T>,
    d1p: HermiteTable<T>,
    d2: HermiteTable<T>,
    d2p: HermiteTable<T>,
}

fn rhs<T: Scalar>(c: &Cosmology<T>, x: f64, y: &[T; 4]) -> [T; 4] {
    let a = x.exp();
    let damp = dlne_dlna(c, a) + 2.0;
    let src = omega_m_a(c, a) * 1.5;
    [
        y[1],
        src * y[0] - damp * y[1],
        y[3],
        src * (y[2] - y[0] * y[0]) - damp * y[3],
    ]
}

impl<T: Scalar> Growth<T> {
    pub fn new(c: &Cosmology<T>) -> Result<Self> {
        c.validate()?;
        let x0 = A_START.ln();
        let dx = -x0 / (N_NODES - 1) as f64;
        let h = dx / SUBSTEPS as f64;
        let a0 = A_START;
        let mut y = [
            T::from(a0),
            T::from(a0),
            T::from(-3.0 / 7.0 * a0 * a0),
            T::from(-6.0 / 7.0 * a0 * a0),
        ];
        let mut vals: Vec<[T; 4]> = Vec::with_capacity(N_NODES);
        let mut ders: Vec<[T; 4]> = Vec::with_capacity(N_NODES);
        let add = |y: &[T; 4], k: &[T; 4], s: f64| -> [T; 4] {
            [
                y[0] + k[0] * s,
                y[1] + k[1] * s,
                y[2] + k[2] * s,
                y[3] + k[3] * s,
            ]
        };
        for i in 0..N_NODES {
            let x = x0 + i as f64 * dx;
            vals.push(y);
            ders.push(rhs(c, x, &y));
            if i + 1 == N_NODES {
                break;
            }
            for s in 0..SUBSTEPS {
                let xs = x + s as f64 * h;
                let k1 = rhs(c, xs, &y);
                let k2 = rhs(c, xs + 0.5 * h, &add(&y, &k1, 0.5 * h));
                let k3 = rhs(c, xs + 0.5 * h, &add(&y, &k2, 0.5 * h));
                let k4 = rhs(c, xs + h, &add(&y, &k3, h));
                for j in 0..4 {
                    y[j] += (k1[j] + k2[j] * 2.0 + k3[j] * 2.0 + k4[j]) * (h / 6.0);
                }
            }
        }
        let d1_today = vals[N_NODES - 1][0];
        if !(d1_today.re().is_finite() && d1_today.re() > 0.0) {
            return Err(crate::CosmoError::Numerical(
                "growth ODE failed (D(a=1) not finite)".into(),
            ));
        }
        let n1 = d1_today.recip();
        let n2 = n1 * n1;
        let col =
            |j: usize, v: &Vec<[T; 4]>, s: T| -> Vec<T> { v.iter().map(|r| r[j] * s).collect() };
        Ok(Self {
            d1: HermiteTable::new(x0, dx, col(0, &vals, n1), col(0, &ders, n1)),
            d1p: HermiteTable::new(x0, dx, col(1, &vals, n1), col(1, &ders, n1)),
            d2: HermiteTable::new(x0, dx, col(2, &vals, n2), col(2, &ders, n2)),
            d2p: HermiteTable::new(x0, dx, col(3, &vals, n2), col(3, &ders, n2)),
        })
    }

    fn x(a: f64) -> f64 {
        a.clamp(A_START, 1.0).ln()
    }

    /// Linear growth factor D1(a), D1(1) = 1.
    pub fn d1(&self, a: f64) -> T {
        self.d1.eval(Self::x(a)).0
    }

    /// Linear growth rate f1 = dlnD1/dlna.
    pub fn f1(&self, a: f64) -> T {
        let x = Self::x(a);
        self.d1p.eval(x).0 / self.d1.eval(x).0
    }

    /// dD1/dlna.
    pub fn d1_dlna(&self, a: f64) -> T {
        self.d1p.eval(Self::x(a)).0
    }

    /// d^2 D1 / dlna^2.
    pub fn d1_dlna2(&self, a: f64) -> T {
        self.d1p.eval(Self::x(a)).1
    }

    /// Second-order growth factor D2(a) (negative, ~ -3/7 D1^2).
    pub fn d2(&self, a: f64) -> T {
        self.d2.eval(Self::x(a)).0
    }

    /// f2 = dlnD2/dlna.
    pub fn f2(&self, a: f64) -> T {
        let x = Self::x(a);
        self.d2p.eval(x).0 / self.d2.eval(x).0
    }

    pub fn d2_dlna(&self, a: f64) -> T {
        self.d2p.eval(Self::x(a)).0
    }

    pub fn d2_dlna2(&self, a: f64) -> T {
        self.d2p.eval(Self::x(a)).1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eds_growth_is_a() {
        let mut c = Cosmology::planck15();
        c.omega_c = 1.0 - c.omega_b;
        let g = Growth::new(&c).unwrap();
        for &a in &[0.05f64, 0.5, 1.0] {
            assert!((g.d1(a) - a).abs() < 1e-9);
            assert!((g.f1(a) - 1.0).abs() < 1e-9);
            assert!((g.d2(a) + 3.0 / 7.0 * a * a).abs() < 1e-9);
            assert!((g.f2(a) - 2.0).abs() < 1e-8);
        }
    }
}
