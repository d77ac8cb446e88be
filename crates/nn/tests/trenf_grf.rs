//! TRENF on Gaussian random fields, where the answer is known: a linear
//! one-layer flow must learn `T(k) = 1 / sqrt(P_pix(k))`, and the full flow
//! must reach the exact Gaussian log-density of held-out maps.

use cosmodiff_nn::fourier_kernel::{filter_rows, mode_k, mode_weights};
use cosmodiff_nn::train::{LrSchedule, TrainConfig};
use cosmodiff_nn::trenf::{FieldFlow, FieldShape, TrenfConfig};
use ndarray::Array2;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

const N: usize = 64;

/// Pixel power spectrum: a power law with a turnover and a floor.
fn p_pix(k: f64) -> f64 {
    3.0 / (1.0 + k).powf(2.5) * (1.0 + (k / 4.0).powi(2)).sqrt() + 0.05
}

/// `rows` Gaussian maps with pixel power `P`: `x = F^-1[sqrt(P) F w]`.
fn maps(rows: usize, seed: u64) -> Array2<f64> {
    let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(seed);
    let l = N * N;
    let w: Vec<f64> = (0..rows * l)
        .map(|_| Normal::new(0.0, 1.0).expect("valid").sample(&mut rng))
        .collect();
    let t: Vec<f64> = (0..rows)
        .flat_map(|_| mode_k(N, 2).into_iter().map(|k| p_pix(k).sqrt()))
        .collect();
    Array2::from_shape_vec((rows, l), filter_rows(&w, &t, N, 2)).expect("shape")
}

/// Exact log-density of a map under the Gaussian field (Fourier formula).
fn exact_log_prob(x: &[f64]) -> f64 {
    let fft = cosmodiff_field::fft3::Fft3::<f64>::with_dims(N, 2);
    let l = (N * N) as f64;
    fft.forward(x)
        .iter()
        .zip(mode_weights(N, 2).iter().zip(mode_k(N, 2)))
        .map(|(xk, (w, k))| {
            let p = p_pix(k);
            -0.5 * w * (xk.norm_sqr() / (l * p) + (2.0 * std::f64::consts::PI * p).ln())
        })
        .sum()
}

fn train(epochs: usize, lr: f64) -> TrainConfig {
    TrainConfig {
        learning_rate: lr,
        batch_size: 32,
        max_epochs: epochs,
        validation_fraction: 0.1,
        patience: 10,
        schedule: LrSchedule::Cosine {
            final_fraction: 0.05,
        },
        ..Default::default()
    }
}

#[test]
fn linear_flow_learns_the_whitening_filter() {
    let x = maps(1024, 1);
    let theta = Array2::<f64>::zeros((x.nrows(), 0));
    let shape = FieldShape {
        n: N,
        dims: 2,
        channels: 1,
    };
    let cfg = TrenfConfig {
        layers: 1,
        spline: false,
        actnorm: false,
        ..Default::default()
    };
    let (flow, _) =
        FieldFlow::fit(x.view(), theta.view(), vec![], shape, cfg, train(30, 3e-3)).expect("fit");
    // Bins of unit width in |k| holding at least 20 modes of the map.
    let km = mode_k(N, 2);
    let w = mode_weights(N, 2);
    let sd = flow.config.field_sd[0];
    let mut worst: f64 = 0.0;
    for b in 1..(N / 2) {
        let count: f64 = km
            .iter()
            .zip(&w)
            .filter(|(k, _)| (**k - b as f64).abs() < 0.5)
            .map(|(_, w)| w)
            .sum();
        if count < 20.0 {
            continue;
        }
        let t = flow.radial_filters(&[], &[b as f64]).expect("filters")[0][0][0];
        // The flow whitens the standardised map x / sd.
        let rel = t / sd * p_pix(b as f64).sqrt() - 1.0;
        worst = worst.max(rel.abs());
    }
    eprintln!("largest relative error of T: {worst:.4}");
    assert!(worst < 0.02, "learned T off 1/sqrt(P) by {worst}");
}

#[test]
fn full_flow_reaches_the_exact_log_density() {
    let x = maps(1024, 2);
    let test = maps(200, 3);
    let theta = Array2::<f64>::zeros((x.nrows(), 0));
    let shape = FieldShape {
        n: N,
        dims: 2,
        channels: 1,
    };
    let (flow, _) = FieldFlow::fit(
        x.view(),
        theta.view(),
        vec![],
        shape,
        TrenfConfig::default(),
        train(12, 2e-3),
    )
    .expect("fit");
    let t0 = Array2::<f64>::zeros((test.nrows(), 0));
    let lp = flow.log_prob(test.view(), t0.view()).expect("log prob");
    let gap: f64 = test
        .outer_iter()
        .zip(&lp)
        .map(|(row, p)| exact_log_prob(row.as_slice().expect("row")) - p.logprob)
        .sum::<f64>()
        / test.nrows() as f64;
    eprintln!("excess test NLL {gap:.4} nats per map");
    assert!(
        gap < 0.1,
        "test NLL exceeds the exact one by {gap} nats per map"
    );
}
