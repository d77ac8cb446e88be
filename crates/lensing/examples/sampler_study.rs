//! Sampler efficiency on the exact Gaussian posterior of
//! `tests/score_posterior.rs` (32x32 maps, 4-arcmin pixels, noise 0.005):
//! error of the posterior mean (relative to the Wiener rms, with its Monte
//! Carlo floor and the excess over it) and bias of the per-pixel std, for a
//! given sampler and budget of score evaluations (docs/diffusion.md).
//!
//! ```text
//! cargo run --release -p cosmodiff-lensing --example sampler_study -- sde STEPS CORRECTORS
//! cargo run --release -p cosmodiff-lensing --example sampler_study -- hmc LEVELS STEPS_PER_LEVEL LEAPFROG
//! ```
//! `CHAINS` (environment, default 256) sets the number of chains.

use cosmodiff_field::{ClTable, Grid2};
use cosmodiff_lensing::noise::add_shape_noise;
use cosmodiff_lensing::posterior::*;
use cosmodiff_lensing::score::*;
use cosmodiff_lensing::ShearOp;
use rand::SeedableRng;

fn rms(a: &[f64]) -> f64 {
    (a.iter().map(|v| v * v).sum::<f64>() / a.len() as f64).sqrt()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4
        || !["sde", "hmc"].contains(&args[1].as_str())
        || (args[1] == "hmc" && args.len() < 5)
    {
        eprintln!(
            "usage: sampler_study sde STEPS CORRECTORS | hmc LEVELS STEPS_PER_LEVEL LEAPFROG"
        );
        std::process::exit(2);
    }
    let kind = args[1].as_str();
    let p: Vec<usize> = args[2..].iter().map(|s| s.parse().unwrap()).collect();
    let grid = Grid2::new(32, 4.0).unwrap();
    let ell: Vec<f64> = (0..200).map(|i| 10.0 * 1.05f64.powi(i)).collect();
    let cl: Vec<f64> = ell.iter().map(|l| 2e-9 * (l / 1000.0).powf(-1.5)).collect();
    let table = ClTable::new(ell, cl).unwrap();
    let prior = GaussianScore::new(grid, table.on_grid(&grid)).unwrap();
    let truth = cosmodiff_field::grf2::Grf2::from_cl(grid, &table)
        .unwrap()
        .sample(3);
    let (g1, g2) = ShearOp::new(grid).forward(&truth, None).unwrap();
    let noise = vec![0.005; grid.npix()];
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let (g1, g2) = add_shape_noise(&g1, &g2, &noise, &mut rng).unwrap();
    let lik = ShearLikelihood::new(grid, &g1, &g2, &noise, None).unwrap();
    let (m, sd) = lik.gaussian_posterior(&prior).unwrap().unwrap();
    let sde = Sde::Ve {
        sigma_min: 1e-4,
        sigma_max: 0.3,
    };
    let t = Target::posterior(&prior, &lik);
    let chains: usize = std::env::var("CHAINS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let out = match kind {
        "sde" => reverse_sde(
            &t,
            &ReverseSde {
                sde,
                steps: p[0],
                corrector_steps: p[1],
                snr: 0.16,
                chains,
                seed: 2,
                progress: false,
                antithetic: false,
            },
        )
        .unwrap(),
        _ => annealed_hmc(
            &t,
            &AnnealedHmc {
                sde,
                levels: p[0],
                steps_per_level: p[1],
                leapfrog: p[2],
                step_scale: 0.5,
                metropolis: true,
                chains,
                seed: 1,
                progress: false,
            },
        )
        .unwrap(),
    };
    let e: Vec<f64> = out.mean.iter().zip(&m).map(|(a, b)| a - b).collect();
    let bias = out.std.iter().map(|v| v / sd - 1.0).sum::<f64>() / out.std.len() as f64;
    let (err, floor) = (rms(&e) / rms(&m), sd / rms(&m) / (chains as f64).sqrt());
    println!("{kind} {:?}: evals {} mean err {:.4} (floor {:.4}, excess {:.4}) std bias {:+.4} acc {:.2}", p, out.score_evals, err, floor, (err * err - floor * floor).max(0.0).sqrt(), bias, out.acceptance);
}
