//! `cosmodiff pointcloud evaluate`: is the point-cloud model a calibrated,
//! informative likelihood, and does it emulate the simulator?
//!
//! - **Coverage**: for each of `--n` held-out catalogues (a `simulate
//!   halos` campaign the model never saw) the ELBO grid posterior of
//!   `pointcloud infer`; the fraction whose central 68% interval holds the
//!   truth (`coverage68`, goal `0.68 +- 0.12` with 64 boxes) and the mean
//!   posterior sd against the prior's (`sd_over_prior_sd`, goal `<= 0.5`).
//! - **Emulation**: at `--emulation-theta`, xi(r) in 25 logarithmic bins
//!   over 5-60 Mpc/h of `--emulation-n` catalogues drawn from the model and
//!   as many simulated with the model's recorded settings (new seeds): the
//!   fraction of bins whose means agree within 2 combined standard errors
//!   (`xi_within_2se_fraction`, goal `>= 0.9`) and within 1
//!   (`xi_within_1sigma_fraction`).
//! - **ELBO vs exact likelihood** (`--gap-boxes`, default 0: skipped): for
//!   that many held-out boxes, the ELBO and the probability-flow ODE
//!   log-likelihood (Hutchinson trace, one probe fixed per box) at 7 points
//!   along the design's diagonal; the spread of `log p - ELBO` over theta
//!   (goal `< 0.5` nats, else the ELBO posterior is biased).
//!
//! Writes `DIR2/evaluation.json`, `per_catalogue.csv`, `coverage.png` and
//! `xi.png`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Result};
use cosmodiff_plot::lines::{LinePlot, Series};
use serde_json::json;

use super::infer::{grid_posterior, selection};
use super::{check_theta, load_model, read_campaign, simulate_catalogue};

/// `cosmodiff pointcloud evaluate`.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct EvaluateSettings {
    /// Model directory.
    #[cfg_attr(feature = "cli", arg(long))]
    pub model: PathBuf,
    /// Held-out campaign folder (`simulate halos` output the model was not trained on).
    #[cfg_attr(feature = "cli", arg(long))]
    pub catalogs: PathBuf,
    /// Output folder: evaluation.json, per_catalogue.csv, coverage.png, xi.png.
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
    /// Held-out catalogues used for coverage (the first N).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 64))]
    pub n: usize,
    /// Grid points per parameter of each posterior.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 15))]
    pub grid: usize,
    /// Diffusion times per ELBO.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 32))]
    pub times: usize,
    /// Parameters of the emulation check, "Omega_m,sigma8".
    #[cfg_attr(
        feature = "cli",
        arg(long, default_value = "0.3,0.8", allow_hyphen_values = true)
    )]
    pub emulation_theta: String,
    /// Catalogues drawn and simulated for the emulation check (0: skip it).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 32))]
    pub emulation_n: usize,
    /// Held-out boxes of the ELBO-vs-exact check (0: skip it).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0))]
    pub gap_boxes: usize,
    /// Training campaign of the summary-statistics baseline (xi(r) and mass ranks, Gaussian
    /// likelihood with an emulated mean), evaluated on the same held-out boxes.
    #[cfg_attr(feature = "cli", arg(long))]
    pub baseline_catalogs: Option<PathBuf>,
    /// Seed of the ELBO noise, the sampler and the emulation simulations.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0))]
    pub seed: u64,
    #[cfg_attr(feature = "cli", command(flatten))]
    pub reuse: crate::run_dir::Reuse,
}

