//! `cosmodiff lensing-cosmology compare`: posteriors of several analyses of
//! one map side by side: mean, sd and figures of merit per method, the C2ST
//! accuracy of every pair (sbibm's classifier test; 0.5 = indistinguishable)
//! and one corner plot overlaying them all with the fiducial parameters.

use super::run::{summarize, Posterior};
use super::setup::{Setup, SetupName};
use anyhow::{bail, Context, Result};
use serde_json::json;
use std::path::{Path, PathBuf};

/// `cosmodiff lensing-cosmology compare`.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct CompareSettings {
    /// Survey set-up of the runs: lsst-y10 or sbi-lens-128.
    #[cfg_attr(feature = "cli", arg(long))]
    pub setup: String,
    /// Output directories of `infer` runs, comma-separated (each holds samples.npy).
    #[cfg_attr(feature = "cli", arg(long, value_delimiter = ','))]
    pub runs: Vec<PathBuf>,
    /// Reference posterior samples .npy [n, n_params] (e.g. the benchmark's posterior_full_field__*.npy).
    #[cfg_attr(feature = "cli", arg(long))]
    pub reference: Option<PathBuf>,
    /// Output directory: compare.json and compare.png.
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
    /// Most samples per method given to the C2ST classifier.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 2000))]
    pub c2st_samples: usize,
    /// Random seed of the C2ST.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0))]
    pub seed: u64,
    #[cfg_attr(feature = "cli", command(flatten))]
    pub reuse: crate::run_dir::Reuse,
}

/// Compare the runs; returns the JSON written to `compare.json`.
pub fn compare(s: &CompareSettings) -> Result<serde_json::Value> {
    let setup = Setup::new(SetupName::parse(&s.setup)?)?;
    let np = setup.n_params();
    let mut sets: Vec<(String, Vec<Vec<f64>>)> = vec![];
    let mut read = |label: String, path: PathBuf| -> Result<()> {
        let a = crate::io::read_float_npy(&path, "samples")?;
        if a.ndim() != 2 || a.shape()[1] != np || a.shape()[0] < 2 {
            bail!(
                "{}: shape {:?}, expected [n >= 2, {np}] samples of {}",
                path.display(),
                a.shape(),
                setup.names.join(", ")
            );
        }
        let rows: Vec<Vec<f64>> = a
            .outer_iter()
            .map(|r| r.iter().copied().collect())
            .collect();
        if rows.iter().flatten().any(|v| !v.is_finite()) {
            bail!("{}: holds non-finite samples", path.display());
        }
        sets.push((label, rows));
        Ok(())
    };
    if s.runs.is_empty() {
        bail!("--runs: name at least one infer output directory");
    }
    for r in &s.runs {
        let label = r
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| r.display().to_string());
        read(label, r.join("samples.npy"))?;
    }
    if let Some(p) = &s.reference {
        read("reference".into(), p.clone())?;
    }
    let samples: Vec<PathBuf> = s.runs.iter().map(|r| r.join("samples.npy")).collect();
    let mut inputs: Vec<(&str, &Path)> = samples.iter().map(|p| ("--runs", p.as_path())).collect();
    if let Some(p) = &s.reference {
        inputs.push(("--reference", p.as_path()));
    }
    let dir = crate::run_dir::RunDir::open(
        &s.out,
        "lensing-cosmology compare",
        s,
        s.reuse,
        crate::run_dir::Kind::Rewritten,
        &inputs,
    )?;
    let mut methods = serde_json::Map::new();
    for (label, rows) in &sets {
        let p = Posterior {
            setup: setup.name,
            names: setup.names.clone(),
            samples: rows.clone(),
            n_simulations: 0,
            wall_seconds: f64::NAN,
            chain: None,
            extra: serde_json::Value::Null,
        };
        let v = summarize(&p);
        methods.insert(
            label.clone(),
            json!({"mean": v["mean"], "sd": v["sd"], "fom": v["fom"], "n_samples": rows.len()}),
        );
    }
    let mut c2st = vec![];
    let pb = crate::report::progress((sets.len() * (sets.len() - 1) / 2) as u64, "C2ST");
    for a in 0..sets.len() {
        for b in a + 1..sets.len() {
            let take = |rows: &Vec<Vec<f64>>| {
                let step = rows.len().div_ceil(s.c2st_samples.max(10));
                let v: Vec<f64> = rows.iter().step_by(step).flatten().copied().collect();
                ndarray::Array2::from_shape_vec((v.len() / np, np), v).expect("rows of n_params")
            };
            let (x, y) = (take(&sets[a].1), take(&sets[b].1));
            let acc = cosmodiff_sbi::c2st::c2st(x.view(), y.view(), s.seed)
                .with_context(|| format!("C2ST of {} against {}", sets[a].0, sets[b].0))?;
            c2st.push(json!({"a": sets[a].0, "b": sets[b].0, "accuracy": acc}));
            pb.inc(1);
        }
    }
    pb.finish_and_clear();
    let out = json!({"setup": setup.name.as_str(), "names": setup.names, "methods": methods, "c2st": c2st});
    crate::output::write_bytes(
        &s.out.join("compare.json"),
        serde_json::to_string_pretty(&out)?.as_bytes(),
    )?;
    let flat: Vec<Vec<f64>> = sets.iter().map(|(_, r)| r.concat()).collect();
    let plot_sets: Vec<(&str, &[f64])> = sets
        .iter()
        .zip(&flat)
        .map(|((l, _), f)| (l.as_str(), f.as_slice()))
        .collect();
    let names: Vec<String> = setup.names.iter().map(|n| n.to_string()).collect();
    cosmodiff_plot::corner::CornerPlot::new(&names)
        .truths(Some(&setup.fiducial))
        .save_many(&s.out.join("compare.png"), &plot_sets)?;
    println!(
        "{:<14} {}",
        "method",
        setup
            .names
            .iter()
            .map(|n| format!("{n:>18}"))
            .collect::<String>()
    );
    for (label, m) in &methods {
        let cells: String = (0..np)
            .map(|k| {
                format!(
                    "{:>18}",
                    format!(
                        "{:.4} +- {:.4}",
                        m["mean"][k].as_f64().unwrap(),
                        m["sd"][k].as_f64().unwrap()
                    )
                )
            })
            .collect();
        let fom = m["fom"]
            .as_object()
            .map(|f| {
                f.iter()
                    .map(|(k, v)| format!("  FoM({k}) {:.0}", v.as_f64().unwrap()))
                    .collect::<String>()
            })
            .unwrap_or_default();
        println!("{label:<14} {cells}{fom}");
    }
    for c in &c2st {
        println!(
            "C2ST {} vs {}: {:.3}",
            c["a"].as_str().unwrap(),
            c["b"].as_str().unwrap(),
            c["accuracy"].as_f64().unwrap()
        );
    }
    dir.finish()?;
    Ok(out)
}
