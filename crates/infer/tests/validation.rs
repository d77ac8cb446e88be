//! Validation tests of issue 5: NUTS / HMC recover known Gaussians, R-hat and
//! ESS against analytic AR(1) values, failures become divergences or clear
//! errors, MAP + Laplace is exact on Gaussians, priors' Jacobians are right.

use cosmodiff_infer::diagnostics::{ess_bulk, ess_mean, ess_tail, rhat};
use cosmodiff_infer::*;
use rand::{rngs::ChaCha8Rng, RngExt, SeedableRng};
use rand_distr::StandardNormal;

fn quiet_nuts(chains: usize, warmup: usize, draws: usize, seed: u64) -> NutsSettings {
    NutsSettings {
        chains,
        warmup,
        draws,
        seed,
        progress: false,
        ..Default::default()
    }
}

/// Correlated covariance `S_ij = s_i s_j rho^|i-j|` with scales spanning
/// two decades.
fn test_covariance(n: usize, rho: f64) -> (Vec<f64>, Vec<f64>) {
    let s: Vec<f64> = (0..n)
        .map(|i| 10f64.powf(-1.0 + 2.0 * i as f64 / (n - 1).max(1) as f64))
        .collect();
    let mut cov = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            cov[i * n + j] = s[i] * s[j] * rho.powi((i as i32 - j as i32).abs());
        }
    }
    (s, cov)
}

fn check_gaussian_recovery(samples: &Samples, mean: &[f64], cov: &[f64], label: &str) {
    let n = mean.len();
    let summary = samples.summary();
    let m = samples.mean();
    let c = samples.covariance();
    let mut worst_mean: f64 = 0.0;
    let mut worst_var: f64 = 0.0;
    let mut worst_corr: f64 = 0.0;
    for i in 0..n {
        let sd = cov[i * n + i].sqrt();
        let ess = summary.params[i].ess_bulk;
        assert!(ess > 100.0, "{label}: ess_bulk[{i}] = {ess}");
        // Mean: Monte Carlo standard error sd / sqrt(ESS).
        let z = (m[i] - mean[i]) / (sd / ess.sqrt());
        worst_mean = worst_mean.max(z.abs());
        // Variance: relative standard error ~ sqrt(2 / ESS).
        let zv = (c[i * n + i] / cov[i * n + i] - 1.0) / (2.0 / ess).sqrt();
        worst_var = worst_var.max(zv.abs());
        for j in 0..i {
            let r_true = cov[i * n + j] / (sd * cov[j * n + j].sqrt());
            let r_est = c[i * n + j] / (c[i * n + i] * c[j * n + j]).sqrt();
            let ess_ij = ess.min(summary.params[j].ess_bulk);
            let zc = (r_est - r_true) / ((1.0 - r_true * r_true).max(0.05) / ess_ij.sqrt());
            worst_corr = worst_corr.max(zc.abs());
        }
    }
    eprintln!("{label}: worst |z| mean {worst_mean:.2}, variance {worst_var:.2}, correlation {worst_corr:.2}");
    // With 100 parameters (4950 correlations) the largest of ~N(0,1)
    // deviations stays well below these bounds.
    assert!(
        worst_mean < 4.5,
        "{label}: mean off by {worst_mean} MC standard errors"
    );
    assert!(
        worst_var < 5.0,
        "{label}: variance off by {worst_var} MC standard errors"
    );
    assert!(
        worst_corr < 5.5,
        "{label}: correlation off by {worst_corr} MC standard errors"
    );
}

#[test]
fn nuts_recovers_100d_correlated_gaussian() {
    let n = 100;
    let (_, cov) = test_covariance(n, 0.6);
    let mean: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin() * 3.0).collect();
    let target = GaussianDensity::new(mean.clone(), &cov).unwrap();
    let t0 = std::time::Instant::now();
    let samples = run_nuts(&target, &quiet_nuts(2, 500, 1000, 42)).unwrap();
    let secs = t0.elapsed().as_secs_f64();
    assert_eq!(samples.draws.shape(), &[2, 1000, n]);
    let summary = samples.summary();
    let (rmax, bulk_min, tail_min) = summary.worst();
    eprintln!(
        "100-d NUTS: {secs:.2} s, {} divergences, max R-hat {rmax:.4}, min bulk ESS {bulk_min:.0}, min tail ESS {tail_min:.0}, mean tree depth {:.2}, step size {:.3}",
        samples.divergences(),
        samples.tree_depth.iter().sum::<u64>() as f64 / 2000.0,
        samples.step_size[[0, 0]]
    );
    assert_eq!(samples.divergences(), 0);
    assert!(rmax < 1.02, "max R-hat {rmax}");
    check_gaussian_recovery(&samples, &mean, &cov, "100-d NUTS");
}

