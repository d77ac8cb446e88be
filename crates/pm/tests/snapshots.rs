//! Snapshots at requested scale factors (issue 8): at stages they are the
//! run's own states; between stages one FastPM step from the previous stage,
//! which reproduces linear growth exactly; the main trajectory is unchanged.

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

fn pk(k: f64) -> f64 {
    2.0e4 * (k / 0.05) / (1.0 + (k / 0.1).powi(3))
}

fn setup(steps: StepConfig) -> Pm {
    Pm::new(PmConfig {
        n_particles: 16,
        n_mesh: 32,
        box_size: 64.0,
        kernel: GradientKernel::Fd4,
        deconvolve: false,
        steps,
    })
    .unwrap()
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
fn snapshots_at_stages_are_the_run_states_and_do_not_change_the_run() {
    let steps = StepConfig {
        n_steps: 4,
        a_start: 0.2,
        ..Default::default()
    };
    let pm = setup(steps.clone());
    let g = LcdmGrowth::new(0.3);
    let sch = Schedule::new(&g, &steps).unwrap();
    let lin = pm.linear_field(&gauss(16usize.pow(3), 1), &pk).unwrap();
    let (st0, _) = pm.initial_state(&lin, &sch).unwrap();
    let mut states = vec![];
    let fin = pm
        .integrator()
        .run(st0, &sch, |_, s| states.push(s.clone()));
    // stages are 0.2, 0.4, 0.6, 0.8, 1.0
    let (fin2, snaps) = pm
        .simulate_snapshots(&lin, &sch, &g, &[1.0, 0.6, 0.5, 0.2])
        .unwrap();
    assert_eq!(fin2, fin, "snapshots change the main trajectory");
    assert_eq!(snaps[0].disp, fin.disp);
    assert_eq!(snaps[1].disp, states[1].disp);
    assert_eq!(snaps[1].mom, states[1].mom);
    assert_eq!(snaps[3].a, 0.2);
    assert_eq!(snaps[2].a, 0.5);
    // a mid-step snapshot lies between its neighbours
    let d = |s: &State| -> f64 { s.disp.iter().flatten().map(|v| (*v as f64).powi(2)).sum() };
    assert!(d(&states[0]) < d(&snaps[2]) && d(&snaps[2]) < d(&states[1]));
    // outside the run
    assert!(pm.simulate_snapshots(&lin, &sch, &g, &[1.2]).is_err());
    assert!(pm.simulate_snapshots(&lin, &sch, &g, &[0.1]).is_err());
}

/// A snapshot inside a step is the state of a run whose last stage is the
/// snapshot's `a` (same earlier stages, FastPM factors of the last partial
/// step): the run integrates to exactly that `a`.
#[test]
fn mid_step_snapshot_equals_a_run_ending_there() {
    let steps = StepConfig {
        n_steps: 4,
        a_start: 0.1,
        a_end: 0.9,
        ..Default::default()
    };
    let pm = setup(steps.clone());
    let g = LcdmGrowth::new(0.3);
    let sch = Schedule::new(&g, &steps).unwrap();
    let lin = pm.linear_field(&gauss(16usize.pow(3), 2), &pk).unwrap();
    // stages 0.1, 0.3, 0.5, 0.7, 0.9; snapshot at 0.4
    let (_, snaps) = pm.simulate_snapshots(&lin, &sch, &g, &[0.4]).unwrap();
    let mut short = Schedule {
        stages: vec![0.1, 0.3, 0.4],
        kick1: vec![sch.kick1[0]],
        drift: vec![sch.drift[0]],
        kick2: vec![sch.kick2[0]],
        lpt: sch.lpt,
    };
    let [k1, dr, k2] = Schedule::step_factors(&g, steps.half_step, steps.factors, 0.3, 0.4);
    short.kick1.push(k1);
    short.drift.push(dr);
    short.kick2.push(k2);
    let st = pm.simulate(&lin, &short).unwrap();
    let (es, ep) = (rel(&snaps[0].disp, &st.disp), rel(&snaps[0].mom, &st.mom));
    eprintln!("snapshot at 0.4 vs run to 0.4: rel rms {es:.1e} (disp), {ep:.1e} (mom)");
    assert!(es < 1e-6 && ep < 1e-6, "{es} {ep}");
    assert_eq!(snaps[0].a, 0.4);
    assert_eq!(st.a, 0.4);
}
