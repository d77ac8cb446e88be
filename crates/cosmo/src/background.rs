//! Homogeneous background: expansion rate and distances.
//!
//! E(a)^2 = Omega_m a^-3 + Omega_k a^-2 + Omega_de a^{-3(1+w0+wa)} exp(-3 wa (1-a)),
//! the CPL dark energy of Chevallier & Polarski (2001) and Linder (2003).
//! Comoving radial distance chi(a) = (c/H0) \int_a^1 da' / (a'^2 E(a')),
//! tabulated in ln a by 4-point Gauss-Legendre panels (error < 1e-10) and
//! interpolated with cubic Hermite polynomials using the exact derivative
//! d chi / d ln a = -(c/H0) / (a E). Distances in Mpc/h.

use crate::numerics::{gauss_legendre, HermiteTable};
use crate::{Cosmology, Result, Scalar, HUBBLE_DISTANCE};

/// Smallest scale factor tabulated (z = 9999).
pub const A_MIN: f64 = 1e-4;
const N_TABLE: usize = 800;

/// E(a) = H(a)/H0 for a cosmology (no table needed).
pub fn efunc<T: Scalar>(c: &Cosmology<T>, a: f64) -> T {
    efunc2(c, a).sqrt()
}

/// E(a)^2.
pub fn efunc2<T: Scalar>(c: &Cosmology<T>, a: f64) -> T {
    let la = a.ln();
    c.omega_m() * a.powi(-3) + c.omega_k * a.powi(-2) + c.omega_de() * de_density(c, la)
}

/// rho_de(a)/rho_de(1) = exp(-3 [(1 + w0 + wa) ln a + wa (1 - a)]).
pub fn de_density<T: Scalar>(c: &Cosmology<T>, ln_a: f64) -> T {
    let a = ln_a.exp();
    ((c.w0 + c.wa + 1.0) * ln_a + c.wa * (1.0 - a))
        .mul(-3.0)
        .exp()
}

/// Equation of state w(a) = w0 + wa (1 - a).
pub fn w_de<T: Scalar>(c: &Cosmology<T>, a: f64) -> T {
    c.w0 + c.wa * (1.0 - a)
}

/// d ln E / d ln a.
pub fn dlne_dlna<T: Scalar>(c: &Cosmology<T>, a: f64) -> T {
    let e2 = efunc2(c, a);
    let de = c.omega_de() * de_density(c, a.ln());
    let d = c.omega_m() * a.powi(-3) * (-3.0) + c.omega_k * a.powi(-2) * (-2.0)
        - de * (w_de(c, a) + 1.0) * 3.0;
    d / (e2 * 2.0)
}

/// Omega_m(a) = Omega_m a^-3 / E^2.
pub fn omega_m_a<T: Scalar>(c: &Cosmology<T>, a: f64) -> T {
    c.omega_m() * a.powi(-3) / efunc2(c, a)
}

/// Omega_de(a).
pub fn omega_de_a<T: Scalar>(c: &Cosmology<T>, a: f64) -> T {
    c.omega_de() * de_density(c, a.ln()) / efunc2(c, a)
}

/// Background quantities of one cosmology, with the comoving distance tabulated.
#[derive(Debug, Clone)]
pub struct Background<T> {
    pub cosmo: Cosmology<T>,
    /// chi(ln a) in Mpc/h.
    chi: HermiteTable<T>,
}

impl<T: Scalar> Background<T> {
    pub fn new(cosmo: &Cosmology<T>) -> Result<Self> {
        cosmo.validate()?;
        let x0 = A_MIN.ln();
        let dx = -x0 / (N_TABLE - 1) as f64;
        let (gx, gw) = gauss_legendre(4);
        let integrand =
            |x: f64| -> T { efunc(cosmo, x.exp()).recip() * (HUBBLE_DISTANCE / x.exp()) };
        let mut y = vec![T::zero(); N_TABLE];
        let mut dy = vec![T::zero(); N_TABLE];
        dy[N_TABLE - 1] = -integrand(0.0);
        for i in (0..N_TABLE - 1).rev() {
            let lo = x0 + i as f64 * dx;
            let mut s = T::zero();
            for (xi, wi) in gx.iter().zip(&gw) {
                s += integrand(lo + 0.5 * dx * (xi + 1.0)) * (0.5 * dx * wi);
            }
            y[i] = y[i + 1] + s;
            dy[i] = -integrand(lo);
        }
        for v in y.iter().chain(dy.iter()) {
            if !v.re().is_finite() {
                return Err(crate::CosmoError::Numerical(
                    "E(a)^2 <= 0 somewhere in 1e-4 <= a <= 1 (a bouncing or recollapsing cosmology)".into(),
                ));
            }
        }
        Ok(Self {
            cosmo: *cosmo,
            chi: HermiteTable::new(x0, dx, y, dy),
        })
    }

    pub fn efunc(&self, a: f64) -> T {
        efunc(&self.cosmo, a)
    }

    /// H(a) in km/s/Mpc.
    pub fn hubble(&self, a: f64) -> T {
        self.efunc(a) * self.cosmo.h * 100.0
    }

    fn check_a(a: f64) -> f64 {
        a.clamp(A_MIN, 1.0)
    }

    /// Comoving radial distance chi(a) in Mpc/h.
    pub fn comoving_distance(&self, a: f64) -> T {
        self.chi.eval(Self::check_a(a).ln()).0
    }

    /// d chi / dz = c / H(z) in Mpc/h.
    pub fn dchi_dz(&self, a: f64) -> T {
        self.efunc(a).recip() * HUBBLE_DISTANCE
    }

