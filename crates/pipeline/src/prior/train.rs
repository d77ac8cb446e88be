//! `cosmodiff prior train`: fit a score prior by denoising score matching.

use super::*;

#[derive(Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct TrainSettings {
    /// TOML config.
    #[cfg_attr(feature = "cli", arg(long))]
    pub config: PathBuf,
    /// Model directory to write.
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
    #[cfg_attr(feature = "cli", command(flatten))]
    pub reuse: crate::run_dir::Reuse,
    #[cfg_attr(feature = "cli", command(flatten))]
    pub checkpoints: crate::run_dir::Checkpoints,
}

/// `cosmodiff prior train`: fit a score prior to simulated or given maps.
pub fn train(a: &TrainSettings) -> Result<()> {
    let cfg: PriorConfig = config::load(&a.config)?;
    let base = config::base_dir(&a.config);
    let t = &cfg.training;
    let n_maps = match (&cfg.data, t.n_maps) {
        (Some(_), Some(_)) => {
            bail!("[training] n_maps applies to simulated maps; with `data` every map in the file is used")
        }
        (None, Some(n)) if n < 4 => bail!("[training] n_maps = {n}: need at least 4"),
        (_, n) => n.unwrap_or(2000),
    };
    if t.steps == 0 || t.batch_size == 0 {
        bail!("[training] steps and batch_size must be at least 1");
    }
    if !(t.learning_rate > 0.0 && t.learning_rate < 1.0) {
        bail!(
            "[training] learning_rate = {}: expected a value in (0, 1)",
            t.learning_rate
        );
    }
    a.checkpoints.check()?;
    let sde = cfg.sde.build()?;
    let unet = UNetConfig {
        in_channels: 1,
        channels: cfg.network.channels.clone(),
        embed_dim: cfg.network.embed_dim,
    };
    let (grid, maps) = training_maps(&cfg, &base, n_maps, cfg.field_seed())?;
    unet.validate(grid.n)
        .map_err(|e| anyhow!("[network] {e}"))?;
    let dir = crate::run_dir::RunDir::open(
        &a.out,
        "prior train",
        a,
        a.reuse,
        crate::run_dir::Kind::Training,
        &[("--config", &a.config)],
    )?;
    let tc = ScoreTrainConfig {
        unet,
        sde,
        hybrid: cfg.network.hybrid,
        batch_size: t.batch_size,
        steps: t.steps,
        learning_rate: t.learning_rate,
        seed: t.seed,
        progress: !crate::report::is_quiet(),
        checkpoint: Some(dir.training_checkpoint(a.checkpoints)?),
    };
    let model = {
        let _listening = crate::report::InterruptScope::new();
        dir.training_result(train_score(&maps, grid.n, grid.pixel_arcmin, &tc))?
    };
    crate::output::write_folder_via(&a.out, |t| Ok(model.save(t)?))?;
    dir.training_done()?;
    let r = model.config.report.as_ref().expect("trained");
    say!(
        "trained on {} maps of {}x{} ({} arcmin pixels) for {} epochs in {:.0} s ({:.1} maps/s); final loss {:.4}; wrote {}",
        maps.len(),
        grid.n,
        grid.n,
        grid.pixel_arcmin,
        r.epochs,
        r.seconds,
        (r.epochs * maps.len()) as f64 / r.seconds,
        r.train_loss.last().copied().unwrap_or(f64::NAN),
        a.out.display()
    );
    dir.finish()
}
