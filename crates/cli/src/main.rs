//! `cosmodiff`: field-level Bayesian inference for cosmology from the command line.

// The argument docs are clap's --help text: `[cosmology]`, `[n_pairs][n_ell]`
// there are TOML sections and array shapes, not rustdoc links.
#![allow(rustdoc::broken_intra_doc_links)]

use clap::Parser;

/// mimalloc keeps freed memory for reuse: the networks' training steps
/// allocate and free many multi-megabyte tensors, which glibc's allocator
/// hands back to the kernel and page-faults in again every step.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod commands;

/// Field-level Bayesian inference for cosmology: differentiable forward
/// models (cosmology, random fields, weak lensing, particle mesh), mass
/// mapping (Kaiser-Squires, Wiener, diffusion priors), samplers and
/// simulation-based inference with normalizing flows.
///
/// Units: distances in Mpc/h, wavenumbers k in h/Mpc, P(k) in (Mpc/h)^3,
/// angles in arcmin, H in km/s/Mpc. Arrays are written as numpy .npy/.npz.
#[derive(Parser, Debug)]
#[command(name = "cosmodiff", version, about, propagate_version = true)]
struct Cli {
    /// More log output (-v info, -vv debug, -vvv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Only errors on the terminal (also hides progress bars).
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: commands::Command,
}

/// The command line with negative numbers accepted as option values
/// (`--smoothing-arcmin -1` is then refused by our own checks, in words)
/// in every subcommand.
fn command() -> clap::Command {
    fn allow_negative(c: clap::Command) -> clap::Command {
        c.allow_negative_numbers(true)
            .mut_subcommands(allow_negative)
    }
    allow_negative(<Cli as clap::CommandFactory>::command())
}

/// Parse the arguments; a usage error is one line on stderr and exit 2
/// (help and version print as usual).
fn parse() -> Cli {
    use clap::error::ErrorKind;
    use clap::FromArgMatches;
    let parsed = command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m));
    match parsed {
        Ok(c) => c,
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) =>
        {
            e.exit()
        }
        Err(e) => {
            // clap's message up to its usage / help hint, joined into one line.
            let text = e.render().to_string();
            let msg: Vec<&str> = text
                .lines()
                .map(str::trim)
                .take_while(|l| {
                    !l.is_empty() && !l.starts_with("Usage:") && !l.starts_with("For more")
                })
                .collect();
            let msg = if msg.is_empty() {
                "error: invalid arguments".to_string()
            } else {
                msg.join(" ")
            };
            eprintln!("{msg} (see --help)");
            std::process::exit(2);
        }
    }
}

fn main() {
    let cli = parse();
    let level = if cli.quiet {
        log::LevelFilter::Error
    } else {
        match cli.verbose {
            0 => log::LevelFilter::Warn,
            1 => log::LevelFilter::Info,
            2 => log::LevelFilter::Debug,
            _ => log::LevelFilter::Trace,
        }
    };
    env_logger::Builder::new()
        .filter_level(level)
        .format_timestamp(None)
        .init();
    cosmodiff_pipeline::report::set_quiet(cli.quiet);
    // A panic is a bug, never the user's fault: one line asking for a report
    // instead of a backtrace, and the same exit code as any other failure.
    let name = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let name = name.unwrap_or_default();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "error: internal error in `cosmodiff {name}`: {}{at}; please report it with the command that caused it",
            msg.replace('\n', " ")
        );
    }));
    let result = match std::panic::catch_unwind(|| cli.command.run()) {
        Ok(r) => r,
        Err(_) => std::process::exit(2),
    };
    if let Err(e) = result {
        eprintln!("error: {}", cosmodiff_pipeline::report::one_line(&e));
        std::process::exit(2);
    }
}
