//! `cosmodiff pointcloud bench`: one training step of the point-cloud
//! diffusion model and ELBO evaluations per second, with ratios against the
//! JAX twin of the reference implementation (`bench/pointcloud/jax_twin.py`
//! writes the JSON `--jax-json` reads; `bench/pointcloud/run.sh` runs both,
//! interleaved).

use std::path::PathBuf;

use anyhow::{Context, Result};
use cosmodiff_pointcloud::bench::{time, BenchSettings};
use cosmodiff_pointcloud::{NetConfig, NetKind};
use serde_json::json;

/// `cosmodiff pointcloud bench`.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct Settings {
    /// Halos per cloud.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 256))]
    pub n: usize,
    /// Neighbours per halo.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 20))]
    pub k: usize,
    /// Width of the network.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 64))]
    pub hidden: usize,
    /// Message-passing layers.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 4))]
    pub layers: usize,
    /// Clouds per training step.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 16))]
    pub batch: usize,
    /// Timed training steps (after one warm-up step).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 20))]
    pub steps: usize,
    /// Diffusion times per ELBO.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 32))]
    pub times: usize,
    /// Timed ELBO evaluations (best of).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 5))]
    pub evals: usize,
    /// JSON of the JAX twin (train_step_ms_best, elbo_per_s): ratios are printed.
    #[cfg_attr(feature = "cli", arg(long))]
    pub jax_json: Option<PathBuf>,
    /// Write the timings as JSON.
    #[cfg_attr(feature = "cli", arg(long))]
    pub json: Option<PathBuf>,
}

/// Time the model; returns the JSON it prints and writes.
pub fn run(s: &Settings) -> Result<serde_json::Value> {
    crate::output::check_parent_dir(s.json.as_deref(), "--json")?;
    let jax: Option<serde_json::Value> = match &s.jax_json {
        Some(p) => Some(
            serde_json::from_str(
                &std::fs::read_to_string(p)
                    .with_context(|| format!("--jax-json {}", p.display()))?,
            )
            .with_context(|| format!("--jax-json {}: not JSON", p.display()))?,
        ),
        None => None,
    };
    let settings = BenchSettings {
        n: s.n,
        features: 4,
        net: NetConfig {
            kind: NetKind::Gnn,
            hidden: s.hidden,
            layers: s.layers,
            k: s.k,
            ..Default::default()
        },
        batch: s.batch,
        steps: s.steps,
        times: s.times,
        evals: s.evals,
    };
    let t = time(&settings)?;
    let ms = 1e3 * t.train_step_s;
    let elbo_per_s = 1.0 / t.eval_s;
    let mut out = json!({
        "framework": "cosmodiff",
        "device": cosmodiff_nn::device::selected().to_string(),
        "n": s.n, "k": s.k, "hidden": s.hidden, "layers": s.layers, "batch": s.batch,
        "times": s.times, "params": t.params,
        "train_step_ms_best": ms,
        "elbo_per_s": elbo_per_s,
    });
    let mut line = format!(
        "point-cloud VDM (gnn, N {}, k {}, width {}, {} layers, batch {}): train step {ms:.1} ms, {elbo_per_s:.2} ELBO/s ({} times)",
        s.n, s.k, s.hidden, s.layers, s.batch, s.times
    );
    if let Some(j) = &jax {
        let jms = j["train_step_ms_best"].as_f64().unwrap_or(f64::NAN);
        let jelbo = j["elbo_per_s"].as_f64().unwrap_or(f64::NAN);
        out["train_vs_jax"] = json!(jms / ms);
        out["elbo_vs_jax"] = json!(elbo_per_s / jelbo);
        line += &format!(
            "; JAX twin {jms:.1} ms, {jelbo:.2} ELBO/s: {:.2}x training, {:.2}x ELBO",
            jms / ms,
            elbo_per_s / jelbo
        );
    }
    println!("{line}");
    if let Some(p) = &s.json {
        crate::output::write_bytes(p, serde_json::to_string_pretty(&out)?.as_bytes())?;
    }
    Ok(out)
}
