//! Galaxies from halos: the five-parameter halo occupation distribution of
//! Zheng et al. (2007, ApJ 667, 760, eqs. 2-3), in the form of halotools'
//! `Zheng07Cens` / `Zheng07Sats`:
//!
//! `<N_cen>(M) = 1/2 [1 + erf((log10 M - log M_min) / sigma_logM)]`,
//!
//! `<N_sat>(M) = ((M - M_0) / M_1)^alpha` for `M > M_0`, else 0 (times
//! `<N_cen>` with `modulate_with_cenocc`, off by default as in halotools).
//!
//! Masses in Msun/h. Two samplers share the same random numbers:
//!
//! - **exact** ([`Zheng07::populate`]): a central at the halo centre when
//!   `u < <N_cen>` (Bernoulli), `Poisson(<N_sat>)` satellites;
//! - **relaxed** ([`Zheng07::relaxed_weights`], Horowitz, Hahn, Lanusse,
//!   Modi & Ferraro 2022, arXiv:2211.03852): every halo carries one central
//!   candidate and `n_i` satellite candidates; each gets a weight from the
//!   relaxed Bernoulli (binary Concrete, Maddison, Mnih & Teh 2017) of
//!   temperature `tau`, `w = sigmoid((logit p + logit u) / tau)`, with
//!   `p = <N_cen>` for the central and `p = <N_sat> / n_i` for each
//!   satellite (a relaxed binomial of `n_i` trials, whose sum has mean
//!   `<N_sat>`). As `tau -> 0` the central weight tends to the exact
//!   Bernoulli draw `[u < p]` of the same `u` (`logit u` is replaced by
//!   `logit(1 - u)` so both use `u` the same way). The weights are smooth
//!   in the five parameters: [`Zheng07::relaxed_weights_vjp`] gives their
//!   vector-Jacobian product.
//!
//! Satellites sit on an NFW profile (Navarro, Frenk & White 1997) truncated
//! at `R_200c = (3 M / (4 pi 200 rho_crit))^(1/3)` with the Duffy et al.
//! (2008, full sample, z = 0) concentration `c_200c = 5.71 (M / 2e12)^-0.084`;
//! the enclosed-mass fraction `mu(c x) / mu(c)`, `mu(y) = ln(1 + y) - y/(1 + y)`,
//! is inverted by bisection for a uniform draw; directions are isotropic.

use crate::{check_box_size, input, wrap, Result, RHO_CRIT};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Poisson, StandardNormal, StandardUniform};
use std::f64::consts::{LN_10, PI};

/// Zheng et al. (2007) HOD parameters (masses as log10 of Msun/h).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Zheng07 {
    /// `log10 M_min`: half of the halos of this mass host a central. Default 13.0.
    pub log_mmin: f64,
    /// `sigma_logM`: width of the central cut-off. Default 0.5.
    pub sigma_logm: f64,
    /// `log10 M_0`: satellite cut-off mass. Default 13.0.
    pub log_m0: f64,
    /// `log10 M_1`: mass scale of one satellite (above `M_0`). Default 14.0.
    pub log_m1: f64,
    /// Satellite power-law slope. Default 1.0.
    pub alpha: f64,
    /// Multiply `<N_sat>` by `<N_cen>` (halotools' `modulate_with_cenocc`). Default false.
    pub modulate_with_cenocc: bool,
}

impl Default for Zheng07 {
    fn default() -> Self {
        Self {
            log_mmin: 13.0,
            sigma_logm: 0.5,
            log_m0: 13.0,
            log_m1: 14.0,
            alpha: 1.0,
            modulate_with_cenocc: false,
        }
    }
}

/// Galaxies drawn from halos.
#[derive(Debug, Clone, Default)]
pub struct HodSample {
    /// Position [Mpc/h], in `[0, L)`.
    pub position: Vec<[f64; 3]>,
    /// Central (true) or satellite (false).
    pub is_central: Vec<bool>,
    /// Weight: 1 for the exact sampler, the relaxed weight otherwise.
    pub weight: Vec<f64>,
    /// Host halo (index into the halo arrays).
    pub halo: Vec<u64>,
}

/// Concentration `c_200c` of Duffy et al. (2008), full sample, z = 0.
pub fn duffy08_concentration(mass: f64) -> f64 {
    5.71 * (mass / 2e12).powf(-0.084)
}

