//! The log-density interface every sampler and optimiser works with.

use crate::error::InferError;

/// A differentiable, unnormalised log density `log p(x)` on `R^dim`.
///
/// Implementors provide the value and the gradient in one call (dual
/// numbers or hand-written adjoints make both about as cheap as one).
///
/// # Failures
/// Returning `Err` or a non-finite value is never silently accepted:
/// - inside a NUTS / HMC trajectory it terminates the trajectory and the
///   draw is flagged as **divergent** (counted in [`crate::Samples`]); an
///   error for which [`LogDensity::is_recoverable`] is `false` aborts
///   sampling with [`InferError::Density`];
/// - at initialisation, a new random point is tried (up to
///   `NutsSettings::max_init_tries`), after which [`InferError::Init`] is
///   returned with the last error message;
/// - in [`crate::find_map`], any failure is an error.
///
/// The extra default methods describe an optional change of variables and
/// are only overridden by wrappers such as [`crate::Posterior`]; a plain
/// likelihood implements `dim`, `names` and `logp_and_grad` (plus `hessian`
/// if an exact one is available).
pub trait LogDensity {
    /// Error of a failed evaluation.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Number of parameters.
    fn dim(&self) -> usize;

    /// Parameter names (length `dim`). The default is `x0, x1, ...`.
    fn names(&self) -> Vec<String> {
        (0..self.dim()).map(|i| format!("x{i}")).collect()
    }

    /// `log p(x)` (up to a constant) and its gradient written into `grad`.
    fn logp_and_grad(&self, x: &[f64], grad: &mut [f64]) -> Result<f64, Self::Error>;

    /// Whether an error may be treated as a divergence (default: yes).
    /// Return `false` for errors that make further sampling pointless
    /// (bad configuration, I/O failure, ...).
    fn is_recoverable(&self, _err: &Self::Error) -> bool {
        true
    }

    /// Exact Hessian `d^2 log p / dx_i dx_j` (row-major, `dim * dim`) in the
    /// same (constrained) parameters as [`LogDensity::logp_constrained`], if
    /// available. [`crate::find_map`] falls back to central differences of
    /// the gradient when this returns `None`.
    fn hessian(&self, _x: &[f64]) -> Option<Result<Vec<f64>, Self::Error>> {
        None
    }

    /// Map a point of the sampling space to the reported (constrained)
    /// parameters. Identity by default.
    fn constrain(&self, y: &[f64]) -> Vec<f64> {
        y.to_vec()
    }

    /// Inverse of [`LogDensity::constrain`]. Identity by default.
    fn unconstrain(&self, x: &[f64]) -> Result<Vec<f64>, InferError> {
        Ok(x.to_vec())
    }

    /// Objective maximised by [`crate::find_map`], in sampling space.
    /// For a [`crate::Posterior`] this is `log p(x(y))` *without* the
    /// Jacobian of the change of variables, so the mode found is the mode of
    /// the density of the constrained parameters. Default: `logp_and_grad`.
    fn map_logp_and_grad(&self, y: &[f64], grad: &mut [f64]) -> Result<f64, Self::Error> {
        self.logp_and_grad(y, grad)
    }

    /// Log density of the constrained parameters and its gradient with
    /// respect to them (used for the Laplace Hessian). Default: `logp_and_grad`.
    fn logp_constrained(&self, x: &[f64], grad: &mut [f64]) -> Result<f64, Self::Error> {
        self.logp_and_grad(x, grad)
    }

    /// Exact Hessian of [`LogDensity::logp_constrained`], if available.
    /// Default: [`LogDensity::hessian`].
    fn hessian_constrained(&self, x: &[f64]) -> Option<Result<Vec<f64>, Self::Error>> {
        self.hessian(x)
    }
}