#[test]
fn hmc_recovers_2d_gaussian() {
    let cov = vec![1.0, 0.8 * 2.0, 0.8 * 2.0, 4.0];
    let mean = vec![1.0, -2.0];
    let target = GaussianDensity::new(mean.clone(), &cov).unwrap();
    let st = HmcSettings {
        chains: 2,
        warmup: 500,
        draws: 2000,
        seed: 7,
        progress: false,
        ..Default::default()
    };
    let samples = run_hmc(&target, &st).unwrap();
    let acc: f64 = samples.accept_prob.iter().sum::<f64>() / samples.accept_prob.len() as f64;
    let summary = samples.summary();
    eprintln!(
        "2-d HMC: accept {acc:.3}, step {:.3}, L {}\n{summary}",
        samples.step_size[[0, 0]],
        samples.n_leapfrog[[0, 0]]
    );
    // In 2-d the acceptance is almost a step function of the step size
    // (stable below ~0.9 for this correlation), so dual averaging settles
    // on the safe side of the target 0.8.
    assert!((0.6..0.995).contains(&acc), "mean acceptance {acc}");
    assert_eq!(samples.divergences(), 0);
    assert!(summary.worst().0 < 1.01);
    check_gaussian_recovery(&samples, &mean, &cov, "2-d HMC");
}

fn ar1_chains(m: usize, n: usize, rho: f64, seed: u64) -> Vec<Vec<f64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let s = (1.0 - rho * rho).sqrt();
    (0..m)
        .map(|_| {
            let mut x: f64 = rng.sample(StandardNormal);
            (0..n)
                .map(|_| {
                    x = rho * x + s * rng.sample::<f64, _>(StandardNormal);
                    x
                })
                .collect()
        })
        .collect()
}

/// Integrated autocorrelation time `1 + 2 sum_t corr_t` of `I(x <= q_p)`
/// for a unit Gaussian AR(1) process with coefficient `rho`.
fn indicator_tau(rho: f64, p: f64) -> f64 {
    let q = cosmodiff_infer::special::norm_ppf(p);
    let corr = |r: f64| {
        // Simpson's rule for int_0^r exp(-q^2/(1+s)) / sqrt(1-s^2) ds.
        let k = 200;
        let h = r / k as f64;
        let f = |s: f64| (-q * q / (1.0 + s)).exp() / (1.0 - s * s).sqrt();
        let mut acc = f(0.0) + f(r);
        for i in 1..k {
            acc += if i % 2 == 1 { 4.0 } else { 2.0 } * f(i as f64 * h);
        }
        acc * h / 3.0 / (2.0 * std::f64::consts::PI * p * (1.0 - p))
    };
    let mut tau = 1.0;
    let mut r = rho;
    while r.abs() > 1e-10 {
        tau += 2.0 * corr(r);
        r *= rho;
    }
    tau
}

#[test]
fn rhat_and_ess_on_ar1_chains() {
    for (rho, seed) in [(0.0, 1u64), (0.5, 2), (0.8, 3), (0.95, 4)] {
        let (m, n) = (4, 10_000);
        let chains = ar1_chains(m, n, rho, seed);
        let want = (m * n) as f64 * (1.0 - rho) / (1.0 + rho);
        let (eb, em, et) = (ess_bulk(&chains), ess_mean(&chains), ess_tail(&chains));
        let r = rhat(&chains);
        eprintln!(
            "AR(1) rho={rho}: analytic ESS {want:.0}, bulk {eb:.0}, mean {em:.0}; analytic tail ESS {:.0}, tail {et:.0}; R-hat {r:.4}",
            (m * n) as f64 / indicator_tau(rho, 0.05)
        );
        // The ESS estimator's own relative error is ~ sqrt(2 tau / N) + truncation bias.
        let tol = 0.12;
        assert!(
            (eb / want - 1.0).abs() < tol,
            "rho {rho}: bulk ESS {eb} vs {want}"
        );
        assert!(
            (em / want - 1.0).abs() < tol,
            "rho {rho}: mean ESS {em} vs {want}"
        );
        // Tail-ESS: the indicator I(x <= q_p) of a stationary Gaussian AR(1)
        // has lag-t autocorrelation
        // (Phi2(q, q; rho^t) - p^2) / (p (1-p)) with
        // dPhi2/dr = exp(-q^2/(1+r)) / (2 pi sqrt(1-r^2)).
        let want_tail = (m * n) as f64 / indicator_tau(rho, 0.05);
        assert!(
            (et / want_tail - 1.0).abs() < 0.25,
            "rho {rho}: tail ESS {et} vs {want_tail}"
        );
        assert!(r < 1.01, "rho {rho}: R-hat {r}");
    }
}

