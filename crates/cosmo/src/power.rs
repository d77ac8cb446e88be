//! Linear and non-linear matter power spectra, k in h/Mpc, P in (Mpc/h)^3.
//!
//! Linear: P_lin(k, a) = A k^{n_s} T(k)^2 D1(a)^2, with A fixed by
//! sigma8^2 = \int dlnk  k^3 P_lin(k,1) / (2 pi^2)  W_TH(k R)^2,  R = 8 Mpc/h,
//! W_TH(x) = 3 (sin x - x cos x) / x^3, integrated over 1e-4 < k < 1e2 h/Mpc
//! with composite Gauss-Legendre (relative error < 1e-9). (jax-cosmo's integral
//! uses too narrow bounds: its issue #109.)
//!
//! Non-linear: halofit as revised by Takahashi et al. (2012, ApJ 761, 152),
//! equations A4-A11 of Smith et al. (2003) with Takahashi's coefficients; the
//! Omega_m(a)-dependent f1,f2,f3 interpolate between open and Lambda models
//! by Omega_de(a)/(1 - Omega_m(a)) as in Smith et al. (2003).
//! w0-wa convention: Takahashi's (1 + w) terms are evaluated with w = w0 at
//! every redshift (wa enters only through Omega_de(a), Omega_m(a) and the
//! growth), which is what CCL does: we match CCL's w0-wa halofit to 2e-5.
//! The non-linear scale k_sigma (sigma_G(1/k_sigma, a) = 1 with a Gaussian
//! filter), n_eff and C come from exact Gaussian-filter integrals tabulated
//! in ln R and a Newton root solve whose final steps run in dual numbers, so
//! derivatives of P_nl are exact (jax-cosmo differentiates through a
//! piecewise-linear scale search instead).

use crate::background::{omega_de_a, omega_m_a};
use crate::growth::Growth;
use crate::numerics::{composite_gl, UniformSpline};
use crate::transfer::{Transfer, TransferFunction};
use crate::{CosmoError, Cosmology, Result, Scalar};
use std::f64::consts::PI;
use std::sync::OnceLock;

/// Non-linear model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonLinear {
    Linear,
    Halofit,
}

impl std::str::FromStr for NonLinear {
    type Err = CosmoError;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "linear" => Ok(Self::Linear),
            "halofit" => Ok(Self::Halofit),
            _ => Err(CosmoError::Input(format!(
                "nonlinear = \"{s}\": expected \"halofit\" or \"linear\""
            ))),
        }
    }
}

/// Gaussian-filter tables on fixed grids (shared by all cosmologies):
/// ln k quadrature nodes and the f64 kernels (kR)^{2n} exp(-(kR)^2) w_i.
struct FilterGrid {
    lnk: Vec<f64>,
    ln_r0: f64,
    d_ln_r: f64,
    n_r: usize,
    /// [n_r][n_k] weights for I0, I2, I4.
    kern: [Vec<Vec<f64>>; 3],
}

fn filter_grid() -> &'static FilterGrid {
    static G: OnceLock<FilterGrid> = OnceLock::new();
    G.get_or_init(|| {
        let (lnk, w) = composite_gl((1e-5f64).ln(), (2e4f64).ln(), 48, 8);
        let (ln_r0, ln_r1, n_r) = ((1.5e-3f64).ln(), (20.0f64).ln(), 110);
        let d_ln_r = (ln_r1 - ln_r0) / (n_r - 1) as f64;
        let mut kern = [vec![], vec![], vec![]];
        for j in 0..n_r {
            let r = (ln_r0 + j as f64 * d_ln_r).exp();
            let mut k0 = Vec::with_capacity(lnk.len());
            let mut k2 = Vec::with_capacity(lnk.len());
            let mut k4 = Vec::with_capacity(lnk.len());
            for (x, wi) in lnk.iter().zip(&w) {
                let y2 = (x.exp() * r).powi(2);
                let g = (-y2).exp() * wi;
                k0.push(g);
                k2.push(g * y2);
                k4.push(g * y2 * y2);
            }
            kern[0].push(k0);
            kern[1].push(k2);
            kern[2].push(k4);
        }
        FilterGrid {
            lnk,
            ln_r0,
            d_ln_r,
            n_r,
            kern,
        }
    })
}

