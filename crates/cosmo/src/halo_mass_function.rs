//! Halo mass functions: the comoving number density of halos per logarithmic
//! mass interval,
//!
//! `dn/dln M = f(sigma) (rho_m / M) dln(1/sigma)/dln M`,
//!
//! with `rho_m = Omega_m rho_crit` the comoving mean matter density
//! (2.77536627e11 Omega_m (Msun/h)/(Mpc/h)^3) and `sigma(M, a)` the rms of the
//! linear density field in top-hat spheres of radius
//! `R = (3 M / (4 pi rho_m))^(1/3)`:
//!
//! `sigma^2(R, a) = int dln k  k^3 P_lin(k, a) / (2 pi^2)  W(k R)^2`,
//! `W(x) = 3 (sin x - x cos x) / x^3`,
//!
//! integrated by Gauss-Legendre panels in `ln k` over `[1e-5, 1e3]` h/Mpc
//! (error below 1e-6 against an adaptive quadrature of the same P(k));
//! `dln sigma/dln M = (R / 3) (dsigma^2/dR) / (2 sigma^2)` from the analytic
//! derivative `W'(x) = 3 sin x / x^2 - 3 W / x`.
//!
//! Multiplicity functions `f(sigma)`:
//!
//! - **Tinker et al. (2008, ApJ 688, 709)**, `Delta = 200` times the mean
//!   density (Table 2: `A0 = 0.186`, `a0 = 1.47`, `b0 = 2.57`, `c = 1.19`), with
//!   their redshift evolution (eqs. 5-8): `A = A0 (1+z)^-0.14`,
//!   `a = a0 (1+z)^-0.06`, `b = b0 (1+z)^-alpha`,
//!   `log10 alpha = -(0.75 / log10(Delta / 75))^1.2`;
//!   `f = A [(sigma / b)^-a + 1] exp(-c / sigma^2)`;
//! - **Sheth & Tormen (1999, MNRAS 308, 119)**, fitted to friends-of-friends
//!   (b = 0.2) halos: `f = A sqrt(2 a / pi) nu [1 + (a nu^2)^-p] exp(-a nu^2 / 2)`,
//!   `nu = delta_c / sigma`, `A = 0.3222`, `a = 0.707`, `p = 0.3`,
//!   `delta_c = (3/20)(12 pi)^(2/3) = 1.68647`.
//!
//! Both as in CCL (`MassFuncTinker08` with `MassDef200m`, `MassFuncSheth99`),
//! against which `tests/reference_hmf.rs` checks them. Masses in Msun/h,
//! densities in (Mpc/h)^-3. Generic over [`Scalar`]: derivatives with respect
//! to the cosmological parameters come with dual numbers.

use crate::numerics::composite_gl;
use crate::power::PowerSpectrum;
use crate::{Cosmology, Scalar};
use std::f64::consts::PI;

/// Critical density today [(Msun/h) / (Mpc/h)^3].
pub const RHO_CRIT: f64 = 2.775_366_27e11;

/// Spherical-collapse threshold `(3/20) (12 pi)^(2/3)`.
pub const DELTA_C: f64 = 1.686_470_199_841_145;

/// A multiplicity function `f(sigma)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MassFunctionModel {
    /// Tinker et al. (2008), spherical overdensity of 200 times the mean.
    Tinker08,
    /// Sheth & Tormen (1999), friends-of-friends halos.
    ShethTormen,
}

/// Comoving mean matter density `Omega_m rho_crit` [(Msun/h)/(Mpc/h)^3].
pub fn mean_matter_density<T: Scalar>(cosmo: &Cosmology<T>) -> T {
    cosmo.omega_m() * RHO_CRIT
}

/// Top-hat window `W(x)` and `dW/dx` (series below x = 1e-3).
fn tophat<T: Scalar>(x: T) -> (T, T) {
    if x.re() < 1e-3 {
        let x2 = x * x;
        return (
            T::one() - x2 * 0.1 + x2 * x2 / 280.0,
            x * (-0.2) + x2 * x / 70.0,
        );
    }
    let (s, c) = (x.sin(), x.cos());
    let w = (s - x * c) * 3.0 / (x * x * x);
    (w, s * 3.0 / (x * x) - w * 3.0 / x)
}

