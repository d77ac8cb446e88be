//! The sbi_lens log-normal simulator reproduces its input spectra: the
//! mean binned auto and cross C_ell of 64 noiseless LSST-Y10 maps at the
//! fiducial cosmology against the theory (the simulator's per-mode C_ell
//! averaged over each bin), chi^2 per pair over the benchmark's 97 ell bins
//! with the simulated scatter, p > 1e-3 for all 15 pairs.
//!
//! 64, not the 20 the issue names: the per-bin power of these skewed
//! (log-normal, lambda = 0.007 in the first bin) fields has a skewed
//! distribution, and a variance estimated from 20 draws of it inflates
//! chi^2 (p ~ 1e-6 for pair (0, 0) with 20 maps; all p in [0.36, 0.63]
//! with 64, and mean/theory within 3% in every bin).

use cosmodiff_pipeline::lensing_cosmology::cl::ClMaps;
use cosmodiff_pipeline::lensing_cosmology::{FieldModel, Setup, SetupName};
use statrs::distribution::{ChiSquared, ContinuousCDF};

#[test]
fn lsst_y10_mean_spectra_match_theory() {
    let model = FieldModel::new(Setup::new(SetupName::LsstY10).unwrap()).unwrap();
    let s = &model.setup;
    let (np, nb) = (s.npix * s.npix, s.n_bins());
    let reps = 64;
    let zs: Vec<Vec<Vec<f64>>> = (0..reps)
        .map(|r| {
            (0..nb)
                .map(|b| cosmodiff_field::grf2::white_noise(np, 1000 + (r * nb + b) as u64))
                .collect()
        })
        .collect();
    let maps = model.kappa_many(&s.fiducial, &zs).unwrap();
    let cl = ClMaps::new(&model, &maps[0]).unwrap();
    let spectra: Vec<Vec<f64>> = maps.iter().map(|m| cl.measure(m).unwrap()).collect();
    let (mut theory, _) = cl.mean(&s.fiducial).unwrap();
    let nk = cl.n_ell_bins();
    let prs = cosmodiff_lensing::tomo_lognormal::pairs(nb);
    for (p, &(i, j)) in prs.iter().enumerate() {
        if i == j {
            for t in &mut theory[p * nk..(p + 1) * nk] {
                *t -= cl.noise_power()[i];
            }
        }
    }
    let mut worst = (1.0f64, 0usize);
    for p in 0..prs.len() {
        let mut chi2 = 0.0;
        for b in 0..nk {
            let k = p * nk + b;
            let v: Vec<f64> = spectra.iter().map(|c| c[k]).collect();
            let m = v.iter().sum::<f64>() / reps as f64;
            let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (reps as f64 - 1.0);
            chi2 += (m - theory[k]).powi(2) / (var / reps as f64);
        }
        let pval = 1.0 - ChiSquared::new(nk as f64).unwrap().cdf(chi2);
        println!(
            "pair {:?}: chi2 {chi2:.1} for {nk} bins, p = {pval:.3}",
            prs[p]
        );
        if pval < worst.0 {
            worst = (pval, p);
        }
    }
    assert!(
        worst.0 > 1e-3,
        "pair {:?}: p = {:.2e}",
        prs[worst.1],
        worst.0
    );
}
