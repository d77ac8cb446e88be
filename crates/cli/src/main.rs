//! `cosmodiff`: field-level Bayesian inference for cosmology from the command line.

/// mimalloc keeps freed memory for reuse: the networks' training steps
/// allocate and free many multi-megabyte tensors, which glibc's allocator
/// hands back to the kernel and page-faults in again every step.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(cosmodiff_cli::main_with_args(std::env::args_os()));
}
