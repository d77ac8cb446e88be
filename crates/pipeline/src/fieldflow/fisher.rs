//! `cosmodiff fieldflow fisher`: the Fisher matrix of a field flow's
//! likelihood at a fiducial theta,
//! `F_ij = -E[d^2 ln p(x | theta) / d theta_i d theta_j]`
//! ([`FieldFlow::fisher`]), averaged over fields drawn at the fiducial
//! point: simulations (`--fields`, e.g. a `simulate density` campaign with
//! a `list` design of one cosmology) or the flow's own samples. Its inverse
//! is the smallest covariance any unbiased estimator from one field can
//! reach under the learned model (Cramer-Rao); compare it with the Fisher
//! matrix of the power spectrum (`cosmodiff fisher`) to see what the field
//! adds.

use std::path::PathBuf;

use anyhow::{bail, Result};
use cosmodiff_nn::trenf::FieldFlow;
use nalgebra::DMatrix;
use serde_json::json;

use super::{check_fields_shape, check_theta, parse_theta, read_fields};

/// `cosmodiff fieldflow fisher`.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct FisherSettings {
    /// Model directory written by `fieldflow train`.
    #[cfg_attr(feature = "cli", arg(long))]
    pub model: PathBuf,
    /// Fiducial parameters, comma-separated in the model's order, e.g. "0.3,0.8".
    #[cfg_attr(feature = "cli", arg(long, allow_hyphen_values = true))]
    pub theta: String,
    /// Fields simulated at the fiducial theta (.npz as `fieldflow train` reads); default: the flow's own samples.
    #[cfg_attr(feature = "cli", arg(long))]
    pub fields: Option<PathBuf>,
    /// Flow samples to average over when no --fields are given.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 64))]
    pub samples: usize,
    /// Finite-difference step as a fraction of each parameter's training-set sd.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0.05))]
    pub step: f64,
    /// Random seed of the flow samples.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0))]
    pub seed: u64,
    /// Output JSON: names, theta, fisher, covariance, sd, fom (the last three null when F is not positive definite).
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
}

/// The Fisher matrix with what follows from it.
pub struct FieldFisher {
    /// `F` `[p, p]`.
    pub fisher: ndarray::Array2<f64>,
    /// `fisher.json`.
    pub summary: serde_json::Value,
}

/// Fisher matrix of the flow likelihood at `--theta`, written as JSON.
pub fn fisher(s: &FisherSettings) -> Result<FieldFisher> {
    let flow = FieldFlow::load(&s.model)?;
    let theta = parse_theta(&s.theta)?;
    check_theta(&flow, &theta, "--theta")?;
    if !(s.step.is_finite() && s.step > 0.0 && s.step <= 0.5) {
        bail!("--step {}: must be in (0, 0.5]", s.step);
    }
    let c = &flow.config;
    let (fields, source) = match &s.fields {
        Some(path) => {
            let f = read_fields(path)?;
            check_fields_shape(&flow, &f, &format!("--fields {}", path.display()))?;
            crate::output::refuse_overwriting_inputs("--out", &s.out, &[("--fields", path)])?;
            (
                f.fields,
                format!("{} fields of {}", f.theta.nrows(), path.display()),
            )
        }
        None => {
            if s.samples == 0 {
                bail!("--samples must be at least 1");
            }
            let t = ndarray::Array2::from_shape_fn((s.samples, theta.len()), |(_, j)| theta[j]);
            (
                flow.sample(t.view(), s.seed)?,
                format!("{} flow samples", s.samples),
            )
        }
    };
    let step: Vec<f64> = c.theta_sd.iter().map(|sd| s.step * sd).collect();
    let f = flow.fisher(&theta, fields.view(), &step)?;
    let p = theta.len();
    let fm = DMatrix::from_fn(p, p, |i, j| f[[i, j]]);
    // A Fisher matrix is positive definite; an estimate that is not (too
    // few fields, a flow that barely depends on theta) is still written,
    // without the quantities that need its inverse.
    let cov = fm.clone().cholesky().map(|c| c.inverse());
    let rows = |m: &DMatrix<f64>| -> Vec<Vec<f64>> {
        (0..p)
            .map(|i| (0..p).map(|j| m[(i, j)]).collect())
            .collect()
    };
    let sd: Option<Vec<f64>> = cov
        .as_ref()
        .map(|c| (0..p).map(|j| c[(j, j)].sqrt()).collect());
    let fom = cov.as_ref().map(|_| fm.determinant().sqrt());
    let summary = json!({
        "names": c.theta_names,
        "theta": theta,
        "fisher": rows(&fm),
        "covariance": cov.as_ref().map(rows),
        "sd": sd,
        "fom": fom,
        "fields": source,
        "step": step,
    });
    crate::output::write_bytes(&s.out, serde_json::to_string_pretty(&summary)?.as_bytes())?;
    let at = c
        .theta_names
        .iter()
        .zip(&theta)
        .map(|(k, v)| format!("{k} = {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    match (&sd, fom) {
        (Some(sd), Some(fom)) => println!(
            "flow Fisher matrix at {at} from {source}: marginal sd {}; FoM {fom:.1}",
            c.theta_names
                .iter()
                .zip(sd)
                .map(|(k, v)| format!("{k} {v:.4}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => {
            log::warn!("the flow's Fisher matrix at {at} is not positive definite (more fields, a larger --step, or a better-trained flow?)");
            println!("flow Fisher matrix at {at} from {source}: not positive definite; written without its inverse");
        }
    }
    Ok(FieldFisher { fisher: f, summary })
}
