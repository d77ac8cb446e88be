//! Cosmological parameters, presets and validation.

use crate::Scalar;

/// Errors from the cosmology crate. Messages name the offending parameter
/// and the allowed range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CosmoError {
    #[error("invalid parameter {name} = {value}: {expected}")]
    InvalidParameter {
        name: String,
        value: f64,
        expected: String,
    },
    #[error("unknown cosmological parameter '{0}' (expected one of Omega_c, Omega_b, h, n_s, sigma8, Omega_k, w0, wa)")]
    UnknownParameter(String),
    #[error("invalid input: {0}")]
    Input(String),
    #[error("numerical failure: {0}")]
    Numerical(String),
}

/// A flat or curved w0-wa CDM cosmology without radiation or massive
/// neutrinos. Generic over the number type so any parameter can carry
/// dual-number derivatives.
///
/// Densities are today's fractions of the critical density; h = H0 / (100 km/s/Mpc).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cosmology<T = f64> {
    pub omega_c: T,
    pub omega_b: T,
    pub h: T,
    pub n_s: T,
    pub sigma8: T,
    pub omega_k: T,
    pub w0: T,
    pub wa: T,
    /// CMB temperature in K (enters only the Eisenstein-Hu transfer function).
    pub t_cmb: f64,
}

/// Names of the free parameters, as used in configs and Fisher matrices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Param {
    OmegaC,
    OmegaB,
    H,
    Ns,
    Sigma8,
    OmegaK,
    W0,
    Wa,
}

impl Param {
    pub const ALL: [Param; 8] = [
        Param::OmegaC,
        Param::OmegaB,
        Param::H,
        Param::Ns,
        Param::Sigma8,
        Param::OmegaK,
        Param::W0,
        Param::Wa,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Param::OmegaC => "Omega_c",
            Param::OmegaB => "Omega_b",
            Param::H => "h",
            Param::Ns => "n_s",
            Param::Sigma8 => "sigma8",
            Param::OmegaK => "Omega_k",
            Param::W0 => "w0",
            Param::Wa => "wa",
        }
    }
}

impl std::str::FromStr for Param {
    type Err = CosmoError;
    fn from_str(s: &str) -> Result<Self, CosmoError> {
        Param::ALL
            .iter()
            .copied()
            .find(|p| p.name() == s)
            .ok_or_else(|| CosmoError::UnknownParameter(s.to_string()))
    }
}

impl Cosmology<f64> {
    /// Planck 2015 (TT,TE,EE+lowP+lensing+ext), the jax-cosmo default
    /// (Planck Collaboration 2016, A&A 594, A13, table 4 last column).
    pub fn planck15() -> Self {
        Self {
            omega_c: 0.2589,
            omega_b: 0.0486,
            h: 0.6774,
            n_s: 0.9667,
            sigma8: 0.8159,
            omega_k: 0.0,
            w0: -1.0,
            wa: 0.0,
            t_cmb: 2.726,
        }
    }

    /// Planck 2018 (TT,TE,EE+lowE+lensing+BAO; Planck Collaboration 2020,
    /// A&A 641, A6, table 2 last column), with m_nu = 0.
    pub fn planck18() -> Self {
        Self {
            omega_c: 0.11933 / (0.6766 * 0.6766),
            omega_b: 0.02242 / (0.6766 * 0.6766),
            h: 0.6766,
            n_s: 0.9665,
            sigma8: 0.8102,
            omega_k: 0.0,
            w0: -1.0,
            wa: 0.0,
            t_cmb: 2.7255,
        }
    }

    /// Promote to a dual-number cosmology with all derivatives zero.
    pub fn lift<T: Scalar>(&self) -> Cosmology<T> {
        Cosmology {
            omega_c: T::from(self.omega_c),
            omega_b: T::from(self.omega_b),
            h: T::from(self.h),
            n_s: T::from(self.n_s),
            sigma8: T::from(self.sigma8),
            omega_k: T::from(self.omega_k),
            w0: T::from(self.w0),
            wa: T::from(self.wa),
            t_cmb: self.t_cmb,
        }
    }
}

impl Default for Cosmology<f64> {
    fn default() -> Self {
        Self::planck15()
    }
}

impl<T: Scalar> Cosmology<T> {
    pub fn omega_m(&self) -> T {
        self.omega_c + self.omega_b
    }

