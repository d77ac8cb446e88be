//! Peak heap memory of the reverse adjoint does not grow with the number of
//! steps (pmwd's constant-memory property); the fully checkpointed variant
//! does. Measured with a counting global allocator (this test binary only).

use cosmodiff_pm::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

struct Counting;
static CUR: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let c = CUR.fetch_add(l.size(), SeqCst) + l.size();
            PEAK.fetch_max(c, SeqCst);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        CUR.fetch_sub(l.size(), SeqCst);
    }
}

#[global_allocator]
static A: Counting = Counting;

fn peak_of(f: impl FnOnce()) -> usize {
    let base = CUR.load(SeqCst);
    PEAK.store(base, SeqCst);
    f();
    PEAK.load(SeqCst) - base
}

#[test]
fn adjoint_memory_independent_of_step_count() {
    let np = 16;
    let w: Vec<f64> = (0..np * np * np)
        .map(|i| ((i * 7919) % 101) as f64 / 50.0 - 1.0)
        .collect();
    let pk = |k: f64| 2.0e4 * (k / 0.05) / (1.0 + (k / 0.1).powi(3));
    let u: Vec<f32> = (0..np * np * np)
        .map(|i| ((i * 31) % 17) as f32 / 17.0)
        .collect();
    let mut peaks = vec![];
    for mode in [AdjointMode::Reverse, AdjointMode::Checkpoint(1)] {
        for n_steps in [2usize, 16] {
            let steps = StepConfig {
                n_steps,
                ..Default::default()
            };
            let cfg = PmConfig {
                n_particles: np,
                n_mesh: np,
                box_size: 64.0,
                kernel: GradientKernel::Fd4,
                deconvolve: false,
                steps: steps.clone(),
            };
            let pm = Pm::new(cfg).unwrap();
            let sch = Schedule::new(&EdsGrowth, &steps).unwrap();
            let lin = pm.linear_field(&w, &pk).unwrap();
            let loss = density_dot_loss(&pm, &u);
            let p = peak_of(|| {
                let g = pm.gradient(&lin, None, &sch, &loss, mode).unwrap();
                assert!(g.loss.is_finite());
            });
            eprintln!(
                "{mode:?} {n_steps} steps: peak heap {:.2} MiB",
                p as f64 / (1 << 20) as f64
            );
            peaks.push(p);
        }
    }
    // reverse: identical peak (within 5%) for 2 and 16 steps
    assert!((peaks[1] as f64) < 1.05 * peaks[0] as f64, "{peaks:?}");
    // checkpointing every step grows with the step count
    assert!(peaks[3] > peaks[2] + 10 * np * np * np * 24, "{peaks:?}");
}