/// `sigma^2(R, a)` and `dsigma^2/dR` for a top-hat of radius `r` [Mpc/h].
pub fn sigma2_and_derivative<T: Scalar>(power: &PowerSpectrum<T>, r: f64, a: f64) -> (T, T) {
    let (x, w) = nodes();
    let mut s2 = T::zero();
    let mut ds2 = T::zero();
    for (lnk, wt) in x.iter().zip(w) {
        let k = lnk.exp();
        let pk = power.pk_linear(T::from(k), a);
        let (win, dwin) = tophat(T::from(k * r));
        let base = pk * (k * k * k / (2.0 * PI * PI) * wt);
        s2 += base * win * win;
        ds2 += base * win * dwin * (2.0 * k);
    }
    (s2, ds2)
}

/// Gauss-Legendre nodes in `ln k` over `[1e-5, 1e3]` h/Mpc.
fn nodes() -> &'static (Vec<f64>, Vec<f64>) {
    static N: std::sync::OnceLock<(Vec<f64>, Vec<f64>)> = std::sync::OnceLock::new();
    N.get_or_init(|| composite_gl(1e-5f64.ln(), 1e3f64.ln(), 400, 8))
}

/// Top-hat radius [Mpc/h] enclosing mass `m` [Msun/h] at the mean density.
pub fn lagrangian_radius<T: Scalar>(cosmo: &Cosmology<T>, m: f64) -> f64 {
    (3.0 * m / (4.0 * PI * mean_matter_density(cosmo).re())).cbrt()
}

/// `sigma(M, a)` of the linear field smoothed on mass `m` [Msun/h].
pub fn sigma_m<T: Scalar>(cosmo: &Cosmology<T>, power: &PowerSpectrum<T>, m: f64, a: f64) -> T {
    sigma2_and_derivative(power, lagrangian_radius(cosmo, m), a)
        .0
        .sqrt()
}

/// `f(sigma)` of a model at scale factor `a`.
pub fn multiplicity<T: Scalar>(model: MassFunctionModel, sigma: T, a: f64) -> T {
    let z = 1.0 / a - 1.0;
    match model {
        MassFunctionModel::Tinker08 => {
            let delta: f64 = 200.0;
            let alpha = 10f64.powf(-(0.75 / (delta / 75.0).log10()).powf(1.2));
            let big_a = 0.186 * (1.0 + z).powf(-0.14);
            let small_a = 1.47 * (1.0 + z).powf(-0.06);
            let b = 2.57 * (1.0 + z).powf(-alpha);
            ((sigma / b).powf(-small_a) + 1.0) * big_a * (-(sigma * sigma).recip() * 1.19).exp()
        }
        MassFunctionModel::ShethTormen => {
            let (aa, p) = (0.707, 0.3);
            let nu = sigma.recip() * DELTA_C;
            let anu2 = nu * nu * aa;
            nu * (anu2.powf(-p) + 1.0) * (0.3222 * (2.0 * aa / PI).sqrt()) * (anu2 * (-0.5)).exp()
        }
    }
}

/// `dn/dln M` [(Mpc/h)^-3] at mass `m` [Msun/h] and scale factor `a`.
pub fn dn_dlnm<T: Scalar>(
    cosmo: &Cosmology<T>,
    power: &PowerSpectrum<T>,
    model: MassFunctionModel,
    m: f64,
    a: f64,
) -> T {
    let r = lagrangian_radius(cosmo, m);
    let (s2, ds2) = sigma2_and_derivative(power, r, a);
    let sigma = s2.sqrt();
    // dln(1/sigma)/dln M = -(R/3) dsigma^2/dR / (2 sigma^2)
    let dlninv = -ds2 * (r / 3.0) / (s2 * 2.0);
    multiplicity(model, sigma, a) * mean_matter_density(cosmo) / m * dlninv
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NonLinear, TransferFunction};

    #[test]
    fn sigma_at_8_mpc_is_sigma8() {
        let c = Cosmology::planck15();
        let p = PowerSpectrum::new(&c, TransferFunction::EisensteinHu, NonLinear::Linear).unwrap();
        let s = sigma2_and_derivative(&p, 8.0, 1.0).0.sqrt();
        assert!((s / c.sigma8 - 1.0).abs() < 1e-6, "{s}");
        // the derivative against central differences
        let h = 1e-4;
        let fd = (sigma2_and_derivative(&p, 8.0 + h, 1.0).0
            - sigma2_and_derivative(&p, 8.0 - h, 1.0).0)
            / (2.0 * h);
        let an = sigma2_and_derivative(&p, 8.0, 1.0).1;
        assert!((fd / an - 1.0).abs() < 1e-6, "{fd} {an}");
    }
}
