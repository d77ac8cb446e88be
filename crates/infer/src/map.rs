//! Maximum a posteriori estimate by L-BFGS (argmin) and the Laplace
//! approximation around it.
//!
//! The mode is searched in the sampling (unconstrained) space `y`, maximising
//! [`LogDensity::map_logp_and_grad`] — for a [`crate::Posterior`] that is
//! `log L(x(y)) + log pi(x(y))` *without* the Jacobian, so that
//! `x* = x(y*)` is the mode of the posterior density of the constrained
//! parameters. L-BFGS (Nocedal 1980; Liu & Nocedal 1989) with a
//! More-Thuente line search comes from the `argmin` crate.
//!
//! Laplace approximation: `p(x | d) ~ N(x*, Sigma)` with
//! `Sigma = H^{-1}`, `H_ij = -d^2 log p / dx_i dx_j` at `x*`, taken from
//! [`LogDensity::hessian_constrained`] when the density provides it and
//! otherwise by central differences of the exact gradient,
//! `H_:j = -(g(x + h_j e_j) - g(x - h_j e_j)) / (2 h_j)`,
//! `h_j = hessian_step * max(|x_j|, 1)`, symmetrised.

use crate::density::LogDensity;
use crate::error::InferError;
use crate::linalg;
use argmin::core::{CostFunction, Executor, Gradient, State, TerminationReason, TerminationStatus};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;

/// Settings of [`find_map`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct MapSettings {
    /// Starting point in constrained parameters (default: origin of the
    /// unconstrained space, i.e. prior midpoints / medians).
    pub init: Option<Vec<f64>>,
    pub max_iters: u64,
    /// Stop when `|grad|` falls below this.
    pub grad_tol: f64,
    /// Stop when the change of the objective falls below this.
    pub cost_tol: f64,
    /// L-BFGS memory.
    pub memory: usize,
    /// Relative step of the finite-difference Hessian.
    pub hessian_step: f64,
}

impl Default for MapSettings {
    fn default() -> Self {
        Self {
            init: None,
            max_iters: 1000,
            grad_tol: 1e-8,
            cost_tol: 1e-14,
            memory: 10,
            hessian_step: 1e-5,
        }
    }
}

/// MAP estimate and Laplace approximation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MapResult {
    pub names: Vec<String>,
    /// Mode in constrained parameters.
    pub x: Vec<f64>,
    /// Mode in the sampling (unconstrained) space.
    pub y: Vec<f64>,
    /// `log p` (likelihood + prior, no Jacobian) at the mode.
    pub logp: f64,
    /// Laplace covariance `H^{-1}` of the constrained parameters.
    pub cov: Vec<Vec<f64>>,
    /// `sqrt(diag(cov))`.
    pub sd: Vec<f64>,
    /// `H = -Hessian of log p` at the mode.
    pub neg_hessian: Vec<Vec<f64>>,
    /// Whether the Hessian came from the density (`true`) or finite differences.
    pub exact_hessian: bool,
    pub iterations: u64,
    pub converged: bool,
    pub termination: String,
}

impl MapResult {
    /// Pretty JSON (the `map.json` layout).
    pub fn to_json(&self) -> Result<String, InferError> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// Write pretty JSON to `path`.
    pub fn write_json(&self, path: &std::path::Path) -> Result<(), InferError> {
        std::fs::write(path, self.to_json()?).map_err(|e| InferError::Io {
            path: path.display().to_string(),
            source: e,
        })
    }
}

/// Last evaluation `(y, -log p, -grad)`.
type Cached = (Vec<f64>, f64, Vec<f64>);

struct Objective<'a, D: LogDensity + ?Sized> {
    d: &'a D,
    cache: RefCell<Option<Cached>>,
}

impl<D: LogDensity + ?Sized> Objective<'_, D> {
    fn eval(&self, y: &[f64]) -> Result<(f64, Vec<f64>), argmin::core::Error> {
        if let Some((cy, v, g)) = self.cache.borrow().as_ref() {
            if cy.as_slice() == y {
                return Ok((*v, g.clone()));
            }
        }
        let mut g = vec![0.0; y.len()];
        let v = self.d.map_logp_and_grad(y, &mut g).map_err(|e| {
            argmin::core::Error::msg(format!("log density failed at y = {y:?}: {e}"))
        })?;
        if !v.is_finite() || g.iter().any(|x| !x.is_finite()) {
            return Err(argmin::core::Error::msg(format!(
                "non-finite log density or gradient at y = {y:?}"
            )));
        }
        let out = (-v, g.iter().map(|x| -x).collect::<Vec<f64>>());
        *self.cache.borrow_mut() = Some((y.to_vec(), out.0, out.1.clone()));
        Ok(out)
    }
}

impl<D: LogDensity + ?Sized> CostFunction for Objective<'_, D> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, p: &Vec<f64>) -> Result<f64, argmin::core::Error> {
        Ok(self.eval(p)?.0)
    }
}

impl<D: LogDensity + ?Sized> Gradient for Objective<'_, D> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;
    fn gradient(&self, p: &Vec<f64>) -> Result<Vec<f64>, argmin::core::Error> {
        Ok(self.eval(p)?.1)
    }
}