    /// Transverse comoving distance f_K(chi) in Mpc/h:
    /// sinh(sqrt(Omega_k) chi/D_H) D_H/sqrt(Omega_k) for Omega_k > 0, sin for < 0.
    /// Evaluated through the series sinh(sqrt s)/sqrt s = sum s^n/(2n+1)! for small
    /// |s| = |Omega_k| (chi/D_H)^2, so derivatives at Omega_k = 0 are exact.
    pub fn transverse_distance(&self, chi: T) -> T {
        let x = chi * (1.0 / HUBBLE_DISTANCE);
        let s = self.cosmo.omega_k * x * x;
        chi * sinhc_sqrt(s)
    }

    /// The companion c_K(chi) = cosh(sqrt(Omega_k) chi / D_H) (cos for
    /// Omega_k < 0), so that f_K(chi' - chi) = f_K(chi') c_K(chi) - c_K(chi') f_K(chi).
    pub fn curvature_cos(&self, chi: T) -> T {
        let x = chi * (1.0 / HUBBLE_DISTANCE);
        coshc_sqrt(self.cosmo.omega_k * x * x)
    }

    pub fn transverse_comoving_distance(&self, a: f64) -> T {
        self.transverse_distance(self.comoving_distance(a))
    }

    /// Angular diameter distance D_A = a f_K(chi) in Mpc/h.
    pub fn angular_diameter_distance(&self, a: f64) -> T {
        self.transverse_comoving_distance(a) * a
    }

    /// Luminosity distance D_L = f_K(chi) / a in Mpc/h.
    pub fn luminosity_distance(&self, a: f64) -> T {
        self.transverse_comoving_distance(a) * (1.0 / a)
    }

    /// Scale factor at comoving distance chi (Mpc/h), by Newton iteration on the
    /// table; chi beyond the table (a < 1e-4) gives an error.
    pub fn a_of_chi(&self, chi: T) -> Result<T> {
        let c = chi.re();
        let chi_max = self.chi.y[0].re();
        if !(0.0..=chi_max).contains(&c) {
            return Err(crate::CosmoError::Input(format!(
                "comoving distance {c} Mpc/h outside [0, {chi_max:.1}] (a >= 1e-4)"
            )));
        }
        // Bisection-safe Newton in ln a on the real part.
        let (mut lo, mut hi) = (A_MIN.ln(), 0.0f64);
        let mut x = -0.5f64;
        for _ in 0..100 {
            let (v, d) = self.chi.eval(x);
            let f = v.re() - c;
            if f > 0.0 {
                lo = x
            } else {
                hi = x
            }
            let mut xn = x - f / d.re();
            if !(xn > lo && xn < hi) {
                xn = 0.5 * (lo + hi);
            }
            if (xn - x).abs() < 1e-14 {
                x = xn;
                break;
            }
            x = xn;
        }
        // Dual Newton steps carry the derivatives (two steps: exact to second order).
        let mut xd = T::from(x);
        for _ in 0..2 {
            let v = self.chi.eval_dual(xd);
            let (_, d) = self.chi.eval(xd.re());
            xd -= (v - chi) / d;
        }
        Ok(xd.exp())
    }
}

/// sinh(sqrt(s))/sqrt(s) for any sign of s (sin for s < 0), smooth through 0.
fn sinhc_sqrt<T: Scalar>(s: T) -> T {
    let r = s.re();
    if r.abs() < 0.1 {
        // sum_{n=0}^{8} s^n / (2n+1)!
        let mut term = T::one();
        let mut sum = T::one();
        for n in 1..=8 {
            term = term * s * (1.0 / ((2 * n) as f64 * (2 * n + 1) as f64));
            sum += term;
        }
        sum
    } else if r > 0.0 {
        let q = s.sqrt();
        q.sinh() / q
    } else {
        let q = (-s).sqrt();
        q.sin() / q
    }
}

/// cosh(sqrt(s)) for any sign of s (cos for s < 0), smooth through 0.
fn coshc_sqrt<T: Scalar>(s: T) -> T {
    let r = s.re();
    if r.abs() < 0.1 {
        let mut term = T::one();
        let mut sum = T::one();
        for n in 1..=8 {
            term = term * s * (1.0 / ((2 * n - 1) as f64 * (2 * n) as f64));
            sum += term;
        }
        sum
    } else if r > 0.0 {
        s.sqrt().cosh()
    } else {
        (-s).sqrt().cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn einstein_de_sitter_distance() {
        // Omega_m = 1: chi = 2 D_H (1 - sqrt(a)).
        let mut c = Cosmology::planck15();
        c.omega_c = 1.0 - c.omega_b;
        let bg = Background::new(&c).unwrap();
        for &a in &[0.01f64, 0.3, 0.77, 1.0] {
            let exact = 2.0 * HUBBLE_DISTANCE * (1.0 - a.sqrt());
            assert!(
                (bg.comoving_distance(a) - exact).abs() < 1e-9 * HUBBLE_DISTANCE,
                "{a}"
            );
        }
        let a = bg.a_of_chi(bg.comoving_distance(0.4321)).unwrap();
        assert!((a - 0.4321).abs() < 1e-12);
    }

    #[test]
    fn curvature_series_matches_closed_form() {
        for s in [-0.3f64, -0.09, -1e-3, 0.0, 2e-3, 0.09, 0.5] {
            let exact = if s > 0.0 {
                s.sqrt().sinh() / s.sqrt()
            } else if s < 0.0 {
                (-s).sqrt().sin() / (-s).sqrt()
            } else {
                1.0
            };
            assert!((sinhc_sqrt(s) - exact).abs() < 1e-15);
            let c = if s >= 0.0 {
                s.sqrt().cosh()
            } else {
                (-s).sqrt().cos()
            };
            assert!((coshc_sqrt(s) - c).abs() < 1e-15);
        }
    }
}
