//! The prior of an SBI problem: one [`Prior`] per parameter dimension,
//! read from TOML (`[[param]]` blocks as in `cosmodiff sample`) or taken as
//! the bounding box of the simulated parameters.

use std::path::Path;

use cosmodiff_infer::Prior;
use ndarray::{Array2, ArrayView1, ArrayView2, Axis};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::{invalid, SbiError};

/// One named parameter and its prior.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParamPrior {
    pub name: String,
    #[serde(flatten)]
    pub prior: Prior,
}

/// Independent priors on each parameter: `p(theta) = prod_j p_j(theta_j)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SbiPrior {
    pub param: Vec<ParamPrior>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PriorFile {
    param: Vec<ParamPrior>,
}

impl SbiPrior {
    pub fn new(priors: Vec<Prior>) -> Result<Self, SbiError> {
        let param = priors
            .into_iter()
            .enumerate()
            .map(|(i, prior)| ParamPrior {
                name: format!("theta_{i}"),
                prior,
            })
            .collect();
        let p = Self { param };
        p.validate()?;
        Ok(p)
    }

    /// Parse a TOML prior file with one `[[param]]` block per dimension.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self, SbiError> {
        // "origin:line: message", without toml's multi-line source excerpt
        let f: PriorFile = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            SbiError::File {
                path: match line {
                    Some(l) => format!("{origin}:{l}"),
                    None => origin.to_string(),
                },
                msg: e.message().replace('\n', " "),
            }
        })?;
        let p = Self { param: f.param };
        p.validate().map_err(|e| SbiError::File {
            path: origin.to_string(),
            msg: e.to_string(),
        })?;
        Ok(p)
    }

    pub fn from_toml_file(path: &Path) -> Result<Self, SbiError> {
        let text = std::fs::read_to_string(path).map_err(|e| SbiError::File {
            path: path.display().to_string(),
            msg: e.to_string(),
        })?;
        Self::from_toml_str(&text, &path.display().to_string())
    }

    /// Uniform prior on the bounding box of the rows of `theta`.
    pub fn bounding_box(theta: ArrayView2<f64>) -> Result<Self, SbiError> {
        if theta.nrows() < 2 {
            return invalid("need at least two parameter rows to form a bounding-box prior");
        }
        let mut priors = vec![];
        for (j, col) in theta.axis_iter(Axis(1)).enumerate() {
            let lo = col.iter().cloned().fold(f64::INFINITY, f64::min);
            let hi = col.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            if !(lo.is_finite() && hi.is_finite() && hi > lo) {
                return invalid(format!(
                    "parameter column {j} is constant or not finite: no bounding box"
                ));
            }
            priors.push(Prior::Uniform { low: lo, high: hi });
        }
        Self::new(priors)
    }

    pub fn validate(&self) -> Result<(), SbiError> {
        if self.param.is_empty() {
            return invalid("the prior needs at least one [[param]] block");
        }
        for (i, p) in self.param.iter().enumerate() {
            p.prior.validate().map_err(|e| {
                SbiError::Invalid(format!("[[param]] #{} ({}): {e}", i + 1, p.name))
            })?;
            if self.param[..i].iter().any(|q| q.name == p.name) {
                return invalid(format!(
                    "[[param]] #{}: parameter {} listed twice",
                    i + 1,
                    p.name
                ));
            }
        }
        Ok(())
    }

    pub fn dim(&self) -> usize {
        self.param.len()
    }

    pub fn names(&self) -> Vec<String> {
        self.param.iter().map(|p| p.name.clone()).collect()
    }

    /// Whether `theta` lies in the support of every marginal.
    pub fn contains(&self, theta: ArrayView1<f64>) -> bool {
        theta.len() == self.dim()
            && self
                .param
                .iter()
                .zip(theta.iter())
                .all(|(p, &t)| p.prior.contains(t))
    }

    /// `log p(theta)` (`-inf` outside the support).
    pub fn log_prob(&self, theta: ArrayView1<f64>) -> f64 {
        self.param
            .iter()
            .zip(theta.iter())
            .map(|(p, &t)| p.prior.log_pdf(t))
            .sum()
    }

    /// `n` independent draws, `[n, dim]`.
    pub fn sample<R: Rng>(&self, n: usize, rng: &mut R) -> Array2<f64> {
        let mut out = Array2::zeros((n, self.dim()));
        for i in 0..n {
            for (j, p) in self.param.iter().enumerate() {
                out[[i, j]] = p.prior.sample(rng);
            }
        }
        out
    }

    /// Check a parameter matrix has the prior's dimension.
    pub fn check_dim(&self, cols: usize, what: &str) -> Result<(), SbiError> {
        if cols != self.dim() {
            return invalid(format!(
                "{what} has {cols} parameter columns but the prior has {}",
                self.dim()
            ));
        }
        Ok(())
    }
}
