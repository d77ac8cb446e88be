//! Benchmark: 512x512 Gaussian and log-normal maps, Kaiser-Squires, and a
//! 256x256 masked Wiener filter (CG and messenger), with numpy FFT timings of
//! the same map generation for comparison when `python3` + numpy are present.
//!
//! Run: `cargo run --profile test -p cosmodiff-lensing --example bench_maps`
//! (or `--release`).

use cosmodiff_field::grf2::{white_noise, Grf2, LogNormal2};
use cosmodiff_field::{ClTable, Fft2, Grid2, C64};
use cosmodiff_lensing::noise::{add_shape_noise, pixel_noise_std};
use cosmodiff_lensing::{MessengerOpts, ShearOp, Wiener};
use rand::SeedableRng;
use std::time::Instant;

fn table() -> ClTable {
    let ell: Vec<f64> = (0..300).map(|i| 5.0 * 1.03f64.powi(i)).collect();
    let cl = ell
        .iter()
        .map(|l| 1e-9 * (l / 1000.0f64).powf(-1.2) * (-(l / 8000.0f64).powi(2)).exp())
        .collect();
    ClTable::new(ell, cl).unwrap()
}

/// Median wall time of `reps` runs, in ms.
fn time<F: FnMut()>(reps: usize, mut f: F) -> f64 {
    f();
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(|a, b| a.partial_cmp(b).unwrap());
    t[reps / 2]
}

fn numpy(code: &str) -> Option<f64> {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(code)
        .output()
        .ok()?;
    String::from_utf8(out.stdout).ok()?.trim().parse().ok()
}

