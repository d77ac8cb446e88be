//! Fork-join over the cores for the fused kernels' small, frequent splits.
//!
//! A training step of a conditional flow calls the kernels a few dozen
//! times, each on a batch worth some 50-500 microseconds of work, between
//! which burn runs many tiny operations on the calling thread. A thread
//! pool whose idle workers go to sleep (rayon's) must wake a worker through
//! the operating system at every split, which on two cores costs as much as
//! the split gains. Here one helper thread per extra core spins while
//! waiting for work and only parks after [`SPIN`] without any (the way
//! OpenMP runtimes keep their threads hot), so handing over a part costs
//! well under a microsecond.
//!
//! Only one caller uses the helpers at a time; a caller that finds them in
//! use (another thread, or a nested split) runs its parts itself.
//! `COSMODIFF_KERNEL_THREADS` sets the number of threads (default: the
//! available cores, at most 8; 1 runs everything on the calling thread).

use std::cell::UnsafeCell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// How long an idle helper spins before it parks.
const SPIN: Duration = Duration::from_millis(2);

const IDLE: u8 = 0;
const POSTED: u8 = 1;
const DONE: u8 = 2;

/// A task handed to a helper: a type-erased `Option<F>` and the function
/// that takes `F` out of it and runs it.
type Erased = (unsafe fn(*mut ()), *mut ());

/// One helper's mailbox.
struct Slot {
    state: AtomicU8,
    task: UnsafeCell<Option<Erased>>,
    panicked: AtomicBool,
    sleeping: AtomicBool,
    thread: OnceLock<Thread>,
}

// SAFETY: `task` is written by the poster only while `state` is IDLE and
// read by the helper only after it sees POSTED (release/acquire on `state`).
unsafe impl Sync for Slot {}

struct Pool {
    slots: Vec<&'static Slot>,
    busy: Mutex<()>,
}

/// Threads for the kernels: `COSMODIFF_KERNEL_THREADS` if set (1: no
/// helpers), else the available cores, at most 8.
fn kernel_threads() -> usize {
    std::env::var("COSMODIFF_KERNEL_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(8)
        })
        .max(1)
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let slots = (1..kernel_threads())
            .filter_map(|i| {
                let slot: &'static Slot = Box::leak(Box::new(Slot {
                    state: AtomicU8::new(IDLE),
                    task: UnsafeCell::new(None),
                    panicked: AtomicBool::new(false),
                    sleeping: AtomicBool::new(false),
                    thread: OnceLock::new(),
                }));
                let handle = std::thread::Builder::new()
                    .name(format!("cosmodiff-kernel-{i}"))
                    .spawn(move || helper(slot))
                    .ok()?;
                slot.thread.set(handle.thread().clone()).ok()?;
                Some(slot)
            })
            .collect();
        Pool {
            slots,
            busy: Mutex::new(()),
        }
    })
}

fn helper(slot: &'static Slot) {
    loop {
        let mut since = Instant::now();
        let mut spins = 0u32;
        while slot.state.load(Ordering::Acquire) != POSTED {
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(512) && since.elapsed() > SPIN {
                slot.sleeping.store(true, Ordering::SeqCst);
                if slot.state.load(Ordering::SeqCst) != POSTED {
                    std::thread::park();
                }
                slot.sleeping.store(false, Ordering::SeqCst);
                since = Instant::now();
            } else {
                std::hint::spin_loop();
            }
        }
        // SAFETY: the poster wrote the task before publishing POSTED and
        // keeps its closure alive until it sees DONE.
        let task = unsafe { (*slot.task.get()).take() };
        let ok = match task {
            Some((run, data)) => catch_unwind(AssertUnwindSafe(|| unsafe { run(data) })).is_ok(),
            None => true,
        };
        slot.panicked.store(!ok, Ordering::Relaxed);
        slot.state.store(DONE, Ordering::Release);
    }
}

