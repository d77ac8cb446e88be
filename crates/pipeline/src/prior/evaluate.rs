//! `cosmodiff prior evaluate`: a prior on held-out simulations, side by side
//! with Kaiser-Squires, the Wiener filter and (optionally) the exact posterior.

use super::*;

#[derive(Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct EvaluateSettings {
    /// TOML config with a simulator (as for `prior train`).
    #[cfg_attr(feature = "cli", arg(long))]
    pub config: PathBuf,
    /// Output directory.
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
    /// Score-prior model directory (default: the shipped prior).
    #[cfg_attr(feature = "cli", arg(long))]
    pub prior: Option<PathBuf>,
    /// Held-out maps.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 20))]
    pub maps: usize,
    /// Posterior samples per map (also Wiener samples).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 16))]
    pub samples: usize,
    /// Posterior sampler.
    #[cfg_attr(feature = "cli", arg(long, value_enum, default_value_t = crate::massmap::DiffusionSampler::ReverseSde))]
    pub sampler: crate::massmap::DiffusionSampler,
    /// Noise levels (reverse-SDE steps or annealed-HMC levels).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 300))]
    pub steps: usize,
    /// Independent diffusion chains instead of antithetic pairs (as
    /// `massmap --independent`).
    #[cfg_attr(feature = "cli", arg(long))]
    pub independent: bool,
    /// Survey mask, `.npy` [npix, npix] (1 observed, 0 masked): applied to
    /// the data of every method; RMSE, Pearson r and coverage are then
    /// computed over the observed pixels.
    #[cfg_attr(feature = "cli", arg(long))]
    pub mask: Option<PathBuf>,
    /// Also sample the exact posterior under the simulator's own prior
    /// (NUTS over the field's white noise, `cosmodiff_lensing::field_posterior`):
    /// the Bayes-optimal reference a learned prior can at best match.
    #[cfg_attr(feature = "cli", arg(long))]
    pub exact: bool,
    /// NUTS draws per chain for `--exact` (2 chains, as many warmup steps;
    /// >= 10 for a meaningful R-hat) [default: 300].
    #[cfg_attr(feature = "cli", arg(long))]
    pub exact_draws: Option<usize>,
    /// Unconditional prior samples for the C_ell / PDF check (0: skip; else >= 2).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 32))]
    pub prior_samples: usize,
    /// Galaxy density of the held-out shear catalogue, per arcmin^2
    /// (default: the config's [[source]] `gals_per_arcmin2`): sets the
    /// shape noise, e.g. ~10 DES-like, ~30 LSST-like, so one prior can be
    /// judged at several survey depths.
    #[cfg_attr(feature = "cli", arg(long))]
    pub gals_per_arcmin2: Option<f64>,
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0))]
    pub seed: u64,
    #[cfg_attr(feature = "cli", command(flatten))]
    pub reuse: crate::run_dir::Reuse,
}

/// Per-method accumulators of the held-out metrics.
///
/// Coverage: fraction of pixels whose truth lies in the predictive interval
/// `mean +- t_{n-1}(p) s sqrt(1 + 1/n)` from `n` samples (sample mean `mean`,
/// sample std `s`, `p = Phi(1)` or `Phi(2)`), which covers a new draw with
/// probability exactly 68.3% / 95.4% when truth and samples are independent
/// draws of the same Gaussian; `*_raw` use `mean +- s` and `mean +- 2 s`
/// (expected 62.3% / 89.9% for n = 8). For antithetic diffusion pairs `1/n`
/// is replaced by the measured Monte Carlo variance of the mean over the
/// posterior variance (`MapSamples::mean_variance`).
#[derive(Default, serde::Serialize)]
struct MethodMetrics {
    rmse: f64,
    pearson: f64,
    coverage_68: f64,
    coverage_95: f64,
    coverage_68_raw: f64,
    coverage_95_raw: f64,
    /// Mean over maps and samples of C_ell(sample) / C_ell(truth) per ell bin.
    cl_ratio: Vec<f64>,
    /// RMSE of the posterior mean with the Monte Carlo error of an `n`-sample
    /// mean removed, `sqrt(RMSE^2 - <s^2>/n)` per map (for independent
    /// samples `E|mean_n - t|^2 = E|mean - t|^2 + tr(Cov)/n`; for antithetic
    /// pairs `<s^2>/n` is the variance of the pair means over `n/2`): the
    /// RMSE the sampler's posterior mean reaches with infinitely many samples.
    /// Only for methods whose mean is an average of independent samples.
    #[serde(skip_serializing_if = "Option::is_none")]
    rmse_mc_corrected: Option<f64>,
    /// Maps whose measured squared error was below the Monte Carlo noise
    /// estimate (`RMSE^2 - <s^2>/n < 0`): too few samples to remove it, and
    /// then no corrected RMSE is reported rather than a clamped zero.
    #[serde(skip)]
    mc_noise_dominated: usize,
}

