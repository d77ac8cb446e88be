//! Throughput check on a 100-d correlated Gaussian: NUTS vs plain HMC.
//! `cargo run --release -p cosmodiff-infer --example gaussian_bench`

use cosmodiff_infer::*;

fn main() -> Result<(), InferError> {
    let n = 100;
    let s: Vec<f64> = (0..n)
        .map(|i| 10f64.powf(-1.0 + 2.0 * i as f64 / (n - 1) as f64))
        .collect();
    let mut cov = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            cov[i * n + j] = s[i] * s[j] * 0.6f64.powi((i as i32 - j as i32).abs());
        }
    }
    let target = GaussianDensity::new(vec![0.0; n], &cov)?;
    let nuts = run_nuts(
        &target,
        &NutsSettings {
            chains: 4,
            warmup: 500,
            draws: 1000,
            seed: 1,
            progress: false,
            ..Default::default()
        },
    )?;
    let hmc = run_hmc(
        &target,
        &HmcSettings {
            chains: 4,
            warmup: 500,
            draws: 1000,
            seed: 1,
            progress: false,
            ..Default::default()
        },
    )?;
    for s in [&nuts, &hmc] {
        let sum = s.summary();
        let (r, b, t) = sum.worst();
        let grads: u64 = s.n_leapfrog.iter().sum();
        println!(
            "{}: {:.2} s, max R-hat {r:.4}, min bulk ESS {b:.0}, min tail ESS {t:.0}, min bulk ESS/s {:.0}, {} divergences, {:.1} leapfrog steps/draw",
            s.sampler,
            s.elapsed_s,
            b / s.elapsed_s,
            s.divergences(),
            grads as f64 / s.n_leapfrog.len() as f64
        );
    }
    Ok(())
}
