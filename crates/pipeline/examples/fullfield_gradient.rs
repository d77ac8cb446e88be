//! Time of one full-field log-likelihood gradient (theta and z) for the
//! sbi_lens set-ups, split into the theta -> C_ell part (dual numbers) and
//! the field part (simulator + adjoint). Compared with sbi_lens' JAX model
//! by `bench/lensing_cosmology/run.sh`.
//!
//! cargo run --release -p cosmodiff-pipeline --example fullfield_gradient [-- REPEATS]

use cosmodiff_pipeline::lensing_cosmology::{FieldModel, Setup, SetupName};
use std::time::Instant;

fn main() {
    let reps: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    for name in [SetupName::SbiLens128, SetupName::LsstY10] {
        let model = FieldModel::new(Setup::new(name).unwrap()).unwrap();
        let s = &model.setup;
        let np = s.npix * s.npix;
        let z: Vec<Vec<f64>> = (0..s.n_bins())
            .map(|b| cosmodiff_field::grf2::white_noise(np, b as u64))
            .collect();
        let data = model.kappa(&s.fiducial, &z).unwrap();
        let used = model.simulator().used_nodes();
        let time = |f: &mut dyn FnMut()| {
            f();
            let mut t: Vec<f64> = (0..reps)
                .map(|_| {
                    let t = Instant::now();
                    f();
                    t.elapsed().as_secs_f64() * 1e3
                })
                .collect();
            t.sort_by(f64::total_cmp);
            (t[reps / 2], t[0])
        };
        let (cl_med, cl_best) = time(&mut || {
            s.spectra(&s.fiducial, used.clone(), true).unwrap();
        });
        let (all_med, all_best) = time(&mut || {
            model.log_likelihood(&data, &s.fiducial, &z).unwrap();
        });
        println!(
            "{} gradient median {all_med:.1} ms best {all_best:.1} ms (C_ell + Jacobian median {cl_med:.1} ms best {cl_best:.1} ms)",
            name.as_str()
        );
    }
}