/// `R_200c` [Mpc/h] of a halo of mass `M` [Msun/h] at z = 0.
pub fn r200c(mass: f64) -> f64 {
    (3.0 * mass / (4.0 * PI * 200.0 * RHO_CRIT)).cbrt()
}

fn nfw_mu(y: f64) -> f64 {
    y.ln_1p() - y / (1.0 + y)
}

/// Radius in units of `R_200c` enclosing the fraction `q` of an NFW halo
/// of concentration `c` (bisection to 1e-12).
pub fn nfw_radius_fraction(q: f64, c: f64) -> f64 {
    let target = q * nfw_mu(c);
    let (mut lo, mut hi) = (0.0f64, c);
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if nfw_mu(mid) < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi) / c
}

#[inline]
fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// Satellite candidates and random numbers of the relaxed sampler: drawn once
/// (positions and uniforms do not depend on the HOD parameters), so that
/// weights at other parameters reuse the same noise.
#[derive(Debug, Clone, Default)]
pub struct RelaxedCandidates {
    /// Galaxy candidates: one central per halo, then the satellites.
    pub sample: HodSample,
    /// Uniform draw of each candidate.
    pub u: Vec<f64>,
    /// Host halo mass [Msun/h] of each candidate.
    pub mass: Vec<f64>,
    /// Number of satellite trials of the host halo (0 for centrals).
    pub trials: Vec<u32>,
}

impl Zheng07 {
    /// The parameters as `[log_mmin, sigma_logm, log_m0, log_m1, alpha]`.
    pub fn to_array(&self) -> [f64; 5] {
        [
            self.log_mmin,
            self.sigma_logm,
            self.log_m0,
            self.log_m1,
            self.alpha,
        ]
    }

    /// From `[log_mmin, sigma_logm, log_m0, log_m1, alpha]`.
    pub fn from_array(p: [f64; 5], modulate_with_cenocc: bool) -> Self {
        Self {
            log_mmin: p[0],
            sigma_logm: p[1],
            log_m0: p[2],
            log_m1: p[3],
            alpha: p[4],
            modulate_with_cenocc,
        }
    }