/// Take the closure out of the `Option<F>` at `data` and run it.
unsafe fn call<F: FnOnce()>(data: *mut ()) {
    // SAFETY: `data` points to a live `Option<F>` (see `fork`).
    if let Some(f) = unsafe { (*(data as *mut Option<F>)).take() } {
        f();
    }
}

/// How many parts [`fork`] runs at once: the calling thread and the helpers.
pub(crate) fn threads() -> usize {
    1 + pool().slots.len()
}

/// Run the tasks in parallel (the first on the calling thread, the others
/// on helpers) and return when all have finished; sequentially when there
/// are more tasks than threads or the helpers are in use. A panic in any
/// task is raised here after all have finished.
pub(crate) fn fork<F: FnOnce() + Send>(tasks: Vec<F>) {
    let pool = pool();
    let guard = match pool.busy.try_lock() {
        Ok(g) if tasks.len() > 1 && tasks.len() <= threads() => g,
        _ => return tasks.into_iter().for_each(|f| f()),
    };
    let mut cells: Vec<Option<F>> = tasks.into_iter().map(Some).collect();
    let base = cells.as_mut_ptr();
    let helpers = &pool.slots[..cells.len() - 1];
    for (i, slot) in helpers.iter().enumerate() {
        // SAFETY: the slot is IDLE (we hold `busy` and every earlier fork
        // waited for DONE), so the helper does not read `task`; the cell
        // outlives the task because we wait for DONE below.
        unsafe {
            *slot.task.get() = Some((call::<F> as unsafe fn(*mut ()), base.add(i + 1).cast()))
        };
        slot.state.store(POSTED, Ordering::SeqCst);
        if slot.sleeping.load(Ordering::SeqCst) {
            if let Some(t) = slot.thread.get() {
                t.unpark();
            }
        }
    }
    // SAFETY: cell 0 is not shared with any helper.
    let mine = catch_unwind(AssertUnwindSafe(|| unsafe { call::<F>(base.cast()) }));
    let mut panicked = false;
    for slot in helpers {
        let mut spins = 0u32;
        while slot.state.load(Ordering::Acquire) != DONE {
            spins = spins.wrapping_add(1);
            if spins > 1 << 16 {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
        panicked |= slot.panicked.load(Ordering::Relaxed);
        slot.state.store(IDLE, Ordering::Release);
    }
    drop(cells);
    drop(guard);
    if let Err(p) = mine {
        resume_unwind(p);
    }
    assert!(!panicked, "a kernel task panicked on a helper thread");
}

#[cfg(test)]
mod tests {
    use super::fork;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn runs_every_task_once_including_nested_and_oversized() {
        let count = AtomicUsize::new(0);
        for n in [1, 2, 3, 20] {
            count.store(0, Ordering::SeqCst);
            let tasks: Vec<_> = (0..n)
                .map(|_| {
                    || {
                        // Nested: the helpers are busy, so this runs inline.
                        fork(vec![|| (), || ()]);
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                })
                .collect();
            fork(tasks);
            assert_eq!(count.load(Ordering::SeqCst), n);
        }
    }

    #[test]
    fn results_land_in_their_slots() {
        let mut out = vec![0usize; 2];
        let tasks: Vec<_> = out
            .iter_mut()
            .enumerate()
            .map(|(i, o)| move || *o = (i + 1) * 10)
            .collect();
        fork(tasks);
        assert_eq!(out, vec![10, 20]);
    }

    #[test]
    fn a_panicking_task_panics_the_caller() {
        let r = std::panic::catch_unwind(|| {
            fork(
                vec![|| (), || panic!("boom")]
                    .into_iter()
                    .map(|f| f as fn())
                    .collect(),
            )
        });
        assert!(r.is_err());
        // The helpers still work afterwards.
        let mut out = [0u8; 2];
        let (a, b) = out.split_at_mut(1);
        fork(vec![
            Box::new(|| a[0] = 1) as Box<dyn FnOnce() + Send>,
            Box::new(|| b[0] = 2),
        ]);
        assert_eq!(out, [1, 2]);
    }
}
