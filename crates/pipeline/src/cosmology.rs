//! `cosmodiff cosmology --config FILE.toml --out FILE.npz`: background,
//! growth, P(k), Limber C_ell, Gaussian covariance and Fisher matrix.

use crate::config::{self, ClSection, CosmologySection, OptionsSection, TracerSpec};
use crate::io::Npz;
use anyhow::{anyhow, bail, Result};
use cosmodiff_cosmo::covariance::{gaussian_covariance, ClLikelihood};
use cosmodiff_cosmo::{
    angular_cl, angular_cl_noise, tracer_pairs, Background, NonLinear, Param, PowerSpectrum,
};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Compute cosmological quantities from a TOML config and write them as
/// named float64 arrays to an .npz file.
///
/// Sections (all optional; only what is asked for is computed):
///   [cosmology]  Omega_c, Omega_b, h, n_s, sigma8, Omega_k, w0, wa (missing keys: Planck 2015)
///   [options]    transfer = "eisenstein_hu" | "eisenstein_hu_nowiggles" | "bbks";
///                nonlinear = "halofit" | "linear"
///   [background] a = [...]  -> a, comoving_distance, angular_diameter_distance,
///                luminosity_distance (Mpc/h), hubble (km/s/Mpc), growth_factor, growth_rate
///   [power]      k = [...] (h/Mpc), z = [...] -> pk_linear, pk_nonlinear [len(z), len(k)] in (Mpc/h)^3
///   [[tracer]]   kind = "weak_lensing" | "number_counts", nz = {kind = "smail"|"gaussian"|"delta"|"histogram", ...},
///                ia_amplitude, m_bias, sigma_e, gals_per_arcmin2 (arcmin^-2), bias
///   [cl]         ell = [...], f_sky -> ell, cl, cl_noise [n_pairs, n_ell], cl_pairs [n_pairs, 2], cl_covariance
///   [fisher]     params = ["Omega_c", "sigma8"] -> fisher [n_params, n_params] (exact derivatives)
#[derive(Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
#[cfg_attr(feature = "cli", command(verbatim_doc_comment))]
pub struct Settings {
    /// TOML config file.
    #[cfg_attr(feature = "cli", arg(long))]
    pub config: PathBuf,
    /// Output .npz of named float64 arrays.
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub cosmology: CosmologySection,
    #[serde(default)]
    pub options: OptionsSection,
    pub background: Option<BackgroundSection>,
    pub power: Option<PowerSection>,
    #[serde(default)]
    pub tracer: Vec<TracerSpec>,
    pub cl: Option<ClSection>,
    pub fisher: Option<FisherSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackgroundSection {
    pub a: Vec<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PowerSection {
    pub k: Vec<f64>,
    pub z: Vec<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FisherSection {
    pub params: Vec<String>,
}

pub fn run(args: &Settings) -> Result<()> {
    crate::io::require_npz(&args.out)?;
    crate::output::refuse_overwriting_inputs("--out", &args.out, &[("--config", &args.config)])?;
    let cfg: Config = config::load(&args.config)?;
    let npz = compute(&cfg, &config::base_dir(&args.config))?;
    if npz.names().is_empty() {
        bail!(
            "{}: nothing to compute: add [background], [power], [cl] with [[tracer]] or [fisher]",
            args.config.display()
        );
    }
    // no silent garbage: a NaN from valid-looking parameters is an error
    if let Some((name, i)) = npz.first_non_finite() {
        let c = &cfg.cosmology;
        bail!(
            "{}: '{name}' is not finite (entry {i}): the cosmology is outside the range the models represent \
             (check [cosmology]: sigma8 {}, Omega_c {}, Omega_b {}, h {}, n_s {}, w0 {}, wa {}; missing = Planck 2015)",
            args.config.display(),
            opt(c.sigma8),
            opt(c.Omega_c),
            opt(c.Omega_b),
            opt(c.h),
            opt(c.n_s),
            opt(c.w0),
            opt(c.wa)
        );
    }
    npz.write(&args.out)?;
    log::info!("wrote {} ({})", args.out.display(), npz.names().join(", "));
    say!("wrote {}: {}", args.out.display(), npz.names().join(", "));
    Ok(())
}

fn opt(v: Option<f64>) -> String {
    v.map_or("-".into(), |x| format!("{x:.4e}"))
}

/// Evaluate a parsed config.
pub fn compute(cfg: &Config, base: &Path) -> Result<Npz> {
    let cosmo = cfg.cosmology.build()?;
    let opts = cfg.options.build()?;
    let mut out = Npz::new();
    if let Some(bgs) = &cfg.background {
        if bgs.a.is_empty() || bgs.a.iter().any(|a| !(*a > 1e-4 && *a <= 1.0)) {
            bail!("[background] a: expected scale factors in (1e-4, 1]");
        }
        let bg = Background::new(&cosmo)?;
        let g = cosmodiff_cosmo::Growth::new(&cosmo)?;
        let col = |f: &dyn Fn(f64) -> f64| bgs.a.iter().map(|&a| f(a)).collect::<Vec<f64>>();
        out.add_1d("a", &bgs.a)?;
        out.add_1d("comoving_distance", &col(&|a| bg.comoving_distance(a)))?;
        out.add_1d(
            "angular_diameter_distance",
            &col(&|a| bg.angular_diameter_distance(a)),
        )?;
        out.add_1d("luminosity_distance", &col(&|a| bg.luminosity_distance(a)))?;
        out.add_1d("hubble", &col(&|a| bg.hubble(a)))?;
        out.add_1d("growth_factor", &col(&|a| g.d1(a)))?;
        out.add_1d("growth_rate", &col(&|a| g.f1(a)))?;
    }
    if let Some(ps) = &cfg.power {
        if ps.k.is_empty() || ps.k.iter().any(|k| !(*k > 0.0 && *k <= 1e3)) {
            bail!("[power] k: expected wavenumbers in (0, 1000] h/Mpc");
        }
        if ps.z.is_empty() || ps.z.iter().any(|z| !(*z >= 0.0 && *z < 1e3)) {
            bail!("[power] z: expected redshifts in [0, 1000)");
        }
        let lin = PowerSpectrum::new(&cosmo, opts.transfer, NonLinear::Linear)?;
        let nl = PowerSpectrum::new(&cosmo, opts.transfer, opts.nonlinear)?;
        let grid = |p: &PowerSpectrum<f64>| -> Vec<f64> {
            ps.z.iter()
                .flat_map(|z| ps.k.iter().map(move |k| p.pk(*k, 1.0 / (1.0 + z))))
                .collect()
        };
        out.add_1d("k", &ps.k)?;
        out.add_1d("z", &ps.z)?;
        out.add("pk_linear", &[ps.z.len(), ps.k.len()], grid(&lin))?;
        out.add("pk_nonlinear", &[ps.z.len(), ps.k.len()], grid(&nl))?;
    }
    let tracers = config::build_tracers(&cfg.tracer, base)?;
    if !tracers.is_empty() && cfg.cl.is_none() && cfg.fisher.is_none() {
        bail!("[[tracer]] blocks are used by [cl] and [fisher]: add [cl] with ell (and f_sky for the covariance)");
    }
    if let Some(cl) = &cfg.cl {
        cl.check()?;
        if tracers.is_empty() {
            bail!("[cl] needs at least one [[tracer]] block");
        }
        let c = angular_cl(&cosmo, &tracers, &cl.ell, &opts)?;
        let noise = angular_cl_noise(&tracers, &cl.ell);
        let pairs: Vec<Vec<f64>> = tracer_pairs(tracers.len())
            .iter()
            .map(|&(i, j)| vec![i as f64, j as f64])
            .collect();
        out.add_1d("ell", &cl.ell)?;
        out.add_2d("cl", &c)?;
        out.add_2d("cl_noise", &noise)?;
        out.add_2d("cl_pairs", &pairs)?;
        if let Some(f_sky) = cl.f_sky {
            let total: Vec<Vec<f64>> = c
                .iter()
                .zip(&noise)
                .map(|(a, b)| a.iter().zip(b).map(|(x, y)| x + y).collect())
                .collect();
            let cov = gaussian_covariance(&total, tracers.len(), &cl.ell, f_sky)?;
            let n = c.len() * cl.ell.len();
            out.add("cl_covariance", &[n, n], cov)?;
        }
    }
    if let Some(fs) = &cfg.fisher {
        let cl = cfg
            .cl
            .as_ref()
            .ok_or_else(|| anyhow!("[fisher] needs a [cl] section with ell and f_sky"))?;
        let f_sky = cl
            .f_sky
            .ok_or_else(|| anyhow!("[fisher] needs [cl] f_sky"))?;
        if tracers.is_empty() {
            bail!("[fisher] needs at least one [[tracer]] block");
        }
        if fs.params.is_empty() {
            bail!("[fisher] params: expected at least one parameter name");
        }
        if let Some((i, p)) = fs
            .params
            .iter()
            .enumerate()
            .find(|(i, p)| fs.params[..*i].contains(p))
        {
            bail!("[fisher] params: '{p}' is listed twice (entry {})", i + 1);
        }
        let params: Vec<Param> = fs
            .params
            .iter()
            .map(|p| {
                p.parse::<Param>()
                    .map_err(|e| anyhow!("[fisher] params: {e}"))
            })
            .collect::<Result<_>>()?;
        let like = ClLikelihood::new(
            cosmo,
            tracers.clone(),
            cl.ell.clone(),
            f_sky,
            opts,
            None,
            params,
        )?;
        let f = cosmodiff_cosmo::fisher_matrix(&like)?;
        out.add_2d("fisher", &f)?;
    }
    Ok(out)
}
