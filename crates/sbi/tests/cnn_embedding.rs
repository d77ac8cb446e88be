//! NPE with the CNN embedding on 2-D maps: 12x12 Gaussian-blob maps whose
//! amplitude is theta_1 and whose width is theta_2, plus white noise. The
//! CNN summaries must recover both parameters (posterior means close to the
//! truth and posterior sds well below the prior's).

use cosmodiff_infer::Prior;
use cosmodiff_sbi::*;
use ndarray::{Array2, Axis};
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

const SIDE: usize = 12;

fn maps(theta: &Array2<f64>, rng: &mut rand::rngs::ChaCha8Rng) -> Array2<f64> {
    Array2::from_shape_fn((theta.nrows(), SIDE * SIDE), |(i, p)| {
        let (r, c) = ((p / SIDE) as f64 - 5.5, (p % SIDE) as f64 - 5.5);
        let (amp, width) = (theta[[i, 0]], theta[[i, 1]]);
        let noise: f64 = StandardNormal.sample(rng);
        amp * (-(r * r + c * c) / (2.0 * width * width)).exp() + 0.2 * noise
    })
}

#[test]
fn cnn_embedding_learns_map_parameters() {
    let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(5);
    let n = 3000;
    let theta = Array2::from_shape_fn((n, 2), |(_, j)| {
        let u: f64 = rng.random();
        if j == 0 {
            0.5 + 1.5 * u
        } else {
            1.0 + 2.0 * u
        }
    });
    let x = maps(&theta, &mut rng);
    let prior = SbiPrior::new(vec![
        Prior::Uniform {
            low: 0.5,
            high: 2.0,
        },
        Prior::Uniform {
            low: 1.0,
            high: 3.0,
        },
    ])
    .unwrap();
    let mut opts = SbiOptions::new(Method::Npe);
    opts.flow = cosmodiff_nn::FlowKind::Maf;
    opts.num_transforms = 3;
    opts.embedding = cosmodiff_nn::EmbeddingKind::Cnn;
    opts.summary_dim = Some(4);
    opts.train.learning_rate = 2e-3;
    opts.train.max_epochs = 300;
    let model = SbiModel::train(theta.view(), x.view(), prior, &opts).unwrap();
    let truth = ndarray::arr2(&[[1.2, 2.0], [0.8, 1.5]]);
    let xo = maps(&truth, &mut rng);
    for k in 0..2 {
        let (s, _) = model.sample(xo.row(k), 2000, k as u64).unwrap();
        let m = s.mean_axis(Axis(0)).unwrap();
        let sd = s.std_axis(Axis(0), 1.0);
        println!("truth {:?}: posterior mean {m} sd {sd}", truth.row(k));
        // Prior sds: 0.43 and 0.58.
        assert!(
            sd[0] < 0.2 && sd[1] < 0.3,
            "posterior not informative: sd {sd}"
        );
        for j in 0..2 {
            assert!(
                (m[j] - truth[[k, j]]).abs() < 3.0 * sd[j] + 0.05,
                "theta_{j}: {} vs {}",
                m[j],
                truth[[k, j]]
            );
        }
    }
}
