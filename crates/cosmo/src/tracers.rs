//! Tracers of the matter field for angular power spectra: weak lensing
//! (cosmic shear, with NLA intrinsic alignments and multiplicative bias) and
//! galaxy number counts (linear bias).

use crate::nz::Nz;
use crate::{CosmoError, Result};

/// C1 rho_crit of the NLA model (Hirata & Seljak 2004; Bridle & King 2007):
/// C1 = 5e-14 h^-2 M_sun^-1 Mpc^3 times rho_crit = 2.77536627e11 h^2 M_sun Mpc^-3.
pub const C1_RHOCRIT: f64 = 5e-14 * 2.775_366_27e11;

/// Square arcminutes per steradian.
pub const ARCMIN2_PER_SR: f64 =
    (180.0 * 60.0 / std::f64::consts::PI) * (180.0 * 60.0 / std::f64::consts::PI);

#[derive(Debug, Clone, PartialEq)]
pub enum TracerKind {
    /// Cosmic shear. Kernel W(chi) = (1 + m) [3/2 Omega_m (H0/c)^2 f_K(chi)/a
    /// \int dz' n(z') f_K(chi' - chi)/f_K(chi')  -  A_IA C1 rho_crit Omega_m / D(z) n(z) H(z)/c]
    /// (NLA intrinsic alignment with constant amplitude A_IA), times the spin-2
    /// factor sqrt((l+2)!/(l-2)!)/(l+1/2)^2 in the Limber integral.
    WeakLensing {
        ia_amplitude: f64,
        m_bias: f64,
        sigma_e: f64,
    },
    /// Galaxy clustering: W(chi) = b n(z) H(z)/c with constant linear bias b.
    NumberCounts { bias: f64 },
}

/// One tomographic bin of one probe.
#[derive(Debug, Clone, PartialEq)]
pub struct Tracer {
    pub nz: Nz,
    pub kind: TracerKind,
    /// Galaxy surface density in arcmin^-2 (for shape and shot noise).
    pub gals_per_arcmin2: f64,
}

impl Tracer {
    pub fn weak_lensing(nz: Nz, sigma_e: f64, gals_per_arcmin2: f64) -> Self {
        Self {
            nz,
            kind: TracerKind::WeakLensing {
                ia_amplitude: 0.0,
                m_bias: 0.0,
                sigma_e,
            },
            gals_per_arcmin2,
        }
    }

    pub fn number_counts(nz: Nz, bias: f64, gals_per_arcmin2: f64) -> Self {
        Self {
            nz,
            kind: TracerKind::NumberCounts { bias },
            gals_per_arcmin2,
        }
    }

    pub fn is_lensing(&self) -> bool {
        matches!(self.kind, TracerKind::WeakLensing { .. })
    }

    pub fn validate(&self) -> Result<()> {
        if !(self.gals_per_arcmin2 > 0.0 && self.gals_per_arcmin2.is_finite()) {
            return Err(CosmoError::Input(format!(
                "gals_per_arcmin2 = {} must be > 0",
                self.gals_per_arcmin2
            )));
        }
        match self.kind {
            TracerKind::WeakLensing {
                sigma_e,
                ia_amplitude,
                m_bias,
            } => {
                if !(0.0..2.0).contains(&sigma_e) {
                    return Err(CosmoError::Input(format!(
                        "sigma_e = {sigma_e} must be in [0, 2)"
                    )));
                }
                if !ia_amplitude.is_finite() {
                    return Err(CosmoError::Input(format!(
                        "ia_amplitude = {ia_amplitude} must be finite"
                    )));
                }
                if !(m_bias > -1.0 && m_bias < 1.0) {
                    return Err(CosmoError::Input(format!(
                        "m_bias = {m_bias} must be in (-1, 1)"
                    )));
                }
            }
            TracerKind::NumberCounts { bias } => {
                if !(bias > 0.0 && bias.is_finite()) {
                    return Err(CosmoError::Input(format!("bias = {bias} must be > 0")));
                }
                if self.nz.is_delta().is_some() {
                    return Err(CosmoError::Input(
                        "number counts need an extended n(z); a delta n(z) has an infinite Limber C_ell".into(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Noise power spectrum of the auto-spectrum: sigma_e^2 / n for lensing
    /// (sigma_e per shear component), 1 / n for number counts, n per steradian.
    pub fn noise(&self) -> f64 {
        let n_sr = self.gals_per_arcmin2 * ARCMIN2_PER_SR;
        match self.kind {
            TracerKind::WeakLensing { sigma_e, .. } => sigma_e * sigma_e / n_sr,
            TracerKind::NumberCounts { .. } => 1.0 / n_sr,
        }
    }
}
