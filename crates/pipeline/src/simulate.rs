//! `cosmodiff simulate lensing`: tomographic weak-lensing maps conditioned on
//! cosmology (theory C_ell from the cosmology crate, Gaussian or log-normal
//! convergence, shear, shape noise).

use crate::config::{self, CosmologySection, NzSpec, OptionsSection};
use crate::io::Npz;
use anyhow::{anyhow, bail, Result};
use cosmodiff_cosmo::{angular_cl, tracer_pairs, Tracer};
use cosmodiff_field::tomo2::FieldKind;
use cosmodiff_field::{ClMatrixTable, Grid2};
use cosmodiff_lensing::{
    hilbert_shift, simulate_tomographic, theory_ells, SourceBin, TomoLensingSim,
};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct LensingSettings {
    /// TOML config.
    #[cfg_attr(feature = "cli", arg(long))]
    pub config: PathBuf,
    /// Output .npz.
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LensingConfig {
    #[serde(default)]
    pub cosmology: CosmologySection,
    #[serde(default)]
    pub options: OptionsSection,
    pub map: MapSection,
    pub source: Vec<SourceSection>,
    #[serde(default)]
    pub field: FieldSection,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapSection {
    pub npix: usize,
    pub pixel_arcmin: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSection {
    pub nz: NzSpec,
    pub sigma_e: Option<f64>,
    pub gals_per_arcmin2: Option<f64>,
    /// Log-normal shift of this bin (default: Hilbert et al. 2011 fit at the mean source redshift).
    pub lognormal_shift: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSection {
    #[serde(default = "default_kind")]
    pub kind: String,
    #[serde(default = "default_seed")]
    pub seed: u64,
}

fn default_kind() -> String {
    "lognormal".into()
}
fn default_seed() -> u64 {
    1
}
impl Default for FieldSection {
    fn default() -> Self {
        Self {
            kind: default_kind(),
            seed: default_seed(),
        }
    }
}

/// `cosmodiff simulate lensing`: simulate the maps of a TOML config into one `.npz`.
pub fn lensing(a: &LensingSettings) -> Result<()> {
    crate::io::require_npz(&a.out)?;
    crate::output::refuse_overwriting_inputs("--out", &a.out, &[("--config", &a.config)])?;
    let cfg: LensingConfig = config::load(&a.config)?;
    check_memory(&cfg)?;
    let (sim, ell, cl) = simulate_lensing(&cfg, &config::base_dir(&a.config))?;
    let mut npz = Npz::new();
    add_sim(&mut npz, &sim)?;
    npz.add_1d("ell", &ell)?;
    npz.add_2d("cl_theory", &cl)?;
    npz.add("pixel_arcmin", &[], vec![cfg.map.pixel_arcmin])?;
    npz.write(&a.out)?;
    say!(
        "wrote {} ({} bins of {}x{} pixels, {})",
        a.out.display(),
        sim.kappa.shape()[0],
        cfg.map.npix,
        cfg.map.npix,
        cfg.field.kind
    );
    Ok(())
}

/// Refuse a simulation whose estimated peak memory does not fit (see
/// [`crate::budget`]): 260 B per pixel per bin (the Gaussian and
/// log-normal fields, the shear, the noisy catalogues and the archive), fitted
/// to the peak resident memory of 512^2 to 2048^2 maps with 2 to 6 bins
/// (docs/reliability.md). An npix outside the allowed range is left to the
/// config check.
fn check_memory(cfg: &LensingConfig) -> Result<()> {
    let n = cfg.map.npix;
    if !(8..=8192).contains(&n) {
        return Ok(());
    }
    let (pix, bins) = ((n * n) as f64, cfg.source.len() as f64);
    crate::budget::check(
        &format!(
            "simulate lensing of {n}x{n} maps in {} bin{}",
            cfg.source.len(),
            if cfg.source.len() == 1 { "" } else { "s" }
        ),
        30e6 + 260.0 * pix * bins,
    )
}

pub fn add_sim(npz: &mut Npz, sim: &TomoLensingSim) -> Result<()> {
    for (name, arr) in [
        ("kappa", &sim.kappa),
        ("gamma1", &sim.gamma1),
        ("gamma2", &sim.gamma2),
        ("e1", &sim.e1),
        ("e2", &sim.e2),
        ("noise_std", &sim.noise_std),
    ] {
        npz.add(name, arr.shape(), arr.iter().copied().collect())?;
    }
    Ok(())
}

/// Everything a lensing config describes: the grid, the theory spectra
/// table, the source bins and the field kind; plus the theory ell grid and
/// C_ell [n_pairs][n_ell].
pub struct LensingSetup {
    pub grid: Grid2,
    pub table: ClMatrixTable,
    pub bins: Vec<SourceBin>,
    pub kind: FieldKind,
    pub ell: Vec<f64>,
    pub cl: Vec<Vec<f64>>,
}

/// Run the simulation described by a config; returns the maps, the theory
/// ell grid and C_ell [n_pairs][n_ell].
pub fn simulate_lensing(
    cfg: &LensingConfig,
    base: &Path,
) -> Result<(TomoLensingSim, Vec<f64>, Vec<Vec<f64>>)> {
    let s = lensing_setup(cfg, base)?;
    let sim = simulate_tomographic(s.grid, &s.table, &s.bins, &s.kind, cfg.field.seed)
        .map_err(|e| anyhow!("simulation: {e}"))?;
    Ok((sim, s.ell, s.cl))
}

/// Validate a lensing config and compute its theory spectra.
pub fn lensing_setup(cfg: &LensingConfig, base: &Path) -> Result<LensingSetup> {
    let cosmo = cfg.cosmology.build()?;
    let opts = cfg.options.build()?;
    if !(cfg.map.npix >= 8 && cfg.map.npix <= 8192) {
        bail!("[map] npix = {}: expected 8 <= npix <= 8192", cfg.map.npix);
    }
    if !(cfg.map.pixel_arcmin > 0.0 && cfg.map.pixel_arcmin < 600.0) {
        bail!(
            "[map] pixel_arcmin = {}: expected a value in (0, 600) arcmin",
            cfg.map.pixel_arcmin
        );
    }
    if cfg.source.is_empty() {
        bail!("at least one [[source]] block is required");
    }
    let grid = Grid2::new(cfg.map.npix, cfg.map.pixel_arcmin).map_err(|e| anyhow!("[map] {e}"))?;
    let mut tracers = vec![];
    let mut bins = vec![];
    for (i, s) in cfg.source.iter().enumerate() {
        let ctx = format!("[[source]] #{}", i + 1);
        let nz = s.nz.build(base, &ctx)?;
        let t = Tracer::weak_lensing(
            nz,
            s.sigma_e.unwrap_or(0.26),
            s.gals_per_arcmin2.unwrap_or(10.0),
        );
        t.validate().map_err(|e| anyhow!("{ctx}: {e}"))?;
        bins.push(SourceBin {
            sigma_e: s.sigma_e.unwrap_or(0.26),
            gals_per_arcmin2: s.gals_per_arcmin2.unwrap_or(10.0),
        });
        tracers.push(t);
    }
    let kind = match cfg.field.kind.as_str() {
        "gaussian" if cfg.source.iter().any(|s| s.lognormal_shift.is_some()) => {
            bail!("[[source]] lognormal_shift applies to [field] kind = \"lognormal\" only")
        }
        "gaussian" => FieldKind::Gaussian,
        "lognormal" => {
            if let Some((i, v)) = cfg.source.iter().enumerate().find_map(|(i, s)| {
                s.lognormal_shift
                    .filter(|v| !(v.is_finite() && *v > 0.0))
                    .map(|v| (i, v))
            }) {
                bail!("[[source]] #{}: lognormal_shift = {v} must be > 0 (the field's minimum is -shift)", i + 1);
            }
            FieldKind::LogNormal {
                shifts: cfg
                    .source
                    .iter()
                    .zip(&tracers)
                    .map(|(s, t)| {
                        s.lognormal_shift
                            .unwrap_or_else(|| hilbert_shift(t.nz.mean_z()))
                    })
                    .collect(),
            }
        }
        k => bail!("[field] kind = \"{k}\": expected \"gaussian\" or \"lognormal\""),
    };
    let ell = theory_ells(&grid);
    let cl = angular_cl(&cosmo, &tracers, &ell, &opts)?;
    debug_assert_eq!(cl.len(), tracer_pairs(tracers.len()).len());
    let table =
        ClMatrixTable::new(ell.clone(), cl.clone()).map_err(|e| anyhow!("theory C_ell: {e}"))?;
    Ok(LensingSetup {
        grid,
        table,
        bins,
        kind,
        ell,
        cl,
    })
}
