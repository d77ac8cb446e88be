//! Calibration of a trained model on held-out simulations: TARP expected
//! coverage (Lemos et al. 2023) and simulation-based calibration ranks
//! (Talts et al. 2018), computed by `cosmodiff_infer::sbi`, with their
//! figures.

use std::path::Path;

use crate::plots::{coverage_plot, sbc_rank_plot};
use crate::sbc::{sbc, SbcResult};
use crate::tarp::{tarp, TarpResult};
use ndarray::{Array3, ArrayView2};
use serde::Serialize;

use crate::error::{invalid, SbiError};
use crate::model::SbiModel;

/// TARP and SBC of one model.
pub struct Calibration {
    pub tarp: TarpResult,
    pub sbc: SbcResult,
}

/// Summary numbers written to `calibration.json`.
#[derive(Serialize)]
pub struct CalibrationSummary {
    pub n_simulations: usize,
    pub n_samples: usize,
    pub tarp_atc: f64,
    pub tarp_max_deviation: f64,
    pub tarp_mean_deviation: f64,
    pub tarp_ks_pvalue: f64,
    pub sbc_ks_pvalues: Vec<f64>,
    pub sbc_chi2_pvalues: Vec<f64>,
    pub sbc_passes_at_1_percent: bool,
}

/// Posterior draws (`n_samples` each) for every held-out `(theta, x)` pair,
/// then TARP and SBC.
pub fn calibrate(
    model: &SbiModel,
    theta: ArrayView2<f64>,
    x: ArrayView2<f64>,
    n_samples: usize,
    seed: u64,
) -> Result<Calibration, SbiError> {
    if theta.nrows() != x.nrows() || theta.nrows() < 2 {
        return invalid("calibration needs at least two paired held-out simulations");
    }
    let (n, d) = theta.dim();
    let mut s = Array3::zeros((n, n_samples, d));
    for i in 0..n {
        let (draws, _) = model.sample(x.row(i), n_samples, seed.wrapping_add(i as u64))?;
        s.index_axis_mut(ndarray::Axis(0), i).assign(&draws);
    }
    Ok(Calibration {
        tarp: tarp(s.view(), theta, seed)?,
        sbc: sbc(s.view(), theta)?,
    })
}

impl Calibration {
    pub fn summary(&self) -> CalibrationSummary {
        CalibrationSummary {
            n_simulations: self.sbc.ranks.nrows(),
            n_samples: self.sbc.n_samples,
            tarp_atc: self.tarp.atc,
            tarp_max_deviation: self.tarp.max_deviation,
            tarp_mean_deviation: self.tarp.mean_deviation,
            tarp_ks_pvalue: self.tarp.ks_pvalue,
            sbc_ks_pvalues: self.sbc.ks_pvalues.clone(),
            sbc_chi2_pvalues: self.sbc.chi2_pvalues.clone(),
            sbc_passes_at_1_percent: self.sbc.passes(0.01),
        }
    }

    /// `dir/coverage.png`, `dir/sbc.png` and `dir/calibration.json`.
    pub fn write(&self, dir: &Path, names: &[String], title: &str) -> Result<(), SbiError> {
        std::fs::create_dir_all(dir)?;
        coverage_plot(&dir.join("coverage.png"), &self.tarp, title)?;
        sbc_rank_plot(&dir.join("sbc.png"), &self.sbc, Some(names), title)?;
        std::fs::write(
            dir.join("calibration.json"),
            serde_json::to_string_pretty(&self.summary()).expect("serialisable"),
        )?;
        Ok(())
    }
}
