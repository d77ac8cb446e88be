//! Per-phase timing of one force evaluation and one force VJP at the final
//! state of the benchmark run (CIC paint, FFTs, read-out).
//!
//! `cargo run --release -p cosmodiff-pm --example profile_force -- N [reps]`

use cosmodiff_field::fft3::Fft3;
use cosmodiff_pm::cic::Scratch;
use cosmodiff_pm::force::ForceMeshes;
use cosmodiff_pm::*;
use std::time::Instant;

/// CPU time of all threads of this process [ns] (sum of
/// `/proc/self/task/*/schedstat` run times): insensitive to other jobs
/// taking the cores, unlike wall time.
fn cpu_ns() -> u64 {
    let mut t = 0;
    if let Ok(rd) = std::fs::read_dir("/proc/self/task") {
        for e in rd.flatten() {
            if let Ok(s) = std::fs::read_to_string(e.path().join("schedstat")) {
                t += s
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    t
}

/// Best of `reps`, in ms: CPU time with `PM_PROFILE_CPU=1`, else wall time.
fn best(reps: usize, mut f: impl FnMut()) -> f64 {
    let cpu = std::env::var("PM_PROFILE_CPU").is_ok();
    let mut b = f64::INFINITY;
    for _ in 0..reps {
        let (t, c) = (Instant::now(), cpu_ns());
        f();
        let dt = if cpu {
            (cpu_ns() - c) as f64 * 1e-9
        } else {
            t.elapsed().as_secs_f64()
        };
        b = b.min(dt);
    }
    b * 1e3
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(128);
    let reps: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);
    let steps = StepConfig {
        n_steps: 10,
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
    let lin = pm.linear_field(&w, &pk).unwrap();
    let (st0, _) = pm.initial_state(&lin, &sch).unwrap();
    let fin = pm.integrator().run(st0.clone(), &sch, |_, _| {});
    let fft = Fft3::<f32>::new(n);
    for (label, st) in [("initial", &st0), ("final", &fin)] {
        let disp = &st.disp;
        let l = &pm.force.lattice;
        let mut sc = Scratch::default();
        let mut rho = vec![0.0f32; n * n * n];
        let mut dk = vec![realfft::num_complex::Complex::<f32>::new(0.0, 0.0); fft.len_complex()];
        let t_paint = best(reps, || l.paint(disp, &mut rho, &mut sc));
        let t_r2c = best(reps, || fft.forward_into(&rho, &mut dk));
        let t_c2r = best(reps, || {
            let mut x = dk.clone();
            fft.inverse_inplace(&mut x, &mut rho)
        });
        let m4 = vec![[0.1f32; 4]; n * n * n];
        let mut o4 = vec![[0.0f32; 4]; disp.len()];
        let t_read = best(reps, || l.readout::<4>(&m4, disp, &mut o4));
        let mut g = vec![[0.0f32; 3]; disp.len()];
        let t_rgrad = best(reps, || {
            l.readout_grad::<4>(&m4, disp, |_| [1.0, 1.0, 1.0, 1.0], &mut g, false)
        });
        let w3 = vec![[1.0f32; 3]; disp.len()];
        let mut h3 = vec![[0.0f32; 3]; n * n * n];
        let t_paint3 = best(reps, || l.paint3(disp, &w3, &mut h3, &mut sc));
        let mut f = vec![[0.0f32; 3]; disp.len()];
        let mut meshes = ForceMeshes::new(n);
        let t_force = best(reps, || pm.force.forces_into(disp, &mut f, &mut meshes));
        let t_vjp = best(reps, || {
            pm.force
                .forces_vjp_into(disp, &mut meshes, &w3, &mut g, 1.0, false)
        });
        let mut sb = vec![[0.0f32; 3]; disp.len()];
        let t_fused = best(reps, || {
            pm.force
                .forces_and_vjp_into(disp, &mut f, &mut meshes, &w3, &mut sb, 1.0)
        });
        let mut h4 = vec![[0.0f32; 4]; n * n * n];
        let t_paint4 = best(reps, || l.paint_count_and3(disp, &w3, &mut h4, &mut sc));
        let mut o3 = vec![[0.0f32; 3]; disp.len()];
        let t_r3g = best(reps, || {
            l.readout3_and_grad(&m4, disp, &w3, 1.0, &mut o3, &mut sb)
        });
        println!("{label}: fused force+vjp {t_fused:.1} ms | paint_count_and3 {t_paint4:.1}, readout3_and_grad {t_r3g:.1} ms");
        println!(
            "{label}: force {t_force:.1} ms, vjp {t_vjp:.1} ms | paint {t_paint:.1}, r2c {t_r2c:.1}, \
             c2r(+copy) {t_c2r:.1}, readout4 {t_read:.1}, paint3 {t_paint3:.1}, readout_grad4 {t_rgrad:.1} ms"
        );
        sorted_experiment(l, disp, &m4, reps);
    }
}

/// Experiment: read-out in cell-sorted order.
pub fn sorted_experiment(l: &Lattice, disp: &[[f32; 3]], mesh: &[[f32; 4]], reps: usize) {
    let (np, nm) = (l.np, l.nm);
    let n2 = nm * nm;
    let n = disp.len();
    let t = Instant::now();
    let mut key = vec![0u32; n];
    for p in 0..n {
        let (i, j, k) = (p / (np * np), (p / np) % np, p % np);
        let st = l.stencil(i, j, k, &disp[p]);
        key[p] = (st.x[0] * n2 + st.y[0] * nm + st.z[0]) as u32;
    }
    let mut cnt = vec![0u32; nm * n2 + 1];
    for &k in &key {
        cnt[k as usize + 1] += 1;
    }
    for c in 0..nm * n2 {
        cnt[c + 1] += cnt[c];
    }
    let mut perm = vec![0u32; n];
    for p in 0..n {
        let c = &mut cnt[key[p] as usize];
        perm[*c as usize] = p as u32;
        *c += 1;
    }
    let t_sort = t.elapsed().as_secs_f64() * 1e3;
    let read = |p: usize, s: &[f32; 3]| -> [f32; 4] {
        let (i, j, k) = (p / (np * np), (p / np) % np, p % np);
        let st = l.stencil(i, j, k, s);
        let w = st.w();
        let mut acc = [0.0f32; 4];
        for a in 0..2 {
            for b in 0..2 {
                let wab = w[0][a] * w[1][b];
                let row = (st.x[a] * nm + st.y[b]) * nm;
                let (m0, m1) = (mesh[row + st.z[0]], mesh[row + st.z[1]]);
                let (w0, w1) = (wab * w[2][0], wab * w[2][1]);
                for q in 0..4 {
                    acc[q] += w0 * m0[q] + w1 * m1[q];
                }
            }
        }
        acc
    };
    let mut out = vec![[0.0f32; 4]; n];
    let t_lag = best(reps, || {
        for p in 0..n {
            out[p] = read(p, &disp[p]);
        }
    });
    let t_ind = best(reps, || {
        for &p in &perm {
            let p = p as usize;
            out[p] = read(p, &disp[p]);
        }
    });
    let ds: Vec<[f32; 3]> = perm.iter().map(|&p| disp[p as usize]).collect();
    let t_phys = best(reps, || {
        for (q, &p) in perm.iter().enumerate() {
            out[q] = read(p as usize, &ds[q]);
        }
    });
    let t_gather = best(reps, || {
        for (q, &p) in perm.iter().enumerate() {
            out[q][..3].copy_from_slice(&disp[p as usize]);
        }
    });
    println!(
        "  1 thread: key+counting sort {t_sort:.1} ms; readout lagrangian {t_lag:.1}, via perm {t_ind:.1}, \
         physically sorted {t_phys:.1}, one gather {t_gather:.1} ms"
    );
}
