//! A posterior = likelihood on constrained parameters x priors, exposed as
//! an unconstrained [`LogDensity`].

use crate::density::LogDensity;
use crate::error::InferError;
use crate::prior::Prior;

/// Error of a [`Posterior`] evaluation.
#[derive(Debug, thiserror::Error)]
pub enum PosteriorError<E: std::error::Error + 'static> {
    /// The likelihood failed.
    #[error("likelihood: {0}")]
    Likelihood(#[source] E),
    /// A constrained parameter was outside its prior's support.
    #[error("parameter {name} = {value} is outside the prior support")]
    OutOfSupport { name: String, value: f64 },
}

/// `log p(y) = log L(x(y)) + sum_i [log pi_i(x_i(y_i)) + log |dx_i/dy_i|]`.
///
/// The likelihood `L` works on the constrained parameters `x` (e.g.
/// `Omega_c`, `sigma8`); each parameter has a [`Prior`] whose
/// [`crate::Bijection`] maps `y_i in R` onto its support. The chain rule gives
/// `d log p/dy_i = (d log L/dx_i + d log pi_i/dx_i) dx_i/dy_i + d log|J_i|/dy_i`.
/// Samplers run on `y`; [`LogDensity::constrain`] reports draws as `x`.
#[derive(Debug, Clone)]
pub struct Posterior<L> {
    likelihood: L,
    priors: Vec<Prior>,
    names: Vec<String>,
}

impl<L: LogDensity> Posterior<L> {
    /// Combine a likelihood with one prior per parameter (in the
    /// likelihood's parameter order). Names come from the likelihood.
    pub fn new(likelihood: L, priors: Vec<Prior>) -> Result<Self, InferError> {
        if priors.len() != likelihood.dim() {
            return Err(InferError::Dim(format!(
                "{} priors for a likelihood with {} parameters",
                priors.len(),
                likelihood.dim()
            )));
        }
        let names = likelihood.names();
        for (p, n) in priors.iter().zip(&names) {
            p.validate()
                .map_err(|e| InferError::Prior(format!("{n}: {e}")))?;
        }
        Ok(Self {
            likelihood,
            priors,
            names,
        })
    }

    /// The wrapped likelihood.
    pub fn likelihood(&self) -> &L {
        &self.likelihood
    }

    /// The priors, in parameter order.
    pub fn priors(&self) -> &[Prior] {
        &self.priors
    }

    /// `sum_i log pi_i(x_i)` (normalised; `-inf` outside the support).
    pub fn log_prior(&self, x: &[f64]) -> f64 {
        self.priors.iter().zip(x).map(|(p, &v)| p.log_pdf(v)).sum()
    }

    fn eval(
        &self,
        y: &[f64],
        grad: &mut [f64],
        jacobian: bool,
    ) -> Result<f64, PosteriorError<L::Error>> {
        let x = self.constrain(y);
        let ll = self
            .likelihood
            .logp_and_grad(&x, grad)
            .map_err(PosteriorError::Likelihood)?;
        let mut lp = ll;
        for i in 0..x.len() {
            let t = self.priors[i].bijection();
            let (v, dv) = self.priors[i].log_density_unconstrained(y[i], jacobian);
            lp += v;
            grad[i] = grad[i] * t.dx_dy(y[i]) + dv;
        }
        Ok(lp)
    }
}

impl<L: LogDensity> LogDensity for Posterior<L> {
    type Error = PosteriorError<L::Error>;

    fn dim(&self) -> usize {
        self.priors.len()
    }

    fn names(&self) -> Vec<String> {
        self.names.clone()
    }

    fn logp_and_grad(&self, y: &[f64], grad: &mut [f64]) -> Result<f64, Self::Error> {
        self.eval(y, grad, true)
    }

    fn is_recoverable(&self, err: &Self::Error) -> bool {
        match err {
            PosteriorError::Likelihood(e) => self.likelihood.is_recoverable(e),
            PosteriorError::OutOfSupport { .. } => true,
        }
    }

    fn constrain(&self, y: &[f64]) -> Vec<f64> {
        self.priors
            .iter()
            .zip(y)
            .map(|(p, &v)| p.bijection().forward(v))
            .collect()
    }

