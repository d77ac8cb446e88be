//! `cosmodiff sample` (work in progress: see the open issue).

#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_a: &Args) -> anyhow::Result<()> {
    anyhow::bail!("'sample' is not available in this build yet")
}