fn main() {
    println!("threads: {}", rayon::current_num_threads());
    let t = table();
    let mut rows: Vec<(String, f64, Option<f64>)> = vec![];
    for n in [128usize, 256, 512] {
        let grid = Grid2::new(n, 2.0).unwrap();
        let fft = Fft2::new(n);
        let mut buf: Vec<C64> = white_noise(n * n, 1)
            .into_iter()
            .map(|x| C64::new(x, 0.0))
            .collect();
        let ms = time(9, || fft.forward_inplace(&mut buf).unwrap());
        let np = numpy(&format!("import numpy as np,time\nx=np.random.standard_normal(({n},{n}))+0j\nnp.fft.fft2(x)\nts=[]\nfor i in range(9):\n t=time.perf_counter(); np.fft.fft2(x); ts.append(time.perf_counter()-t)\nprint(sorted(ts)[4]*1e3)"));
        rows.push((format!("complex FFT {n}x{n}"), ms, np));
        let g = Grf2::from_cl(grid, &t).unwrap();
        let w = white_noise(n * n, 2);
        let ms = time(9, || {
            g.map_from_white(&w).unwrap();
        });
        let np = numpy(&format!("import numpy as np,time\nw=np.random.standard_normal(({n},{n}))\na=np.random.random(({n},{n}))\nf=lambda: np.fft.ifft2(np.fft.fft2(w)*a).real\nf()\nts=[]\nfor i in range(9):\n t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)\nprint(sorted(ts)[4]*1e3)"));
        rows.push((format!("Gaussian map {n}x{n}"), ms, np));
        if n == 512 {
            let ln = LogNormal2::from_cl(grid, &t, 0.03).unwrap();
            rows.push((
                "log-normal map 512x512".into(),
                time(9, || {
                    ln.map_from_white(&w).unwrap();
                }),
                None,
            ));
            rows.push((
                "log-normal setup 512x512".into(),
                time(3, || {
                    LogNormal2::from_cl(grid, &t, 0.03).unwrap();
                }),
                None,
            ));
            // Complete generation (random numbers included) vs powerbox.
            let pbx = format!(
                "import powerbox as pb,numpy as np,time\nL={L}\npk=lambda k: 1e-9*(np.maximum(k,1e-3)/1000)**-1.2*np.exp(-(k/8000)**2)\ndef f(cls,s):\n return cls(N=512,dim=2,pk=pk,boxlength=L,seed=s).delta_x()\nf(pb.PowerBox,0)\nts=[]\nfor i in range(5):\n t=time.perf_counter(); f(pb.PowerBox,i); ts.append(time.perf_counter()-t)\nprint(sorted(ts)[2]*1e3)",
                L = 512.0 * grid.pixel_rad()
            );
            let mut seed = 10;
            rows.push((
                "Gaussian map 512x512 incl. RNG (powerbox.PowerBox)".into(),
                time(5, || {
                    seed += 1;
                    g.sample(seed);
                }),
                numpy(&pbx),
            ));
            let pln = pbx.replace("pb.PowerBox", "pb.LogNormalPowerBox");
            rows.push((
                "log-normal map 512x512 incl. set-up + RNG (LogNormalPowerBox)".into(),
                time(5, || {
                    seed += 1;
                    LogNormal2::from_cl(grid, &t, 0.03).unwrap().sample(seed);
                }),
                numpy(&pln),
            ));
            let op = ShearOp::new(grid);
            let k = g.map_from_white(&w).unwrap();
            let (g1, g2) = op.forward(&k, None).unwrap();
            rows.push((
                "Kaiser-Squires 512x512".into(),
                time(9, || {
                    op.kaiser_squires(&g1, &g2).unwrap();
                }),
                None,
            ));
        }
    }
    // Masked Wiener filter, 256x256.
    let n = 256;
    let grid = Grid2::new(n, 2.0).unwrap();
    let truth = Grf2::from_cl(grid, &t).unwrap().sample(3);
    let op = ShearOp::new(grid);
    let (g1, g2) = op.forward(&truth, None).unwrap();
    let sig = pixel_noise_std(&grid, 0.26, 30.0).unwrap();
    let noise: Vec<f64> = (0..n * n)
        .map(|i| sig * (1.0 + 0.5 * ((i % n) as f64 / n as f64)))
        .collect();
    let mask: Vec<f64> = (0..n * n)
        .map(|i| {
            if (i / n > 100 && i / n < 130) || (i % 37 == 0) {
                0.0
            } else {
                1.0
            }
        })
        .collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    let (e1, e2) = add_shape_noise(&g1, &g2, &noise, &mut rng).unwrap();
    let w = Wiener::from_cl(grid, &t, &noise, Some(&mask)).unwrap();
    let s = Instant::now();
    let cg = w.cg(&e1, &e2, 1e-6, 10000).unwrap();
    rows.push((
        format!("Wiener CG 256x256 masked ({} it, tol 1e-6)", cg.iterations),
        s.elapsed().as_secs_f64() * 1e3,
        None,
    ));
    let s = Instant::now();
    let m = w
        .messenger(
            &e1,
            &e2,
            &MessengerOpts {
                tol: 1e-6,
                ..Default::default()
            },
        )
        .unwrap();
    let diff = cosmodiff_lensing::metrics::rmse(&m.kappa, &cg.kappa, None).unwrap()
        / cosmodiff_lensing::metrics::rmse(&cg.kappa, &vec![0.0; n * n], None).unwrap();
    rows.push((
        format!(
            "Wiener messenger 256x256 masked ({} it, rel. rms diff to CG {diff:.1e})",
            m.iterations
        ),
        s.elapsed().as_secs_f64() * 1e3,
        None,
    ));
    println!("{:<70} {:>10} {:>10} {:>8}", "task", "ms", "py ms", "ratio");
    for (name, ms, np) in rows {
        match np {
            Some(p) => println!("{name:<70} {ms:>10.2} {p:>10.2} {:>8.2}", p / ms),
            None => println!("{name:<70} {ms:>10.2} {:>10} {:>8}", "-", "-"),
        }
    }
    println!("ratio = numpy (or powerbox) time / cosmodiff time (> 1: cosmodiff faster)");
}