/// Find the MAP by L-BFGS and compute the Laplace covariance.
///
/// Errors: a failing / non-finite density during the optimisation
/// ([`InferError::Optim`]), a Hessian evaluation outside the support or
/// failing ([`InferError::Density`]), or a Hessian that is not positive
/// definite ([`InferError::NotPositiveDefinite`]).
pub fn find_map<D: LogDensity + ?Sized>(
    density: &D,
    settings: &MapSettings,
) -> Result<MapResult, InferError> {
    let dim = density.dim();
    let y0 = crate::runner::init_base(density, settings.init.as_deref())?;
    let problem = Objective {
        d: density,
        cache: RefCell::new(None),
    };
    let ls = MoreThuenteLineSearch::new();
    let solver = LBFGS::new(ls, settings.memory.max(1))
        .with_tolerance_grad(settings.grad_tol)
        .map_err(|e| InferError::Settings(e.to_string()))?
        .with_tolerance_cost(settings.cost_tol)
        .map_err(|e| InferError::Settings(e.to_string()))?;
    let res = Executor::new(problem, solver)
        .configure(|s| s.param(y0).max_iters(settings.max_iters))
        .run()
        .map_err(|e| InferError::Optim(format!("{e:#}")))?;
    let state = res.state();
    let y = state
        .get_best_param()
        .cloned()
        .ok_or_else(|| InferError::Optim("L-BFGS returned no parameter".into()))?;
    let status = state.get_termination_status().clone();
    let converged = matches!(
        status,
        TerminationStatus::Terminated(
            TerminationReason::SolverConverged | TerminationReason::TargetCostReached
        )
    );
    let iterations = state.get_iter();
    let x = density.constrain(&y);
    let mut g = vec![0.0; dim];
    let logp = density
        .logp_constrained(&x, &mut g)
        .map_err(|e| InferError::Density(format!("at the MAP: {e}")))?;

    let (hess, exact) = match density.hessian_constrained(&x) {
        Some(h) => (
            h.map_err(|e| InferError::Density(format!("Hessian at the MAP: {e}")))?,
            true,
        ),
        None => (fd_hessian(density, &x, settings.hessian_step)?, false),
    };
    if hess.len() != dim * dim {
        return Err(InferError::Dim(format!(
            "Hessian has {} entries, need {}",
            hess.len(),
            dim * dim
        )));
    }
    let mut neg_h: Vec<f64> = hess.iter().map(|v| -v).collect();
    linalg::symmetrize(&mut neg_h, dim);
    let cov = linalg::spd_inverse(&neg_h, dim).ok_or_else(|| {
        InferError::NotPositiveDefinite(format!(
            "at x = {x:?}; the mode may lie on a prior boundary or the optimiser did not converge ({status})"
        ))
    })?;
    // At an interior mode the constrained gradient vanishes. Where the
    // optimiser was stopped by a prior bound (the sampling-space gradient
    // vanishes only because dx/dy does), the Newton step to the stationary
    // point, cov g, reaches beyond the bound: the Laplace approximation
    // there describes nothing.
    for i in 0..dim {
        let step: f64 = (0..dim).map(|j| cov[i * dim + j] * g[j]).sum();
        let sd = cov[i * dim + i].sqrt();
        if !(step.abs() <= sd) {
            let names = density.names();
            let name = names.get(i).map(String::as_str).unwrap_or("the parameters");
            let rise = step.abs() / sd;
            return Err(InferError::Optim(if converged {
                format!(
                    "the mode in {name} lies on its prior boundary (x = {}; the log density still rises {rise:.3} sd beyond it): the Laplace approximation does not apply there; widen the prior or check the data",
                    x[i]
                )
            } else {
                format!(
                    "the optimiser stopped {rise:.3} sd short of the mode in {name} (x = {}; {status}): raise the iteration limit, or the mode may lie on a prior boundary",
                    x[i]
                )
            }));
        }
    }
    let rows = |m: &[f64]| {
        (0..dim)
            .map(|i| m[i * dim..(i + 1) * dim].to_vec())
            .collect::<Vec<_>>()
    };
    Ok(MapResult {
        names: density.names(),
        sd: (0..dim).map(|i| cov[i * dim + i].sqrt()).collect(),
        cov: rows(&cov),
        neg_hessian: rows(&neg_h),
        x,
        y,
        logp,
        exact_hessian: exact,
        iterations,
        converged,
        termination: status.to_string(),
    })
}

/// Hessian of `logp_constrained` by central differences of its gradient.
pub fn fd_hessian<D: LogDensity + ?Sized>(
    density: &D,
    x: &[f64],
    rel_step: f64,
) -> Result<Vec<f64>, InferError> {
    let n = x.len();
    let mut h = vec![0.0; n * n];
    let mut gp = vec![0.0; n];
    let mut gm = vec![0.0; n];
    for j in 0..n {
        let step = rel_step * x[j].abs().max(1.0);
        let mut xp = x.to_vec();
        let mut xm = x.to_vec();
        xp[j] += step;
        xm[j] -= step;
        density
            .logp_constrained(&xp, &mut gp)
            .and_then(|_| density.logp_constrained(&xm, &mut gm))
            .map_err(|e| {
                InferError::Density(format!(
                    "finite-difference Hessian near the MAP ({}): {e}",
                    density.names()[j]
                ))
            })?;
        for i in 0..n {
            h[i * n + j] = (gp[i] - gm[i]) / (2.0 * step);
        }
    }
    Ok(h)
}
