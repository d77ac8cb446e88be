//! C2ST (sbibm's classifier two-sample test): null, separable and
//! analytically known cases, and the stored two_moons reference posterior.

use cosmodiff_sbi::c2st::{bayes_accuracy_gaussian_shift, c2st, c2st_with, C2stOptions};
use cosmodiff_sbi::tasks::{load_reference, read_npy_f64, Task};
use ndarray::Array2;
use rand::{rngs::ChaCha8Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use std::path::PathBuf;
use std::time::Instant;

fn gaussian(n: usize, mean: &[f64], seed: u64) -> Array2<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_fn((n, mean.len()), |(_, j)| {
        mean[j] + <StandardNormal as Distribution<f64>>::sample(&StandardNormal, &mut rng)
    })
}

#[test]
fn same_distribution_is_chance() {
    let a = gaussian(2000, &[0.0, 0.0], 1);
    let b = gaussian(2000, &[0.0, 0.0], 2);
    let v = c2st(a.view(), b.view(), 1).unwrap();
    assert!((v - 0.5).abs() < 0.02, "c2st {v}");
}

#[test]
fn separated_distributions() {
    let a = gaussian(1000, &[0.0, 0.0], 3);
    let b = gaussian(1000, &[6.0, -6.0], 4);
    let r = c2st_with(a.view(), b.view(), &C2stOptions::default()).unwrap();
    assert!(r.accuracy > 0.99, "{r:?}");
    assert_eq!(r.fold_accuracy.len(), 5);
}

/// N(0, I) vs N((0.5, 0.5), I): the Bayes-optimal accuracy is
/// Phi(Delta / 2) with Delta = |mu| = 0.707 (0.638).
#[test]
fn moderate_shift_reaches_bayes_accuracy() {
    let a = gaussian(2000, &[0.0, 0.0], 5);
    let b = gaussian(2000, &[0.5, 0.5], 6);
    let opt = bayes_accuracy_gaussian_shift(0.5f64.hypot(0.5));
    assert!((opt - 0.6382).abs() < 1e-3);
    let v = c2st(a.view(), b.view(), 1).unwrap();
    assert!((v - opt).abs() < 0.02, "c2st {v}, optimum {opt}");
}

/// Our exact two_moons posterior sampler against sbibm's reference samples
/// (10,000 vs 10,000 in 2-D, the size of an sbibm evaluation): C2ST ~ 0.5.
#[test]
fn two_moons_exact_sampler_vs_reference() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference/sbi");
    let r = load_reference(&root, Task::TwoMoons, 1).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let ours = Task::TwoMoons
        .sample_reference_posterior(r.observation.view(), 10_000, &mut rng)
        .unwrap();
    let t0 = Instant::now();
    let res = c2st_with(
        r.posterior_samples.view(),
        ours.view(),
        &C2stOptions::default(),
    )
    .unwrap();
    eprintln!(
        "two_moons obs1, exact sampler vs reference: c2st {:.4} (folds {:?}, epochs {:?}) in {:.2} s",
        res.accuracy,
        res.fold_accuracy,
        res.epochs,
        t0.elapsed().as_secs_f64()
    );
    assert!((res.accuracy - 0.5).abs() < 0.02, "{res:?}");
}

#[test]
fn rejects_bad_input() {
    let a = gaussian(100, &[0.0, 0.0], 1);
    let b = gaussian(100, &[0.0, 0.0, 0.0], 1);
    assert!(c2st(a.view(), b.view(), 1).is_err());
    let c = Array2::<f64>::zeros((100, 2));
    let e = c2st(c.view(), a.view(), 1).unwrap_err().to_string();
    assert!(e.contains("constant"), "{e}");
    let mut d = a.clone();
    d[[3, 1]] = f64::NAN;
    assert!(c2st(a.view(), d.view(), 1).is_err());
}

/// Cross-check helper (not run by default): C2ST of two `.npy` files,
/// `C2ST_A=ref.npy C2ST_B=cand.npy cargo test -p cosmodiff-infer --release
/// --test sbi_c2st -- --ignored --nocapture c2st_npy_files`
/// (see bench/c2st/ and docs/inference.md).
#[test]
#[ignore]
fn c2st_npy_files() {
    let a = read_npy_f64(std::env::var("C2ST_A").expect("C2ST_A").as_ref()).unwrap();
    let b = read_npy_f64(std::env::var("C2ST_B").expect("C2ST_B").as_ref()).unwrap();
    let seed = std::env::var("C2ST_SEED")
        .ok()
        .map_or(1, |s| s.parse().unwrap());
    let t0 = Instant::now();
    let r = c2st_with(
        a.view(),
        b.view(),
        &C2stOptions {
            seed,
            ..Default::default()
        },
    )
    .unwrap();
    println!(
        "c2st {:.4} wall_s {:.2} folds {:?} epochs {:?}",
        r.accuracy,
        t0.elapsed().as_secs_f64(),
        r.fold_accuracy,
        r.epochs
    );
}