/// Halofit quantities at one scale factor.
#[derive(Debug, Clone, Copy)]
pub struct HalofitParams<T> {
    pub a: f64,
    /// k_sigma in h/Mpc; None when the non-linear scale is beyond k = 600 h/Mpc
    /// (then halofit equals linear theory for every k of interest).
    pub k_sigma: Option<T>,
    pub n_eff: T,
    pub curv: T,
    pub d1: T,
    /// Takahashi coefficients (a_n, b_n, c_n, gamma_n, alpha_n, beta_n, nu_n) and
    /// f1, f2, f3, precomputed once per scale factor.
    coef: [T; 10],
}

/// Linear (and optionally halofit) power spectrum of one cosmology.
#[derive(Debug, Clone)]
pub struct PowerSpectrum<T> {
    pub cosmo: Cosmology<T>,
    pub transfer: Transfer<T>,
    pub kind: TransferFunction,
    pub nonlinear: NonLinear,
    pub growth: Growth<T>,
    /// Amplitude A in P = A k^{n_s} T^2.
    pub amplitude: T,
    halofit: Option<HalofitTables<T>>,
}

#[derive(Debug, Clone)]
struct HalofitTables<T> {
    ln_sigma2: UniformSpline<T>,
    n_eff: UniformSpline<T>,
    curv: UniformSpline<T>,
}

/// Top-hat window W(x) = 3 (sin x - x cos x)/x^3.
fn tophat(x: f64) -> f64 {
    if x < 1e-3 {
        1.0 - x * x / 10.0
    } else {
        3.0 * (x.sin() - x * x.cos()) / (x * x * x)
    }
}

impl<T: Scalar> PowerSpectrum<T> {
    pub fn new(cosmo: &Cosmology<T>, kind: TransferFunction, nonlinear: NonLinear) -> Result<Self> {
        cosmo.validate()?;
        let transfer = Transfer::new(cosmo, kind);
        let growth = Growth::new(cosmo)?;
        // sigma8 normalisation.
        static S8: OnceLock<(Vec<f64>, Vec<f64>)> = OnceLock::new();
        let (lnk, w) = S8.get_or_init(|| {
            let (x, w) = composite_gl((1e-4f64).ln(), (1e2f64).ln(), 48, 8);
            let w = x
                .iter()
                .zip(&w)
                .map(|(x, w)| w * tophat(x.exp() * 8.0).powi(2))
                .collect();
            (x, w)
        });
        let mut s2 = T::zero();
        for (x, wi) in lnk.iter().zip(w) {
            let k = x.exp();
            s2 += Self::shape(cosmo, &transfer, T::from(k)) * (k.powi(3) / (2.0 * PI * PI) * wi);
        }
        let amplitude = cosmo.sigma8 * cosmo.sigma8 / s2;
        let mut p = Self {
            cosmo: *cosmo,
            transfer,
            kind,
            nonlinear,
            growth,
            amplitude,
            halofit: None,
        };
        if nonlinear == NonLinear::Halofit {
            p.halofit = Some(p.build_halofit());
        }
        Ok(p)
    }

    /// k^{n_s} T(k)^2 (unnormalised shape).
    fn shape(c: &Cosmology<T>, t: &Transfer<T>, k: T) -> T {
        let tk = t.eval(k);
        (k.ln() * c.n_s).exp() * tk * tk
    }

    /// Linear P(k, a) in (Mpc/h)^3 for k in h/Mpc.
    pub fn pk_linear(&self, k: T, a: f64) -> T {
        let d = self.growth.d1(a);
        Self::shape(&self.cosmo, &self.transfer, k) * self.amplitude * d * d
    }

    /// P(k, a) with the configured non-linear model.
    pub fn pk(&self, k: T, a: f64) -> T {
        match self.nonlinear {
            NonLinear::Linear => self.pk_linear(k, a),
            NonLinear::Halofit => self.pk_halofit(k, &self.halofit_params(a)),
        }
    }

