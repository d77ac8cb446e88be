//! Adjoint gradients against finite differences, reversibility, checkpoints.
//! Small boxes (16^3 particles on a 32^3 mesh: also exercises a mesh finer
//! than the particle grid).

use cosmodiff_pm::*;

fn gauss(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed;
    let mut u = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 11) as f64 + 0.5) / ((1u64 << 53) as f64)
    };
    (0..n)
        .map(|_| (-2.0 * u().ln()).sqrt() * (2.0 * std::f64::consts::PI * u()).cos())
        .collect()
}

/// A smooth toy power spectrum, P(k) ~ k / (1 + (k/0.1)^3) (Mpc/h)^3.
fn pk(k: f64) -> f64 {
    2.0e4 * (k / 0.05) / (1.0 + (k / 0.1).powi(3))
}

fn setup(np: usize, nm: usize, kernel: GradientKernel, n_steps: usize) -> (Pm, StepConfig) {
    setup_a(np, nm, kernel, n_steps, 0.1)
}

fn setup_a(
    np: usize,
    nm: usize,
    kernel: GradientKernel,
    n_steps: usize,
    a_start: f64,
) -> (Pm, StepConfig) {
    let steps = StepConfig {
        n_steps,
        a_start,
        ..Default::default()
    };
    let cfg = PmConfig {
        n_particles: np,
        n_mesh: nm,
        box_size: 64.0,
        kernel,
        deconvolve: false,
        steps: steps.clone(),
    };
    (Pm::new(cfg).unwrap(), steps)
}

fn rel(a: &[[f32; 3]], b: &[[f32; 3]]) -> f64 {
    let (mut n, mut d) = (0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        for c in 0..3 {
            n += ((x[c] - y[c]) as f64).powi(2);
            d += (y[c] as f64).powi(2);
        }
    }
    (n / d).sqrt()
}

#[test]
fn backward_integration_returns_to_initial_state() {
    let (pm, steps) = setup(32, 32, GradientKernel::Fd4, 10);
    let g = LcdmGrowth::new(0.3);
    let sch = Schedule::new(&g, &steps).unwrap();
    let w = gauss(32usize.pow(3), 1);
    let lin = pm.linear_field(&w, &pk).unwrap();
    let (st0, _) = pm.initial_state(&lin, &sch).unwrap();
    let fin = pm.integrator().run(st0.clone(), &sch, |_, _| {});
    let back = pm.integrator().reverse(fin.clone(), &sch);
    let (es, ep) = (rel(&back.disp, &st0.disp), rel(&back.mom, &st0.mom));
    let moved = rel(&fin.disp, &st0.disp);
    eprintln!("reverse: rel rms disp {es:.2e}, mom {ep:.2e} (displacement grew by rel {moved:.2})");
    // strongly non-linear toy spectrum (see the 64^3 reference test for 1e-5)
    assert!(es < 3e-5 && ep < 3e-5, "{es} {ep}");
    assert_eq!(back.a, sch.stages[0]);
}

/// Least-squares slope of `f` through the symmetric points `+-k h0`,
/// `k = 1..=4` (odd part only: even-order terms cancel). Averages the
/// float32 rounding noise of the forward model over 8 evaluations.
fn fd_slope(f: impl Fn(f64) -> f64, h0: f64) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    for k in 1..=4 {
        let h = k as f64 * h0;
        num += h * (f(h) - f(-h));
        den += 2.0 * h * h;
    }
    num / den
}

fn check_close(name: &str, ad: f64, fd: f64, tol: f64) {
    let e = (ad - fd).abs() / fd.abs().max(1e-30);
    eprintln!("{name}: adjoint {ad:.6e}, finite difference {fd:.6e}, rel diff {e:.2e}");
    assert!(e < tol, "{name}: {ad} vs {fd} ({e})");
}

#[test]
fn white_noise_gradient_matches_finite_differences() {
    let (np, nm) = (32, 64);
    let (pm, steps) = setup_a(np, nm, GradientKernel::Fd4, 5, 0.3);
    let g = LcdmGrowth::new(0.3);
    let sch = Schedule::new(&g, &steps).unwrap();
    let w = gauss(np.pow(3), 2);
    let cs: Vec<[f32; 3]> = gauss(3 * np.pow(3), 3)
        .chunks(3)
        .map(|c| [c[0] as f32, c[1] as f32, c[2] as f32])
        .collect();
    let cp: Vec<[f32; 3]> = gauss(3 * np.pow(3), 8)
        .chunks(3)
        .map(|c| [c[0] as f32, c[1] as f32, c[2] as f32])
        .collect();
    let loss = |st: &State, _x: &[[f32; 3]]| -> (f64, Vec<[f32; 3]>, Vec<[f32; 3]>) {
        let l: f64 = st
            .disp
            .iter()
            .flatten()
            .zip(cs.iter().flatten())
            .map(|(a, b)| (*a as f64) * (*b as f64))
            .sum::<f64>()
            + st.mom
                .iter()
                .flatten()
                .zip(cp.iter().flatten())
                .map(|(a, b)| (*a as f64) * (*b as f64))
                .sum::<f64>();
        (l, cs.clone(), cp.clone())
    };
    let lin = pm.linear_field(&w, &pk).unwrap();
    let gr = pm
        .gradient(&lin, Some((&w, &pk)), &sch, &loss, AdjointMode::Reverse)
        .unwrap();
    let gw = gr.white_noise.as_ref().unwrap();
    let eval = |w: &[f64]| -> f64 {
        let lin = pm.linear_field(w, &pk).unwrap();
        let st = pm.simulate(&lin, &sch).unwrap();
        let x = pm.integrator().positions(&st.disp);
        loss(&st, &x).0
    };
    // directions: half the normalised gradient, half random (a purely random
    // direction's derivative is a cancellation-dominated small number)
    let gn = gw.iter().map(|x| x * x).sum::<f64>().sqrt();
    for seed in [10u64, 11, 12] {
        let r = gauss(np.pow(3), seed);
        let rn = r.iter().map(|x| x * x).sum::<f64>().sqrt();
        let v: Vec<f64> = gw
            .iter()
            .zip(&r)
            .map(|(g, r)| 0.5 * g / gn + 0.5 * r / rn)
            .collect();
        let ad: f64 = gw.iter().zip(&v).map(|(a, b)| a * b).sum();
        // FD along a unit direction: larger steps are biased by CIC kinks
        // (error ~ h), smaller ones by float32 rounding of positions; the
        // slope is fitted through 8 points within +-4e-4
        let fd = fd_slope(
            |h| eval(&w.iter().zip(&v).map(|(a, b)| a + h * b).collect::<Vec<_>>()),
            5e-5,
        );
        check_close(&format!("white noise, direction {seed}"), ad, fd, 3e-3);
    }
    // recovered initial state
    let (st0, _) = pm.initial_state(&lin, &sch).unwrap();
    assert!(rel(&gr.recovered_initial.disp, &st0.disp) < 1e-5);
}

