//! 3-D Gaussian and log-normal boxes: adjoints, VJPs, mean P(k), variance.

use cosmodiff_field::grf2::white_noise;
use cosmodiff_field::grf3::{Box3, Grf3, LogNormal3};
use cosmodiff_field::pk3::{power_spectrum, PkOptions};
use cosmodiff_field::ClTable;

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn pk() -> ClTable {
    let k: Vec<f64> = (0..150).map(|i| 1e-3 * 1.08f64.powi(i)).collect();
    let p = k
        .iter()
        .map(|k| 2e4 * (k / 0.02f64) / (1.0 + (k / 0.02f64).powf(2.5)))
        .collect();
    ClTable::new(k, p).unwrap()
}

#[test]
fn grf3_dot_product_and_table_vjp() {
    for n in [9usize, 10] {
        let bx = Box3::new(n, 300.0).unwrap();
        let g = Grf3::from_pk(bx, &pk()).unwrap();
        let (x, y) = (white_noise(bx.ncell(), 1), white_noise(bx.ncell(), 2));
        let (l, r) = (
            dot(&g.field_from_white(&x).unwrap(), &y),
            dot(&x, &g.vjp_white(&y).unwrap()),
        );
        assert!(
            (l - r).abs() < 1e-12 * l.abs().max(r.abs()),
            "n={n}: {l} {r}"
        );
        let t = pk();
        let grad = g.vjp_table(&x, &y).unwrap();
        let mut checked = 0;
        for i in (0..t.cl().len()).step_by(5) {
            if grad[i] == 0.0 {
                continue;
            }
            let h = 1e-4 * t.cl()[i];
            let f = |d: f64| {
                let mut c = t.cl().to_vec();
                c[i] += d;
                let tt = ClTable::new(t.ell().to_vec(), c).unwrap();
                dot(
                    &Grf3::from_pk(bx, &tt)
                        .unwrap()
                        .field_from_white(&x)
                        .unwrap(),
                    &y,
                )
            };
            let fd = (f(h) - f(-h)) / (2.0 * h);
            assert!(
                (fd - grad[i]).abs() < 1e-6 * grad[i].abs().max(1e-3 * fd.abs()),
                "n={n} i={i}: fd {fd} vjp {}",
                grad[i]
            );
            checked += 1;
        }
        assert!(checked >= 3);
    }
}

#[test]
fn lognormal3_vjp_finite_difference() {
    let bx = Box3::new(8, 200.0).unwrap();
    let ln = LogNormal3::from_pk(bx, &pk(), 1.0).unwrap();
    let (w, c, v) = (
        white_noise(512, 3),
        white_noise(512, 4),
        white_noise(512, 5),
    );
    let an = dot(&ln.vjp_white(&w, &c).unwrap(), &v);
    let f = |e: f64| {
        dot(
            &ln.field_from_white(&w.iter().zip(&v).map(|(a, b)| a + e * b).collect::<Vec<_>>())
                .unwrap(),
            &c,
        )
    };
    let fd = (f(1e-5) - f(-1e-5)) / 2e-5;
    assert!((fd - an).abs() < 1e-7 * an.abs(), "{fd} {an}");
}

/// Expected binned P(k) of the gridded field: bin-average of P(|k|) over the
/// same modes the estimator uses (its edges are multiples of 2 pi / L).
fn check_mean_pk(sample: impl Fn(u64) -> Vec<f64>, bx: Box3, t: &ClTable, nsim: usize) {
    let opt = PkOptions {
        is_delta: true,
        ..Default::default()
    };
    let first = power_spectrum(&sample(0), bx.n, bx.box_size, &opt).unwrap();
    let nb = first.p.len();
    // Expected: average of P over modes in each bin, Hermitian weights.
    let (kabs, hw) = (bx.k_abs(), bx.hermitian_weight());
    let mut exp = vec![0.0; nb];
    let mut cnt = vec![0.0; nb];
    for (i, k) in kabs.iter().enumerate() {
        if i == 0 {
            continue;
        }
        if let Some(b) = (0..nb).find(|&b| *k >= first.edge_lo[b] && *k < first.edge_hi[b]) {
            exp[b] += hw[i] * t.eval(*k);
            cnt[b] += hw[i];
        }
    }
    let (mut s1, mut s2) = (vec![0.0; nb], vec![0.0; nb]);
    for s in 0..nsim {
        let p = power_spectrum(&sample(100 + s as u64), bx.n, bx.box_size, &opt).unwrap();
        for b in 0..nb {
            s1[b] += p.p[b];
            s2[b] += p.p[b] * p.p[b];
        }
    }
    for b in 0..nb {
        let e = exp[b] / cnt[b];
        let m = s1[b] / nsim as f64;
        let se = ((s2[b] / nsim as f64 - m * m) / nsim as f64).sqrt();
        assert!(
            (m - e).abs() < 3.0 * se,
            "bin {b}: mean {m:.4e} expected {e:.4e} se {se:.2e}"
        );
    }
}

#[test]
fn gaussian_and_lognormal_boxes_mean_pk_and_variance() {
    let bx = Box3::new(16, 250.0).unwrap();
    let t = pk();
    let g = Grf3::from_pk(bx, &t).unwrap();
    check_mean_pk(|s| g.sample(s), bx, &t, 100);
    let ln = LogNormal3::from_pk(bx, &t, 1.0).unwrap();
    assert_eq!(ln.clipped(), 0);
    check_mean_pk(|s| ln.sample(s), bx, &t, 100);
    let target = g.cell_variance();
    assert!((ln.variance() - ln.mean_variance() - target).abs() < 1e-10 * target);
    let vs: Vec<f64> = (0..100)
        .map(|s| {
            let d = ln.sample(500 + s);
            let mu = d.iter().sum::<f64>() / d.len() as f64;
            d.iter().map(|x| (x - mu).powi(2)).sum::<f64>() / d.len() as f64
        })
        .collect();
    let m = vs.iter().sum::<f64>() / 100.0;
    let sd = (vs.iter().map(|v| (v - m).powi(2)).sum::<f64>() / 99.0).sqrt();
    assert!((m - target).abs() < 3.0 * sd / 10.0, "{m} vs {target}");
    // A density field: delta >= -1 everywhere.
    assert!(ln.sample(1).iter().all(|&d| d > -1.0));
}