    fn build_halofit(&self) -> HalofitTables<T> {
        let g = filter_grid();
        let delta2: Vec<T> = g
            .lnk
            .iter()
            .map(|x| {
                let k = x.exp();
                Self::shape(&self.cosmo, &self.transfer, T::from(k))
                    * self.amplitude
                    * (k.powi(3) / (2.0 * PI * PI))
            })
            .collect();
        let mut ls = Vec::with_capacity(g.n_r);
        let mut ne = Vec::with_capacity(g.n_r);
        let mut cu = Vec::with_capacity(g.n_r);
        for j in 0..g.n_r {
            let mut i = [T::zero(); 3];
            for (n, acc) in i.iter_mut().enumerate() {
                for (d, w) in delta2.iter().zip(&g.kern[n][j]) {
                    *acc += *d * *w;
                }
            }
            let r2 = i[1] / i[0];
            let r4 = i[2] / i[0];
            ls.push(i[0].ln());
            // d ln sigma^2 / d ln R = -2 I2/I0 = -(3 + n_eff)
            ne.push(r2 * 2.0 - 3.0);
            // C = -d^2 ln sigma^2 / d ln R^2 = 4 [(I2 - I4)/I0 + (I2/I0)^2]
            cu.push((r2 - r4 + r2 * r2) * 4.0);
        }
        HalofitTables {
            ln_sigma2: UniformSpline::new(g.ln_r0, g.d_ln_r, ls),
            n_eff: UniformSpline::new(g.ln_r0, g.d_ln_r, ne),
            curv: UniformSpline::new(g.ln_r0, g.d_ln_r, cu),
        }
    }

    /// Non-linear scale, n_eff and curvature at scale factor a.
    pub fn halofit_params(&self, a: f64) -> HalofitParams<T> {
        let t = self
            .halofit
            .as_ref()
            .expect("halofit tables are built when nonlinear = Halofit");
        let g = filter_grid();
        let d1 = self.growth.d1(a);
        let target = -(d1.ln() * 2.0); // ln sigma0^2(R) = -2 ln D
        let f = |x: T| t.ln_sigma2.eval(x) - target;
        let (lo, hi) = (g.ln_r0, g.ln_r0 + g.d_ln_r * (g.n_r - 1) as f64);
        let (om, ode, w) = (
            omega_m_a(&self.cosmo, a),
            omega_de_a(&self.cosmo, a),
            self.cosmo.w0,
        );
        let f_lo = f(T::from(lo)).re();
        let f_hi = f(T::from(hi)).re();
        if f_lo < 0.0 {
            // sigma < 1 even at the smallest R: no non-linear correction at any k we use.
            return HalofitParams {
                a,
                k_sigma: None,
                n_eff: T::zero(),
                curv: T::zero(),
                d1,
                coef: [T::zero(); 10],
            };
        }
        if f_hi > 0.0 {
            // sigma > 1 at R = 20 Mpc/h (would need sigma8 far outside the fitted range).
            let (n_eff, curv) = (t.n_eff.eval(T::from(hi)), t.curv.eval(T::from(hi)));
            return HalofitParams {
                a,
                k_sigma: Some(T::from(1.0 / hi.exp())),
                n_eff,
                curv,
                d1,
                coef: takahashi_coefficients(n_eff, curv, om, ode, w),
            };
        }
        // ln sigma^2 decreases with R: bisection + Newton on the real part.
        let (mut a0, mut b0) = (lo, hi);
        let mut x = 0.5 * (lo + hi);
        for _ in 0..200 {
            let fx = f(T::from(x)).re();
            if fx > 0.0 {
                a0 = x
            } else {
                b0 = x
            }
            let slope = -(t.n_eff.eval(T::from(x)).re() + 3.0);
            let mut xn = x - fx / slope;
            if !(xn > a0 && xn < b0) {
                xn = 0.5 * (a0 + b0);
            }
            if (xn - x).abs() < 1e-13 {
                x = xn;
                break;
            }
            x = xn;
        }
        // Dual Newton steps: derivatives exact through second order.
        let mut xd = T::from(x);
        for _ in 0..3 {
            let slope = -(t.n_eff.eval(xd) + 3.0);
            xd -= f(xd) / slope;
        }
        let (n_eff, curv) = (t.n_eff.eval(xd), t.curv.eval(xd));
        HalofitParams {
            a,
            k_sigma: Some((-xd).exp()),
            n_eff,
            curv,
            d1,
            coef: takahashi_coefficients(n_eff, curv, om, ode, w),
        }
    }