#[test]
fn rhat_flags_disagreeing_chains() {
    let mut chains = ar1_chains(4, 2000, 0.5, 11);
    // One chain shifted by one standard deviation: bulk R-hat flags it.
    let shifted: Vec<Vec<f64>> = chains
        .iter()
        .enumerate()
        .map(|(c, v)| {
            v.iter()
                .map(|x| if c == 0 { x + 1.0 } else { *x })
                .collect()
        })
        .collect();
    let r_shift = rhat(&shifted);
    // One chain three times wider: only the folded (tail) R-hat sees it.
    for x in chains[1].iter_mut() {
        *x *= 3.0;
    }
    let r_scale = rhat(&chains);
    eprintln!("R-hat: shifted mean {r_shift:.3}, inflated scale {r_scale:.3}");
    assert!(r_shift > 1.05, "shifted chains: R-hat {r_shift}");
    assert!(r_scale > 1.05, "scaled chain: R-hat {r_scale}");
    // A single chain that drifts is caught by splitting.
    let drift = vec![(0..4000)
        .map(|t| t as f64 / 4000.0 + 0.01 * ((t * 7919) % 13) as f64)
        .collect::<Vec<_>>()];
    assert!(rhat(&drift) > 1.5);
}

#[test]
fn nan_density_gives_divergences() {
    // Standard normal, but NaN beyond x0 > 1.5: trajectories that cross the
    // line fail and are reported as divergences, never as silent draws.
    let d = FnDensity::new(2, |x: &[f64], g: &mut [f64]| {
        g[0] = -x[0];
        g[1] = -x[1];
        if x[0] > 1.5 {
            Ok(f64::NAN)
        } else {
            Ok(-0.5 * (x[0] * x[0] + x[1] * x[1]))
        }
    });
    let s = run_nuts(
        &d,
        &NutsSettings {
            init_radius: 1.0,
            ..quiet_nuts(2, 200, 300, 3)
        },
    )
    .unwrap();
    eprintln!(
        "NaN wall: {} divergences; warnings {:?}",
        s.divergences(),
        s.warnings
    );
    assert!(s.divergences() > 0);
    assert!(s.warnings.iter().any(|w| w.contains("non-finite")));
    assert!(s
        .draws
        .slice(ndarray::s![.., .., 0])
        .iter()
        .all(|&v| v <= 1.5));
    let summary = s.summary();
    assert_eq!(summary.divergences, s.divergences());

    // Same for HMC.
    let st = HmcSettings {
        chains: 1,
        warmup: 200,
        draws: 300,
        seed: 1,
        progress: false,
        init_radius: 1.0,
        ..Default::default()
    };
    let h = run_hmc(&d, &st).unwrap();
    assert!(h.divergences() > 0 && !h.warnings.is_empty());
}

