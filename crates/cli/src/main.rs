//! `cosmodiff`: field-level Bayesian inference for cosmology from the command line.

/// mimalloc keeps freed memory for reuse: the networks' training steps
/// allocate and free many multi-megabyte tensors, which glibc's allocator
/// hands back to the kernel and page-faults in again every step.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // Ctrl-C / SIGTERM: a resumable workflow finishes its step, writes its
    // checkpoint and stops with a message saying how to resume; any other
    // command (or a second Ctrl-C) ends at once, as before.
    let _ = ctrlc::set_handler(|| {
        use cosmodiff_pipeline::report;
        if report::interrupted() || !report::interrupt() {
            // no destructor runs after exit: put output folders back first
            cosmodiff_pipeline::run_dir::abandon_all();
            eprintln!("\ninterrupted");
            std::process::exit(130);
        }
        eprintln!("\ninterrupted: finishing the current step and writing the checkpoint (Ctrl-C again quits at once)");
    });
    std::process::exit(cosmodiff_cli::main_with_args(std::env::args_os()));
}
