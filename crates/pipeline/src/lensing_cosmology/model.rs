//! The benchmark's likelihood of an observed set of convergence maps given
//! the cosmology `theta` and the latent white noise `z`, with its exact
//! gradient in both:
//!
//! ```text
//! log L(x | theta, z) = -1/2 sum_b |x_b - kappa_b(theta, z)|^2 / sigma_b^2
//!                       - (npix / 2) sum_b ln(2 pi sigma_b^2)
//! ```
//!
//! `kappa` from [`cosmodiff_lensing::tomo_lognormal`]; `d/dz` by its
//! adjoint; `d/dtheta` by contracting the adjoint's `C_ell` and shift
//! cotangents with `dC_ell/dtheta` (vector dual numbers through the Limber
//! integral) and `d lambda/dtheta` (the interpolation table).

use super::setup::Setup;
use anyhow::{bail, Result};
use cosmodiff_lensing::tomo_lognormal::TomoLogNormal;

/// One simulation: `theta` and its maps `[n_bins][npix^2]`.
pub type Simulation = (Vec<f64>, Vec<Vec<f64>>);

/// Maps of one set-up with their noise, and the simulator.
#[derive(Debug, Clone)]
pub struct FieldModel {
    pub setup: Setup,
    sim: TomoLogNormal,
    used: std::ops::Range<usize>,
    noise_sd: Vec<f64>,
    emulator: Option<super::emulator::ClEmulator>,
}

/// `log L`, `d log L / d theta` and `d log L / d z` (`[n_bins][npix^2]`).
#[derive(Debug, Clone)]
pub struct LikelihoodGrad {
    pub value: f64,
    pub theta: Vec<f64>,
    pub z: Vec<Vec<f64>>,
}

impl FieldModel {
    pub fn new(setup: Setup) -> Result<Self> {
        let sim = setup.simulator()?;
        let used = sim.used_nodes();
        let noise_sd = setup.noise_sd();
        Ok(Self {
            setup,
            sim,
            used,
            noise_sd,
            emulator: None,
        })
    }

    /// The same model with its spectra from a Chebyshev table
    /// ([`super::emulator`], `n` = [`super::emulator::EMULATOR_POINTS`] is
    /// accurate to 1e-6) of `n` points per parameter over the prior's
    /// bulk (mean +- 5 sd for normal priors, the support for uniform ones,
    /// within the support for truncated ones); exact spectra outside it.
    /// For set-ups of up to 3 parameters.
    pub fn with_emulator(mut self, n: usize) -> Result<Self> {
        use cosmodiff_infer::Prior;
        let (lo, hi): (Vec<f64>, Vec<f64>) = self
            .setup
            .priors
            .iter()
            .map(|p| match *p {
                Prior::Uniform { low, high } => Ok((low, high)),
                Prior::Normal { mean, sd } => Ok((mean - 5.0 * sd, mean + 5.0 * sd)),
                Prior::TruncatedNormal {
                    mean,
                    sd,
                    low,
                    high,
                } => Ok(((mean - 5.0 * sd).max(low), (mean + 5.0 * sd).min(high))),
                ref other => bail!("no emulator box for the prior {other:?}"),
            })
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .unzip();
        self.emulator = Some(super::emulator::ClEmulator::new(
            &self.setup,
            self.used.clone(),
            lo,
            hi,
            n,
        )?);
        Ok(self)
    }

    /// `C_ell` on the simulator's nodes and, if asked for, the Jacobian
    /// (from the emulator inside its box, else exact).
    pub fn spectra(&self, theta: &[f64], jacobian: bool) -> Result<super::setup::Spectra> {
        match &self.emulator {
            Some(e) if e.contains(theta) => Ok(e.spectra(theta, jacobian)),
            _ => self.setup.spectra(theta, self.used.clone(), jacobian),
        }
    }

    /// Noise standard deviation per pixel in each bin.
    pub fn noise_sd(&self) -> &[f64] {
        &self.noise_sd
    }

    pub fn simulator(&self) -> &TomoLogNormal {
        &self.sim
    }

    /// Noiseless convergence maps `[n_bins][npix^2]` at `theta` for the
    /// white noise `z`.
    pub fn kappa(&self, theta: &[f64], z: &[Vec<f64>]) -> Result<Vec<Vec<f64>>> {
        let (cl, _) = self.spectra(theta, false)?;
        let (s, _) = self.setup.shifts(theta)?;
        Ok(self.sim.factors(&cl, &s)?.field(z)?.kappa)
    }

