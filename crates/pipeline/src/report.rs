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
