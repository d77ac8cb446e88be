//! Matter transfer functions T(k), k in h/Mpc.
//!
//! - Eisenstein & Hu (1998, ApJ 496, 605), with baryon acoustic oscillations
//!   (their eqs. 2-24) and the zero-baryon-wiggle shape fit (eqs. 26, 28-31).
//! - BBKS: Bardeen, Bond, Kaiser & Szalay (1986, ApJ 304, 15), eq. G3, with the
//!   shape parameter of Sugiyama (1995, ApJS 100, 281).
//!
//! All are evaluated with T_CMB = cosmology.t_cmb, Theta_2.7 = T_CMB / 2.7.

use crate::{Cosmology, Scalar};

/// Which transfer function the linear power spectrum uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferFunction {
    EisensteinHu,
    EisensteinHuNoWiggles,
    Bbks,
}

impl std::str::FromStr for TransferFunction {
    type Err = crate::CosmoError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "eisenstein_hu" => Ok(Self::EisensteinHu),
            "eisenstein_hu_nowiggles" => Ok(Self::EisensteinHuNoWiggles),
            "bbks" => Ok(Self::Bbks),
            _ => Err(crate::CosmoError::Input(format!(
                "transfer = \"{s}\": expected \"eisenstein_hu\", \"eisenstein_hu_nowiggles\" or \"bbks\""
            ))),
        }
    }
}

/// Precomputed, k-independent pieces of a transfer function.
#[derive(Debug, Clone, Copy)]
pub struct Transfer<T> {
    kind: TransferFunction,
    h: T,
    // EH98 with wiggles
    fb: T,
    fc: T,
    k_eq: T,
    s: T,
    k_silk: T,
    alpha_c: T,
    beta_c: T,
    alpha_b: T,
    beta_b: T,
    beta_node: T,
    // no-wiggle
    alpha_gamma: T,
    s_nw: T,
    om_h: T,
    theta2: f64,
    // BBKS shape
    q_scale: T,
}

impl<T: Scalar> Transfer<T> {
    pub fn new(c: &Cosmology<T>, kind: TransferFunction) -> Self {
        let th = c.t_cmb / 2.7;
        let theta2 = th * th;
        let h = c.h;
        let om = c.omega_m();
        let omh2 = om * h * h;
        let obh2 = c.omega_b * h * h;
        let fb = c.omega_b / om;
        let fc = c.omega_c / om;
        // eq. 2-3: matter-radiation equality
        let z_eq = omh2 * (2.50e4 / (theta2 * theta2));
        let k_eq = omh2 * (0.0746 / theta2); // Mpc^-1
                                             // eq. 4: drag epoch
        let b1 = omh2.powf(-0.419) * 0.313 * (omh2.powf(0.674) * 0.607 + 1.0);
        let b2 = omh2.powf(0.223) * 0.238;
        let z_d = omh2.powf(0.251) * 1291.0 * (b1 * obh2.powd(b2) + 1.0)
            / (omh2.powf(0.828) * 0.659 + 1.0);
        // eq. 5: baryon-to-photon momentum ratio R = 31.5 Obh2 Theta^-4 (z/1e3)^-1
        let r_of = |z: T| obh2 * (31.5 / (theta2 * theta2)) * 1000.0 / z;
        let r_d = r_of(z_d);
        let r_eq = r_of(z_eq);
        // eq. 6: sound horizon at drag (Mpc)
        let s = (r_eq.recip() * 6.0).sqrt()
            * (k_eq * 3.0).recip()
            * 2.0
            * (((r_d + 1.0).sqrt() + (r_d + r_eq).sqrt()) / (r_eq.sqrt() + 1.0)).ln();
        // eq. 7: Silk damping scale (Mpc^-1)
        let k_silk = obh2.powf(0.52) * 1.6 * omh2.powf(0.73) * ((omh2 * 10.4).powf(-0.95) + 1.0);
        // eq. 11-12: CDM suppression
        let a1 = (omh2 * 46.9).powf(0.670) * ((omh2 * 32.1).powf(-0.532) + 1.0);
        let a2 = (omh2 * 12.0).powf(0.424) * ((omh2 * 45.0).powf(-0.582) + 1.0);
        let alpha_c = a1.powd(-fb) * a2.powd(-(fb * fb * fb));
        let bb1 = ((omh2 * 458.0).powf(-0.708) + 1.0).recip() * 0.944;
        let bb2 = (omh2 * 0.395).powf(-0.0266);
        let beta_c = ((fc.powd(bb2) - 1.0) * bb1 + 1.0).recip();
        // eq. 14-15, 23-24: baryons
        let y = (z_eq + 1.0) / (z_d + 1.0);
        let sq = (y + 1.0).sqrt();
        let g_y = y * (sq * (-6.0) + (y * 3.0 + 2.0) * ((sq + 1.0) / (sq - 1.0)).ln());
        let alpha_b = k_eq * s * 2.07 * (r_d + 1.0).powf(-0.75) * g_y;
        let beta_node = omh2.powf(0.435) * 8.41;
        let beta_b = fb + 0.5 + (-(fb * 2.0) + 3.0) * ((omh2 * 17.2).powi(2) + 1.0).sqrt();
        // no-wiggle fit, eqs. 26, 31
        let s_nw = (omh2.recip() * 9.83).ln() * 44.5 / (obh2.powf(0.75) * 10.0 + 1.0).sqrt();
        let alpha_gamma =
            -((omh2 * 431.0).ln() * fb * 0.328) + (omh2 * 22.3).ln() * fb * fb * 0.38 + 1.0;
        // BBKS with Sugiyama (1995) shape: q = Theta^2 k / (Omega_m h^2 exp(-Omega_b (1 + sqrt(2h)/Omega_m)))  [k in 1/Mpc]
        let q_scale =
            (omh2 * (-(c.omega_b * ((h * 2.0).sqrt() / om + 1.0))).exp()).recip() * theta2;
        Self {
            kind,
            h,
            fb,
            fc,
            k_eq,
            s,
            k_silk,
            alpha_c,
            beta_c,
            alpha_b,
            beta_b,
            beta_node,
            alpha_gamma,
            s_nw,
            om_h: om * h,
            theta2,
            q_scale,
        }
    }

