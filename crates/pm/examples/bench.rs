//! Wall time and peak memory of the forward model and the adjoint gradient.
//!
//! `cargo run --release -p cosmodiff-pm --example bench -- N [steps] [mode]`
//! with mode `forward` or `grad` (one per process so that the peak RSS,
//! VmHWM from /proc, belongs to that mode alone). 10 steps from a = 0.1,
//! 2LPT, fd4 kernel, mesh = particle grid, box 4 Mpc/h per cell, growth from
//! the EdS toy (the cost does not depend on the cosmology).

use cosmodiff_pm::*;
use std::time::Instant;

fn vm_hwm_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(64);
    let n_steps: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10);
    let mode = args.get(3).cloned().unwrap_or_else(|| "forward".into());
    let steps = StepConfig {
        n_steps,
        ..Default::default()
    };
    let cfg = PmConfig {
        n_particles: n,
        n_mesh: n,
        box_size: 4.0 * n as f64,
        kernel: GradientKernel::Fd4,
        deconvolve: false,
        steps: steps.clone(),
    };
    let pm = Pm::new(cfg).unwrap();
    let sch = Schedule::new(&EdsGrowth, &steps).unwrap();
    let mut s = 1u64;
    let w: Vec<f64> = (0..n * n * n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 3.46
        })
        .collect();
    let pk = |k: f64| 2.0e4 * (k / 0.05) / (1.0 + (k / 0.1).powi(3));
    let reps = 3;
    let mut best = f64::INFINITY;
    for _ in 0..reps {
        let t = Instant::now();
        match mode.as_str() {
            "grad" => {
                let u: Vec<f32> = vec![1.0; n * n * n];
                let loss = density_mse_loss(&pm, &u);
                let lin = pm.linear_field(&w, &pk).unwrap();
                let g = pm
                    .gradient(&lin, Some((&w, &pk)), &sch, &loss, AdjointMode::Reverse)
                    .unwrap();
                if std::env::var("PM_BENCH_CHECKSUM").is_ok() {
                    // bit-level fingerprint of the gradient (old vs new code)
                    let w = g.white_noise.as_ref().unwrap();
                    let h = w
                        .iter()
                        .fold(0u64, |h, v| (h ^ v.to_bits()).wrapping_mul(0x100000001b3));
                    eprintln!(
                        "loss {:e} grad hash {h:016x} sum {:e}",
                        g.loss,
                        w.iter().sum::<f64>()
                    );
                }
                std::hint::black_box(g.white_noise);
            }
            _ => {
                let lin = pm.linear_field(&w, &pk).unwrap();
                let t1 = Instant::now();
                let (st0, _) = pm.initial_state(&lin, &sch).unwrap();
                let t2 = Instant::now();
                let st = pm.integrator().run(st0, &sch, |_, _| {});
                if std::env::var("PM_BENCH_SPLIT").is_ok() {
                    eprintln!(
                        "linear {:.3} s, lpt {:.3} s, nbody {:.3} s",
                        (t1 - t).as_secs_f64(),
                        (t2 - t1).as_secs_f64(),
                        t2.elapsed().as_secs_f64()
                    );
                }
                std::hint::black_box(pm.density_counts(&st));
            }
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!(
        "{mode} N={n} steps={n_steps} threads={}: best of {reps} {best:.3} s, peak RSS {:.0} MiB",
        rayon::current_num_threads(),
        vm_hwm_mib()
    );
}
