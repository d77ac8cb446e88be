//! The explicit full-field posterior of the 128^2 sbi_lens map against the
//! benchmark's reference chain (`posterior_full_field__128N_5ms_30gpa_0.2se.npy`,
//! NUTS in sbi_lens/numpyro): FoM(Omega_c, sigma8) within [3600, 4400] of
//! 4004, means within 0.3 sd, sds within 10%. About half an hour on 2
//! cores, so ignored in CI; the recorded run is in docs/lensing-cosmology.md.
//!
//! cargo test --profile test -p cosmodiff-pipeline --test fullfield_128 -- --ignored --nocapture

use cosmodiff_pipeline::lensing_cosmology::{infer, run::summarize, InferSettings};
use std::path::Path;

#[test]
#[ignore]
fn fullfield_128_matches_the_reference_posterior() {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference/sbi_lens");
    let dir = tempfile::tempdir().unwrap();
    let s = InferSettings {
        setup: "sbi-lens-128".into(),
        method: "fullfield".into(),
        data: shared.join("m_data__128N_5ms_30gpa_0.2se.npy"),
        out: dir.path().join("ff"),
        sims: None,
        n_sims: None,
        tarp: 0,
        epochs: None,
        pool: 1,
        estimator: "npe".into(),
        draws: None,
        warmup: None,
        chains: 2,
        seed: 0,
        quiet: false,
        reuse: Default::default(),
    };
    let post = infer(&s).unwrap();
    let sm = summarize(&post);
    let reference = cosmodiff_pipeline::io::read_float_npy(
        &shared.join("posterior_full_field__128N_5ms_30gpa_0.2se.npy"),
        "reference",
    )
    .unwrap();
    let n = reference.shape()[0] as f64;
    let m: Vec<f64> = (0..2)
        .map(|k| reference.index_axis(ndarray::Axis(1), k).sum() / n)
        .collect();
    let c = |a: usize, b: usize| {
        (0..reference.shape()[0])
            .map(|i| (reference[[i, a]] - m[a]) * (reference[[i, b]] - m[b]))
            .sum::<f64>()
            / (n - 1.0)
    };
    let ref_sd = [c(0, 0).sqrt(), c(1, 1).sqrt()];
    let ref_fom = 1.0 / (c(0, 0) * c(1, 1) - c(0, 1) * c(0, 1)).sqrt();
    let mean: Vec<f64> = serde_json::from_value(sm["mean"].clone()).unwrap();
    let sd: Vec<f64> = serde_json::from_value(sm["sd"].clone()).unwrap();
    let fom = sm["fom"]["Omega_c,sigma8"].as_f64().unwrap();
    println!("cosmodiff: mean {mean:?} sd {sd:?} FoM {fom:.0}");
    println!("reference: mean {m:?} sd {ref_sd:?} FoM {ref_fom:.0}");
    println!("r_hat {} ess_bulk {}", sm["r_hat"], sm["ess_bulk"]);
    assert!((3600.0..=4400.0).contains(&fom), "FoM {fom}");
    for k in 0..2 {
        assert!(
            (mean[k] - m[k]).abs() < 0.3 * ref_sd[k],
            "mean {k}: {} vs {}",
            mean[k],
            m[k]
        );
        assert!(
            (sd[k] / ref_sd[k] - 1.0).abs() < 0.1,
            "sd {k}: {} vs {}",
            sd[k],
            ref_sd[k]
        );
    }
}
