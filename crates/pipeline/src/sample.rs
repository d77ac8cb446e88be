//! `cosmodiff sample`: NUTS posterior of cosmological parameters from the
//! Gaussian C_ell likelihood (exact gradients from dual numbers).

use crate::config::{self, ClSection, CosmologySection, OptionsSection, TracerSpec};
use crate::io::Npz;
use anyhow::{anyhow, bail, Context, Result};
use cosmodiff_cosmo::covariance::ClLikelihood;
use cosmodiff_cosmo::CosmoError;
use cosmodiff_cosmo::{Cosmology, Param};
use cosmodiff_infer::{
    find_map, run_nuts, LogDensity, MapSettings, NutsSettings, Posterior, Prior, Samples,
};
use serde::Deserialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The Gaussian C_ell likelihood of `cosmodiff-cosmo` as a [`LogDensity`]
/// of its free cosmological parameters: exact gradients (vector dual
/// numbers) and an exact Hessian (hyper-dual numbers) for MAP + Laplace.
/// Parameters outside the valid cosmology range are errors (treated as
/// divergences by the samplers). Shared by `cosmodiff sample`, the demo and
/// the Python package.
#[derive(Debug, Clone)]
pub struct ClDensity {
    /// The likelihood, with its free parameters.
    pub like: ClLikelihood,
}

impl LogDensity for ClDensity {
    type Error = CosmoError;
    fn dim(&self) -> usize {
        self.like.params.len()
    }
    fn names(&self) -> Vec<String> {
        self.like
            .params
            .iter()
            .map(|p| p.name().to_string())
            .collect()
    }
    fn logp_and_grad(&self, x: &[f64], grad: &mut [f64]) -> Result<f64, CosmoError> {
        self.like.cosmology(x).validate()?;
        let (v, g) = self.like.value_and_grad(x)?;
        grad.copy_from_slice(&g);
        Ok(v)
    }
    fn hessian(&self, x: &[f64]) -> Option<Result<Vec<f64>, CosmoError>> {
        Some(self.like.hessian(x).map(|h| h.concat()))
    }
}

/// Corner plot (PNG, written atomically) of the first (at most) 12
/// parameters of a chain, with optional truth markers (constrained
/// parameters, one per parameter).
pub fn corner_plot(samples: &Samples, path: &Path, truths: Option<&[f64]>) -> Result<()> {
    corner_flat(path, &samples.flat_draws(), &samples.names, truths)
}

/// Corner plot of flat draws `[n][names.len()]` (the first 12 parameters).
pub fn corner_flat<S: AsRef<str>>(
    path: &Path,
    flat: &[f64],
    names: &[S],
    truths: Option<&[f64]>,
) -> Result<()> {
    let d = names.len();
    let k = d.min(12);
    let rows = flat.len() / d.max(1);
    let mut sel = Vec::with_capacity(rows * k);
    for r in 0..rows {
        sel.extend_from_slice(&flat[r * d..r * d + k]);
    }
    let t: Option<Vec<f64>> = truths.map(|t| {
        (0..k)
            .map(|p| t.get(p).copied().unwrap_or(f64::NAN))
            .collect()
    });
    let names: Vec<String> = names[..k].iter().map(|n| n.as_ref().to_string()).collect();
    crate::output::write_via(path, |tmp| {
        Ok(cosmodiff_plot::corner::corner(
            tmp,
            &sel,
            &names,
            t.as_deref(),
        )?)
    })
}

