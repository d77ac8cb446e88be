//! The `cosmodiff` command line as a library: the argument parser and
//! [`main_with_args`], shared by the binary (`src/main.rs`) and the Python
//! module's `python -m cosmodiff`. Arguments parse into the settings types
//! of `cosmodiff-pipeline`, whose workflows do all the work.

// The argument docs are clap's --help text: `[cosmology]`, `[n_pairs][n_ell]`
// there are TOML sections and array shapes, not rustdoc links.
#![allow(rustdoc::broken_intra_doc_links)]

use clap::Parser;

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
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Memory a command may use, e.g. 16G (default: what the machine has
    /// available); commands whose estimated peak exceeds it are refused.
    #[arg(long, global = true, value_name = "SIZE")]
    max_memory: Option<String>,
    /// Device the networks train and run on: cpu (default), cuda, cuda:N or
    /// wgpu, where this build has them (cargo features cuda, wgpu).
    #[arg(long, global = true, env = "COSMODIFF_DEVICE", value_name = "DEVICE")]
    device: Option<String>,
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
fn parse<I, T>(args: I) -> Cli
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    use clap::error::ErrorKind;
    use clap::FromArgMatches;
    let parsed = command()
        .try_get_matches_from(args)
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

/// Run the command line `args` (program name first) and return the process
/// exit code: 0 on success, 2 for any error (one line on stderr). Help and
/// version requests print and exit the process, as every CLI does.
pub fn main_with_args<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    let cli = parse(args.iter().cloned());
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
    // A second call in one process (Python) keeps the first logger.
    // wgpu reports the graphics APIs it tried and skipped (e.g. EGL on a
    // machine with Vulkan only) as errors: shown from -vv on.
    let gpu = if cli.verbose >= 2 {
        level
    } else {
        log::LevelFilter::Off
    };
    let _ = env_logger::Builder::new()
        .filter_level(level)
        .filter_module("wgpu_hal", gpu)
        .filter_module("wgpu_core", gpu)
        .format_timestamp(None)
        .try_init();
    cosmodiff_pipeline::report::set_quiet(cli.quiet);
    let limit = cli
        .max_memory
        .as_deref()
        .map(cosmodiff_pipeline::budget::parse_size)
        .transpose();
    match limit {
        Ok(l) => cosmodiff_pipeline::budget::set_max_memory(l),
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    }
    if let Some(name) = cli.device.as_deref() {
        if let Err(e) = cosmodiff_pipeline::nn_device::select_name(name) {
            eprintln!("error: {e}");
            return 2;
        }
    }
    // A panic is a bug, never the user's fault: one line asking for a report
    // instead of a backtrace, and the same exit code as any other failure.
    let name = args
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .find(|a| !a.starts_with('-'))
        .unwrap_or_default();
    let previous = std::panic::take_hook();
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
    let result = std::panic::catch_unwind(|| cli.command.run());
    // the caller's hook again (Python's module keeps its own)
    std::panic::set_hook(previous);
    match result {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => {
            eprintln!("error: {}", cosmodiff_pipeline::report::one_line(&e));
            2
        }
        // the hook printed the one line
        Err(_) => 2,
    }
}