    fn unconstrain(&self, x: &[f64]) -> Result<Vec<f64>, InferError> {
        if x.len() != self.dim() {
            return Err(InferError::Dim(format!(
                "point has {} values, posterior has {} parameters",
                x.len(),
                self.dim()
            )));
        }
        self.priors
            .iter()
            .zip(x)
            .zip(&self.names)
            .map(|((p, &v), n)| {
                p.bijection()
                    .inverse(v)
                    .map_err(|e| InferError::Prior(format!("{n}: {e}")))
            })
            .collect()
    }

    fn map_logp_and_grad(&self, y: &[f64], grad: &mut [f64]) -> Result<f64, Self::Error> {
        self.eval(y, grad, false)
    }

    fn logp_constrained(&self, x: &[f64], grad: &mut [f64]) -> Result<f64, Self::Error> {
        for (i, p) in self.priors.iter().enumerate() {
            if !p.contains(x[i]) {
                return Err(PosteriorError::OutOfSupport {
                    name: self.names[i].clone(),
                    value: x[i],
                });
            }
        }
        let mut lp = self
            .likelihood
            .logp_and_grad(x, grad)
            .map_err(PosteriorError::Likelihood)?;
        for (i, p) in self.priors.iter().enumerate() {
            lp += p.log_pdf(x[i]);
            grad[i] += p.dlog_pdf(x[i]);
        }
        Ok(lp)
    }

    fn hessian(&self, _y: &[f64]) -> Option<Result<Vec<f64>, Self::Error>> {
        None
    }

    fn hessian_constrained(&self, x: &[f64]) -> Option<Result<Vec<f64>, Self::Error>> {
        let n = self.dim();
        let h = self.likelihood.hessian(x)?;
        Some(h.map_err(PosteriorError::Likelihood).map(|mut h| {
            for (i, p) in self.priors.iter().enumerate() {
                h[i * n + i] += p.d2log_pdf(x[i]);
            }
            h
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::density::{DensityError, FnDensity};

    #[test]
    fn gradient_matches_finite_differences() {
        let lik = FnDensity::new(3, |x: &[f64], g: &mut [f64]| {
            // A non-Gaussian smooth likelihood.
            let v = -(x[0] - 0.3).powi(2) * 10.0
                - (x[1] * x[0] - 0.2).powi(2)
                - (x[2].ln() + 0.5).powi(2);
            g[0] = -20.0 * (x[0] - 0.3) - 2.0 * (x[1] * x[0] - 0.2) * x[1];
            g[1] = -2.0 * (x[1] * x[0] - 0.2) * x[0];
            g[2] = -2.0 * (x[2].ln() + 0.5) / x[2];
            Ok::<f64, DensityError>(v)
        });
        let post = Posterior::new(
            lik,
            vec![
                Prior::Uniform {
                    low: 0.0,
                    high: 1.0,
                },
                Prior::TruncatedNormal {
                    mean: 0.5,
                    sd: 1.0,
                    low: 0.0,
                    high: f64::INFINITY,
                },
                Prior::LogNormal {
                    mu: 0.0,
                    sigma: 1.0,
                },
            ],
        )
        .unwrap();
        let y = [0.3, -0.4, 0.2];
        for which in 0..3 {
            let f = |y: &[f64], g: &mut [f64]| match which {
                0 => post.logp_and_grad(y, g).unwrap(),
                1 => post.map_logp_and_grad(y, g).unwrap(),
                _ => post.logp_constrained(y, g).unwrap(),
            };
            let pt: Vec<f64> = if which == 2 {
                post.constrain(&y)
            } else {
                y.to_vec()
            };
            let mut g = vec![0.0; 3];
            f(&pt, &mut g);
            for i in 0..3 {
                let h = 1e-6;
                let mut a = pt.clone();
                let mut b = pt.clone();
                a[i] += h;
                b[i] -= h;
                let mut tmp = vec![0.0; 3];
                let num = (f(&a, &mut tmp) - f(&b, &mut tmp)) / (2.0 * h);
                assert!(
                    (g[i] - num).abs() < 1e-5 * (1.0 + num.abs()),
                    "mode {which} i={i}: {} vs {num}",
                    g[i]
                );
            }
        }
        let x = post.constrain(&y);
        let y2 = post.unconstrain(&x).unwrap();
        for i in 0..3 {
            assert!((y2[i] - y[i]).abs() < 1e-10);
        }
        assert!(post.unconstrain(&[1.5, 1.0, 1.0]).is_err());
        let mut g = vec![0.0; 3];
        assert!(matches!(
            post.logp_constrained(&[1.5, 1.0, 1.0], &mut g),
            Err(PosteriorError::OutOfSupport { .. })
        ));
    }
}