/// Sample cosmological parameters with NUTS from the Gaussian C_ell likelihood.
///
/// Config (TOML): the [cosmology], [options], [[tracer]] and [cl] sections of
/// `cosmodiff cosmology` ([cl] needs ell and f_sky), plus
///   [data]      file = "data.npz" (array `cl` [n_pairs, n_ell]) or fiducial = true
///               (noiseless theory at the [cosmology] values)
///   [[param]]   name = "Omega_c", prior = "uniform", low = 0.1, high = 0.5
///               (or prior = "normal", mean, sd; "truncated_normal", mean, sd, low, high;
///               "log_normal", mu, sigma)
///   [sampler]   chains = 4 (at most 256), warmup = 500, draws = 1000 (each at most 1000000), seed = 0
/// Writes DIR/draws.npz (draws [chains, draws, dim], names, sampler statistics),
/// DIR/summary.json (mean, sd, q05, q50, q95, r_hat, ess_bulk, ess_tail per
/// parameter; divergences) and DIR/corner.png; with --map also DIR/map.json.
#[derive(Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
#[cfg_attr(feature = "cli", command(verbatim_doc_comment))]
pub struct Settings {
    /// TOML config.
    #[cfg_attr(feature = "cli", arg(long))]
    pub config: PathBuf,
    /// Output folder.
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
    /// Also find the MAP (L-BFGS) and the Laplace covariance (exact Hessian) -> DIR/map.json.
    #[cfg_attr(feature = "cli", arg(long))]
    pub map: bool,
    #[cfg_attr(feature = "cli", command(flatten))]
    pub reuse: crate::run_dir::Reuse,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleConfig {
    #[serde(default)]
    pub cosmology: CosmologySection,
    #[serde(default)]
    pub options: OptionsSection,
    #[serde(default)]
    pub tracer: Vec<TracerSpec>,
    pub cl: ClSection,
    pub data: DataSection,
    pub param: Vec<ParamSpec>,
    #[serde(default)]
    pub sampler: SamplerSection,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    pub file: Option<PathBuf>,
    #[serde(default)]
    pub fiducial: bool,
}

#[derive(Debug, Deserialize)]
pub struct ParamSpec {
    pub name: String,
    #[serde(flatten)]
    pub prior: Prior,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplerSection {
    #[serde(default = "d_chains")]
    pub chains: usize,
    #[serde(default = "d_warmup")]
    pub warmup: usize,
    #[serde(default = "d_draws")]
    pub draws: usize,
    #[serde(default)]
    pub seed: u64,
}
fn d_chains() -> usize {
    4
}
fn d_warmup() -> usize {
    500
}
fn d_draws() -> usize {
    1000
}
impl Default for SamplerSection {
    fn default() -> Self {
        Self {
            chains: 4,
            warmup: 500,
            draws: 1000,
            seed: 0,
        }
    }
}

/// Most chains of one `cosmodiff sample` run.
pub const MAX_CHAINS: usize = 256;
/// Most warmup steps, and most draws, per chain.
pub const MAX_ITERATIONS: usize = 1_000_000;

pub fn run(a: &Settings) -> Result<()> {
    let cfg: SampleConfig = config::load(&a.config)?;
    let base = config::base_dir(&a.config);
    let (like, priors) = build(&cfg, &base)?;
    let fid: Vec<f64> = like.params.iter().map(|p| like.fiducial.get(*p)).collect();
    let post = Posterior::new(ClDensity { like }, priors).map_err(|e| anyhow!("[[param]] {e}"))?;
    let s = &cfg.sampler;
    if s.chains == 0 || s.draws < 10 {
        bail!(
            "[sampler] need chains >= 1 and draws >= 10 (got chains = {}, draws = {})",
            s.chains,
            s.draws
        );
    }
    // Documented limits: far beyond any converged chain of a few
    // parameters, short of runs that would go on for days.
    if s.chains > MAX_CHAINS || s.warmup > MAX_ITERATIONS || s.draws > MAX_ITERATIONS {
        bail!(
            "[sampler] chains = {}, warmup = {}, draws = {}: at most {MAX_CHAINS} chains and {MAX_ITERATIONS} warmup steps or draws per chain",
            s.chains,
            s.warmup,
            s.draws
        );
    }
    let dir = crate::run_dir::RunDir::open(
        &a.out,
        "sample",
        a,
        a.reuse,
        crate::run_dir::Kind::Rewritten,
        &[("--config", &a.config)],
    )?;
    let settings = NutsSettings {
        chains: s.chains,
        warmup: s.warmup,
        draws: s.draws,
        seed: s.seed,
        progress: !crate::report::is_quiet(),
        ..Default::default()
    };
    let samples = run_nuts(&post, &settings)?;
    write_outputs(&samples, &a.out, Some(&fid))?;
    if !crate::report::is_quiet() {
        println!("{}", samples.summary());
    }
    if a.map {
        let m = find_map(&post, &MapSettings::default())?;
        let p = a.out.join("map.json");
        crate::output::write_bytes(&p, serde_json::to_string_pretty(&m)?.as_bytes())?;
        say!(
            "MAP: {}",
            m.names
                .iter()
                .zip(&m.x)
                .zip(&m.sd)
                .map(|((n, x), s)| format!("{n} = {x:.5} +- {s:.5}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    say!(
        "wrote {}/draws.npz, summary.json, corner.png{}",
        a.out.display(),
        if a.map { ", map.json" } else { "" }
    );
    dir.finish()
}

fn write_outputs(samples: &Samples, dir: &Path, truths: Option<&[f64]>) -> Result<()> {
    use crate::output::write_via;
    write_via(&dir.join("draws.npz"), |t| Ok(samples.write_npz(t)?))?;
    write_via(&dir.join("summary.json"), |t| {
        Ok(samples.summary().write_json(t)?)
    })?;
    corner_plot(samples, &dir.join("corner.png"), truths)
}

/// Likelihood and priors from a sample config.
pub fn build(cfg: &SampleConfig, base: &Path) -> Result<(ClLikelihood, Vec<Prior>)> {
    let cosmo = cfg.cosmology.build()?;
    let opts = cfg.options.build()?;
    cfg.cl.check()?;
    let f_sky = cfg
        .cl
        .f_sky
        .ok_or_else(|| anyhow!("[cl] f_sky is required for the likelihood covariance"))?;
    let tracers = config::build_tracers(&cfg.tracer, base)?;
    if tracers.is_empty() {
        bail!("at least one [[tracer]] block is required");
    }
    if cfg.param.is_empty() {
        bail!("at least one [[param]] block is required");
    }
    let mut params = vec![];
    let mut priors = vec![];
    for (i, p) in cfg.param.iter().enumerate() {
        let par: Param = p
            .name
            .parse()
            .map_err(|e| anyhow!("[[param]] #{}: {e}", i + 1))?;
        if params.contains(&par) {
            bail!("[[param]] #{}: parameter {} listed twice", i + 1, p.name);
        }
        p.prior
            .validate()
            .map_err(|e| anyhow!("[[param]] #{} ({}): {e}", i + 1, p.name))?;
        params.push(par);
        priors.push(p.prior.clone());
    }
    let n_pairs = tracers.len() * (tracers.len() + 1) / 2;
    let data = match (&cfg.data.file, cfg.data.fiducial) {
        (Some(_), true) => bail!("[data]: give either file = \"...\" or fiducial = true, not both"),
        (None, false) => bail!("[data]: expected file = \"data.npz\" or fiducial = true"),
        (None, true) => None,
        (Some(f), false) => {
            let p = if f.is_absolute() {
                f.clone()
            } else {
                base.join(f)
            };
            let file =
                std::fs::File::open(&p).with_context(|| format!("[data] file {}", p.display()))?;
            let mut z = ndarray_npy::NpzReader::new(file)
                .map_err(|e| anyhow!("[data] file {}: {e}", p.display()))?;
            let a: ndarray::ArrayD<f64> = z
                .by_name("cl")
                .or_else(|_| z.by_name("cl.npy"))
                .map_err(|e| anyhow!("[data] file {}: no float64 array 'cl' ({e})", p.display()))?;
            if a.shape() != [n_pairs, cfg.cl.ell.len()] {
                bail!("[data] file {}: 'cl' has shape {:?}, expected [n_pairs, n_ell] = [{n_pairs}, {}]", p.display(), a.shape(), cfg.cl.ell.len());
            }
            let rows: Vec<f64> = a.iter().copied().collect();
            let ne = cfg.cl.ell.len();
            if let Some(i) = rows.iter().position(|v| !v.is_finite()) {
                bail!(
                    "[data] file {}: 'cl' is not finite at [{}, {}]",
                    p.display(),
                    i / ne,
                    i % ne
                );
            }
            // Auto-spectra (pairs (i, i) in the order of `tracer_pairs`) are >= 0.
            for (k, (i, j)) in cosmodiff_cosmo::cl::tracer_pairs(tracers.len())
                .into_iter()
                .enumerate()
            {
                if i == j {
                    if let Some(l) = rows[k * ne..(k + 1) * ne].iter().position(|v| *v < 0.0) {
                        bail!(
                            "[data] file {}: auto-spectrum of tracer {i} ('cl' row {k}) is negative at ell index {l}",
                            p.display()
                        );
                    }
                }
            }
            Some(rows)
        }
    };
    let like = ClLikelihood::new(
        cosmo,
        tracers,
        cfg.cl.ell.clone(),
        f_sky,
        opts,
        data,
        params,
    )?;
    Ok((like, priors))
}

/// What the demo reports from its posterior step.
pub struct DemoPosterior {
    pub report: String,
    pub summary_line: String,
    draws: Option<(Vec<usize>, Vec<f64>)>,
}

impl DemoPosterior {
    pub fn add_to(&self, npz: &mut Npz) -> Result<()> {
        if let Some((shape, d)) = &self.draws {
            npz.add("posterior_draws", shape, d.clone())?;
        }
        Ok(())
    }
}

/// The demo's posterior: NUTS on (Omega_c, sigma8) with wide uniform priors.
pub fn demo_posterior(
    like: &ClLikelihood,
    s: &crate::demo::Sizes,
    seed: u64,
    corner: &Path,
    fid: &Cosmology,
) -> Result<DemoPosterior> {
    let priors = vec![
        Prior::Uniform {
            low: 0.1,
            high: 0.6,
        },
        Prior::Uniform {
            low: 0.4,
            high: 1.3,
        },
    ];
    let post = Posterior::new(ClDensity { like: like.clone() }, priors)?;
    let settings = NutsSettings {
        chains: s.chains,
        warmup: s.warmup,
        draws: s.draws,
        seed,
        progress: false,
        ..Default::default()
    };
    let samples = run_nuts(&post, &settings)?;
    let truths = [fid.omega_c, fid.sigma8];
    corner_plot(&samples, corner, Some(&truths))?;
    let sum = samples.summary();
    let mut r = String::new();
    writeln!(r, "NUTS ({} chains x {} draws after {} warmup, {:.1} s, {} divergences), uniform priors Omega_c in [0.1, 0.6], sigma8 in [0.4, 1.3]:\n", s.chains, s.draws, s.warmup, sum.elapsed_s, sum.divergences)?;
    writeln!(r, "| parameter | truth | mean | sd | q05 | q95 | R-hat | ESS bulk |\n|---|---|---|---|---|---|---|---|")?;
    for (p, t) in sum.params.iter().zip(truths) {
        writeln!(
            r,
            "| {} | {t} | {:.4} | {:.4} | {:.4} | {:.4} | {:.3} | {:.0} |",
            p.name, p.mean, p.sd, p.q05, p.q95, p.r_hat, p.ess_bulk
        )?;
    }
    let worst_rhat = sum.params.iter().map(|p| p.r_hat).fold(0.0f64, f64::max);
    if worst_rhat > 1.05 {
        writeln!(r, "\nR-hat = {worst_rhat:.2} > 1.05: these chains are too short to have converged (the --quick settings); run `cosmodiff demo` without --quick for longer chains.")?;
    }
    writeln!(r, "\n![corner](corner.png)\n\nOne field constrains the degenerate combination sigma8 Omega_m^0.5 far better than either parameter. The likelihood uses the Gaussian (Knox) covariance; the simulated field is log-normal, whose extra (non-Gaussian) variance is not included, so the contours are somewhat too tight and one realisation can sit 2 sigma from the truth (change --seed to see others).")?;
    // S8 = sigma8 sqrt(Omega_m / 0.3), the combination lensing measures.
    let s8 = |oc: f64, sig8: f64| sig8 * ((oc + fid.omega_b) / 0.3).sqrt();
    let s8_draws: Vec<f64> = samples
        .param_chains(0)
        .concat()
        .iter()
        .zip(samples.param_chains(1).concat())
        .map(|(&oc, sig8)| s8(oc, sig8))
        .collect();
    let n = s8_draws.len().max(1) as f64;
    let s8_mean = s8_draws.iter().sum::<f64>() / n;
    let s8_sd = (s8_draws.iter().map(|v| (v - s8_mean).powi(2)).sum::<f64>() / n).sqrt();
    writeln!(
        r,
        "\nS8 = sigma8 (Omega_m / 0.3)^0.5 = {s8_mean:.3} +- {s8_sd:.3} (truth {:.3}).",
        s8(truths[0], truths[1])
    )?;
    let line = format!(
        "  posterior: Omega_c = {:.3} +- {:.3}, sigma8 = {:.3} +- {:.3} (truth {}, {}); S8 = {s8_mean:.3} +- {s8_sd:.3} (truth {:.3})",
        sum.params[0].mean,
        sum.params[0].sd,
        sum.params[1].mean,
        sum.params[1].sd,
        truths[0],
        truths[1],
        s8(truths[0], truths[1])
    );
    let d = samples.draws.iter().copied().collect();
    Ok(DemoPosterior {
        report: r,
        summary_line: line,
        draws: Some((samples.draws.shape().to_vec(), d)),
    })
}
