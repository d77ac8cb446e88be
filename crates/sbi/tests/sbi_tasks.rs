//! The sbibm benchmark tasks against the numpy specification
//! (`shared/reference/sbi/tasks_numpy.py`) and the stored reference
//! posteriors.

use cosmodiff_infer::special::norm_cdf;
use cosmodiff_infer::Prior;
use cosmodiff_sbi::tasks::{load_reference, Task};
use ndarray::{arr1, Array1, Array2, Axis};
use rand::{rngs::ChaCha8Rng, SeedableRng};
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference/sbi")
}

#[test]
fn names_dims_priors() {
    for t in Task::ALL {
        assert_eq!(Task::from_name(t.name()).unwrap(), t);
        assert_eq!(t.priors().len(), t.dim_theta());
    }
    let e = Task::from_name("lotka_volterra").unwrap_err().to_string();
    assert!(e.contains("two_moons") && e.contains("slcp"), "{e}");
    let dims: Vec<(usize, usize)> = Task::ALL
        .iter()
        .map(|t| (t.dim_theta(), t.dim_x()))
        .collect();
    assert_eq!(dims, vec![(2, 2), (10, 10), (2, 2), (5, 8)]);
    assert_eq!(
        Task::GaussianLinear.priors()[3],
        Prior::Normal {
            mean: 0.0,
            sd: 0.1f64.sqrt()
        }
    );
    // Prior draws: inside the support, right moments.
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let th = Task::Slcp.sample_prior(50_000, &mut rng);
    assert!(th.iter().all(|v| v.abs() <= 3.0));
    let sd = th.std_axis(Axis(0), 1.0);
    assert!(
        sd.iter().all(|s| (s - 3.0 / 3f64.sqrt()).abs() < 0.02),
        "{sd}"
    );
}

/// Simulator moments at a fixed theta vs the numpy specification: the
/// expected values were produced once by `tasks_numpy.py`'s simulators
/// with `np.random.default_rng(12345)` and 400,000 simulations (script in
/// docs/inference.md, "SBI support"), and, where written below, agree with
/// the analytic moments.
#[test]
fn simulator_moments_match_numpy_spec() {
    // (task, theta, mean of x, variance of x)
    type Case = (Task, Vec<f64>, Vec<f64>, Vec<f64>);
    let cases: Vec<Case> = vec![
        (
            Task::TwoMoons,
            vec![0.3, -0.4],
            vec![0.242949, -0.495052],
            vec![0.031552, 0.071109],
        ),
        (
            Task::GaussianLinear,
            (0..10).map(|i| -0.3 + 0.6 * i as f64 / 9.0).collect(),
            (0..10).map(|i| -0.3 + 0.6 * i as f64 / 9.0).collect(),
            vec![0.1f64.sqrt(); 10],
        ),
        (
            Task::GaussianMixture,
            vec![1.5, -2.0],
            vec![1.50196, -2.000999],
            vec![0.711724, 0.708002],
        ),
        (
            Task::Slcp,
            vec![0.7, -1.1, -1.2, 0.9, 0.6],
            vec![
                0.698761, -1.09975, 0.698219, -1.099128, 0.699685, -1.101662, 0.697393, -1.101609,
            ],
            vec![
                1.441888, 0.810403, 1.439499, 0.810359, 1.44098, 0.810422, 1.443068, 0.811908,
            ],
        ),
    ];
    let n = 200_000;
    let n_np = 400_000.0;
    for (task, theta, mean_np, sd_np) in cases {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let th = Array2::from_shape_fn((n, theta.len()), |(_, j)| theta[j]);
        let x = task.simulate(th.view(), &mut rng);
        assert_eq!(x.ncols(), task.dim_x());
        let m = x.mean_axis(Axis(0)).unwrap();
        let s = x.std_axis(Axis(0), 1.0);
        for j in 0..task.dim_x() {
            let se = sd_np[j] * (1.0 / n as f64 + 1.0 / n_np).sqrt();
            assert!(
                (m[j] - mean_np[j]).abs() < 5.0 * se,
                "{} mean[{j}] {} vs numpy {}",
                task.name(),
                m[j],
                mean_np[j]
            );
            // Mixtures have heavy tails: allow 1% on the standard deviation.
            assert!(
                (s[j] / sd_np[j] - 1.0).abs() < 0.01,
                "{} sd[{j}] {} vs numpy {}",
                task.name(),
                s[j],
                sd_np[j]
            );
        }
        if task == Task::Slcp {
            // Analytic: correlation tanh(theta_5) within each draw, sd theta_3^2, theta_4^2.
            let c = (&x.column(0) - m[0]).dot(&(&x.column(1) - m[1])) / (n as f64 * s[0] * s[1]);
            assert!((c - 0.6f64.tanh()).abs() < 0.01, "slcp correlation {c}");
            assert!((s[0] - 1.44).abs() < 0.01 && (s[1] - 0.81).abs() < 0.01);
        }
        if task == Task::TwoMoons {
            // Analytic mean: E[r cos a] + 0.25 - |t1 + t2|/sqrt 2 with E cos a = 2/pi.
            let mx = 0.1 * 2.0 / std::f64::consts::PI + 0.25 - 0.1 / 2f64.sqrt();
            assert!((m[0] - mx).abs() < 3e-4, "{} vs {mx}", m[0]);
        }
    }
}

