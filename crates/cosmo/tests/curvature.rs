//! The separable lensing efficiency (c_K A - f_K B) against the direct
//! f_K(chi_s - chi)/f_K(chi_s) of a single source plane, for open and closed
//! universes: a narrow Gaussian n(z) must reproduce the delta-function source.
use cosmodiff_cosmo::nz::{Nz, RedshiftDistribution};
use cosmodiff_cosmo::{angular_cl, ClOptions, Cosmology, Tracer};

#[test]
fn narrow_source_matches_source_plane_in_curved_space() {
    let ell = [30.0, 300.0, 3000.0];
    for ok in [-0.1, 0.0, 0.1] {
        let mut c = Cosmology::planck15();
        c.omega_k = ok;
        let delta = Tracer::weak_lensing(
            Nz::new(RedshiftDistribution::Delta { z0: 1.0 }, 0.0).unwrap(),
            0.26,
            10.0,
        );
        let narrow = Tracer::weak_lensing(
            Nz::new(
                RedshiftDistribution::Gaussian {
                    z0: 1.0,
                    sigma: 0.002,
                    zmax: 1.2,
                },
                0.0,
            )
            .unwrap(),
            0.26,
            10.0,
        );
        let opts = ClOptions::default();
        let a = angular_cl(&c, &[delta], &ell, &opts).unwrap();
        let b = angular_cl(&c, &[narrow], &ell, &opts).unwrap();
        for l in 0..3 {
            let rel = b[0][l] / a[0][l] - 1.0;
            assert!(rel.abs() < 1e-4, "Omega_k {ok} ell {}: {rel:e}", ell[l]);
        }
    }
}