/// Mean and standard error of the mean of each column.
fn mean_se(rows: &[Vec<f64>]) -> (Vec<f64>, Vec<f64>) {
    let n = rows.len() as f64;
    let m = rows[0].len();
    let mean: Vec<f64> = (0..m)
        .map(|j| rows.iter().map(|r| r[j]).sum::<f64>() / n)
        .collect();
    let se = (0..m)
        .map(|j| {
            let v = rows.iter().map(|r| (r[j] - mean[j]).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
            (v / n).sqrt()
        })
        .collect();
    (mean, se)
}

/// `cosmodiff pointcloud evaluate`.
pub fn evaluate(s: &EvaluateSettings) -> Result<serde_json::Value> {
    let model = load_model(Some(&s.model))?;
    let emu_theta = crate::fieldflow::parse_theta(&s.emulation_theta)?;
    check_theta(&model, &emu_theta, "--emulation-theta")?;
    if s.n == 0 {
        bail!("--n must be at least 1");
    }
    let sel = selection(&model);
    let campaign = read_campaign(&s.catalogs, &sel)?;
    if (campaign.box_size - model.config.box_size).abs() > 1e-9 * model.config.box_size {
        bail!(
            "--catalogs: box of {} Mpc/h, the model's is {} Mpc/h",
            campaign.box_size,
            model.config.box_size
        );
    }
    let dir = crate::run_dir::RunDir::open(
        &s.out,
        "pointcloud evaluate",
        s,
        s.reuse,
        crate::run_dir::Kind::Rewritten,
        &[("--catalogs params.csv", &s.catalogs.join("params.csv"))],
    )?;
    let start = Instant::now();
    let r = &model.config.theta_range;
    // keep held-out boxes inside the training design (the grid's support)
    let inside: Vec<usize> = (0..campaign.clouds.len())
        .filter(|&i| {
            (0..2).all(|j| campaign.theta[i][j] >= r[j][0] && campaign.theta[i][j] <= r[j][1])
        })
        .take(s.n)
        .collect();
    if inside.is_empty() {
        bail!("--catalogs: no catalogue lies inside the model's training design");
    }
    let baseline = match &s.baseline_catalogs {
        Some(dir) => {
            let train = read_campaign(dir, &sel)?;
            Some(super::baseline::SummaryLikelihood::fit(
                &train.clouds,
                &train.theta,
                model.config.features(),
                model.config.mass,
                model.config.box_size,
            )?)
        }
        None => None,
    };
    let mut base_covered = [0usize; 2];
    let mut base_sd = [0.0; 2];
    let mut csv = String::from("index,Omega_m,sigma8,mean_Omega_m,mean_sigma8,sd_Omega_m,sd_sigma8,lo68_Omega_m,hi68_Omega_m,lo68_sigma8,hi68_sigma8\n");
    let mut covered = [0usize; 2];
    let mut sd_sum = [0.0; 2];
    let (mut truth, mut means, mut sds) = (vec![vec![]; 2], vec![vec![]; 2], vec![vec![]; 2]);
    for (k, &i) in inside.iter().enumerate() {
        say!("coverage: catalogue {} of {}", k + 1, inside.len());
        let g = grid_posterior(&model, &campaign.clouds[i], s.grid, s.times, s.seed)?;
        let t = &campaign.theta[i];
        if let Some(b) = &baseline {
            let ll = b.grid(&campaign.clouds[i], &g.omega_m, &g.sigma8)?;
            let (_, sd, iv) = super::infer::summarise(&[r[0], r[1]], &ll)?;
            for j in 0..2 {
                if iv[j][0] <= t[j] && t[j] <= iv[j][1] {
                    base_covered[j] += 1;
                }
                base_sd[j] += sd[j];
            }
        }
        for j in 0..2 {
            let iv = g.interval68[j];
            if iv[0] <= t[j] && t[j] <= iv[1] {
                covered[j] += 1;
            }
            sd_sum[j] += g.sd[j];
            truth[j].push(t[j]);
            means[j].push(g.mean[j]);
            sds[j].push(g.sd[j]);
        }
        csv += &format!(
            "{i},{},{},{},{},{},{},{},{},{},{}\n",
            t[0],
            t[1],
            g.mean[0],
            g.mean[1],
            g.sd[0],
            g.sd[1],
            g.interval68[0][0],
            g.interval68[0][1],
            g.interval68[1][0],
            g.interval68[1][1]
        );
    }
    let n = inside.len() as f64;
    let prior_sd: Vec<f64> = r.iter().map(|r| (r[1] - r[0]) / 12f64.sqrt()).collect();
    let coverage: Vec<f64> = covered.iter().map(|&c| c as f64 / n).collect();
    let sd_ratio: Vec<f64> = (0..2).map(|j| sd_sum[j] / n / prior_sd[j]).collect();
    crate::output::write_bytes(&dir.join("per_catalogue.csv"), csv.as_bytes())?;
    let png = dir.join("coverage.png");
    crate::output::write_via(&png, |p| {
        let mut plot = LinePlot::new(
            "posterior mean +- sd against the truth",
            "truth",
            "posterior mean",
        );
        for (j, name) in ["Omega_m", "sigma8"].iter().enumerate() {
            let off: Vec<f64> = truth[j]
                .iter()
                .map(|t| (t - r[j][0]) / (r[j][1] - r[j][0]))
                .collect();
            let m: Vec<f64> = means[j]
                .iter()
                .map(|t| (t - r[j][0]) / (r[j][1] - r[j][0]))
                .collect();
            let e: Vec<f64> = sds[j].iter().map(|t| t / (r[j][1] - r[j][0])).collect();
            plot = plot.add(Series::points(
                &format!("{name} (scaled to its range)"),
                &off,
                &m,
                Some(&e),
            ));
        }
        plot = plot.add(Series::line("truth", &[0.0, 1.0], &[0.0, 1.0]));
        Ok(plot.save(p)?)
    })?;

    let mut result = json!({
        "n_catalogues": inside.len(),
        "names": ["Omega_m", "sigma8"],
        "coverage68": coverage,
        "mean_sd": [sd_sum[0] / n, sd_sum[1] / n],
        "prior_sd": prior_sd,
        "sd_over_prior_sd": sd_ratio,
        "grid": s.grid,
        "times": s.times,
    });

    if baseline.is_some() {
        result["baseline"] = json!({
            "summaries": "xi(r) in 5 log bins over 10-100 Mpc/h and log10 masses of ranks 1, 8, 32, 128, N; Gaussian likelihood, quadratic emulator, Hartlap-corrected covariance",
            "coverage68": [base_covered[0] as f64 / n, base_covered[1] as f64 / n],
            "mean_sd": [base_sd[0] / n, base_sd[1] / n],
            "sd_over_prior_sd": [base_sd[0] / n / prior_sd[0], base_sd[1] / n / prior_sd[1]],
        });
    }

    if s.emulation_n > 0 {
        let edges: Vec<f64> = (0..=25)
            .map(|i| 5.0 * 12f64.powf(i as f64 / 25.0))
            .collect();
        let xi_of = |pos: &[[f64; 3]]| -> Result<Vec<f64>> {
            Ok(cosmodiff_catalog::xi(pos, None, model.config.box_size, &edges)?.xi)
        };
        say!(
            "emulation: drawing {} catalogues from the model",
            s.emulation_n
        );
        let drawn = model.sample(&emu_theta, s.emulation_n, 256, s.seed)?;
        let f = model.config.features();
        let mut xi_model = vec![];
        for c in &drawn {
            let pos: Vec<[f64; 3]> = c.chunks_exact(f).map(|r| [r[0], r[1], r[2]]).collect();
            xi_model.push(xi_of(&pos)?);
        }
        let mut xi_sim = vec![];
        for k in 0..s.emulation_n {
            say!("emulation: simulation {} of {}", k + 1, s.emulation_n);
            let h = simulate_catalogue(&model, &emu_theta, 1_000_000_000 + s.seed + k as u64)?;
            xi_sim.push(xi_of(&h.position)?);
        }
        let (mm, sm) = mean_se(&xi_model);
        let (ms, ss) = mean_se(&xi_sim);
        let within = |z: f64| {
            (0..mm.len())
                .filter(|&b| (mm[b] - ms[b]).abs() <= z * sm[b].hypot(ss[b]))
                .count() as f64
                / mm.len() as f64
        };
        let r_mid: Vec<f64> = edges.windows(2).map(|w| (w[0] * w[1]).sqrt()).collect();
        let png = dir.join("xi.png");
        crate::output::write_via(&png, |p| {
            Ok(LinePlot::new(
                &format!(
                    "xi(r) at Omega_m, sigma8 = {:?}: model vs simulations",
                    emu_theta
                ),
                "r [Mpc/h]",
                "r^2 xi(r) [(Mpc/h)^2]",
            )
            .log_x(true)
            .add(Series::points(
                "simulations",
                &r_mid,
                &ms.iter()
                    .zip(&r_mid)
                    .map(|(x, r)| x * r * r)
                    .collect::<Vec<_>>(),
                Some(
                    &ss.iter()
                        .zip(&r_mid)
                        .map(|(x, r)| x * r * r)
                        .collect::<Vec<_>>(),
                ),
            ))
            .add(Series::points(
                "diffusion model",
                &r_mid,
                &mm.iter()
                    .zip(&r_mid)
                    .map(|(x, r)| x * r * r)
                    .collect::<Vec<_>>(),
                Some(
                    &sm.iter()
                        .zip(&r_mid)
                        .map(|(x, r)| x * r * r)
                        .collect::<Vec<_>>(),
                ),
            ))
            .save(p)?)
        })?;
        result["emulation_theta"] = json!(emu_theta);
        result["xi_r"] = json!(r_mid);
        result["xi_model"] = json!(mm);
        result["xi_model_se"] = json!(sm);
        result["xi_simulations"] = json!(ms);
        result["xi_simulations_se"] = json!(ss);
        result["xi_within_2se_fraction"] = json!(within(2.0));
        result["xi_within_1sigma_fraction"] = json!(within(1.0));
    }

    if s.gap_boxes > 0 {
        let ode = cosmodiff_pointcloud::ode::OdeSettings::default();
        let mut spreads = vec![];
        let mut rows = vec![];
        for &i in inside.iter().take(s.gap_boxes) {
            let probe = cosmodiff_pointcloud::ode::rademacher(
                model.config.n_points * model.config.features(),
                s.seed + i as u64,
            );
            let mut gaps = vec![];
            for k in 0..7 {
                let u = (k as f64 + 0.5) / 7.0;
                let th = vec![
                    r[0][0] + u * (r[0][1] - r[0][0]),
                    r[1][0] + u * (r[1][1] - r[1][0]),
                ];
                say!("ELBO vs exact: box {i}, theta {th:?}");
                let elbo = model.elbo(
                    &[campaign.clouds[i].clone()],
                    std::slice::from_ref(&th),
                    s.times,
                    s.seed,
                )?[0];
                let (exact, _) = model.exact_log_likelihood(
                    &campaign.clouds[i],
                    &th,
                    &cosmodiff_pointcloud::ode::Trace::Hutchinson(probe.clone()),
                    &ode,
                )?;
                gaps.push(exact - elbo);
                rows.push(json!({"index": i, "theta": th, "elbo": elbo, "exact": exact}));
            }
            let hi = gaps.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let lo = gaps.iter().copied().fold(f64::INFINITY, f64::min);
            spreads.push(hi - lo);
        }
        result["gap_spread_nats"] = json!(spreads);
        result["gap_rows"] = json!(rows);
    }
    result["wall_seconds"] = json!(start.elapsed().as_secs_f64());
    crate::output::write_bytes(
        &dir.join("evaluation.json"),
        serde_json::to_string_pretty(&result)?.as_bytes(),
    )?;
    println!(
        "coverage68 Omega_m {:.2}, sigma8 {:.2} over {} catalogues; posterior sd / prior sd {:.2}, {:.2}{}; wrote {}",
        coverage[0],
        coverage[1],
        inside.len(),
        sd_ratio[0],
        sd_ratio[1],
        result
            .get("xi_within_2se_fraction")
            .map(|v| format!("; xi(r) within 2 se in {:.0}% of bins", 100.0 * v.as_f64().unwrap_or(0.0)))
            .unwrap_or_default(),
        s.out.display()
    );
    dir.finish()?;
    Ok(result)
}