    /// Takahashi et al. (2012) halofit P(k) at the scale factor of `hp`.
    pub fn pk_halofit(&self, k: T, hp: &HalofitParams<T>) -> T {
        let plin = Self::shape(&self.cosmo, &self.transfer, k) * self.amplitude * hp.d1 * hp.d1;
        let Some(ksig) = hp.k_sigma else { return plin };
        let norm = k * k * k * (1.0 / (2.0 * PI * PI));
        let dl = plin * norm;
        let [an, bn, cn, gamma, alpha, beta, nu, f1, f2, f3] = hp.coef;
        let y = k / ksig;
        let lny = y.ln();
        let fy = y * 0.25 + y * y * 0.125;
        let dq = dl * (((dl + 1.0).ln() * beta).exp() / (dl * alpha + 1.0)) * (-fy).exp();
        let dh_prime = an * (lny * f1 * 3.0).exp()
            / (bn * (lny * f2).exp() + (((cn * f3).ln() + lny) * (-gamma + 3.0)).exp() + 1.0);
        let dh = dh_prime / ((y * y).recip() * nu + 1.0);
        (dq + dh) / norm
    }
}

/// Takahashi et al. (2012) coefficients for given n_eff, C and background.
fn takahashi_coefficients<T: Scalar>(n: T, c: T, om: T, ode: T, w: T) -> [T; 10] {
    {
        let (n2, n3, n4) = (n * n, n * n * n, n * n * n * n);
        let wterm = ode * (w + 1.0);
        let ten = |e: T| (e * std::f64::consts::LN_10).exp();
        let an = ten(
            n * 2.8553 + n2 * 2.3706 + n3 * 0.9903 + n4 * 0.2250 - c * 0.6038
                + wterm * 0.1749
                + 1.5222,
        );
        let bn = ten(n * 0.5864 + n2 * 0.5716 - c * 1.5474 + wterm * 0.2279 - 0.5642);
        let cn = ten(n * 2.0404 + n2 * 0.8161 + c * 0.5869 + 0.3698);
        let gamma = -n * 0.0843 + c * 0.8460 + 0.1971;
        let alpha = (n * 1.3373 - n2 * 0.1959 - c * 5.5274 + 6.0835).abs();
        let beta = -n * 0.7354 + n2 * 0.3157 + n3 * 1.2490 + n4 * 0.3980 - c * 0.1682 + 2.0379;
        let nu = ten(n * 3.6902 + 5.2105);
        // Smith et al. (2003) eq. C16-C18 interpolation between open and flat Lambda models.
        let frac = ode / (-om + 1.0);
        let mix = |pa: f64, pb: f64| -> T {
            let fa = om.powf(pa);
            let fb = om.powf(pb);
            if (om.re() - 1.0).abs() < 1e-12 {
                fb
            } else {
                frac * fb + (-frac + 1.0) * fa
            }
        };
        [
            an,
            bn,
            cn,
            gamma,
            alpha,
            beta,
            nu,
            mix(-0.0732, -0.0307),
            mix(-0.1423, -0.0585),
            mix(0.0725, 0.0743),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigma8_normalisation_is_exact() {
        let c = Cosmology::planck15();
        let p = PowerSpectrum::new(&c, TransferFunction::EisensteinHu, NonLinear::Linear).unwrap();
        // independent trapezoid in ln k on a very fine grid
        let n = 200_000;
        let (l0, l1) = ((1e-6f64).ln(), (1e3f64).ln());
        let h = (l1 - l0) / n as f64;
        let mut s = 0.0;
        for i in 0..=n {
            let k = (l0 + i as f64 * h).exp();
            let wt = if i == 0 || i == n { 0.5 } else { 1.0 };
            s += wt * h * k.powi(3) * p.pk_linear(k, 1.0) / (2.0 * PI * PI)
                * tophat(8.0 * k).powi(2);
        }
        assert!((s.sqrt() / c.sigma8 - 1.0).abs() < 1e-7, "{}", s.sqrt());
    }
}