/// Student-t quantile for `nu` degrees of freedom from the normal one
/// (Cornish-Fisher expansion, Abramowitz & Stegun 26.7.5; better than 1e-3
/// for nu >= 4 at the 84% and 98% points).
fn t_quantile(p: f64, nu: f64) -> f64 {
    let z = cosmodiff_infer::special::norm_ppf(p);
    let (z3, z5, z7) = (z.powi(3), z.powi(5), z.powi(7));
    z + (z3 + z) / (4.0 * nu)
        + (5.0 * z5 + 16.0 * z3 + 3.0 * z) / (96.0 * nu * nu)
        + (3.0 * z7 + 19.0 * z5 + 17.0 * z3 - 15.0 * z) / (384.0 * nu.powi(3))
}

/// Fraction of (observed) pixels with `|truth - mean| <= z std`.
fn coverage(truth: &[f64], mean: &[f64], std: &[f64], z: f64, mask: Option<&[f64]>) -> f64 {
    let (mut hit, mut n) = (0usize, 0usize);
    for i in 0..truth.len() {
        if mask.is_some_and(|m| m[i] <= 0.0) {
            continue;
        }
        n += 1;
        if (truth[i] - mean[i]).abs() <= z * std[i] {
            hit += 1;
        }
    }
    hit as f64 / n.max(1) as f64
}

fn moments(maps: &[Vec<f64>]) -> (f64, f64) {
    let v: Vec<f64> = maps.iter().flatten().copied().collect();
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n;
    let skew = v.iter().map(|x| (x - m).powi(3)).sum::<f64>() / n / var.powf(1.5);
    (var.sqrt(), skew)
}