#[test]
fn failing_density_is_a_clear_error() {
    let always_err = FnDensity::new(3, |_x: &[f64], _g: &mut [f64]| {
        Err(DensityError("solver did not converge".into()))
    });
    match run_nuts(&always_err, &quiet_nuts(2, 10, 10, 0)) {
        Err(InferError::Init { last, .. }) => assert!(last.contains("solver did not converge")),
        other => panic!("expected Init error, got {other:?}"),
    }
    let always_nan = FnDensity::new(1, |_x: &[f64], g: &mut [f64]| {
        g[0] = 0.0;
        Ok(f64::NAN)
    });
    assert!(matches!(
        run_nuts(&always_nan, &quiet_nuts(1, 10, 10, 0)),
        Err(InferError::Init { .. })
    ));
    assert!(matches!(
        run_hmc(
            &always_nan,
            &HmcSettings {
                progress: false,
                ..Default::default()
            }
        ),
        Err(InferError::Init { .. })
    ));
    assert!(find_map(&always_err, &MapSettings::default()).is_err());

    // An error declared unrecoverable aborts sampling with that message.
    struct Fatal;
    impl LogDensity for Fatal {
        type Error = DensityError;
        fn dim(&self) -> usize {
            1
        }
        fn logp_and_grad(&self, x: &[f64], g: &mut [f64]) -> Result<f64, DensityError> {
            g[0] = -x[0];
            if x[0].abs() > 0.5 {
                Err(DensityError("config broken".into()))
            } else {
                Ok(-0.5 * x[0] * x[0])
            }
        }
        fn is_recoverable(&self, _e: &DensityError) -> bool {
            false
        }
    }
    match run_nuts(
        &Fatal,
        &NutsSettings {
            init_radius: 0.1,
            ..quiet_nuts(1, 100, 100, 0)
        },
    ) {
        Err(InferError::Density(m)) => assert!(m.contains("config broken")),
        other => panic!(
            "expected Density error, got {:?}",
            other.map(|s| s.divergences())
        ),
    }
}

#[test]
fn map_and_laplace_exact_on_gaussian() {
    let n = 5;
    let (_, cov) = test_covariance(n, 0.7);
    let mean = vec![0.3, -1.0, 2.0, 0.0, 5.0];
    let g = GaussianDensity::new(mean.clone(), &cov).unwrap();
    // Exact Hessian supplied by the density.
    let r = find_map(&g, &MapSettings::default()).unwrap();
    assert!(r.exact_hessian && r.converged, "{}", r.termination);
    for i in 0..n {
        assert!(
            (r.x[i] - mean[i]).abs() < 1e-6 * cov[i * n + i].sqrt(),
            "mean {i}: {} vs {}",
            r.x[i],
            mean[i]
        );
        for j in 0..n {
            assert!(
                (r.cov[i][j] - cov[i * n + j]).abs() < 1e-9 * cov[i * n + i].max(cov[j * n + j])
            );
        }
    }
    // Finite-difference Hessian of the gradient.
    let fd = FnDensity::new(n, |x: &[f64], gr: &mut [f64]| {
        Ok(g.logp_and_grad(x, gr).unwrap())
    });
    let r2 = find_map(&fd, &MapSettings::default()).unwrap();
    assert!(!r2.exact_hessian);
    for i in 0..n {
        assert!((r2.x[i] - mean[i]).abs() < 1e-6 * cov[i * n + i].sqrt());
        for j in 0..n {
            let rel =
                (r2.cov[i][j] - cov[i * n + j]).abs() / (cov[i * n + i] * cov[j * n + j]).sqrt();
            assert!(rel < 1e-6, "cov[{i}][{j}] rel err {rel}");
        }
    }
    // Through a Posterior with wide priors of every kind: the mode of the
    // constrained density is unchanged by the bijections (no Jacobian in
    // the MAP objective), and flat priors leave the covariance exact.
    let boxes = || {
        vec![
            Prior::Uniform {
                low: 0.0,
                high: 1.0,
            },
            Prior::Uniform {
                low: 0.5,
                high: 1.5,
            },
        ]
    };
    let lik = GaussianDensity::new(vec![0.3, 0.8], &[1e-4, 0.5e-4, 0.5e-4, 4e-4]).unwrap();
    let post = Posterior::new(lik, boxes()).unwrap();
    let r3 = find_map(&post, &MapSettings::default()).unwrap();
    assert!(
        (r3.x[0] - 0.3).abs() < 1e-7 && (r3.x[1] - 0.8).abs() < 1e-7,
        "{:?}",
        r3.x
    );
    assert!(
        (r3.cov[0][0] - 1e-4).abs() < 1e-9
            && (r3.cov[0][1] - 0.5e-4).abs() < 1e-9
            && (r3.cov[1][1] - 4e-4).abs() < 1e-9
    );
    let json = r3.to_json().unwrap();
    assert!(json.contains("\"cov\""));
    // A likelihood peaked 10 sd above the upper bound of x0's prior: the
    // optimiser stops at the bound, which is refused rather than reported
    // as a converged mode with a meaningless Laplace covariance.
    let lik = GaussianDensity::new(vec![1.1, 0.8], &[1e-4, 0.0, 0.0, 4e-4]).unwrap();
    let post = Posterior::new(lik, boxes()).unwrap();
    let e = find_map(&post, &MapSettings::default())
        .unwrap_err()
        .to_string();
    let name = &post.names()[0];
    assert!(
        e.contains(&format!("the mode in {name} lies on its prior boundary")),
        "{e}"
    );
}