    /// T(k) for k in h/Mpc (T(k -> 0) = 1).
    pub fn eval(&self, k_h: T) -> T {
        match self.kind {
            TransferFunction::EisensteinHu => self.eh_wiggle(k_h),
            TransferFunction::EisensteinHuNoWiggles => self.eh_nowiggle(k_h),
            TransferFunction::Bbks => self.bbks(k_h),
        }
    }

    /// EH98 eq. 19-20: T0(k; alpha_c, beta_c).
    fn t0_tilde(&self, k: T, alpha_c: T, beta_c: T) -> T {
        let q = k / (self.k_eq * 13.41);
        let l = (beta_c * q * 1.8 + std::f64::consts::E).ln();
        let c = alpha_c.recip() * 14.2 + ((q.powf(1.08) * 69.9) + 1.0).recip() * 386.0;
        l / (l + c * q * q)
    }

    fn eh_wiggle(&self, k_h: T) -> T {
        let k = k_h * self.h; // 1/Mpc
        let ks = k * self.s;
        // eq. 17-18: CDM
        let f = ((ks * (1.0 / 5.4)).powi(4) + 1.0).recip();
        let one = T::one();
        let t_c = self.t0_tilde(k, one, self.beta_c) * f
            + self.t0_tilde(k, self.alpha_c, self.beta_c) * (-f + 1.0);
        // eq. 21-22: baryons
        let s_tilde = self.s / ((self.beta_node / ks).powi(3) + 1.0).cbrt();
        let t_b = (self.t0_tilde(k, one, one) / ((ks * (1.0 / 5.2)).powi(2) + 1.0)
            + self.alpha_b / ((self.beta_b / ks).powi(3) + 1.0)
                * (-(k / self.k_silk).powf(1.4)).exp())
            * sinc(k * s_tilde);
        self.fb * t_b + self.fc * t_c
    }

    fn eh_nowiggle(&self, k_h: T) -> T {
        let k = k_h * self.h;
        let gamma_eff = self.om_h
            * (self.alpha_gamma
                + (-self.alpha_gamma + 1.0) / ((k * self.s_nw * 0.43).powi(4) + 1.0));
        let q = k_h * self.theta2 / gamma_eff;
        let l0 = (q * 1.8 + 2.0 * std::f64::consts::E).ln();
        let c0 = (q * 62.5 + 1.0).recip() * 731.0 + 14.2;
        l0 / (l0 + c0 * q * q)
    }

    fn bbks(&self, k_h: T) -> T {
        let q = k_h * self.h * self.q_scale;
        let poly = q * 3.89 + (q * 16.1).powi(2) + (q * 5.46).powi(3) + (q * 6.71).powi(4) + 1.0;
        (q * 2.34).ln_1p() / (q * 2.34) * poly.powf(-0.25)
    }
}

/// sin(x)/x, smooth at 0.
fn sinc<T: Scalar>(x: T) -> T {
    if x.re().abs() < 1e-4 {
        let x2 = x * x;
        -x2 * (1.0 / 6.0) + x2 * x2 * (1.0 / 120.0) + 1.0
    } else {
        x.sin() / x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfer_tends_to_one_on_large_scales() {
        let c = Cosmology::planck15();
        for kind in [
            TransferFunction::EisensteinHu,
            TransferFunction::EisensteinHuNoWiggles,
            TransferFunction::Bbks,
        ] {
            let t = Transfer::new(&c, kind);
            assert!(
                (t.eval(1e-6) - 1.0).abs() < 1e-3,
                "{kind:?} {}",
                t.eval(1e-6)
            );
            assert!(t.eval(1.0) < 0.1);
        }
    }
}