    /// Ranges: log masses in [8, 17], `0 < sigma_logM <= 5`, `0 < alpha <= 5`.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("log M_min", self.log_mmin),
            ("log M_0", self.log_m0),
            ("log M_1", self.log_m1),
        ] {
            if !(8.0..=17.0).contains(&v) {
                return input(format!(
                    "HOD {name} = {v} is outside [8, 17] (log10 Msun/h)"
                ));
            }
        }
        if !(self.sigma_logm > 0.0 && self.sigma_logm <= 5.0) {
            return input(format!(
                "HOD sigma_logM = {} is outside (0, 5]",
                self.sigma_logm
            ));
        }
        if !(self.alpha > 0.0 && self.alpha <= 5.0) {
            return input(format!("HOD alpha = {} is outside (0, 5]", self.alpha));
        }
        Ok(())
    }

    /// `<N_cen>(M)`.
    pub fn mean_centrals(&self, mass: f64) -> f64 {
        let x = (mass.log10() - self.log_mmin) / self.sigma_logm;
        0.5 * libm::erfc(-x)
    }

    /// `<N_sat>(M)` (times `<N_cen>` with `modulate_with_cenocc`).
    pub fn mean_satellites(&self, mass: f64) -> f64 {
        let m0 = 10f64.powf(self.log_m0);
        if mass <= m0 {
            return 0.0;
        }
        let s = ((mass - m0) / 10f64.powf(self.log_m1)).powf(self.alpha);
        if self.modulate_with_cenocc {
            s * self.mean_centrals(mass)
        } else {
            s
        }
    }

    /// `d<N_cen>/d theta` and `d<N_sat>/d theta` for the five parameters.
    fn mean_gradients(&self, mass: f64) -> ([f64; 5], [f64; 5]) {
        let x = (mass.log10() - self.log_mmin) / self.sigma_logm;
        let dpdx = (-x * x).exp() / PI.sqrt();
        let gc = [
            -dpdx / self.sigma_logm,
            -dpdx * x / self.sigma_logm,
            0.0,
            0.0,
            0.0,
        ];
        let m0 = 10f64.powf(self.log_m0);
        let m1 = 10f64.powf(self.log_m1);
        let mut gs = [0.0; 5];
        if mass > m0 {
            let r = (mass - m0) / m1;
            let s = r.powf(self.alpha);
            gs[2] = -self.alpha * s / (mass - m0) * m0 * LN_10;
            gs[3] = -self.alpha * s * LN_10;
            gs[4] = s * r.ln();
            if self.modulate_with_cenocc {
                let c = self.mean_centrals(mass);
                for k in 0..5 {
                    gs[k] = gs[k] * c + s * gc[k];
                }
            }
        }
        (gc, gs)
    }

    /// Exact sampling: Bernoulli centrals and Poisson satellites on NFW
    /// profiles around halos at `position` [Mpc/h] of mass `mass` [Msun/h].
    pub fn populate(
        &self,
        position: &[[f64; 3]],
        mass: &[f64],
        box_size: f64,
        seed: u64,
    ) -> Result<HodSample> {
        self.check_halos(position, mass, box_size)?;
        let mut rng = StdRng::seed_from_u64(seed);
        let mut out = HodSample::default();
        for (h, (p, &m)) in position.iter().zip(mass).enumerate() {
            let u: f64 = StandardUniform.sample(&mut rng);
            if u < self.mean_centrals(m) {
                out.position.push(*p);
                out.is_central.push(true);
                out.weight.push(1.0);
                out.halo.push(h as u64);
            }
            let lam = self.mean_satellites(m);
            let k = if lam > 0.0 {
                Poisson::new(lam)
                    .map_err(|e| crate::CatalogError::Input(format!("HOD satellites: {e}")))?
                    .sample(&mut rng) as usize
            } else {
                0
            };
            for _ in 0..k {
                out.position.push(satellite(p, m, box_size, &mut rng));
                out.is_central.push(false);
                out.weight.push(1.0);
                out.halo.push(h as u64);
            }
        }
        Ok(out)
    }

    fn check_halos(&self, position: &[[f64; 3]], mass: &[f64], box_size: f64) -> Result<()> {
        self.validate()?;
        check_box_size(box_size)?;
        crate::check_positions(position, box_size)?;
        if position.len() != mass.len() {
            return input(format!(
                "{} halo positions for {} masses",
                position.len(),
                mass.len()
            ));
        }
        if position.is_empty() {
            return input("the halo catalogue is empty");
        }
        if let Some(i) = mass.iter().position(|m| !(*m > 0.0 && m.is_finite())) {
            return input(format!("halo mass {i} = {} is not positive", mass[i]));
        }
        Ok(())
    }

    /// Number of satellite trials of the relaxed binomial for a halo of mean
    /// `lam` satellites: `max(4, ceil(2 lam + 4 sqrt(lam)))`, enough that
    /// `p = lam / n <= 1/2` and the binomial's variance is close to Poisson's.
    pub fn satellite_trials(lam: f64) -> u32 {
        (2.0 * lam + 4.0 * lam.sqrt()).ceil().max(4.0) as u32
    }

    /// Draw the candidates of the relaxed sampler at these parameters (the
    /// number of satellite trials per halo depends on `<N_sat>` here; the
    /// weights at other parameters reuse the candidates).
    pub fn relaxed_candidates(
        &self,
        position: &[[f64; 3]],
        mass: &[f64],
        box_size: f64,
        seed: u64,
    ) -> Result<RelaxedCandidates> {
        self.check_halos(position, mass, box_size)?;
        let mut rng = StdRng::seed_from_u64(seed);
        let mut c = RelaxedCandidates::default();
        let push = |c: &mut RelaxedCandidates, p, central, h, u, m, n| {
            c.sample.position.push(p);
            c.sample.is_central.push(central);
            c.sample.weight.push(0.0);
            c.sample.halo.push(h as u64);
            c.u.push(u);
            c.mass.push(m);
            c.trials.push(n);
        };
        for (h, (p, &m)) in position.iter().zip(mass).enumerate() {
            let u: f64 = StandardUniform.sample(&mut rng);
            push(&mut c, *p, true, h, u, m, 0);
            let lam = self.mean_satellites(m);
            if lam > 0.0 {
                let n = Self::satellite_trials(lam);
                for _ in 0..n {
                    let u: f64 = StandardUniform.sample(&mut rng);
                    let s = satellite(p, m, box_size, &mut rng);
                    push(&mut c, s, false, h, u, m, n);
                }
            }
        }
        Ok(c)
    }

    /// Relaxed-Bernoulli probability of a candidate: `(p, dp/dtheta)`.
    fn candidate_probability(&self, mass: f64, trials: u32, central: bool) -> (f64, [f64; 5]) {
        let (gc, gs) = self.mean_gradients(mass);
        if central {
            (self.mean_centrals(mass), gc)
        } else {
            let n = trials as f64;
            let mut g = gs;
            for v in g.iter_mut() {
                *v /= n;
            }
            (self.mean_satellites(mass) / n, g)
        }
    }

    /// Relaxed weight of every candidate at temperature `tau > 0`:
    /// `w = sigmoid((logit p - logit u) / tau)` (`-logit u = logit(1 - u)`:
    /// as `tau -> 0`, `w -> [u < p]`).
    pub fn relaxed_weights(&self, cand: &RelaxedCandidates, tau: f64) -> Result<Vec<f64>> {
        self.validate()?;
        check_tau(tau)?;
        Ok((0..cand.u.len())
            .map(|i| {
                let (p, _) = self.candidate_probability(
                    cand.mass[i],
                    cand.trials[i],
                    cand.sample.is_central[i],
                );
                relaxed(p, cand.u[i], tau).0
            })
            .collect())
    }

    /// Vector-Jacobian product of [`Self::relaxed_weights`]: `sum_i wbar_i dw_i/dtheta`
    /// for `theta = [log_mmin, sigma_logm, log_m0, log_m1, alpha]`.
    pub fn relaxed_weights_vjp(
        &self,
        cand: &RelaxedCandidates,
        tau: f64,
        w_bar: &[f64],
    ) -> Result<[f64; 5]> {
        self.validate()?;
        check_tau(tau)?;
        if w_bar.len() != cand.u.len() {
            return input(format!(
                "{} cotangents for {} candidates",
                w_bar.len(),
                cand.u.len()
            ));
        }
        let mut g = [0.0; 5];
        for i in 0..cand.u.len() {
            let (p, dp) =
                self.candidate_probability(cand.mass[i], cand.trials[i], cand.sample.is_central[i]);
            let (_, dw_dp) = relaxed(p, cand.u[i], tau);
            for k in 0..5 {
                g[k] += w_bar[i] * dw_dp * dp[k];
            }
        }
        Ok(g)
    }

    /// Relaxed sampling in one call: candidates drawn at these parameters,
    /// weighted at temperature `tau`.
    pub fn populate_relaxed(
        &self,
        position: &[[f64; 3]],
        mass: &[f64],
        box_size: f64,
        tau: f64,
        seed: u64,
    ) -> Result<HodSample> {
        check_tau(tau)?;
        let cand = self.relaxed_candidates(position, mass, box_size, seed)?;
        let w = self.relaxed_weights(&cand, tau)?;
        let mut s = cand.sample;
        s.weight = w;
        Ok(s)
    }
}

