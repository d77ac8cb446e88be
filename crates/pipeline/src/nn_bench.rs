//! `cosmodiff nn bench`: the networks of cosmodiff timed on every device
//! of this build, side by side with their PyTorch twins
//! (`bench/nn/torch_twins.py`), to choose the default backend by
//! measurement (see [`cosmodiff_nn::bench`] for the workloads and
//! docs/benchmarks.md for the recorded table).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use cosmodiff_nn::bench::{time, Workload};
use cosmodiff_nn::device::{self, DeviceKind};

/// Settings of `cosmodiff nn bench`.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct Settings {
    /// Devices to time, comma-separated (default: every device this build
    /// has: cpu, flex, and cuda / wgpu / ndarray where compiled in).
    #[cfg_attr(feature = "cli", arg(long, value_delimiter = ','))]
    pub devices: Vec<String>,
    /// Workloads, comma-separated (default: unet64, unet128, nsf_two_moons,
    /// nsf_slcp, encoder, graph).
    #[cfg_attr(feature = "cli", arg(long, value_delimiter = ','))]
    pub workloads: Vec<String>,
    /// Timed training steps per measurement (after one warm-up step).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 5))]
    pub steps: usize,
    /// Timed inference calls per measurement (best one kept).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 5))]
    pub evals: usize,
    /// Rounds over the devices, interleaved; the best round of each is kept.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 1))]
    pub rounds: usize,
    /// JSON of `bench/nn/torch_twins.py` measured on this machine: adds
    /// the ratios against PyTorch.
    #[cfg_attr(feature = "cli", arg(long))]
    pub torch_json: Option<PathBuf>,
    /// Write the timings as JSON here.
    #[cfg_attr(feature = "cli", arg(long))]
    pub json: Option<PathBuf>,
}

/// One measured row.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    /// The workload's name.
    pub workload: &'static str,
    /// The device's name.
    pub device: String,
    /// Items (maps, rows, graphs) per second in training.
    pub train_per_s: f64,
    /// Seconds per inference call.
    pub eval_s: f64,
    /// Trainable parameters.
    pub params: usize,
    /// `train_per_s` over PyTorch's (> 1: faster than PyTorch).
    pub train_vs_torch: Option<f64>,
    /// PyTorch's `eval_s` over ours (> 1: faster than PyTorch).
    pub eval_vs_torch: Option<f64>,
}

/// Time the workloads on the devices; prints the table and returns it.
pub fn run(s: &Settings) -> Result<Vec<Row>> {
    if s.steps == 0 || s.evals == 0 || s.rounds == 0 {
        bail!("--steps, --evals and --rounds must be at least 1");
    }
    let names: Vec<&str> = if s.devices.is_empty() {
        device::compiled()
    } else {
        s.devices.iter().map(String::as_str).collect()
    };
    let devices: Vec<DeviceKind> = names
        .into_iter()
        .map(DeviceKind::parse)
        .collect::<Result<_, _>>()?;
    let workloads: Vec<Workload> = if s.workloads.is_empty() {
        Workload::ALL.to_vec()
    } else {
        s.workloads
            .iter()
            .map(|n| Workload::parse(n))
            .collect::<Result<_, _>>()?
    };
    let torch = match &s.torch_json {
        Some(p) => Some(read_torch(p)?),
        None => None,
    };
    crate::output::check_parent_dir(s.json.as_deref(), "--json")?;
    let previous = device::selected();
    let result = measure(s, &devices, &workloads, torch.as_ref());
    device::select(previous)?;
    let rows = result?;
    if let Some(p) = &s.json {
        let text = serde_json::to_string_pretty(&serde_json::json!({
            "tool": "cosmodiff (burn 0.22)",
            "threads": rayon::current_num_threads(),
            "rows": rows,
        }))?;
        crate::output::write_bytes(p, text.as_bytes())
            .with_context(|| format!("--json {}", p.display()))?;
    }
    Ok(rows)
}

fn measure(
    s: &Settings,
    devices: &[DeviceKind],
    workloads: &[Workload],
    torch: Option<&serde_json::Value>,
) -> Result<Vec<Row>> {
    println!(
        "{:<14} {:<8} {:>10} {:>14} {:>12} {:>10} {:>10}",
        "workload", "device", "params", "train items/s", "eval ms", "train/pt", "eval/pt"
    );
    let mut rows = Vec::new();
    for &w in workloads {
        let mut best: Vec<Option<(f64, f64, usize)>> = vec![None; devices.len()];
        for _ in 0..s.rounds {
            for (d, slot) in devices.iter().zip(best.iter_mut()) {
                device::select(*d)?;
                let t =
                    time(w, s.steps, s.evals).with_context(|| format!("{} on {d}", w.name()))?;
                let (train, eval) = match *slot {
                    Some((a, b, _)) => (a.min(t.train_step_s), b.min(t.eval_s)),
                    None => (t.train_step_s, t.eval_s),
                };
                *slot = Some((train, eval, t.params));
            }
        }
        let theirs = torch.and_then(|t| t.get(w.name()));
        for (d, slot) in devices.iter().zip(best) {
            let Some((train, eval_s, params)) = slot else {
                continue;
            };
            let train_per_s = w.train_batch() as f64 / train;
            let key = |k: &str| theirs.and_then(|t| t[k].as_f64());
            let row = Row {
                workload: w.name(),
                device: d.to_string(),
                train_per_s,
                eval_s,
                params,
                train_vs_torch: key("train_per_s").map(|t| train_per_s / t),
                eval_vs_torch: key("eval_s").map(|t| t / eval_s),
            };
            let ratio = |r: Option<f64>| r.map_or("-".to_string(), |r| format!("{r:.2}x"));
            println!(
                "{:<14} {:<8} {:>10} {:>14.2} {:>12.2} {:>10} {:>10}",
                row.workload,
                row.device,
                row.params,
                row.train_per_s,
                1e3 * row.eval_s,
                ratio(row.train_vs_torch),
                ratio(row.eval_vs_torch)
            );
            rows.push(row);
        }
        if let Some(t) = theirs {
            let per_s = t["train_per_s"].as_f64().unwrap_or(f64::NAN);
            let ms = 1e3 * t["eval_s"].as_f64().unwrap_or(f64::NAN);
            let params = t["params"].as_u64().unwrap_or(0);
            println!(
                "{:<14} {:<8} {params:>10} {per_s:>14.2} {ms:>12.2}",
                w.name(),
                "pytorch"
            );
        }
    }
    Ok(rows)
}

/// The JSON of `bench/nn/torch_twins.py`: per workload, positive
/// `train_per_s` and `eval_s`.
fn read_torch(p: &std::path::Path) -> Result<serde_json::Value> {
    let text =
        std::fs::read_to_string(p).with_context(|| format!("--torch-json {}", p.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("--torch-json {}: not JSON", p.display()))?;
    let Some(map) = v.as_object() else {
        bail!(
            "--torch-json {}: expected an object of workloads",
            p.display()
        );
    };
    for (name, t) in map {
        if Workload::parse(name).is_err() {
            continue;
        }
        for key in ["train_per_s", "eval_s"] {
            match t[key].as_f64() {
                Some(x) if x > 0.0 && x.is_finite() => {}
                _ => bail!(
                    "--torch-json {}: {name}.{key} must be a positive number (got {})",
                    p.display(),
                    t[key]
                ),
            }
        }
    }
    Ok(v)
}