/// `cosmodiff prior evaluate`: validate a prior on held-out simulations.
pub fn evaluate(a: &EvaluateSettings) -> Result<()> {
    use crate::massmap::DiffusionSampler;
    use cosmodiff_field::cl2::{cl_auto, EllBins};
    use cosmodiff_field::Fft2;
    use cosmodiff_lensing::metrics::{one_point_pdf, pearson, rmse};
    use cosmodiff_lensing::noise::{add_shape_noise, pixel_noise_std};
    use cosmodiff_lensing::posterior::Target;
    use cosmodiff_lensing::score::ShearLikelihood;
    use cosmodiff_lensing::wiener::pixel_std;
    use cosmodiff_lensing::{ShearOp, Wiener};
    use cosmodiff_score::ScoreModel;
    use rand::SeedableRng;

    let cfg: PriorConfig = config::load(&a.config)?;
    let base = config::base_dir(&a.config);
    if cfg.data.is_some() {
        bail!("`prior evaluate` needs a simulator config ([map], [[source]]), not `data`");
    }
    if a.maps == 0 || a.samples < 2 {
        bail!("--maps must be >= 1 and --samples >= 2");
    }
    if !(2..=100_000).contains(&a.steps) {
        bail!("--steps must be in 2..=100000, got {}", a.steps);
    }
    let exact_draws = match (a.exact, a.exact_draws) {
        (false, Some(_)) => bail!("--exact-draws applies with --exact only"),
        (true, Some(d)) if d < 10 => {
            bail!("--exact-draws {d}: need >= 10 draws per chain for the R-hat check")
        }
        (_, d) => d.unwrap_or(300),
    };
    if a.prior_samples == 1 {
        bail!("--prior-samples 1: give 0 (skip the prior check) or >= 2");
    }
    a.sampler.check_independent(a.independent)?;
    let model = match &a.prior {
        Some(d) => ScoreModel::load(d).map_err(|e| anyhow!("--prior: {e}"))?,
        None => ScoreModel::default_model().map_err(|e| anyhow!("default prior: {e}"))?,
    };
    let map = cfg
        .map
        .as_ref()
        .ok_or_else(|| anyhow!("[map] is required"))?;
    if map.npix != model.config.side
        || ((map.pixel_arcmin - model.config.pixel_arcmin) / model.config.pixel_arcmin).abs() > 1e-6
    {
        bail!(
            "[map] is {}x{} at {} arcmin but the prior is for {}x{} at {} arcmin",
            map.npix,
            map.npix,
            map.pixel_arcmin,
            model.config.side,
            model.config.side,
            model.config.pixel_arcmin
        );
    }
    // truths, shears, noisy catalogues and the three reconstructions of
    // every held-out map, in f64
    crate::budget::check(
        &format!(
            "prior evaluate of --maps {} ({n}x{n})",
            a.maps,
            n = map.npix
        ),
        50e6 + 12.0 * 8.0 * a.maps as f64 * (map.npix as f64).powi(2),
    )?;
    // Held-out truths: a seed no training run uses.
    let test_seed = cfg.field_seed().wrapping_add(0x7e57_0000_0000);
    let setup = simulator_setup(&cfg, &base)?;
    let field = simulator_field(&setup)?;
    let grid = setup.grid;
    let truths = simulate_maps(&field, a.maps, test_seed);
    let src = &cfg.source[0];
    let noise_std = pixel_noise_std(
        &grid,
        src.sigma_e.unwrap_or(0.26),
        a.gals_per_arcmin2.or(src.gals_per_arcmin2).unwrap_or(10.0),
    )?;
    let theory = setup.table.pair(0, 0).clone();
    let np = grid.npix();
    let noise = vec![noise_std; np];
    let mask: Option<Vec<f64>> = match &a.mask {
        Some(p) => {
            let m = crate::io::read_float_npy(p, "--mask")?;
            if m.shape() != [grid.n, grid.n] {
                bail!(
                    "--mask {}: shape {:?}, expected [{}, {}]",
                    p.display(),
                    m.shape(),
                    grid.n,
                    grid.n
                );
            }
            let v: Vec<f64> = m.iter().copied().collect();
            if v.iter().any(|x| !(0.0..=1.0).contains(x)) || !v.iter().any(|&x| x > 0.0) {
                bail!(
                    "--mask {}: values must be in [0, 1] with at least one observed pixel",
                    p.display()
                );
            }
            Some(v)
        }
        None => None,
    };
    let dir = crate::run_dir::RunDir::open(
        &a.out,
        "prior evaluate",
        a,
        a.reuse,
        crate::run_dir::Kind::Rewritten,
        &[("--config", a.config.as_path())]
            .into_iter()
            .chain(a.mask.as_deref().map(|m| ("--mask", m)))
            .chain(a.prior.as_deref().map(|m| ("--prior", m)))
            .collect::<Vec<_>>(),
    )?;
    let mk = mask.as_deref();
    let op = ShearOp::new(grid);
    let mut rng = rand::rngs::StdRng::seed_from_u64(a.seed ^ 0x5a5a);
    let mut shear = vec![];
    for t in &truths {
        let (g1, g2) = op.forward(t, None)?;
        shear.push(add_shape_noise(&g1, &g2, &noise, &mut rng)?);
    }
    let liks: Vec<ShearLikelihood> = shear
        .iter()
        .map(|(g1, g2)| ShearLikelihood::new(grid, g1, g2, &noise, mk))
        .collect::<cosmodiff_lensing::Result<_>>()?;
    let chains = a.maps * a.samples;
    let target = Target {
        prior: &model,
        likelihoods: liks.iter().collect(),
    };
    let start = std::time::Instant::now();
    let post = cosmodiff_score::sample_posterior(
        &target,
        model.config.sde(),
        &a.sampler.settings(a.steps, chains, a.seed, !a.independent),
    )?;
    let seconds = start.elapsed().as_secs_f64();
    let groups = post.groups(a.maps);

    let exact = if a.exact {
        Some(exact_posteriors(&field, &liks, exact_draws, a.seed)?)
    } else {
        None
    };

    let fft = Fft2::new(grid.n);
    // 8 bins from 2 ell_fundamental to ell_Nyquist / 2, fewer on small maps
    // (a 16x16 map has only a few distinct |ell| there; no empty bins).
    let nbins = (grid.n / 4).saturating_sub(2).clamp(1, 8);
    let bins = EllBins::linear(
        2.0 * grid.ell_fundamental(),
        0.5 * grid.ell_nyquist(),
        nbins,
    )?;
    let ell_mid: Vec<f64> = bins.edges.windows(2).map(|e| 0.5 * (e[0] + e[1])).collect();
    let cl = |m: &[f64]| -> Result<Vec<f64>> { Ok(cl_auto(&grid, &fft, m, &bins, None)?.cl) };
    let mut res: Vec<(&str, MethodMetrics)> = vec![
        ("kaiser_squires", MethodMetrics::default()),
        ("wiener", MethodMetrics::default()),
        ("diffusion", MethodMetrics::default()),
    ];
    if exact.is_some() {
        res.push(("exact_posterior", MethodMetrics::default()));
    }
    for r in res.iter_mut() {
        r.1.cl_ratio = vec![0.0; bins.nbins()];
    }
    let nm = a.maps as f64;
    let mut first_maps = vec![];
    // Zero-mean truths (shear does not constrain the mean; every method
    // returns zero-mean maps).
    let centred: Vec<Vec<f64>> = truths
        .iter()
        .map(|m| {
            let mu = m.iter().sum::<f64>() / np as f64;
            m.iter().map(|v| v - mu).collect()
        })
        .collect();
    for (i, t) in centred.iter().enumerate() {
        let (g1, g2) = &shear[i];
        let (g1, g2): (Vec<f64>, Vec<f64>) = match mk {
            Some(m) => (
                g1.iter()
                    .zip(m)
                    .map(|(g, w)| if *w > 0.0 { *g } else { 0.0 })
                    .collect(),
                g2.iter()
                    .zip(m)
                    .map(|(g, w)| if *w > 0.0 { *g } else { 0.0 })
                    .collect(),
            ),
            None => (g1.clone(), g2.clone()),
        };
        let (g1, g2) = (&g1, &g2);
        let (ks, _) = op.kaiser_squires(g1, g2)?;
        let wf = Wiener::from_cl(grid, &theory, &noise, mk)?;
        let wmean = wf.cg(g1, g2, 1e-8, 20_000)?.kappa;
        let wsamp = wf.samples(&wmean, a.samples, a.seed.wrapping_add(i as u64), 1e-8)?;
        let wstd = pixel_std(&wsamp)?;
        let g = &groups[i];
        let cl_t = cl(t)?;
        // (mean, std, samples for the C_ell, number of draws behind mean and std)
        let ns = a.samples as f64;
        let mut entries: Vec<MethodEntry> = vec![
            (&ks, None, &[], 1.0),
            (&wmean, Some(&wstd), &wsamp, ns),
            (&g.mean, Some(&g.std), &g.samples, ns),
        ];
        if let Some(ex) = &exact {
            let e = &ex[i];
            entries.push((&e.mean, Some(&e.std), &e.samples, e.draws as f64));
        }
        for (k, (mean, std, samples, ns)) in entries.into_iter().enumerate() {
            let m = &mut res[k].1;
            let r = rmse(mean, t, mk)?;
            m.rmse += r / nm;
            // Monte Carlo variance of the mean relative to the posterior
            // variance: 1/n for n independent draws.
            let mut mc_ratio = 1.0 / ns;
            if k == 2 {
                // Diffusion: the mean of independent chains or antithetic pairs.
                let observed = |j: usize| mk.map_or(1.0, |m| if m[j] > 0.0 { 1.0 } else { 0.0 });
                let (mut mv, mut pv, mut w) = (0.0, 0.0, 0.0);
                for (j, (v, s)) in g.mean_variance().iter().zip(&g.std).enumerate() {
                    mv += observed(j) * v;
                    pv += observed(j) * s * s;
                    w += observed(j);
                }
                let c2 = r * r - mv / w;
                if c2 <= 0.0 {
                    m.mc_noise_dominated += 1;
                }
                *m.rmse_mc_corrected.get_or_insert(0.0) += c2.max(0.0).sqrt() / nm;
                mc_ratio = mv / pv.max(f64::MIN_POSITIVE);
            }
            m.pearson += pearson(mean, t, mk)? / nm;
            if let Some(sd) = std {
                let widen = (1.0 + mc_ratio).sqrt();
                let z1 = t_quantile(cosmodiff_infer::special::norm_cdf(1.0), ns - 1.0) * widen;
                let z2 = t_quantile(cosmodiff_infer::special::norm_cdf(2.0), ns - 1.0) * widen;
                m.coverage_68 += coverage(t, mean, sd, z1, mk) / nm;
                m.coverage_95 += coverage(t, mean, sd, z2, mk) / nm;
                m.coverage_68_raw += coverage(t, mean, sd, 1.0, mk) / nm;
                m.coverage_95_raw += coverage(t, mean, sd, 2.0, mk) / nm;
            }
            let ss: Vec<&[f64]> = if samples.is_empty() {
                vec![mean]
            } else {
                samples.iter().map(|v| v.as_slice()).collect()
            };
            for s in &ss {
                let c = cl(s)?;
                for b in 0..c.len() {
                    m.cl_ratio[b] += c[b] / cl_t[b] / (nm * ss.len() as f64);
                }
            }
        }
        if i == 0 {
            first_maps = vec![
                t.clone(),
                ks.clone(),
                wmean.clone(),
                g.mean.clone(),
                g.std.clone(),
            ];
        }
    }
    // Unconditional prior samples vs the simulations.
    let mut prior_check = serde_json::Value::Null;
    if a.prior_samples >= 2 {
        // independent reverse-SDE draws of the prior itself
        let ps = cosmodiff_score::sample_posterior(
            &Target::prior(&model),
            model.config.sde(),
            &DiffusionSampler::ReverseSde.settings(
                a.steps,
                a.prior_samples,
                a.seed.wrapping_add(99),
                false,
            ),
        )?;
        let mean_cl = |maps: &[Vec<f64>]| -> Result<Vec<f64>> {
            let mut acc = vec![0.0; bins.nbins()];
            for m in maps {
                for (x, c) in acc.iter_mut().zip(cl(m)?) {
                    *x += c / maps.len() as f64;
                }
            }
            Ok(acc)
        };
        let (c_p, c_s) = (mean_cl(&ps.samples)?, mean_cl(&centred)?);
        let (sd_s, sk_s) = moments(&centred);
        let (sd_p, sk_p) = moments(&ps.samples);
        let edges: Vec<f64> = (0..=20).map(|i| sd_s * (-4.0 + 0.5 * i as f64)).collect();
        let pdf = |maps: &[Vec<f64>]| -> Result<Vec<f64>> {
            let mut h = vec![0.0; edges.len() - 1];
            for m in maps {
                for (x, v) in h.iter_mut().zip(one_point_pdf(m, &edges, None)?) {
                    *x += v / maps.len() as f64;
                }
            }
            Ok(h)
        };
        prior_check = serde_json::json!({
            "samples": a.prior_samples,
            "ell": ell_mid.clone(),
            "cl_ratio_prior_over_simulations": c_p.iter().zip(&c_s).map(|(p, s)| p / s).collect::<Vec<_>>(),
            "pixel_std": {"prior": sd_p, "simulations": sd_s},
            "skewness": {"prior": sk_p, "simulations": sk_s},
            "pdf_edges": edges,
            "pdf_prior": pdf(&ps.samples)?,
            "pdf_simulations": pdf(&centred)?,
        });
    }
    let n = grid.n;
    let plot = cosmodiff_plot::map::MapPlot::new(&format!(
        "Held-out map 1 ({n}x{n} px, {} arcmin)",
        grid.pixel_arcmin
    ))
    .add("truth", &first_maps[0], n)
    .add("Kaiser-Squires", &first_maps[1], n)
    .add("Wiener", &first_maps[2], n)
    .add("diffusion mean", &first_maps[3], n)
    .label("kappa");
    crate::output::write_via(&a.out.join("maps.png"), |t| Ok(plot.save(t)?))?;
    if res[2].1.mc_noise_dominated > 0 {
        // an estimator that went negative: no number rather than a clamped one
        res[2].1.rmse_mc_corrected = None;
    }
    let mut methods = serde_json::Map::new();
    for (name, m) in &res {
        methods.insert(name.to_string(), serde_json::to_value(m)?);
    }
    let exact_json = exact.as_ref().map(|ex| {
        serde_json::json!({
            "sampler": "NUTS over the white noise of the simulator's field (2 chains)",
            "draws_per_map": ex[0].draws,
            "seconds": ex.iter().map(|e| e.seconds).sum::<f64>(),
            "divergences": ex.iter().map(|e| e.divergences).sum::<usize>(),
            "max_rhat": ex.iter().map(|e| e.max_rhat).fold(0.0, f64::max),
        })
    });
    let json = serde_json::json!({
        "exact_posterior": exact_json,
        "maps": a.maps,
        "samples_per_map": a.samples,
        "sampler": format!("{:?}", a.sampler),
        "antithetic_pairs": post.antithetic,
        "steps": a.steps,
        "score_evaluations_per_chain": post.score_evals,
        "sampling_seconds": seconds,
        "seconds_per_sample": seconds / chains as f64,
        "noise_std_per_component": noise_std,
        "mask": a.mask.as_ref().map(|p| p.display().to_string()),
        "cl_ratio_ell": ell_mid.clone(),
        "methods": methods,
        "prior_check": prior_check,
    });
    crate::output::write_bytes(
        &a.out.join("metrics.json"),
        serde_json::to_string_pretty(&json)?.as_bytes(),
    )?;
    say!(
        "{:<16} {:>10} {:>9} {:>8} {:>8}",
        "method",
        "RMSE",
        "Pearson",
        "cov68",
        "cov95"
    );
    for (name, m) in &res {
        say!(
            "{name:<16} {:>10.5} {:>9.4} {:>8.3} {:>8.3}",
            m.rmse,
            m.pearson,
            m.coverage_68,
            m.coverage_95
        );
    }
    if res[2].1.mc_noise_dominated > 0 {
        // an estimator that went negative: say so, report nothing
        say!(
            "diffusion RMSE without Monte Carlo noise: not estimated, the noise of a {}-sample mean exceeds the measured error on {} of {} maps (use more --samples)",
            a.samples,
            res[2].1.mc_noise_dominated,
            nm as usize
        );
        res[2].1.rmse_mc_corrected = None;
    }
    let w = &res[1].1;
    let d = &res[2].1;
    if let Some(c) = d.rmse_mc_corrected {
        say!(
            "diffusion RMSE without the Monte Carlo noise of a {}-sample mean: {:.5} ({:+.1}% relative to Wiener)",
            a.samples,
            c,
            100.0 * (c / w.rmse - 1.0)
        );
    }
    if let Some(e) = res.get(3) {
        say!(
            "exact posterior RMSE is {:+.1}% relative to Wiener (the best any prior can do on these maps)",
            100.0 * (e.1.rmse / w.rmse - 1.0)
        );
    }
    say!(
        "diffusion RMSE is {:+.1}% relative to Wiener; {} score evaluations per chain, {:.2} s per sample; wrote {}",
        100.0 * (d.rmse / w.rmse - 1.0),
        post.score_evals,
        seconds / chains as f64,
        a.out.join("metrics.json").display()
    );
    dir.finish()
}