/// `slcp_loglik` of the numpy spec at three (theta, x) pairs, x the stored
/// observations 1-3 (printed with `repr` from `tasks_numpy.slcp_loglik`).
#[test]
fn slcp_loglik_matches_numpy_spec() {
    let xs = [
        vec![
            2.3718783855438232,
            0.4994741678237915,
            9.931434631347656,
            1.713691234588623,
            -10.436423301696777,
            -1.9067792892456055,
            -1.2343777418136597,
            -0.09735000133514404,
        ],
        vec![
            -0.6645210385322571,
            -2.9279308319091797,
            -16.491470336914062,
            4.061069965362549,
            4.232152938842773,
            -4.652276992797852,
            -4.992435455322266,
            -1.5655215978622437,
        ],
        vec![
            3.5023372173309326,
            5.2547221183776855,
            8.685450553894043,
            9.99532699584961,
            0.4078233242034912,
            -5.711157321929932,
            10.605566024780273,
            12.69577407836914,
        ],
    ];
    let thetas = [
        [0.7, -1.1, -1.2, 0.9, 0.6],
        [-2.5, 1.3, 0.4, -0.8, -1.7],
        [0.1, 0.2, 2.1, -1.9, 2.9],
    ];
    let expected = [-70.30136327009279, -34025.007433312225, -227.1251371626311];
    let reference = load_reference(&root(), Task::Slcp, 1).unwrap();
    assert_eq!(reference.observation[0] as f32, xs[0][0] as f32);
    for ((x, t), e) in xs.iter().zip(&thetas).zip(expected) {
        let v = Task::Slcp
            .log_likelihood(arr1(t).view(), arr1(x).view())
            .unwrap();
        // 1e-10 relative (numpy inverts S by LU, we in closed form).
        assert!((v - e).abs() < 1e-10 * e.abs(), "{v} vs {e}");
    }
    assert!(Task::TwoMoons
        .log_likelihood(arr1(&[0.0, 0.0]).view(), arr1(&[0.0, 0.0]).view())
        .is_none());
}

#[test]
fn gaussian_likelihoods_are_normalised_densities() {
    // gaussian_linear: product of N(x_j; theta_j, 0.1).
    let t = Array1::linspace(-0.2, 0.3, 10);
    let x = Array1::linspace(0.1, -0.1, 10);
    let v = Task::GaussianLinear
        .log_likelihood(t.view(), x.view())
        .unwrap();
    let direct: f64 = t
        .iter()
        .zip(&x)
        .map(|(a, b)| {
            -0.5 * (a - b) * (a - b) / 0.1 - 0.5 * (2.0 * std::f64::consts::PI * 0.1).ln()
        })
        .sum();
    assert!((v - direct).abs() < 1e-12);
    // gaussian_mixture integrates to one over x (midpoint rule on [-8, 8]^2).
    let th = arr1(&[0.3, -0.2]);
    let (h, n) = (0.02, 800);
    let mut total = 0.0;
    for i in 0..n {
        for j in 0..n {
            let x = arr1(&[-8.0 + (i as f64 + 0.5) * h, -8.0 + (j as f64 + 0.5) * h]);
            total += Task::GaussianMixture
                .log_likelihood(th.view(), x.view())
                .unwrap()
                .exp()
                * h
                * h;
        }
    }
    assert!((total - 1.0).abs() < 1e-6, "{total}");
}

