//! TARP, SBC and their plots on models with exact answers (the slice
//! sampler is tested in `cosmodiff_sbi::mcmc`).
//!
//! Calibration model: theta ~ N(0, I_2), x ~ N(theta, I_2), exact posterior
//! N(x / 2, I / 2). "Over-confident" shrinks the posterior sd by 2,
//! "under-confident" widens it by 2; 300 simulations x 200 draws, fixed
//! seeds.

use cosmodiff_sbi::{coverage_plot, sbc, sbc_rank_plot, tarp};
use ndarray::{Array2, Array3};
use rand::{rngs::ChaCha8Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

const SIMS: usize = 300;
const DRAWS: usize = 200;

/// True parameters and posterior draws with the sd scaled by `factor`.
fn conjugate(factor: f64, seed: u64) -> (Array3<f64>, Array2<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut z = || -> f64 { StandardNormal.sample(&mut rng) };
    let theta = Array2::from_shape_fn((SIMS, 2), |_| z());
    let x = theta.mapv(|t| t + z());
    let sd = 0.5f64.sqrt() * factor;
    let samples = Array3::from_shape_fn((SIMS, DRAWS, 2), |(i, _, k)| 0.5 * x[[i, k]] + sd * z());
    (samples, theta)
}

#[test]
fn tarp_calibrated_and_miscalibrated() {
    let (s, t) = conjugate(1.0, 1);
    let r = tarp(s.view(), t.view(), 2).unwrap();
    eprintln!(
        "exact: max dev {:.3}, atc {:+.4}, p {:.3}",
        r.max_deviation, r.atc, r.ks_pvalue
    );
    assert_eq!(r.alpha.len(), r.ecp.len());
    assert_eq!((r.alpha[0], *r.alpha.last().unwrap()), (0.0, 1.0));
    assert_eq!(*r.ecp.last().unwrap(), 1.0);
    assert!(r.ecp.windows(2).all(|w| w[0] <= w[1]));
    assert!(
        r.max_deviation < 0.08 && r.ks_pvalue > 0.01,
        "{}",
        r.max_deviation
    );
    assert!(r.atc.abs() < 0.02, "atc {}", r.atc);

    let (s, t) = conjugate(0.5, 1);
    let over = tarp(s.view(), t.view(), 2).unwrap();
    eprintln!(
        "over-confident: max dev {:.3}, atc {:+.4}, p {:.2e}",
        over.max_deviation, over.atc, over.ks_pvalue
    );
    assert!(over.max_deviation > 0.15 && over.ks_pvalue < 1e-3);
    assert!(over.atc < -0.03, "atc {}", over.atc);

    let (s, t) = conjugate(2.0, 1);
    let under = tarp(s.view(), t.view(), 2).unwrap();
    eprintln!(
        "under-confident: max dev {:.3}, atc {:+.4}, p {:.2e}",
        under.max_deviation, under.atc, under.ks_pvalue
    );
    assert!(under.max_deviation > 0.15 && under.ks_pvalue < 1e-3);
    assert!(under.atc > 0.03, "atc {}", under.atc);

    // Shape errors are reported.
    assert!(tarp(s.view(), t.slice(ndarray::s![..10, ..]), 0).is_err());
}

#[test]
fn sbc_calibrated_and_miscalibrated() {
    let (s, t) = conjugate(1.0, 3);
    let r = sbc(s.view(), t.view()).unwrap();
    eprintln!(
        "exact: ks p {:?}, chi2 p {:?}",
        r.ks_pvalues, r.chi2_pvalues
    );
    assert_eq!(r.ranks.dim(), (SIMS, 2));
    assert!(r.ranks.iter().all(|&k| k <= DRAWS));
    assert_eq!(r.bins, 20);
    assert!(r.passes(0.01), "min p {}", r.min_pvalue());
    let (counts, expected) = r.histogram(0);
    assert_eq!(counts.iter().sum::<usize>(), SIMS);
    assert!((expected.iter().sum::<f64>() - SIMS as f64).abs() < 1e-9);

    for (factor, label) in [(0.5, "over"), (2.0, "under")] {
        let (s, t) = conjugate(factor, 3);
        let r = sbc(s.view(), t.view()).unwrap();
        eprintln!(
            "{label}-confident: ks p {:?}, chi2 p {:?}",
            r.ks_pvalues, r.chi2_pvalues
        );
        assert!(!r.passes(0.01), "{label}: min p {}", r.min_pvalue());
        assert!(r.chi2_pvalues.iter().all(|&p| p < 1e-4), "{label}");
    }
    // Over-confident: ranks pile up at the ends (U shape).
    let (s, t) = conjugate(0.5, 3);
    let r = sbc(s.view(), t.view()).unwrap();
    let (counts, expected) = r.histogram(1);
    assert!(counts[0] as f64 > 2.0 * expected[0] && counts[19] as f64 > 2.0 * expected[19]);
}

#[test]
fn plots_are_written() {
    let dir = std::env::temp_dir().join("cosmodiff_sbi_plots");
    std::fs::create_dir_all(&dir).unwrap();
    let (s, t) = conjugate(0.5, 5);
    let r = tarp(s.view(), t.view(), 0).unwrap();
    let p = dir.join("coverage.png");
    coverage_plot(&p, &r, "TARP, over-confident posterior").unwrap();
    assert_eq!(&std::fs::read(&p).unwrap()[1..4], b"PNG");
    let r = sbc(s.view(), t.view()).unwrap();
    let p = dir.join("ranks.png");
    sbc_rank_plot(&p, &r, Some(&["a".into(), "b".into()]), "SBC ranks").unwrap();
    assert_eq!(&std::fs::read(&p).unwrap()[1..4], b"PNG");
}
