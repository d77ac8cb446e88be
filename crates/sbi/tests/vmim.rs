//! Learned summaries (VMIM): NPE with an MLP embedding compresses a
//! 30-dimensional data vector to 2 summaries that carry the information on
//! theta. Data: x_k = theta_1 a_k + theta_2 b_k + noise, with fixed random
//! directions a, b; the exact posterior is Gaussian (linear model), so the
//! NPE posterior sd must match it and the summaries must be (nearly) a linear
//! function of the sufficient statistic.

use cosmodiff_infer::Prior;
use cosmodiff_sbi::*;
use ndarray::{Array1, Array2, Axis};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal, StandardNormal};

#[test]
fn vmim_summaries_are_sufficient_for_a_linear_model() {
    let (n, dx, sn) = (4000, 30, 0.5);
    let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(11);
    let a: Array1<f64> = (0..dx).map(|_| StandardNormal.sample(&mut rng)).collect();
    let b: Array1<f64> = (0..dx).map(|_| StandardNormal.sample(&mut rng)).collect();
    let unit = Normal::new(0.0, 1.0).unwrap();
    let theta = Array2::from_shape_fn((n, 2), |_| unit.sample(&mut rng));
    let sim = |th: &Array2<f64>, rng: &mut rand::rngs::ChaCha8Rng| {
        Array2::from_shape_fn((th.nrows(), dx), |(i, k)| {
            th[[i, 0]] * a[k] + th[[i, 1]] * b[k] + sn * unit.sample(rng)
        })
    };
    let x = sim(&theta, &mut rng);
    let prior = SbiPrior::new(vec![Prior::Normal { mean: 0.0, sd: 1.0 }; 2]).unwrap();
    let mut opts = SbiOptions::new(Method::Npe);
    opts.flow = cosmodiff_nn::FlowKind::Maf;
    opts.num_transforms = 3;
    opts.embedding = cosmodiff_nn::EmbeddingKind::Mlp;
    opts.summary_dim = Some(2);
    opts.train.learning_rate = 2e-3;
    let model = SbiModel::train(theta.view(), x.view(), prior, &opts).unwrap();

    // Exact posterior covariance: (I + M^T M / sn^2)^-1 with M = [a b].
    let (aa, ab, bb) = (
        a.dot(&a) / (sn * sn) + 1.0,
        a.dot(&b) / (sn * sn),
        b.dot(&b) / (sn * sn) + 1.0,
    );
    let det = aa * bb - ab * ab;
    let exact_sd = [(bb / det).sqrt(), (aa / det).sqrt()];
    let th_o = ndarray::arr2(&[[0.4, -0.7]]);
    let xo = sim(&th_o, &mut rng);
    let (s, _) = model.sample(xo.row(0), 4000, 1).unwrap();
    let sd = s.std_axis(Axis(0), 1.0);
    println!("posterior sd {sd:?}, exact {exact_sd:?}");
    for j in 0..2 {
        assert!(
            (sd[j] / exact_sd[j] - 1.0).abs() < 0.25,
            "sd[{j}] {} vs {}",
            sd[j],
            exact_sd[j]
        );
    }

    // The summaries of fresh data predict theta (R^2 of a linear fit close
    // to the Bayes limit 1 - posterior variance / prior variance; the
    // summaries may be mildly nonlinear in theta, hence 0.05 of slack,
    // whereas uninformative summaries give R^2 near 0).
    let th_t = Array2::from_shape_fn((1000, 2), |_| unit.sample(&mut rng));
    let xt = sim(&th_t, &mut rng);
    let f = model.summaries(xt.view()).unwrap();
    assert_eq!(f.dim(), (1000, 2));
    for j in 0..2 {
        let r2 = linear_r2(&f, &th_t.column(j).to_owned());
        let limit = 1.0 - exact_sd[j].powi(2);
        println!("theta_{j}: R^2 of a linear fit on the summaries {r2:.4} (limit {limit:.4})");
        assert!(
            r2 > limit - 0.05,
            "theta_{j}: R^2 {r2} below {limit} - 0.05"
        );
    }
}

/// R^2 of the least-squares fit y ~ c + F w.
fn linear_r2(f: &Array2<f64>, y: &Array1<f64>) -> f64 {
    let n = f.nrows();
    let mut a = Array2::ones((n, f.ncols() + 1));
    a.slice_mut(ndarray::s![.., 1..]).assign(f);
    let ata = a.t().dot(&a);
    let aty = a.t().dot(y);
    let k = ata.nrows();
    // Solve by Gaussian elimination (k = 3).
    let mut m = ata.clone();
    let mut v = aty.clone();
    for c in 0..k {
        let p = m[[c, c]];
        for j in 0..k {
            m[[c, j]] /= p;
        }
        v[c] /= p;
        for r in 0..k {
            if r != c {
                let fct = m[[r, c]];
                for j in 0..k {
                    m[[r, j]] -= fct * m[[c, j]];
                }
                v[r] -= fct * v[c];
            }
        }
    }
    let pred = a.dot(&v);
    let mean = y.mean().unwrap();
    let ss_res: f64 = (y - &pred).mapv(|e| e * e).sum();
    let ss_tot: f64 = y.mapv(|e| (e - mean).powi(2)).sum();
    1.0 - ss_res / ss_tot
}
