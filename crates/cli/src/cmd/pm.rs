//! `cosmodiff pm` (work in progress: see the open issue).

#[derive(clap::Subcommand, Debug)]
pub enum Command {}

pub fn run(c: &Command) -> anyhow::Result<()> {
    match *c {}
}
