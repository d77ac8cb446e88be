//! End-to-end gradients of clustering statistics with respect to the five
//! Zheng07 HOD parameters through the relaxed sampler (Horowitz et al.
//! 2022): `dL/dtheta = relaxed_weights_vjp(xi_vjp(dL/dxi))` against central
//! finite differences with the same candidates and noise, to 1e-3 relative.
use cosmodiff_catalog::hod::Zheng07;
use cosmodiff_catalog::pairs::{xi, xi_vjp};
use cosmodiff_catalog::pk_points::{pk_points, pk_points_vjp, PkPointsSettings};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardUniform};

fn halos(n: usize, l: f64) -> (Vec<[f64; 3]>, Vec<f64>) {
    let mut rng = StdRng::seed_from_u64(17);
    let mut u = || -> f64 { StandardUniform.sample(&mut rng) };
    let mut pos = Vec::new();
    let mut mass = Vec::new();
    for i in 0..n {
        // a few groups of halos so that xi is well above zero
        let c = [
            (i % 7) as f64 * l / 7.0,
            (i % 5) as f64 * l / 5.0,
            (i % 3) as f64 * l / 3.0,
        ];
        pos.push([
            (c[0] + 4.0 * u()) % l,
            (c[1] + 4.0 * u()) % l,
            (c[2] + 4.0 * u()) % l,
        ]);
        mass.push(10f64.powf(12.3 + 2.5 * u()));
    }
    (pos, mass)
}

const THETA: [f64; 5] = [12.8, 0.4, 12.7, 13.6, 0.9];
const TAU: f64 = 0.5;

fn check(name: &str, grad: [f64; 5], f: impl Fn([f64; 5]) -> f64) {
    for k in 0..5 {
        let h = 1e-5;
        let (mut a, mut b) = (THETA, THETA);
        a[k] += h;
        b[k] -= h;
        let fd = (f(a) - f(b)) / (2.0 * h);
        let rel = (grad[k] - fd).abs() / fd.abs().max(1e-12);
        eprintln!(
            "{name} d/dtheta_{k}: vjp {:.8e} fd {fd:.8e} (rel {rel:.1e})",
            grad[k]
        );
        assert!(rel < 1e-3, "{name} parameter {k}: {} vs {fd}", grad[k]);
    }
}

#[test]
fn dxi_dhod_matches_finite_differences() {
    let l = 100.0;
    let (pos, mass) = halos(400, l);
    let hod = Zheng07::from_array(THETA, false);
    let cand = hod.relaxed_candidates(&pos, &mass, l, 5).unwrap();
    let edges = [0.5, 2.0, 5.0, 10.0, 20.0];
    let g = [1.0, -0.5, 2.0, 0.7];
    let loss = |theta: [f64; 5]| -> f64 {
        let w = Zheng07::from_array(theta, false)
            .relaxed_weights(&cand, TAU)
            .unwrap();
        let x = xi(&cand.sample.position, Some(&w), l, &edges).unwrap();
        x.xi.iter().zip(&g).map(|(a, b)| a * b).sum()
    };
    let w = hod.relaxed_weights(&cand, TAU).unwrap();
    let wbar = xi_vjp(&cand.sample.position, Some(&w), l, &edges, &g).unwrap();
    let grad = hod.relaxed_weights_vjp(&cand, TAU, &wbar).unwrap();
    check("xi", grad, loss);
}

#[test]
fn dpk_dhod_matches_finite_differences() {
    let l = 100.0;
    let (pos, mass) = halos(400, l);
    let hod = Zheng07::from_array(THETA, true);
    let cand = hod.relaxed_candidates(&pos, &mass, l, 6).unwrap();
    let s = PkPointsSettings {
        n_mesh: 16,
        ..Default::default()
    };
    let p0 = pk_points(&cand.sample.position, None, l, &s).unwrap();
    let g: Vec<f64> = (0..p0.k.len()).map(|b| 1.0 / (1.0 + b as f64)).collect();
    let loss = |theta: [f64; 5]| -> f64 {
        let w = Zheng07::from_array(theta, true)
            .relaxed_weights(&cand, TAU)
            .unwrap();
        let p = pk_points(&cand.sample.position, Some(&w), l, &s).unwrap();
        p.pk.iter().zip(&g).map(|(a, b)| a * b).sum()
    };
    let w = hod.relaxed_weights(&cand, TAU).unwrap();
    let wbar = pk_points_vjp(&cand.sample.position, Some(&w), l, &s, &g).unwrap();
    let grad = hod.relaxed_weights_vjp(&cand, TAU, &wbar).unwrap();
    // P(k) paints in float32 (the particle-mesh CIC): 1e-2 relative there
    for k in 0..5 {
        let h = 1e-3;
        let (mut a, mut b) = (THETA, THETA);
        a[k] += h;
        b[k] -= h;
        let fd = (loss(a) - loss(b)) / (2.0 * h);
        let rel = (grad[k] - fd).abs() / fd.abs().max(1e-12);
        eprintln!(
            "pk d/dtheta_{k}: vjp {:.6e} fd {fd:.6e} (rel {rel:.1e})",
            grad[k]
        );
        assert!(rel < 1e-2, "pk parameter {k}: {} vs {fd}", grad[k]);
    }
}