impl<T: LogDensity + ?Sized> LogDensity for &T {
    type Error = T::Error;
    fn dim(&self) -> usize {
        (**self).dim()
    }
    fn names(&self) -> Vec<String> {
        (**self).names()
    }
    fn logp_and_grad(&self, x: &[f64], grad: &mut [f64]) -> Result<f64, Self::Error> {
        (**self).logp_and_grad(x, grad)
    }
    fn is_recoverable(&self, err: &Self::Error) -> bool {
        (**self).is_recoverable(err)
    }
    fn hessian(&self, x: &[f64]) -> Option<Result<Vec<f64>, Self::Error>> {
        (**self).hessian(x)
    }
    fn constrain(&self, y: &[f64]) -> Vec<f64> {
        (**self).constrain(y)
    }
    fn unconstrain(&self, x: &[f64]) -> Result<Vec<f64>, InferError> {
        (**self).unconstrain(x)
    }
    fn map_logp_and_grad(&self, y: &[f64], grad: &mut [f64]) -> Result<f64, Self::Error> {
        (**self).map_logp_and_grad(y, grad)
    }
    fn logp_constrained(&self, x: &[f64], grad: &mut [f64]) -> Result<f64, Self::Error> {
        (**self).logp_constrained(x, grad)
    }
    fn hessian_constrained(&self, x: &[f64]) -> Option<Result<Vec<f64>, Self::Error>> {
        (**self).hessian_constrained(x)
    }
}

/// A simple error carrying a message, convenient for likelihoods that do
/// not need a richer error type.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct DensityError(pub String);

/// A [`LogDensity`] from a closure `f(x, grad) -> Result<log p, DensityError>`.
pub struct FnDensity<F> {
    dim: usize,
    names: Vec<String>,
    f: F,
}

impl<F> FnDensity<F>
where
    F: Fn(&[f64], &mut [f64]) -> Result<f64, DensityError>,
{
    /// Wrap `f` as a density on `R^dim` with default names `x0, x1, ...`.
    pub fn new(dim: usize, f: F) -> Self {
        Self {
            dim,
            names: (0..dim).map(|i| format!("x{i}")).collect(),
            f,
        }
    }

    /// Set the parameter names (must have length `dim`).
    pub fn with_names(mut self, names: &[&str]) -> Self {
        assert_eq!(
            names.len(),
            self.dim,
            "FnDensity::with_names: wrong number of names"
        );
        self.names = names.iter().map(|s| s.to_string()).collect();
        self
    }
}

impl<F> LogDensity for FnDensity<F>
where
    F: Fn(&[f64], &mut [f64]) -> Result<f64, DensityError>,
{
    type Error = DensityError;
    fn dim(&self) -> usize {
        self.dim
    }
    fn names(&self) -> Vec<String> {
        self.names.clone()
    }
    fn logp_and_grad(&self, x: &[f64], grad: &mut [f64]) -> Result<f64, DensityError> {
        (self.f)(x, grad)
    }
}

/// A multivariate normal `N(mean, cov)` log density (with exact Hessian),
/// used in tests and as a reference target.
#[derive(Debug, Clone)]
pub struct GaussianDensity {
    pub mean: Vec<f64>,
    /// Precision matrix `cov^{-1}`, row-major.
    pub precision: Vec<f64>,
}

impl GaussianDensity {
    /// Build from mean and covariance (row-major); fails if `cov` is not SPD.
    pub fn new(mean: Vec<f64>, cov: &[f64]) -> Result<Self, InferError> {
        let n = mean.len();
        if cov.len() != n * n {
            return Err(InferError::Dim(format!(
                "covariance has {} entries, need {}",
                cov.len(),
                n * n
            )));
        }
        let precision = crate::linalg::spd_inverse(cov, n).ok_or_else(|| {
            InferError::NotPositiveDefinite("covariance of GaussianDensity".into())
        })?;
        Ok(Self { mean, precision })
    }
}

impl LogDensity for GaussianDensity {
    type Error = DensityError;
    fn dim(&self) -> usize {
        self.mean.len()
    }
    fn logp_and_grad(&self, x: &[f64], grad: &mut [f64]) -> Result<f64, DensityError> {
        let n = self.mean.len();
        let d: Vec<f64> = x.iter().zip(&self.mean).map(|(a, b)| a - b).collect();
        let mut lp = 0.0;
        for i in 0..n {
            let row = &self.precision[i * n..(i + 1) * n];
            let pd: f64 = row.iter().zip(&d).map(|(p, v)| p * v).sum();
            grad[i] = -pd;
            lp -= 0.5 * d[i] * pd;
        }
        Ok(lp)
    }
    fn hessian(&self, _x: &[f64]) -> Option<Result<Vec<f64>, DensityError>> {
        Some(Ok(self.precision.iter().map(|v| -v).collect()))
    }
}