#[test]
fn sigma8_and_omega_m_gradients_match_finite_differences() {
    let (np, nm) = (32, 64);
    let (pm, steps) = setup_a(np, nm, GradientKernel::Exact, 4, 0.3);
    let om = 0.3;
    let g = LcdmGrowth::new(om);
    let sch = Schedule::new(&g, &steps).unwrap();
    let w = gauss(np.pow(3), 4);
    let cs: Vec<[f32; 3]> = gauss(3 * np.pow(3), 5)
        .chunks(3)
        .map(|c| [c[0] as f32, c[1] as f32, c[2] as f32])
        .collect();
    let loss = |st: &State, _x: &[[f32; 3]]| -> (f64, Vec<[f32; 3]>, Vec<[f32; 3]>) {
        let l: f64 = st
            .disp
            .iter()
            .flatten()
            .zip(cs.iter().flatten())
            .map(|(a, b)| (*a as f64) * (*b as f64))
            .sum::<f64>();
        (l, cs.clone(), vec![[0.0; 3]; st.mom.len()])
    };
    let lin = pm.linear_field(&w, &pk).unwrap();
    let gr = pm
        .gradient(&lin, None, &sch, &loss, AdjointMode::Reverse)
        .unwrap();
    let eval = |lin: &[f64], sch: &Schedule| -> f64 {
        let st = pm.simulate(lin, sch).unwrap();
        let x = pm.integrator().positions(&st.disp);
        loss(&st, &x).0
    };
    // sigma8: delta_L is proportional to sigma8; d/dln sigma8
    // sigma8 moves all particles coherently: the FD bias from CIC kinks is
    // ~h, so the smallest step float32 allows is used
    let fd = fd_slope(
        |h| eval(&lin.iter().map(|v| v * (1.0 + h)).collect::<Vec<_>>(), &sch),
        2e-5,
    );
    check_close("dL/dln sigma8", gr.dlog_amplitude, fd, 5e-3);
    // Omega_m at fixed linear field: schedule derivative from two growth solutions
    let ho = 1e-3;
    let sp = Schedule::new(&LcdmGrowth::new(om + ho), &steps).unwrap();
    let sm = Schedule::new(&LcdmGrowth::new(om - ho), &steps).unwrap();
    let dsch = sp.diff(&sm, 2.0 * ho);
    let ad = gr.schedule.dot(&dsch);
    let fd = fd_slope(
        |h| {
            eval(
                &lin,
                &Schedule::new(&LcdmGrowth::new(om + h), &steps).unwrap(),
            )
        },
        2e-5,
    );
    check_close("dL/dOmega_m (fixed delta_L)", ad, fd, 5e-3);
}

#[test]
fn checkpointed_adjoint_equals_reverse_adjoint() {
    let (np, nm) = (16, 16);
    let (pm, steps) = setup(np, nm, GradientKernel::Fd4, 6);
    let sch = Schedule::new(
        &EdsGrowth,
        &StepConfig {
            a_start: 0.05,
            ..steps
        },
    )
    .unwrap();
    let w = gauss(np.pow(3), 6);
    let u: Vec<f32> = gauss(nm.pow(3), 7).iter().map(|v| *v as f32).collect();
    let loss = density_dot_loss(nm, &u);
    let lin = pm.linear_field(&w, &pk).unwrap();
    let a = pm
        .gradient(&lin, None, &sch, &loss, AdjointMode::Reverse)
        .unwrap();
    for k in [1usize, 4] {
        let b = pm
            .gradient(&lin, None, &sch, &loss, AdjointMode::Checkpoint(k))
            .unwrap();
        let num: f64 = a
            .linear_field
            .iter()
            .zip(&b.linear_field)
            .map(|(x, y)| (x - y).powi(2))
            .sum();
        let den: f64 = b.linear_field.iter().map(|y| y * y).sum();
        let e = (num / den).sqrt();
        eprintln!("checkpoint every {k}: rel rms difference of dL/ddelta_L vs reverse = {e:.2e}");
        assert!(e < 1e-4, "{e}");
        let ds = a.schedule.dot(&a.schedule) - b.schedule.dot(&b.schedule);
        assert!(ds.abs() < 1e-3 * b.schedule.dot(&b.schedule));
    }
}
