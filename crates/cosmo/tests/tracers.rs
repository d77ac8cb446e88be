//! Tracer nuisance parameters act as they should: multiplicative shear bias
//! scales C_ij by (1 + m_i)(1 + m_j); linear galaxy bias by b_i b_j (per bin);
//! the photo-z shift moves n(z); noise is sigma_e^2/n and 1/n per steradian.
use cosmodiff_cosmo::nz::{Nz, RedshiftDistribution};
use cosmodiff_cosmo::tracers::{TracerKind, ARCMIN2_PER_SR};
use cosmodiff_cosmo::{angular_cl, angular_cl_noise, ClOptions, Cosmology, Tracer};

fn smail(z0: f64, shift: f64) -> Nz {
    Nz::new(
        RedshiftDistribution::Smail {
            a: 1.0,
            b: 2.0,
            z0,
            zmax: 5.0,
        },
        shift,
    )
    .unwrap()
}

#[test]
fn nuisance_parameters_scale_spectra() {
    let c = Cosmology::planck15();
    let ell = [50.0, 500.0];
    let o = ClOptions::default();
    let wl = |m: f64| Tracer {
        nz: smail(1.0, 0.0),
        kind: TracerKind::WeakLensing {
            ia_amplitude: 0.0,
            m_bias: m,
            sigma_e: 0.26,
        },
        gals_per_arcmin2: 10.0,
    };
    let base = angular_cl(&c, &[wl(0.0), wl(0.0)], &ell, &o).unwrap();
    let biased = angular_cl(&c, &[wl(0.02), wl(-0.01)], &ell, &o).unwrap();
    let f = [1.02 * 1.02, 1.02 * 0.99, 0.99 * 0.99];
    for p in 0..3 {
        for l in 0..2 {
            assert!((biased[p][l] / base[p][l] - f[p]).abs() < 1e-12);
        }
    }
    let gc = |b: f64| Tracer::number_counts(smail(0.5, 0.0), b, 5.0);
    let g1 = angular_cl(&c, &[gc(1.0), gc(1.0)], &ell, &o).unwrap();
    let g2 = angular_cl(&c, &[gc(1.5), gc(2.0)], &ell, &o).unwrap();
    let fb = [2.25, 3.0, 4.0];
    for p in 0..3 {
        for l in 0..2 {
            assert!((g2[p][l] / g1[p][l] - fb[p]).abs() < 1e-12);
        }
    }
    // A positive photo-z shift moves sources further away: more lensing.
    let shifted = Tracer::weak_lensing(smail(1.0, 0.1), 0.26, 10.0);
    let s = angular_cl(&c, &[shifted], &ell, &o).unwrap();
    assert!(s[0][0] > base[0][0] * 1.05);
    // Noise.
    let n = angular_cl_noise(&[wl(0.0), gc(1.0)], &ell);
    assert!((n[0][0] - 0.26 * 0.26 / (10.0 * ARCMIN2_PER_SR)).abs() < 1e-25);
    assert_eq!(n[1][0], 0.0);
    assert!((n[2][1] - 1.0 / (5.0 * ARCMIN2_PER_SR)).abs() < 1e-25);
}
