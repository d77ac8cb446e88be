//! Background and growth against CCL (`matched` configuration: no radiation),
//! shared/reference/cosmology/background_<tag>.npz. Tolerances from the
//! reference README: H 2e-5; chi, D_A 2e-5 (a in [0.01, 0.99]); D, f 5e-6.
mod common;
use common::*;
use cosmodiff_cosmo::{Background, Growth};

#[test]
fn background_matches_ccl() {
    for tag in TAGS {
        let file = format!("background_{tag}.npz");
        let a = load(&file, "a");
        let c = cosmo(tag);
        let bg = Background::new(&c).unwrap();
        let g = Growth::new(&c).unwrap();
        let h = c.h;
        let (mut chi, mut da, mut hh, mut d, mut f) = (vec![], vec![], vec![], vec![], vec![]);
        for &ai in a.iter() {
            chi.push(bg.comoving_distance(ai) / h);
            da.push(bg.angular_diameter_distance(ai) / h);
            hh.push(bg.hubble(ai));
            d.push(g.d1(ai));
            f.push(g.f1(ai));
        }
        let sel: Vec<usize> = (0..a.len()).filter(|&i| a[i] <= 0.99).collect();
        let pick = |v: &[f64]| sel.iter().map(|&i| v[i]).collect::<Vec<_>>();
        let r = |k: &str| {
            load(&file, &format!("ccl_matched_{k}"))
                .iter()
                .copied()
                .collect::<Vec<f64>>()
        };
        let e_chi = max_rel(&pick(&chi), &pick(&r("chi_Mpc")));
        let e_da = max_rel(&pick(&da), &pick(&r("dA_Mpc")));
        let e_h = max_rel(&hh, &r("H_kms_Mpc"));
        let e_d = max_rel(&d, &r("D"));
        let e_f = max_rel(&f, &r("f"));
        println!("{tag}: chi {e_chi:.2e} dA {e_da:.2e} H {e_h:.2e} D {e_d:.2e} f {e_f:.2e}");
        assert!(
            e_chi < 2e-5 && e_da < 2e-5,
            "{tag}: chi {e_chi:e} dA {e_da:e}"
        );
        assert!(e_h < 2e-5, "{tag}: H {e_h:e}");
        assert!(e_d < 5e-6 && e_f < 5e-6, "{tag}: D {e_d:e} f {e_f:e}");
    }
}

#[test]
fn a_of_chi_inverts() {
    let bg = Background::new(&cosmo("w0wa")).unwrap();
    for a in [0.02, 0.3, 0.9999] {
        let back = bg.a_of_chi(bg.comoving_distance(a)).unwrap();
        assert!((back - a).abs() < 1e-10 * a.max(0.1), "{a} {back}");
    }
    assert!(bg.a_of_chi(-1.0).is_err());
}

/// The growth derivatives used by FastPM-type integrators.
/// (1) Against the jax-cosmo Planck15 table of shared/reference/pm (float32,
/// see its header): `D1' = dD1/dlna = a dD1/da`; `D2' = f2 D2` with the
/// table's D2 normalised to 1 at a = 1; and `D1''` from `dG_f/da` with
/// `G_f = a^3 E dD1/da`: `D1'' = dG_f/da / (a E) - (2 + dlnE/dlna) D1'`.
/// `D1''` crosses zero near a = 0.7, so its error is taken relative to
/// max |D1''|; the table's float32 derivative limits that to ~2e-3.
/// (2) The second derivatives, interpolated between the ODE nodes, satisfy
/// the growth equations (module docs of `growth`) at the table's a.
#[test]
fn growth_derivatives_match_jax_cosmo_table() {
    use cosmodiff_cosmo::background::{dlne_dlna, omega_m_a};
    let p = refdir().join("../pm/growth_table_jaxcosmo_planck15.txt");
    let txt = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let c = cosmodiff_cosmo::Cosmology::planck15();
    let g = Growth::new(&c).unwrap();
    let d2_1 = g.d2(1.0);
    let (mut e1, mut e2, mut ode) = (0.0f64, 0.0f64, 0.0f64);
    let (mut ours_pp, mut ref_pp) = (vec![], vec![]);
    for l in txt.lines().filter(|l| !l.starts_with('#')) {
        let v: Vec<f64> = l.split_whitespace().map(|x| x.parse().unwrap()).collect();
        let (a, d2, f2, e, dgf_da, dd1_da) = (v[0], v[3], v[4], v[5], v[7], v[8]);
        let damp = 2.0 + dlne_dlna(&c, a);
        let src = 1.5 * omega_m_a(&c, a);
        let d1p = a * dd1_da;
        e1 = e1.max((g.d1_dlna(a) / d1p - 1.0).abs());
        e2 = e2.max((g.d2_dlna(a) / d2_1 / (f2 * d2) - 1.0).abs());
        ours_pp.push(g.d1_dlna2(a));
        ref_pp.push(dgf_da / (a * e) - damp * d1p);
        let (d1, d2) = (g.d1(a), g.d2(a));
        let r1 = g.d1_dlna2(a) - (src * d1 - damp * g.d1_dlna(a));
        let r2 = g.d2_dlna2(a) - (src * (d2 - d1 * d1) - damp * g.d2_dlna(a));
        ode = ode.max((r1 / d1).abs()).max((r2 / d2).abs());
    }
    let scale = ref_pp.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let epp = ours_pp
        .iter()
        .zip(&ref_pp)
        .fold(0.0f64, |m, (o, r)| m.max((o - r).abs() / scale));
    println!(
        "vs jax-cosmo: D1' {e1:.2e}, D1'' {epp:.2e} (of max), D2' {e2:.2e}; ODE residual {ode:.2e}"
    );
    assert!(e1 < 1e-3 && e2 < 2e-3, "D1' {e1:e}, D2' {e2:e}");
    assert!(epp < 3e-3, "D1'' {epp:e}");
    assert!(ode < 1e-5, "ODE residual {ode:e}");
}
