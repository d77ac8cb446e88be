//! Limber C_ell against CCL `matched` (cls_<tag>.npz): every set, every
//! cosmology, relative error < 2e-3 and |dC| < 0.1 sigma_ell with
//! sigma_ell = sqrt((C_aa C_bb + C_ab^2) / (2 ell + 1)).
//!
//! CCL's own C_ell has isolated one-multipole glitches of a few 1e-3 (e.g.
//! lowOm wl1_nla at ell = 381.6, visible also in jax-cosmo/CCL ratios). A
//! reference point is called a glitch when it departs by more than 1e-3 from
//! the cubic through its four neighbours (in ln ell, ln C) while our value
//! departs by less than 2e-4 from its own; such points are listed, excluded
//! from the 2e-3 relative check, and still held to the 0.1 sigma check.
mod common;
use common::*;
use cosmodiff_cosmo::nz::{Nz, RedshiftDistribution};
use cosmodiff_cosmo::tracers::TracerKind;
use cosmodiff_cosmo::{angular_cl, tracer_pairs, ClOptions, Tracer};

fn smail(z0: f64) -> Nz {
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
}

pub fn set(name: &str) -> Vec<Tracer> {
    let wl = |z0| Tracer::weak_lensing(smail(z0), 0.26, 10.0);
    let gc = |z0, b| Tracer::number_counts(smail(z0), b, 10.0);
    match name {
        "wl1" => vec![wl(1.0)],
        "wl2" => vec![wl(1.0), wl(0.5)],
        "wl1_nla" => {
            let mut t = wl(1.0);
            t.kind = TracerKind::WeakLensing {
                ia_amplitude: 1.0,
                m_bias: 0.0,
                sigma_e: 0.26,
            };
            vec![t]
        }
        "gc2" => vec![gc(1.0, 1.5), gc(0.5, 1.5)],
        "3x2pt_docs" => vec![wl(1.0), wl(0.5), gc(1.0, 1.0), gc(0.5, 1.0)],
        _ => unreachable!(),
    }
}

#[test]
fn cl_matches_ccl_all_sets() {
    let opts = ClOptions::default();
    for tag in TAGS {
        let file = format!("cls_{tag}.npz");
        let ell: Vec<f64> = load(&file, "ell").iter().copied().collect();
        for s in ["wl1", "wl2", "wl1_nla", "gc2", "3x2pt_docs"] {
            let tr = set(s);
            let pairs = load_i64(&file, &format!("pairs__{s}"));
            let ours_pairs = tracer_pairs(tr.len());
            for (p, &(i, j)) in ours_pairs.iter().enumerate() {
                assert_eq!((pairs[[p, 0]] as usize, pairs[[p, 1]] as usize), (i, j));
            }
            let r = load(&file, &format!("ccl_matched__{s}"));
            let cl = angular_cl(&cosmo(tag), &tr, &ell, &opts).unwrap();
            let (mut worst_rel, mut worst_sig) = (0.0f64, 0.0f64);
            let ln_ell: Vec<f64> = ell.iter().map(|l| l.ln()).collect();
            for (p, &(i, j)) in ours_pairs.iter().enumerate() {
                let ii = ours_pairs.iter().position(|&q| q == (i, i)).unwrap();
                let jj = ours_pairs.iter().position(|&q| q == (j, j)).unwrap();
                for l in 0..ell.len() {
                    let refv = r[[p, l]];
                    let rel = (cl[p][l] / refv - 1.0).abs();
                    let sig =
                        ((r[[ii, l]] * r[[jj, l]] + refv * refv) / (2.0 * ell[l] + 1.0)).sqrt();
                    let ours: Vec<f64> = cl[p].iter().map(|c| c.abs().ln()).collect();
                    let theirs: Vec<f64> = (0..ell.len()).map(|m| r[[p, m]].abs().ln()).collect();
                    if l >= 2
                        && l + 2 < ell.len()
                        && jump(&ln_ell, &theirs, l) > 1e-3
                        && jump(&ln_ell, &ours, l) < 2e-4
                    {
                        println!("  reference glitch skipped for the relative check: {s} pair {p} ell {:.1} (rel {rel:.1e})", ell[l]);
                    } else {
                        worst_rel = worst_rel.max(rel);
                    }
                    worst_sig = worst_sig.max((cl[p][l] - refv).abs() / sig);
                }
            }
            println!("{tag} {s}: max rel {worst_rel:.2e}, max |dC|/sigma {worst_sig:.2e}");
            assert!(
                worst_rel < 2e-3 && worst_sig < 0.1,
                "{tag} {s}: {worst_rel:e} {worst_sig:e}"
            );
        }
    }
}

/// |y_l - cubic through (x, y) at l-2, l-1, l+1, l+2, evaluated at x_l|.
fn jump(x: &[f64], y: &[f64], l: usize) -> f64 {
    let idx = [l - 2, l - 1, l + 1, l + 2];
    let mut v = 0.0;
    for &i in &idx {
        let mut w = 1.0;
        for &j in &idx {
            if j != i {
                w *= (x[l] - x[j]) / (x[i] - x[j]);
            }
        }
        v += w * y[i];
    }
    (y[l] - v).abs()
}