    /// Dark-energy density today, Omega_de = 1 - Omega_m - Omega_k.
    pub fn omega_de(&self) -> T {
        -self.omega_m() - self.omega_k + 1.0
    }

    pub fn get(&self, p: Param) -> T {
        match p {
            Param::OmegaC => self.omega_c,
            Param::OmegaB => self.omega_b,
            Param::H => self.h,
            Param::Ns => self.n_s,
            Param::Sigma8 => self.sigma8,
            Param::OmegaK => self.omega_k,
            Param::W0 => self.w0,
            Param::Wa => self.wa,
        }
    }

    pub fn set(&mut self, p: Param, v: T) {
        match p {
            Param::OmegaC => self.omega_c = v,
            Param::OmegaB => self.omega_b = v,
            Param::H => self.h = v,
            Param::Ns => self.n_s = v,
            Param::Sigma8 => self.sigma8 = v,
            Param::OmegaK => self.omega_k = v,
            Param::W0 => self.w0 = v,
            Param::Wa => self.wa = v,
        }
    }

    /// The real (non-derivative) part.
    pub fn re(&self) -> Cosmology<f64> {
        Cosmology {
            omega_c: self.omega_c.re(),
            omega_b: self.omega_b.re(),
            h: self.h.re(),
            n_s: self.n_s.re(),
            sigma8: self.sigma8.re(),
            omega_k: self.omega_k.re(),
            w0: self.w0.re(),
            wa: self.wa.re(),
            t_cmb: self.t_cmb,
        }
    }

    /// Check the parameters are physical and inside the range the fitting
    /// formulae support. Errors name the parameter and the allowed range.
    pub fn validate(&self) -> Result<(), CosmoError> {
        let c = self.re();
        let bad = |name: &str, value: f64, expected: &str| {
            Err(CosmoError::InvalidParameter {
                name: name.into(),
                value,
                expected: expected.into(),
            })
        };
        let all = [
            ("Omega_c", c.omega_c),
            ("Omega_b", c.omega_b),
            ("h", c.h),
            ("n_s", c.n_s),
            ("sigma8", c.sigma8),
            ("Omega_k", c.omega_k),
            ("w0", c.w0),
            ("wa", c.wa),
        ];
        for (n, v) in all {
            if !v.is_finite() {
                return bad(n, v, "must be a finite number");
            }
        }
        if c.omega_c <= 0.0 {
            return bad("Omega_c", c.omega_c, "must be > 0");
        }
        if c.omega_b <= 0.0 {
            return bad("Omega_b", c.omega_b, "must be > 0");
        }
        if c.omega_c + c.omega_b > 1.5 {
            return bad("Omega_c", c.omega_c, "Omega_c + Omega_b must be <= 1.5");
        }
        if !(c.h > 0.2 && c.h < 1.5) {
            return bad("h", c.h, "must be in (0.2, 1.5)");
        }
        if !(c.n_s > 0.5 && c.n_s < 1.5) {
            return bad("n_s", c.n_s, "must be in (0.5, 1.5)");
        }
        if c.sigma8 <= 0.0 || c.sigma8 > 3.0 {
            return bad("sigma8", c.sigma8, "must be in (0, 3]");
        }
        if c.omega_k.abs() > 0.5 {
            return bad("Omega_k", c.omega_k, "must be in [-0.5, 0.5]");
        }
        if !(c.w0 > -3.0 && c.w0 < 0.0) {
            return bad("w0", c.w0, "must be in (-3, 0)");
        }
        if c.wa.abs() > 3.0 || c.w0 + c.wa >= 0.0 {
            return bad(
                "wa",
                c.wa,
                "must satisfy |wa| <= 3 and w0 + wa < 0 (dark energy subdominant at early times)",
            );
        }
        if !(c.t_cmb > 0.0 && c.t_cmb < 10.0) {
            return bad("T_CMB", c.t_cmb, "must be in (0, 10) K");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_parameter() {
        let mut c = Cosmology::planck15();
        c.sigma8 = -0.1;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("sigma8") && e.contains("-0.1"), "{e}");
        let mut c = Cosmology::planck15();
        c.h = 2.0;
        assert!(c.validate().unwrap_err().to_string().contains("(0.2, 1.5)"));
        assert!(Cosmology::planck15().validate().is_ok());
        assert!(Cosmology::planck18().validate().is_ok());
        assert!("Omega_x".parse::<Param>().is_err());
        assert_eq!("sigma8".parse::<Param>().unwrap(), Param::Sigma8);
    }
}