#[test]
fn nuts_respects_prior_jacobians() {
    // Likelihood N(0.3, 0.2^2) for x with a U(0, 1) prior: the posterior is
    // the normal truncated to [0, 1]. Second parameter: flat likelihood with
    // a LogNormal(0.5, 0.4) prior, whose mean is exp(mu + sigma^2/2).
    // Third: truncated-normal prior on [0, inf).
    let lik = FnDensity::new(3, |x: &[f64], g: &mut [f64]| {
        g[0] = -(x[0] - 0.3) / 0.04;
        g[1] = 0.0;
        g[2] = 0.0;
        Ok(-0.5 * (x[0] - 0.3).powi(2) / 0.04)
    })
    .with_names(&["a", "b", "c"]);
    let post = Posterior::new(
        lik,
        vec![
            Prior::Uniform {
                low: 0.0,
                high: 1.0,
            },
            Prior::LogNormal {
                mu: 0.5,
                sigma: 0.4,
            },
            Prior::TruncatedNormal {
                mean: 0.0,
                sd: 1.0,
                low: 0.0,
                high: f64::INFINITY,
            },
        ],
    )
    .unwrap();
    let s = run_nuts(&post, &quiet_nuts(2, 500, 2000, 5)).unwrap();
    let sum = s.summary();
    eprintln!("{sum}");
    assert_eq!(sum.params[0].name, "a");
    let phi = |z: f64| (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let cdf = |z: f64| cosmodiff_infer::special::norm_cdf(z);
    let (al, be) = ((0.0 - 0.3) / 0.2, (1.0 - 0.3) / 0.2);
    let want = [
        0.3 + 0.2 * (phi(al) - phi(be)) / (cdf(be) - cdf(al)),
        (0.5f64 + 0.08).exp(),
        (2.0 / std::f64::consts::PI).sqrt(),
    ];
    for k in 0..3 {
        let p = &sum.params[k];
        let z = (p.mean - want[k]) / (p.sd / p.ess_bulk.sqrt());
        assert!(
            z.abs() < 4.0,
            "param {k}: mean {} vs {} (z = {z})",
            p.mean,
            want[k]
        );
    }
    assert!(s
        .draws
        .slice(ndarray::s![.., .., 0])
        .iter()
        .all(|&v| (0.0..=1.0).contains(&v)));
    assert!(s
        .draws
        .slice(ndarray::s![.., .., 1])
        .iter()
        .all(|&v| v > 0.0));
}

#[test]
fn reproducible_seeds_and_outputs() {
    let g = GaussianDensity::new(vec![0.0, 1.0], &[1.0, 0.3, 0.3, 2.0]).unwrap();
    let a = run_nuts(&g, &quiet_nuts(3, 100, 100, 9)).unwrap();
    let b = run_nuts(&g, &quiet_nuts(3, 100, 100, 9)).unwrap();
    let c = run_nuts(&g, &quiet_nuts(3, 100, 100, 10)).unwrap();
    assert_eq!(a.draws, b.draws);
    assert_ne!(a.draws, c.draws);
    // Chains differ from each other.
    assert_ne!(
        a.draws.slice(ndarray::s![0, .., ..]),
        a.draws.slice(ndarray::s![1, .., ..])
    );
    // NUTS reports each draw's mean tree acceptance, near the 0.8 target.
    assert!(a.accept_prob.iter().all(|p| (0.0..=1.0).contains(p)));
    let mean_accept = a.accept_prob.mean().unwrap();
    assert!(
        (0.6..0.99).contains(&mean_accept),
        "mean acceptance {mean_accept}"
    );
    // Outputs.
    let dir = std::env::temp_dir().join("cosmodiff_infer_outputs_test");
    std::fs::create_dir_all(&dir).unwrap();
    a.write_npz(&dir.join("draws.npz")).unwrap();
    let mut npz =
        ndarray_npy::NpzReader::new(std::fs::File::open(dir.join("draws.npz")).unwrap()).unwrap();
    let mut names = npz.names().unwrap();
    names.sort();
    assert_eq!(
        names,
        [
            "accept_prob",
            "diverging",
            "draws",
            "energy",
            "logp",
            "n_leapfrog",
            "names",
            "step_size",
            "tree_depth"
        ]
    );
    let d: ndarray::Array3<f64> = npz.by_name("draws").unwrap();
    assert_eq!(d, a.draws);
    let dv: ndarray::Array2<bool> = npz.by_name("diverging").unwrap();
    assert_eq!(dv.shape(), &[3, 100]);
    let sum = a.summary();
    sum.write_json(&dir.join("summary.json")).unwrap();
    let back: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    for key in [
        "mean", "sd", "q05", "q50", "q95", "r_hat", "ess_bulk", "ess_tail",
    ] {
        assert!(back["params"][0][key].is_number(), "{key}");
    }
    assert!(back["divergences"].is_number());
    let table = sum.to_string();
    assert!(table.contains("x0") && table.contains("ess_tail"));
}

#[test]
fn low_rank_mass_matrix_handles_strong_degeneracy() {
    // A (Omega_c, sigma8)-like posterior: sds 0.01 / 0.016, correlation -0.995.
    let (s1, s2, r) = (0.01, 0.016, -0.995);
    let cov = vec![s1 * s1, r * s1 * s2, r * s1 * s2, s2 * s2];
    let mean = vec![0.26, 0.82];
    let lik = GaussianDensity::new(mean.clone(), &cov).unwrap();
    let post = Posterior::new(
        lik,
        vec![
            Prior::Uniform {
                low: 0.1,
                high: 0.6,
            },
            Prior::Uniform {
                low: 0.4,
                high: 1.3,
            },
        ],
    )
    .unwrap();
    let mut depth = vec![];
    for mm in [MassMatrix::Diag, MassMatrix::LowRank] {
        let s = run_nuts(
            &post,
            &NutsSettings {
                mass_matrix: mm,
                ..quiet_nuts(2, 500, 1000, 3)
            },
        )
        .unwrap();
        let steps = s.n_leapfrog.iter().sum::<u64>() as f64 / s.n_leapfrog.len() as f64;
        let sum = s.summary();
        eprintln!(
            "{mm:?}: {steps:.1} leapfrog steps per draw, min bulk ESS {:.0}, {} divergences",
            sum.worst().1,
            s.divergences()
        );
        check_gaussian_recovery(&s, &mean, &cov, &format!("{mm:?}"));
        depth.push(steps);
    }
    assert!(
        depth[1] < 0.5 * depth[0],
        "low-rank should need far fewer leapfrog steps: {depth:?}"
    );
}

/// The summary flags too few effective draws and disagreeing chains
/// (Vehtari et al. 2021: R-hat > 1.01, bulk ESS < 100), and stays quiet on
/// a well-mixed run.
#[test]
fn summary_warns_on_poor_convergence() {
    let d = FnDensity::new(2, |x: &[f64], g: &mut [f64]| {
        g[0] = -x[0];
        g[1] = -x[1];
        Ok(-0.5 * (x[0] * x[0] + x[1] * x[1]))
    });
    let good = run_nuts(&d, &quiet_nuts(4, 300, 500, 1)).unwrap().summary();
    assert!(good.warnings.is_empty(), "{:?}", good.warnings);
    let short = run_nuts(&d, &quiet_nuts(2, 50, 12, 1)).unwrap().summary();
    assert!(
        short.warnings.iter().any(|w| w.contains("ess_bulk")),
        "{:?}",
        short.warnings
    );
    // two chains stuck in different places: R-hat far above 1.01
    let mut s = run_nuts(&d, &quiet_nuts(2, 100, 200, 2)).unwrap();
    s.draws
        .slice_mut(ndarray::s![1, .., 0])
        .mapv_inplace(|v| v + 5.0);
    let w = s.summary().warnings;
    assert!(w.iter().any(|w| w.contains("x0: r_hat")), "{w:?}");
}