    /// Noiseless maps of many white-noise fields at one `theta` (the
    /// spectra are computed once).
    pub fn kappa_many(&self, theta: &[f64], zs: &[Vec<Vec<f64>>]) -> Result<Vec<Vec<Vec<f64>>>> {
        let (cl, _) = self.spectra(theta, false)?;
        let (s, _) = self.setup.shifts(theta)?;
        let f = self.sim.factors(&cl, &s)?;
        zs.iter().map(|z| Ok(f.field(z)?.kappa)).collect()
    }

    /// `log L(x | theta, z)` and its gradient.
    pub fn log_likelihood(
        &self,
        data: &[Vec<f64>],
        theta: &[f64],
        z: &[Vec<f64>],
    ) -> Result<LikelihoodGrad> {
        let nb = self.setup.n_bins();
        if data.len() != nb {
            bail!("{} data maps for {nb} bins", data.len());
        }
        let (cl, dcl) = self.spectra(theta, true)?;
        let dcl = dcl.expect("asked for the Jacobian");
        let (s, ds) = self.setup.shifts(theta)?;
        let f = self.sim.factors(&cl, &s)?;
        let field = f.field(z)?;
        let npix = data[0].len() as f64;
        let mut value = 0.0;
        let mut kbar = Vec::with_capacity(nb);
        for b in 0..nb {
            let iv = 1.0 / (self.noise_sd[b] * self.noise_sd[b]);
            let r: Vec<f64> = data[b]
                .iter()
                .zip(&field.kappa[b])
                .map(|(x, k)| (x - k) * iv)
                .collect();
            // chi^2 = sum (x - k)^2 / sigma^2 = sum r^2 sigma^2.
            let chi2 = r.iter().map(|v| v * v).sum::<f64>() / iv;
            value += -0.5 * chi2 - 0.5 * npix * (2.0 * std::f64::consts::PI / iv).ln();
            kbar.push(r);
        }
        let ct = f.vjp(&field, &kbar)?;
        let np = theta.len();
        let mut g = vec![0.0; np];
        for (row_bar, row_jac) in ct.cl.iter().zip(&dcl) {
            for (cb, jac) in row_bar.iter().zip(row_jac) {
                if *cb != 0.0 {
                    for (gi, ji) in g.iter_mut().zip(jac) {
                        *gi += cb * ji;
                    }
                }
            }
        }
        for (sb, jac) in ct.shifts.iter().zip(&ds) {
            for (gi, ji) in g.iter_mut().zip(jac) {
                *gi += sb * ji;
            }
        }
        Ok(LikelihoodGrad {
            value,
            theta: g,
            z: ct.z,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lensing_cosmology::SetupName;

    /// `d log L / d theta` (dual numbers through the Limber integral,
    /// the shift table and the simulator's adjoint) against central
    /// differences, on a simulated observation.
    #[test]
    fn theta_gradient_matches_finite_differences() {
        for (name, dirs) in [
            (SetupName::SbiLens128, vec![0usize, 1]),
            (SetupName::LsstY10, vec![2usize, 5]),
        ] {
            let model = FieldModel::new(Setup::new(name).unwrap()).unwrap();
            let s = &model.setup;
            let np = s.npix * s.npix;
            let z: Vec<Vec<f64>> = (0..s.n_bins())
                .map(|b| cosmodiff_field::grf2::white_noise(np, 10 + b as u64))
                .collect();
            let truth = model.kappa(&s.fiducial, &z).unwrap();
            let data: Vec<Vec<f64>> = truth
                .iter()
                .zip(model.noise_sd())
                .enumerate()
                .map(|(b, (k, sd))| {
                    let n = cosmodiff_field::grf2::white_noise(np, 100 + b as u64);
                    k.iter().zip(n).map(|(x, e)| x + sd * e).collect()
                })
                .collect();
            // Off the truth, so the gradient is large and well defined.
            let mut theta = s.fiducial.clone();
            theta[0] *= 1.03;
            let g = model.log_likelihood(&data, &theta, &z).unwrap();
            for d in dirs {
                let h = 1e-5 * theta[d].abs();
                let mut p = theta.clone();
                p[d] += h;
                let mut m = theta.clone();
                m[d] -= h;
                let fd = (model.log_likelihood(&data, &p, &z).unwrap().value
                    - model.log_likelihood(&data, &m, &z).unwrap().value)
                    / (2.0 * h);
                assert!(
                    (fd - g.theta[d]).abs() < 1e-4 * fd.abs().max(1.0),
                    "{name:?} parameter {d}: fd {fd} vs {}",
                    g.theta[d]
                );
            }
        }
    }
}