/// A method's posterior mean, per-pixel std, samples (for the C_ell) and the
/// number of draws behind mean and std.
type MethodEntry<'a> = (&'a [f64], Option<&'a [f64]>, &'a [Vec<f64>], f64);

/// Exact posterior of one held-out map: centred mean, std and a few draws.
struct ExactPosterior {
    mean: Vec<f64>,
    std: Vec<f64>,
    /// Evenly spaced draws (for the C_ell of samples).
    samples: Vec<Vec<f64>>,
    draws: usize,
    seconds: f64,
    divergences: usize,
    max_rhat: f64,
}

/// [`cosmodiff_lensing::field_posterior::FieldPosterior`] as an
/// [`cosmodiff_infer::LogDensity`] for NUTS.
struct WhiteNoiseDensity<'a>(cosmodiff_lensing::field_posterior::FieldPosterior<'a>);

impl cosmodiff_infer::LogDensity for WhiteNoiseDensity<'_> {
    type Error = cosmodiff_lensing::LensingError;
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn logp_and_grad(&self, x: &[f64], grad: &mut [f64]) -> std::result::Result<f64, Self::Error> {
        self.0.logp_and_grad(x, grad)
    }
}

/// NUTS over the white noise of the simulator's field for each held-out
/// shear data set: exact posterior samples under the true prior.
fn exact_posteriors(
    field: &TomoField,
    liks: &[cosmodiff_lensing::score::ShearLikelihood],
    draws: usize,
    seed: u64,
) -> Result<Vec<ExactPosterior>> {
    use cosmodiff_infer::{run_nuts, NutsSettings};
    use cosmodiff_lensing::field_posterior::FieldPosterior;
    use cosmodiff_lensing::posterior::MapSamples;
    let np = field.grid().npix();
    let pb = crate::report::progress(liks.len() as u64, "exact posterior (NUTS)");
    let mut out = Vec::with_capacity(liks.len());
    for (i, lik) in liks.iter().enumerate() {
        let post = FieldPosterior::new(field, vec![lik])?;
        let settings = NutsSettings {
            chains: 2,
            warmup: draws,
            draws,
            seed: seed.wrapping_add(0xe4ac7 + i as u64),
            progress: false,
            init: Some(vec![0.0; np]),
            init_radius: 0.5,
            ..Default::default()
        };
        let start = std::time::Instant::now();
        let density = WhiteNoiseDensity(post);
        let run = run_nuts(&density, &settings)?;
        let seconds = start.elapsed().as_secs_f64();
        let maps: Vec<Vec<f64>> = run
            .draws
            .outer_iter()
            .flat_map(|chain| chain.outer_iter().map(|w| w.to_vec()).collect::<Vec<_>>())
            .map(|w| {
                let k = density.0.maps(&w)?.remove(0);
                let mu = k.iter().sum::<f64>() / np as f64;
                Ok(k.into_iter().map(|v| v - mu).collect())
            })
            .collect::<Result<_>>()?;
        let ms = MapSamples::new(maps, 0, 1.0);
        let stride = (ms.samples.len() / 16).max(1);
        let samples = ms
            .samples
            .iter()
            .step_by(stride)
            .take(16)
            .cloned()
            .collect();
        let max_rhat = run
            .summary()
            .params
            .iter()
            .map(|p| p.r_hat)
            .filter(|r| r.is_finite())
            .fold(0.0, f64::max);
        out.push(ExactPosterior {
            draws: ms.samples.len(),
            mean: ms.mean,
            std: ms.std,
            samples,
            seconds,
            divergences: run.divergences(),
            max_rhat,
        });
        pb.inc(1);
    }
    pb.finish_and_clear();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::t_quantile;
    use cosmodiff_infer::special::norm_cdf;

    #[test]
    fn t_quantiles_match_scipy() {
        // scipy.stats.t.ppf(norm.cdf(z), nu)
        for (nu, z, want) in [
            (7.0, 1.0, 1.0767133754164624),
            (7.0, 2.0, 2.428805130403569),
            (15.0, 1.0, 1.0344629130512213),
            (15.0, 2.0, 2.1811626350751743),
        ] {
            let got = t_quantile(norm_cdf(z), nu);
            assert!(
                (got - want).abs() < 2e-3 * want,
                "nu {nu} z {z}: {got} vs {want}"
            );
        }
    }
}
