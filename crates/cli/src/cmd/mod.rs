//! One module per subcommand; each has `Args` (clap) and `run`.

/// `eprintln!` unless `-q` was given: summaries and "wrote ..." lines (errors
/// are reported by `main` regardless).
macro_rules! say {
    ($($t:tt)*) => {
        if !$crate::cmd::is_quiet() {
            eprintln!($($t)*);
        }
    };
}

pub mod cosmology;
pub mod demo;
pub mod massmap;
pub mod pm;
pub mod prior;
pub mod sample;
pub mod sbi;
pub mod simulate;

use std::sync::atomic::{AtomicBool, Ordering};

static QUIET: AtomicBool = AtomicBool::new(false);

pub fn is_quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

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
            "{spinner} {msg:<28} [{bar:30}] {pos}/{len} {elapsed_precise}",
        )
        .unwrap()
        .progress_chars("=> "),
    );
    pb.set_message(msg.to_string());
    pb
}
