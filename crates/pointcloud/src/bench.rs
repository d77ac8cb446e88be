//! Timing of the point-cloud diffusion model, for `cosmodiff pointcloud
//! bench` and its JAX twin (`bench/pointcloud/jax_twin.py`, the reference
//! GNN of point-cloud-galaxy-diffusion at the same N, k, width and depth):
//! one training step (the VDM bound of a batch of random clouds, backward
//! pass, clipping, Adam) and ELBO evaluations of one cloud at `times` fixed
//! diffusion times.

use cosmodiff_nn::bench::{measure, Timing};
use cosmodiff_nn::burn;
use cosmodiff_nn::tensor::default_device;

use burn::tensor::{Tensor, TensorData};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};

use crate::error::Result;
use crate::model::BOX_UNITS;
use crate::net::{NetConfig, ScoreNet};
use crate::schedule::{NoiseSchedule, ScheduleConfig};
use crate::vdm::{batch_times, bound_terms, normal_noise};

/// The benchmark's sizes.
#[derive(Clone, Debug)]
pub struct BenchSettings {
    /// Points per cloud.
    pub n: usize,
    /// Features per point (3 positions + scalars).
    pub features: usize,
    /// The network.
    pub net: NetConfig,
    /// Clouds per training step.
    pub batch: usize,
    /// Timed training steps.
    pub steps: usize,
    /// Diffusion times per ELBO.
    pub times: usize,
    /// Timed ELBO evaluations.
    pub evals: usize,
}

#[derive(burn::module::Module, Debug)]
struct Vdm {
    schedule: NoiseSchedule,
    net: ScoreNet,
}

/// Seconds per training step and per ELBO of one cloud.
pub fn time(s: &BenchSettings) -> Result<Timing> {
    let dev = default_device();
    let ad = dev.clone().autodiff();
    ad.seed(0);
    let model = Vdm {
        schedule: NoiseSchedule::new(&ScheduleConfig::default(), &ad)?,
        net: ScoreNet::new(&s.net, s.features, 2, BOX_UNITS, &ad)?,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let cloud = |b: usize, rng: &mut ChaCha8Rng| -> Vec<f32> {
        (0..b * s.n * s.features)
            .map(|i| {
                if i % s.features < 3 {
                    rng.random_range(-BOX_UNITS / 2.0..BOX_UNITS / 2.0) as f32
                } else {
                    rng.sample::<f32, _>(rand_distr::StandardNormal)
                }
            })
            .collect()
    };
    let x = cloud(s.batch, &mut rng);
    let x1 = cloud(1, &mut rng);
    let theta: Vec<f32> = (0..s.batch.max(s.times))
        .flat_map(|_| [0.3f32, -0.2])
        .collect();
    let (n, f, b, t) = (s.n, s.features, s.batch, s.times);
    let rng = std::cell::RefCell::new(rng);
    let timing = measure(
        model,
        s.steps.max(1),
        s.evals.max(1),
        |m: &Vdm| {
            let mut rng = rng.borrow_mut();
            let xt = Tensor::<3>::from_data(TensorData::new(x.clone(), [b, n, f]), &ad);
            let th = Tensor::<2>::from_data(TensorData::new(theta[..2 * b].to_vec(), [b, 2]), &ad);
            let eps = normal_noise([b, n, f], &mut rng, &ad);
            let u: f64 = rng.random();
            let terms = bound_terms(
                &m.schedule,
                &m.net,
                xt,
                Tensor::ones([b, n], &ad),
                th,
                batch_times(b, u, &ad),
                eps,
            );
            (terms.total().mean() / (n * f) as f64).reshape([1])
        },
        |m: &Vdm| {
            let mut rng = ChaCha8Rng::seed_from_u64(2);
            let one: Vec<f32> = (0..t).flat_map(|_| x1.iter().copied()).collect();
            let xt = Tensor::<3>::from_data(TensorData::new(one, [t, n, f]), &dev);
            let th = Tensor::<2>::from_data(TensorData::new(theta[..2 * t].to_vec(), [t, 2]), &dev);
            let eps = normal_noise([t, n, f], &mut rng, &dev);
            let terms = bound_terms(
                &m.schedule,
                &m.net,
                xt,
                Tensor::ones([t, n], &dev),
                th,
                batch_times(t, 0.5, &dev),
                eps,
            );
            let _ = cosmodiff_nn::tensor::to_vec(terms.total());
        },
    )?;
    Ok(timing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_benchmark_runs() {
        let s = BenchSettings {
            n: 32,
            features: 4,
            net: NetConfig {
                hidden: 8,
                layers: 1,
                k: 4,
                ..Default::default()
            },
            batch: 2,
            steps: 1,
            times: 2,
            evals: 1,
        };
        let t = time(&s).unwrap();
        assert!(t.train_step_s > 0.0 && t.eval_s > 0.0 && t.params > 0);
    }
}
