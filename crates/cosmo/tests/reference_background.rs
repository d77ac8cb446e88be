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
