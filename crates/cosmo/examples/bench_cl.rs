//! Timing of the wl2 C_ell (50 ells) and the (Omega_c, sigma8) Fisher matrix,
//! the workload of jax-cosmo's introduction notebook. Prints JSON:
//! {"cl_ms": ..., "fisher_ms": ...} (median of repeated runs, warm).
//! Run: cargo run --release -p cosmodiff-cosmo --example bench_cl
use cosmodiff_cosmo::covariance::ClLikelihood;
use cosmodiff_cosmo::nz::{Nz, RedshiftDistribution};
use cosmodiff_cosmo::{angular_cl, fisher_matrix, ClOptions, Cosmology, Param, Tracer};
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--parts") {
        parts();
        return;
    }
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
    let tr = vec![
        Tracer::weak_lensing(nz(1.0), 0.26, 10.0),
        Tracer::weak_lensing(nz(0.5), 0.26, 10.0),
    ];
    let ell: Vec<f64> = (0..50)
        .map(|i| 10f64.powf(1.0 + 2.5 * i as f64 / 49.0))
        .collect();
    let c = Cosmology::planck15();
    let opts = ClOptions::default();
    let reps = 30;
    let mut t_cl = vec![];
    for _ in 0..reps {
        let t = Instant::now();
        let cl = angular_cl(&c, &tr, &ell, &opts).unwrap();
        std::hint::black_box(cl);
        t_cl.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let mut t_f = vec![];
    for _ in 0..reps {
        let t = Instant::now();
        let like = ClLikelihood::new(
            c,
            tr.clone(),
            ell.clone(),
            0.25,
            opts,
            None,
            vec![Param::OmegaC, Param::Sigma8],
        )
        .unwrap();
        let f = fisher_matrix(&like).unwrap();
        std::hint::black_box(f);
        t_f.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "{{\"cl_ms\": {:.4}, \"fisher_ms\": {:.4}}}",
        median(t_cl),
        median(t_f)
    );
}

#[allow(dead_code)]
pub fn parts() {
    use cosmodiff_cosmo::{Background, Growth, NonLinear, PowerSpectrum, TransferFunction};
    let c = Cosmology::planck15();
    let time = |name: &str, f: &dyn Fn()| {
        let t = Instant::now();
        for _ in 0..20 {
            f();
        }
        eprintln!("{name}: {:.3} ms", t.elapsed().as_secs_f64() * 1e3 / 20.0);
    };
    time("background", &|| {
        std::hint::black_box(Background::new(&c).unwrap());
    });
    time("growth", &|| {
        std::hint::black_box(Growth::new(&c).unwrap());
    });
    time("power linear", &|| {
        std::hint::black_box(
            PowerSpectrum::new(&c, TransferFunction::EisensteinHu, NonLinear::Linear).unwrap(),
        );
    });
    time("power halofit", &|| {
        std::hint::black_box(
            PowerSpectrum::new(&c, TransferFunction::EisensteinHu, NonLinear::Halofit).unwrap(),
        );
    });
    let p = PowerSpectrum::new(&c, TransferFunction::EisensteinHu, NonLinear::Halofit).unwrap();
    time("128 halofit params", &|| {
        for i in 0..128 {
            std::hint::black_box(p.halofit_params(0.2 + 0.8 * i as f64 / 128.0));
        }
    });
    let hp = p.halofit_params(0.5);
    time("6400 pk_halofit", &|| {
        for i in 0..6400 {
            std::hint::black_box(p.pk_halofit(0.01 + i as f64 * 1e-3, &hp));
        }
    });
}