fn check_tau(tau: f64) -> Result<()> {
    if !(tau > 0.0 && tau.is_finite()) {
        return input(format!("relaxed temperature must be positive, got {tau}"));
    }
    Ok(())
}

/// Relaxed Bernoulli weight and `dw/dp` for probability `p`, uniform `u`,
/// temperature `tau`.
fn relaxed(p: f64, u: f64, tau: f64) -> (f64, f64) {
    if p <= 0.0 {
        return (0.0, 0.0);
    }
    if p >= 1.0 {
        return (1.0, 0.0);
    }
    let u = u.clamp(1e-300, 1.0 - 1e-16);
    let z = ((p / (1.0 - p)).ln() + ((1.0 - u) / u).ln()) / tau;
    let w = sigmoid(z);
    (w, w * (1.0 - w) / (tau * p * (1.0 - p)))
}

/// A satellite position around a halo centre `c` of mass `m`.
fn satellite(c: &[f64; 3], m: f64, box_size: f64, rng: &mut StdRng) -> [f64; 3] {
    let q: f64 = StandardUniform.sample(rng);
    let r = nfw_radius_fraction(q, duffy08_concentration(m)) * r200c(m);
    let mut d = [0.0f64; 3];
    loop {
        for v in d.iter_mut() {
            *v = StandardNormal.sample(rng);
        }
        let n = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
        if n > 1e-12 {
            for v in d.iter_mut() {
                *v /= n;
            }
            break;
        }
    }
    [
        wrap(c[0] + r * d[0], box_size),
        wrap(c[1] + r * d[1], box_size),
        wrap(c[2] + r * d[2], box_size),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn halos(n: usize, l: f64, seed: u64) -> (Vec<[f64; 3]>, Vec<f64>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut pos = Vec::with_capacity(n);
        let mut mass = Vec::with_capacity(n);
        for _ in 0..n {
            let u: [f64; 4] = [
                StandardUniform.sample(&mut rng),
                StandardUniform.sample(&mut rng),
                StandardUniform.sample(&mut rng),
                StandardUniform.sample(&mut rng),
            ];
            pos.push([u[0] * l, u[1] * l, u[2] * l]);
            mass.push(10f64.powf(12.0 + 3.0 * u[3]));
        }
        (pos, mass)
    }

    /// Mean occupations per mass bin from 10^6 halos within 4 standard
    /// errors of the analytic means (binomial / Poisson standard errors of
    /// the bin's mean, with the analytic mean averaged over the bin).
    #[test]
    fn sample_means_match_mean_occupation() {
        let hod = Zheng07 {
            log_mmin: 13.0,
            sigma_logm: 0.4,
            log_m0: 12.8,
            log_m1: 13.8,
            alpha: 1.1,
            modulate_with_cenocc: false,
        };
        let (pos, mass) = halos(1_000_000, 500.0, 5);
        let s = hod.populate(&pos, &mass, 500.0, 9).unwrap();
        let nbin = 10;
        let bin = |m: f64| (((m.log10() - 12.0) / 3.0 * nbin as f64) as usize).min(nbin - 1);
        let mut nh = vec![0.0; nbin];
        let (mut ec, mut es) = (vec![0.0; nbin], vec![0.0; nbin]);
        let (mut vc, mut vs) = (vec![0.0; nbin], vec![0.0; nbin]);
        for &m in &mass {
            let b = bin(m);
            let (c, sat) = (hod.mean_centrals(m), hod.mean_satellites(m));
            nh[b] += 1.0;
            ec[b] += c;
            es[b] += sat;
            vc[b] += c * (1.0 - c);
            vs[b] += sat;
        }
        let (mut oc, mut os) = (vec![0.0; nbin], vec![0.0; nbin]);
        for (i, &h) in s.halo.iter().enumerate() {
            let b = bin(mass[h as usize]);
            if s.is_central[i] {
                oc[b] += 1.0;
            } else {
                os[b] += 1.0;
            }
        }
        for b in 0..nbin {
            let zc = (oc[b] - ec[b]) / vc[b].sqrt().max(1e-300);
            let zs = if vs[b] > 0.0 {
                (os[b] - es[b]) / vs[b].sqrt()
            } else {
                os[b]
            };
            eprintln!(
                "bin {b}: {} halos, Ncen {:.4} vs {:.4} ({zc:+.2} se), Nsat {:.4} vs {:.4} ({zs:+.2} se)",
                nh[b], oc[b] / nh[b], ec[b] / nh[b], os[b] / nh[b], es[b] / nh[b]
            );
            assert!(zc.abs() < 4.0 || vc[b] == 0.0 && oc[b] == ec[b].round());
            assert!(zs.abs() < 4.0, "satellites bin {b}: {zs}");
        }
    }

    #[test]
    fn satellites_follow_nfw_inside_r200() {
        let hod = Zheng07 {
            log_m1: 11.5,
            ..Default::default()
        };
        let l = 100.0;
        let m = 1e14;
        let s = hod.populate(&[[50.0, 50.0, 50.0]], &[m], l, 3).unwrap();
        let r200 = r200c(m);
        let c = duffy08_concentration(m);
        let radii: Vec<f64> = s
            .position
            .iter()
            .zip(&s.is_central)
            .filter(|(_, c)| !**c)
            .map(|(p, _)| (0..3).map(|a| (p[a] - 50.0).powi(2)).sum::<f64>().sqrt() / r200)
            .collect();
        assert!(radii.len() > 30, "{} satellites", radii.len());
        assert!(radii.iter().all(|r| *r <= 1.0 + 1e-9));
        // enclosed fraction at the median radius is 1/2
        let x = nfw_radius_fraction(0.5, c);
        let inside = radii.iter().filter(|r| **r < x).count() as f64 / radii.len() as f64;
        assert!(
            (inside - 0.5).abs() < 4.0 * 0.5 / (radii.len() as f64).sqrt(),
            "{inside}"
        );
        assert!((nfw_mu(c * x) / nfw_mu(c) - 0.5).abs() < 1e-10);
    }

    #[test]
    fn relaxed_weights_tend_to_the_exact_bernoulli() {
        let hod = Zheng07::default();
        let (pos, mass) = halos(20_000, 300.0, 8);
        let cand = hod.relaxed_candidates(&pos, &mass, 300.0, 4).unwrap();
        let mut last = f64::INFINITY;
        for tau in [1.0, 0.1, 0.01, 1e-3, 1e-4] {
            let w = hod.relaxed_weights(&cand, tau).unwrap();
            let mut dev = 0.0;
            let mut n = 0.0;
            for i in 0..w.len() {
                if cand.sample.is_central[i] {
                    let exact = (cand.u[i] < hod.mean_centrals(cand.mass[i])) as u8 as f64;
                    dev += (w[i] - exact).abs();
                    n += 1.0;
                }
            }
            let dev = dev / n;
            eprintln!("tau {tau}: mean |w - Bernoulli| {dev:.2e}");
            assert!(dev < last);
            last = dev;
        }
        assert!(last < 1e-3, "{last}");
    }

    #[test]
    fn relaxed_vjp_matches_finite_differences() {
        let hod = Zheng07 {
            log_mmin: 12.9,
            sigma_logm: 0.45,
            log_m0: 12.6,
            log_m1: 13.7,
            alpha: 0.9,
            modulate_with_cenocc: true,
        };
        let (pos, mass) = halos(300, 100.0, 2);
        let cand = hod.relaxed_candidates(&pos, &mass, 100.0, 1).unwrap();
        let wbar: Vec<f64> = (0..cand.u.len())
            .map(|i| ((i * 37) % 11) as f64 - 5.0)
            .collect();
        let g = hod.relaxed_weights_vjp(&cand, 0.3, &wbar).unwrap();
        let f = |p: [f64; 5]| -> f64 {
            let h = Zheng07::from_array(p, true);
            h.relaxed_weights(&cand, 0.3)
                .unwrap()
                .iter()
                .zip(&wbar)
                .map(|(a, b)| a * b)
                .sum()
        };
        for k in 0..5 {
            let e = 1e-6;
            let (mut a, mut b) = (hod.to_array(), hod.to_array());
            a[k] += e;
            b[k] -= e;
            let fd = (f(a) - f(b)) / (2.0 * e);
            assert!(
                (fd - g[k]).abs() < 1e-6 * fd.abs().max(1.0),
                "param {k}: {} vs {fd}",
                g[k]
            );
        }
    }

    #[test]
    fn bad_parameters_are_named() {
        let (pos, mass) = halos(10, 10.0, 1);
        for (h, needle) in [
            (
                Zheng07 {
                    sigma_logm: 0.0,
                    ..Default::default()
                },
                "sigma_logM",
            ),
            (
                Zheng07 {
                    alpha: -1.0,
                    ..Default::default()
                },
                "alpha",
            ),
            (
                Zheng07 {
                    log_m1: f64::NAN,
                    ..Default::default()
                },
                "log M_1",
            ),
        ] {
            let e = h.populate(&pos, &mass, 10.0, 0).unwrap_err();
            assert!(e.to_string().contains(needle), "{e}");
        }
        let e = Zheng07::default()
            .populate_relaxed(&pos, &mass, 10.0, 0.0, 0)
            .unwrap_err();
        assert!(e.to_string().contains("temperature"), "{e}");
        let e = Zheng07::default().populate(&[], &[], 10.0, 0).unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
    }
}
