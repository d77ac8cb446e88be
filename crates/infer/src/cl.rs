//! The Gaussian C_ell likelihood of `cosmodiff-cosmo` as a [`LogDensity`]
//! of its free cosmological parameters: exact gradients (vector dual
//! numbers) and an exact Hessian (hyper-dual numbers). Shared by
//! `cosmodiff sample`, the demo and the Python package.

use crate::density::LogDensity;
use cosmodiff_cosmo::covariance::ClLikelihood;
use cosmodiff_cosmo::CosmoError;

/// A [`ClLikelihood`] seen as a log density; parameters outside the valid
/// cosmology range are errors (treated as divergences by the samplers).
#[derive(Debug, Clone)]
pub struct ClDensity {
    pub like: ClLikelihood,
}

impl LogDensity for ClDensity {
    type Error = CosmoError;
    fn dim(&self) -> usize {
        self.like.params.len()
    }
    fn names(&self) -> Vec<String> {
        self.like
            .params
            .iter()
            .map(|p| p.name().to_string())
            .collect()
    }
    fn logp_and_grad(&self, x: &[f64], grad: &mut [f64]) -> Result<f64, CosmoError> {
        self.like.cosmology(x).validate()?;
        let (v, g) = self.like.value_and_grad(x)?;
        grad.copy_from_slice(&g);
        Ok(v)
    }
    fn hessian(&self, x: &[f64]) -> Option<Result<Vec<f64>, CosmoError>> {
        Some(self.like.hessian(x).map(|h| h.concat()))
    }
}
