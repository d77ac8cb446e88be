//! `cosmodiff`: field-level Bayesian inference for cosmology from the command line.

// The argument docs are clap's --help text: `[cosmology]`, `[n_pairs][n_ell]`
// there are TOML sections and array shapes, not rustdoc links.
#![allow(rustdoc::broken_intra_doc_links)]

use clap::{Parser, Subcommand};

/// mimalloc keeps freed memory for reuse: the networks' training steps
/// allocate and free many multi-megabyte tensors, which glibc's allocator
/// hands back to the kernel and page-faults in again every step.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cmd;
mod config;
mod io;

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
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the end-to-end demonstration on built-in defaults (no downloads).
    Demo(cmd::demo::Args),
    /// Background, growth, P(k), angular C_ell, covariance and Fisher matrix from a TOML config.
    Cosmology(cmd::cosmology::Args),
    /// Simulate fields and observations (e.g. tomographic lensing maps).
    #[command(subcommand)]
    Simulate(cmd::simulate::Command),
    /// Reconstruct convergence (mass) maps from shear: Kaiser-Squires, Wiener, diffusion prior.
    Massmap(cmd::massmap::Args),
    /// Sample cosmological parameters with NUTS from the Gaussian C_ell likelihood.
    Sample(cmd::sample::Args),
    /// Particle-mesh N-body simulation.
    #[command(subcommand)]
    Pm(cmd::pm::Command),
    /// Learned score (diffusion) priors of convergence maps: train, evaluate, bench.
    #[command(subcommand)]
    Prior(cmd::prior::Command),
    /// Simulation-based inference: neural posterior / likelihood estimation with normalizing flows.
    #[command(subcommand)]
    Sbi(cmd::sbi::Command),
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
    cmd::set_quiet(cli.quiet);
    let result = match &cli.command {
        Command::Demo(a) => cmd::demo::run(a),
        Command::Cosmology(a) => cmd::cosmology::run(a),
        Command::Simulate(c) => cmd::simulate::run(c),
        Command::Massmap(a) => cmd::massmap::run(a),
        Command::Sample(a) => cmd::sample::run(a),
        Command::Pm(c) => cmd::pm::run(c),
        Command::Sbi(c) => cmd::sbi::run(c),
        Command::Prior(c) => cmd::prior::run(c),
    };
    if let Err(e) = result {
        // One line: the chain of contexts joined by ': ', leaving out a cause
        // whose text the message before it already shows (many error types
        // print their source themselves).
        let mut parts: Vec<String> = vec![];
        for cause in e.chain() {
            let s = cause.to_string();
            if !parts.last().is_some_and(|p| p.contains(&s)) {
                parts.push(s);
            }
        }
        let msg = parts.join(": ").replace('\n', " ");
        eprintln!("error: {msg}");
        std::process::exit(2);
    }
}
