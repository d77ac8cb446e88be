//! `cosmodiff massmap` (work in progress: see the open issue).

#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_a: &Args) -> anyhow::Result<()> {
    anyhow::bail!("'massmap' is not available in this build yet")
}
