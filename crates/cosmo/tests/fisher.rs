//! Fisher matrix and exact derivatives.
//! - wl2 Fisher in (Omega_c, sigma8) within 1% of CCL central differences
//!   (fisher_wl2bin_ccl_finitediff.npz: sigma_e 0.26, 10/arcmin^2, f_sky 0.25).
//! - J^T C^-1 J and minus the Hessian of log L agree to 1e-8.
//! - Dual-number derivatives agree with central finite differences to 1e-5.
mod common;
use common::*;
use cosmodiff_cosmo::covariance::ClLikelihood;
use cosmodiff_cosmo::nz::{Nz, RedshiftDistribution};
use cosmodiff_cosmo::{
    angular_cl, fisher_hessian, fisher_matrix, ClOptions, Cosmology, Param, Tracer,
};
use num_dual::Dual64;

fn wl2() -> Vec<Tracer> {
    let nz = |z0| {
        Nz::new(
            RedshiftDistribution::Smail {
                a: 1.0,
                b: 2.0,
                z0,
                zmax: 5.0,
            },
            0.0,
        )
        .unwrap()
    };
    vec![
        Tracer::weak_lensing(nz(1.0), 0.26, 10.0),
        Tracer::weak_lensing(nz(0.5), 0.26, 10.0),
    ]
}

fn like() -> ClLikelihood {
    let ell: Vec<f64> = load("fisher_wl2bin_ccl_finitediff.npz", "ell")
        .iter()
        .copied()
        .collect();
    ClLikelihood::new(
        Cosmology::planck15(),
        wl2(),
        ell,
        0.25,
        ClOptions::default(),
        None,
        vec![Param::OmegaC, Param::Sigma8],
    )
    .unwrap()
}

#[test]
fn fisher_wl2_matches_ccl_finite_differences() {
    let l = like();
    let f = fisher_matrix(&l).unwrap();
    let r = load("fisher_wl2bin_ccl_finitediff.npz", "fisher");
    let cov_ref = load("fisher_wl2bin_ccl_finitediff.npz", "cov");
    // covariance convention check
    let n = l.data.len();
    let mut worst = 0.0f64;
    for i in 0..n {
        worst = worst.max((l.cov[i * n + i] / cov_ref[[i, i]] - 1.0).abs());
    }
    println!("covariance diagonal max rel diff {worst:.2e}");
    assert!(worst < 2e-3);
    for a in 0..2 {
        for b in 0..2 {
            let rel = f[a][b] / r[[a, b]] - 1.0;
            println!(
                "F[{a}][{b}] = {:.6e} (CCL FD {:.6e}, rel {rel:.2e})",
                f[a][b],
                r[[a, b]]
            );
            assert!(rel.abs() < 1e-2);
        }
    }
    // marginal errors as in the README: 0.0072, 0.0110
    let det = f[0][0] * f[1][1] - f[0][1] * f[1][0];
    let (s_om, s_s8) = ((f[1][1] / det).sqrt(), (f[0][0] / det).sqrt());
    println!("marginal errors: Omega_c {s_om:.4}, sigma8 {s_s8:.4}");
    assert!((s_om - 0.0072).abs() < 2e-4 && (s_s8 - 0.0110).abs() < 2e-4);
}

#[test]
fn fisher_two_routes_agree() {
    let l = like();
    let f1 = fisher_matrix(&l).unwrap();
    let f2 = fisher_hessian(&l).unwrap();
    for a in 0..2 {
        for b in 0..2 {
            let rel = (f1[a][b] - f2[a][b]).abs() / f1[a][a].abs().max(f1[b][b].abs());
            println!(
                "F_JCJ {:.10e}  F_hess {:.10e}  rel {rel:.1e}",
                f1[a][b], f2[a][b]
            );
            assert!(rel < 1e-8);
        }
    }
}

#[test]
fn dual_derivatives_match_finite_differences() {
    // dC_ell/dtheta for every parameter (including curvature and w0-wa, which
    // exercise the transverse-distance series and dark-energy terms).
    let tr = wl2();
    let ell = [20.0, 200.0, 2000.0];
    let opts = ClOptions::default();
    let mut base = Cosmology::planck15();
    base.w0 = -0.95;
    base.wa = 0.05;
    base.omega_k = 0.01;
    for p in Param::ALL {
        let mut cd = base.lift::<Dual64>();
        cd.set(p, Dual64::new(base.get(p), 1.0));
        let cl = angular_cl(&cd, &tr, &ell, &opts).unwrap();
        let h = 1e-4 * base.get(p).abs().max(0.1);
        let mut cp = base;
        cp.set(p, base.get(p) + h);
        let mut cm = base;
        cm.set(p, base.get(p) - h);
        let up = angular_cl(&cp, &tr, &ell, &opts).unwrap();
        let dn = angular_cl(&cm, &tr, &ell, &opts).unwrap();
        for q in 0..cl.len() {
            for l in 0..ell.len() {
                let fd = (up[q][l] - dn[q][l]) / (2.0 * h);
                let ex = cl[q][l].eps;
                let scale = cl[q][l].re / base.get(p).abs().max(0.1);
                let err = (fd - ex).abs() / scale.abs();
                assert!(
                    err < 1e-5,
                    "{}: pair {q} ell {}: dual {ex:e} fd {fd:e} (rel to C/theta {err:e})",
                    p.name(),
                    ell[l]
                );
            }
        }
    }
}

#[test]
fn vector_dual_gradient_equals_per_parameter_passes() {
    let l = like();
    for vals in [[0.25, 0.8], [0.3, 0.75]] {
        let (v1, g1) = l.value_and_grad(&vals).unwrap();
        let (v2, g2) = l.value_and_grad_per_param(&vals).unwrap();
        assert!((v1 - v2).abs() <= 1e-12 * v1.abs().max(1.0));
        for (a, b) in g1.iter().zip(&g2) {
            assert!((a - b).abs() <= 1e-10 * b.abs().max(1.0), "{a} {b}");
        }
    }
}

/// Repeated, descending or non-positive multipoles have no Knox bin width:
/// refused with the reason instead of a singular covariance downstream.
#[test]
fn covariance_needs_increasing_ell() {
    use cosmodiff_cosmo::covariance::gaussian_covariance;
    let cl = vec![vec![1e-9, 1e-9, 1e-9]];
    assert!(gaussian_covariance(&cl, 1, &[10.0, 20.0, 40.0], 0.1).is_ok());
    for ell in [[10.0, 10.0, 40.0], [40.0, 20.0, 10.0], [0.0, 20.0, 40.0]] {
        let e = gaussian_covariance(&cl, 1, &ell, 0.1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("strictly increasing"), "{ell:?}: {e}");
    }
}
