//! `cosmodiff cosmology`.
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// TOML config ([cosmology], [options], [background], [power], [[tracer]], [cl], [fisher]).
    #[arg(long)]
    pub config: PathBuf,
    /// Output .npz of named float64 arrays.
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(_a: &Args) -> anyhow::Result<()> {
    anyhow::bail!("cosmology: not assembled yet")
}
