//! `cosmodiff prior bench`: U-Net training throughput and score-evaluation time.

use super::*;

#[derive(Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct BenchSettings {
    /// Map side, pixels.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 64))]
    pub side: usize,
    /// Training batch.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 32))]
    pub batch: usize,
    /// Maps per score evaluation (chains).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 16))]
    pub eval_batch: usize,
    /// Timed training steps.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 10))]
    pub steps: usize,
    /// Timed score evaluations.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 10))]
    pub evals: usize,
    /// JSON written by bench/diffusion/unet_torch.py with the same sizes.
    #[cfg_attr(feature = "cli", arg(long))]
    pub torch_json: Option<PathBuf>,
    /// Write our timings as JSON here.
    #[cfg_attr(feature = "cli", arg(long))]
    pub json: Option<PathBuf>,
}

/// `cosmodiff prior bench`: time the U-Net (training and score evaluation).
pub fn bench(a: &BenchSettings) -> Result<()> {
    use cosmodiff_lensing::score::MapScore;
    if a.eval_batch == 0 || a.steps == 0 || a.evals == 0 {
        bail!("--eval-batch, --steps and --evals must be >= 1");
    }
    if a.batch < 4 {
        bail!(
            "--batch {}: the training batch needs at least 4 maps",
            a.batch
        );
    }
    // the reference timings, checked before the (long) measurement
    let theirs = match &a.torch_json {
        Some(p) => Some(torch_reference(p, a)?),
        None => None,
    };
    crate::output::check_parent_dir(a.json.as_deref(), "--json")?;
    // A benchmark of the U-Net on CPU: 1024^2 maps already need ~GBs.
    if a.side > 1024 || a.batch.max(a.eval_batch) > 4096 {
        bail!("--side must be <= 1024 and --batch / --eval-batch <= 4096 for the CPU benchmark");
    }
    let unet = UNetConfig::default();
    unet.validate(a.side)?;
    // Training: the real DSM path (no hybrid part, as the PyTorch twin),
    // one warm-up step, then `steps` timed steps on `batch` maps.
    let maps: Vec<Vec<f64>> = (0..a.batch)
        .map(|i| cosmodiff_field::grf2::white_noise(a.side * a.side, i as u64))
        .collect();
    let cfg = |steps| ScoreTrainConfig {
        unet: unet.clone(),
        hybrid: false,
        batch_size: a.batch,
        steps,
        ..Default::default()
    };
    let warm = train_score(&maps, a.side, 2.0, &cfg(1))?;
    let t0 = std::time::Instant::now();
    train_score(&maps, a.side, 2.0, &cfg(a.steps))?;
    let train_step = t0.elapsed().as_secs_f64() / a.steps as f64;
    let x: Vec<Vec<f64>> = maps.iter().cycle().take(a.eval_batch).cloned().collect();
    let sigma = warm.config.data_std;
    warm.score(&x, sigma)?;
    let t0 = std::time::Instant::now();
    for _ in 0..a.evals {
        warm.score(&x, sigma)?;
    }
    let eval = t0.elapsed().as_secs_f64() / a.evals as f64;
    let ours = serde_json::json!({
        "tool": "cosmodiff (burn flex)",
        "threads": rayon::current_num_threads(),
        "side": a.side,
        "train_batch": a.batch,
        "train_step_s": train_step,
        "train_maps_per_s": a.batch as f64 / train_step,
        "eval_batch": a.eval_batch,
        "score_eval_s": eval,
    });
    if let Some(p) = &a.json {
        crate::output::write_bytes(p, serde_json::to_string_pretty(&ours)?.as_bytes())
            .with_context(|| format!("--json {}", p.display()))?;
    }
    println!("U-Net {:?}, {}x{} maps", unet.channels, a.side, a.side);
    println!(
        "{:<34} {:>12} {:>12} {:>8}",
        "", "cosmodiff", "reference", "ratio"
    );
    let row = |name: &str, key: &str, higher_better: bool| {
        let o = ours[key].as_f64().unwrap_or(f64::NAN);
        match theirs.as_ref().and_then(|t| t[key].as_f64()) {
            Some(r) => {
                let ratio = if higher_better { o / r } else { r / o };
                println!("{name:<34} {o:>12.4} {r:>12.4} {ratio:>7.2}x")
            }
            None => println!("{name:<34} {o:>12.4}"),
        }
    };
    row(
        &format!("training maps/s (batch {})", a.batch),
        "train_maps_per_s",
        true,
    );
    row(
        &format!("score evaluation s (batch {})", a.eval_batch),
        "score_eval_s",
        false,
    );
    if let Some(t) = &theirs {
        println!(
            "reference: {} ({} threads); ratio > 1 means cosmodiff is faster",
            t["tool"], t["threads"]
        );
    }
    Ok(())
}

/// The JSON of `bench/diffusion/unet_torch.py`: its timings must be
/// positive numbers measured at the sizes of this run.
fn torch_reference(p: &Path, a: &BenchSettings) -> Result<serde_json::Value> {
    let t: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
    )
    .with_context(|| format!("--torch-json {}: not JSON", p.display()))?;
    for key in ["train_maps_per_s", "score_eval_s"] {
        match t[key].as_f64() {
            Some(v) if v > 0.0 && v.is_finite() => {}
            _ => bail!(
                "--torch-json {}: '{key}' must be a positive number (got {})",
                p.display(),
                t[key]
            ),
        }
    }
    for (key, ours) in [
        ("side", a.side),
        ("train_batch", a.batch),
        ("eval_batch", a.eval_batch),
    ] {
        if t[key].as_u64() != Some(ours as u64) {
            bail!(
                "--torch-json {}: measured with {key} = {}, this run uses {ours}; run both with the same sizes",
                p.display(),
                t[key]
            );
        }
    }
    Ok(t)
}
