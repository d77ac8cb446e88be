//! PNG figures of the calibration diagnostics, drawn with
//! `cosmodiff-plot`'s [`LinePlot`].

use crate::error::SbiError;
use crate::sbc::SbcResult;
use crate::tarp::TarpResult;
use cosmodiff_plot::lines::{LinePlot, Series};
use std::path::Path;

/// TARP coverage plot: expected coverage probability against credibility
/// level, with the diagonal of a calibrated posterior (curves above the
/// diagonal at high credibility: under-confident; below: over-confident).
pub fn coverage_plot(path: &Path, tarp: &TarpResult, title: &str) -> Result<(), SbiError> {
    let diag = [0.0, 1.0];
    let label = format!(
        "TARP (max dev {:.3}, ATC {:+.3})",
        tarp.max_deviation, tarp.atc
    );
    LinePlot::new(title, "credibility level alpha", "expected coverage")
        .add(Series::line("ideal", &diag, &diag))
        .add(Series::line(&label, &tarp.alpha, &tarp.ecp))
        .save(path)?;
    Ok(())
}

/// SBC rank histograms, one step curve per dimension (counts per bin,
/// `names[k]` as labels when given), with the expected count under
/// uniformity and its 99% band (`E +- 2.58 sqrt(E)`).
pub fn sbc_rank_plot(
    path: &Path,
    sbc: &SbcResult,
    names: Option<&[String]>,
    title: &str,
) -> Result<(), SbiError> {
    let dim = sbc.ranks.ncols();
    let b = sbc.bins;
    let l1 = (sbc.n_samples + 1) as f64;
    let mut plot = LinePlot::new(title, "normalised rank r / (L + 1)", "simulations per bin");
    let (_, expected) = sbc.histogram(0);
    let mean_e = expected.iter().sum::<f64>() / b as f64;
    let band = 2.58 * mean_e.sqrt();
    for (label, v) in [
        ("expected", mean_e),
        ("99% band", mean_e - band),
        ("", mean_e + band),
    ] {
        plot = plot.add(Series::line(label, &[0.0, 1.0], &[v, v]));
    }
    for k in 0..dim {
        let (counts, _) = sbc.histogram(k);
        // Bin edges in normalised rank: bin c holds ranks with floor(r b / L1) = c.
        let edge = |c: usize| ((c * sbc.n_samples.saturating_add(1)).div_ceil(b)) as f64 / l1;
        let (mut xs, mut ys) = (vec![], vec![]);
        for (c, &n) in counts.iter().enumerate() {
            xs.extend([edge(c), edge(c + 1)]);
            ys.extend([n as f64, n as f64]);
        }
        let label = names
            .and_then(|n| n.get(k).cloned())
            .unwrap_or_else(|| format!("theta_{k}"));
        plot = plot.add(Series::line(&label, &xs, &ys));
    }
    plot.save(path)?;
    Ok(())
}
