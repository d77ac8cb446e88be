//! Progress reporting shared by every workflow: the `say!` summary lines and
//! progress bars, both silenced by [`set_quiet`] (`-q` on the command line;
//! the Python module keeps them quiet unless asked).

/// `eprintln!` unless `-q` was given: summaries and "wrote ..." lines (errors
/// are reported by `main` regardless).
macro_rules! say {
    ($($t:tt)*) => {
        if !$crate::report::is_quiet() {
            eprintln!($($t)*);
        }
    };
}

use std::sync::atomic::{AtomicBool, Ordering};

static QUIET: AtomicBool = AtomicBool::new(false);

/// Whether summaries and progress bars are silenced.
pub fn is_quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// Silence (or restore) summaries and progress bars for the whole process.
pub fn set_quiet(q: bool) {
    QUIET.store(q, Ordering::Relaxed);
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static LISTENERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Ask the running workflow to stop (the CLI's Ctrl-C and SIGTERM
/// handler). Returns whether a workflow is listening ([`InterruptScope`]):
/// if not, the caller should exit at once.
pub fn interrupt() -> bool {
    INTERRUPTED.store(true, Ordering::SeqCst);
    LISTENERS.load(Ordering::SeqCst) > 0
}

/// Whether [`interrupt`] was called.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

/// The flag [`interrupt`] sets, for samplers that take a stop flag.
pub fn interrupt_flag() -> &'static AtomicBool {
    &INTERRUPTED
}

/// While alive, an interrupt is handled by the workflow that holds it
/// (campaigns, full-field chains: finish the current step, write the
/// checkpoint, stop with a message saying how to resume) instead of ending
/// the process at once.
pub struct InterruptScope(());

impl InterruptScope {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        LISTENERS.fetch_add(1, Ordering::SeqCst);
        InterruptScope(())
    }
}

impl Drop for InterruptScope {
    fn drop(&mut self) {
        LISTENERS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A progress bar that is hidden under `--quiet` or when stderr is not a terminal.
pub fn progress(len: u64, msg: &str) -> indicatif::ProgressBar {
    if QUIET.load(Ordering::Relaxed) {
        return indicatif::ProgressBar::hidden();
    }
    let pb = indicatif::ProgressBar::new(len);
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {msg:<28} [{bar:30}] {pos}/{len} {elapsed_precise} (ETA {eta})",
        )
        .unwrap()
        .progress_chars("=> "),
    );
    pb.set_message(msg.to_string());
    pb
}

/// An error and its causes as one line, `outer: inner: ...`, leaving out a
/// cause whose text the message before it already shows (many error types
/// print their source themselves). What the CLI prints after `error: ` and
/// what the Python module raises.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = vec![];
    for cause in e.chain() {
        let s = cause.to_string();
        if !parts.last().is_some_and(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ").replace('\n', " ")
}
