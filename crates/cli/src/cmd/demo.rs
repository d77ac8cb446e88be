//! `cosmodiff demo`: the end-to-end demonstration.
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output folder for figures, arrays and report.md.
    #[arg(long, default_value = "cosmodiff-demo")]
    pub out: PathBuf,
    /// Smaller maps and shorter chains (under 30 s on 2 cores).
    #[arg(long)]
    pub quick: bool,
    /// Random seed (results are deterministic for a given seed).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

pub fn run(_a: &Args) -> anyhow::Result<()> {
    anyhow::bail!("demo: not assembled yet")
}