/// Moments of N(mu, s^2) truncated to [-b, b].
fn truncated_moments(mu: f64, s: f64, b: f64) -> (f64, f64, f64) {
    let phi = |z: f64| (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let (lo, hi) = ((-b - mu) / s, (b - mu) / s);
    let z = norm_cdf(hi) - norm_cdf(lo);
    let m = mu + s * (phi(lo) - phi(hi)) / z;
    let var = s * s * (1.0 + (lo * phi(lo) - hi * phi(hi)) / z - ((phi(lo) - phi(hi)) / z).powi(2));
    (z, m, var)
}

/// Analytic posteriors of gaussian_linear (N(x/2, 0.05 I)) and
/// gaussian_mixture (the two-component mixture truncated to the prior box)
/// against the stored reference samples of observations 1-5.
#[test]
fn analytic_posteriors_match_reference_samples() {
    for obs in 1..=5 {
        let r = load_reference(&root(), Task::GaussianLinear, obs).unwrap();
        assert_eq!(r.posterior_samples.dim(), (10_000, 10));
        assert_eq!(r.true_parameters.len(), 10);
        let m = r.posterior_samples.mean_axis(Axis(0)).unwrap();
        let s = r.posterior_samples.std_axis(Axis(0), 1.0);
        for j in 0..10 {
            let (pm, ps) = (r.observation[j] / 2.0, 0.05f64.sqrt());
            assert!(
                (m[j] - pm).abs() < 5.0 * ps / 100.0,
                "GL obs{obs} mean[{j}]"
            );
            assert!(
                (s[j] / ps - 1.0).abs() < 0.035,
                "GL obs{obs} sd[{j}] {}",
                s[j]
            );
        }

        let r = load_reference(&root(), Task::GaussianMixture, obs).unwrap();
        let m = r.posterior_samples.mean_axis(Axis(0)).unwrap();
        let s = r.posterior_samples.std_axis(Axis(0), 1.0);
        // Component weights prop. to 0.5 x the box mass of each component.
        let comps: Vec<[(f64, f64, f64); 2]> = [1.0, 0.1]
            .iter()
            .map(|&sc| [0, 1].map(|d| truncated_moments(r.observation[d], sc, 10.0)))
            .collect();
        let w: Vec<f64> = comps.iter().map(|c| c[0].0 * c[1].0).collect();
        let wsum: f64 = w.iter().sum();
        for d in 0..2 {
            let mean: f64 = (0..2).map(|k| w[k] / wsum * comps[k][d].1).sum();
            let second: f64 = (0..2)
                .map(|k| w[k] / wsum * (comps[k][d].2 + comps[k][d].1.powi(2)))
                .sum();
            let sd = (second - mean * mean).sqrt();
            assert!(
                (m[d] - mean).abs() < 5.0 * sd / 100.0,
                "GM obs{obs} mean[{d}] {} vs {mean}",
                m[d]
            );
            assert!(
                (s[d] / sd - 1.0).abs() < 0.04,
                "GM obs{obs} sd[{d}] {} vs {sd}",
                s[d]
            );
        }
    }
}

/// Our exact posterior samplers reproduce the stored reference posteriors'
/// moments (two_moons: sbibm's inverse-simulator sampler).
#[test]
fn reference_posterior_samplers_match_stored_samples() {
    for task in [Task::TwoMoons, Task::GaussianMixture, Task::GaussianLinear] {
        for obs in [1, 3] {
            let r = load_reference(&root(), task, obs).unwrap();
            let mut rng = ChaCha8Rng::seed_from_u64(obs as u64);
            let ours = task
                .sample_reference_posterior(r.observation.view(), 40_000, &mut rng)
                .unwrap();
            let (m1, s1) = (
                ours.mean_axis(Axis(0)).unwrap(),
                ours.std_axis(Axis(0), 1.0),
            );
            let (m2, s2) = (
                r.posterior_samples.mean_axis(Axis(0)).unwrap(),
                r.posterior_samples.std_axis(Axis(0), 1.0),
            );
            for j in 0..task.dim_theta() {
                let se = s2[j] * (1.0 / 40_000.0 + 1.0 / 10_000.0f64).sqrt();
                assert!(
                    (m1[j] - m2[j]).abs() < 5.0 * se,
                    "{} obs{obs} mean[{j}]",
                    task.name()
                );
                assert!(
                    (s1[j] / s2[j] - 1.0).abs() < 0.04,
                    "{} obs{obs} sd[{j}]",
                    task.name()
                );
            }
            // log_prior is finite on every draw.
            assert!(ours
                .outer_iter()
                .all(|t| task.log_prior(t.as_slice().unwrap()).is_finite()));
        }
    }
    assert!(Task::Slcp
        .sample_reference_posterior(
            ndarray::Array1::zeros(8).view(),
            1,
            &mut ChaCha8Rng::seed_from_u64(0)
        )
        .is_none());
}

#[test]
fn load_reference_errors() {
    let e = load_reference(&root(), Task::TwoMoons, 6)
        .unwrap_err()
        .to_string();
    assert!(e.contains("1 to 5"), "{e}");
    let e = load_reference(&root().join("nope"), Task::TwoMoons, 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("observations.npy"), "{e}");
    let r = load_reference(&root(), Task::TwoMoons, 1).unwrap();
    assert!((r.posterior_samples.mean_axis(Axis(0)).unwrap()[0] + 0.11567).abs() < 1e-4);
}
