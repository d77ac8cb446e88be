//! Throughput of the TRENF field flow (`nn::trenf`) for the benchmark
//! against its PyTorch twin (`bench/fieldflow/run.sh`): training steps and
//! log-likelihood evaluations per second on random fields.
//!
//! `cargo run --profile test -p cosmodiff-nn --example trenf_bench -- 64x64 16 20`
//! (shape, batch, steps); prints one JSON line.

use std::time::Instant;

use cosmodiff_nn::train::{LrSchedule, TrainConfig};
use cosmodiff_nn::trenf::{FieldFlow, FieldShape, TrenfConfig};
use ndarray::Array2;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let spec = args.get(1).map_or("64x64", |s| s.as_str());
    let batch: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(16);
    let steps: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(20);
    let sides: Vec<usize> = spec
        .split('x')
        .map(|s| s.parse().expect("shape like 64x64"))
        .collect();
    let shape = FieldShape {
        n: sides[0],
        dims: sides.len(),
        channels: 1,
    };
    let rows = batch * steps;
    let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(1);
    let normal = Normal::new(0.0, 1.0).expect("unit normal");
    let fields = Array2::from_shape_fn((rows, shape.len()), |_| normal.sample(&mut rng));
    let theta = Array2::from_shape_fn((rows, 2), |_| normal.sample(&mut rng));
    let train = |epochs: usize| TrainConfig {
        learning_rate: 1e-3,
        batch_size: batch,
        max_epochs: epochs,
        validation_fraction: 0.0,
        schedule: LrSchedule::Constant,
        ..Default::default()
    };
    let names = vec!["a".to_string(), "b".to_string()];
    // One epoch is `steps` training steps: the time of two epochs minus
    // one (the set-up, standardisation and the data-dependent start, is
    // not training), best of three.
    let fit = |epochs: usize| {
        let t = Instant::now();
        let (f, _) = FieldFlow::fit(
            fields.view(),
            theta.view(),
            names.clone(),
            shape,
            TrenfConfig::default(),
            train(epochs),
        )
        .expect("fit");
        (t.elapsed().as_secs_f64(), f)
    };
    let mut best_train = f64::INFINITY;
    let mut flow = None;
    for _ in 0..3 {
        let (one, _) = fit(1);
        let (two, f) = fit(2);
        best_train = best_train.min(two - one);
        flow = Some(f);
    }
    let flow = flow.expect("trained");
    let mut best_eval = f64::INFINITY;
    for _ in 0..3 {
        let t = Instant::now();
        flow.log_prob(fields.view(), theta.view())
            .expect("log prob");
        best_eval = best_eval.min(t.elapsed().as_secs_f64());
    }
    println!(
        "{{\"shape\": \"{spec}\", \"train_fields_per_s\": {:.2}, \"logprob_fields_per_s\": {:.2}}}",
        rows as f64 / best_train,
        rows as f64 / best_eval
    );
}
