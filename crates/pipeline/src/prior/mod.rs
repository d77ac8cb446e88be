//! `cosmodiff prior train|evaluate|bench`: learned score priors of convergence
//! maps (denoising score matching with a U-Net; see `cosmodiff-score`).
//!
//! This module holds the config shared by the three (`PriorConfig`) and the
//! training maps; each workflow has its own file.

use crate::config::{self, CosmologySection, OptionsSection};
use crate::simulate::{
    lensing_setup, FieldSection, LensingConfig, LensingSetup, MapSection, SourceSection,
};
use anyhow::{anyhow, bail, Context, Result};
use cosmodiff_field::tomo2::TomoField;
use cosmodiff_field::Grid2;
use cosmodiff_nn::UNetConfig;
use cosmodiff_score::{train_score, ScoreTrainConfig, SdeConfig};
use serde::Deserialize;
use std::path::{Path, PathBuf};

mod bench;
mod evaluate;
mod train;

pub use bench::{bench, BenchSettings};
pub use evaluate::{evaluate, EvaluateSettings};
pub use train::{train, TrainSettings};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorConfig {
    pub data: Option<String>,
    pub pixel_arcmin: Option<f64>,
    /// Simulator sections (absent with `data`; defaults otherwise).
    pub cosmology: Option<CosmologySection>,
    pub options: Option<OptionsSection>,
    pub map: Option<MapSection>,
    #[serde(default)]
    pub source: Vec<SourceSection>,
    pub field: Option<crate::simulate::FieldSection>,
    #[serde(default)]
    pub training: TrainingSection,
    #[serde(default)]
    pub network: NetworkSection,
    #[serde(default)]
    pub sde: SdeSection,
}

impl PriorConfig {
    /// `[field] seed` (the simulator's default without a [field] section).
    fn field_seed(&self) -> u64 {
        self.field
            .as_ref()
            .map_or(FieldSection::default().seed, |f| f.seed)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingSection {
    /// Simulated training maps (default 2000; not with `data`).
    #[serde(default)]
    pub n_maps: Option<usize>,
    #[serde(default = "d_steps")]
    pub steps: usize,
    #[serde(default = "d_batch")]
    pub batch_size: usize,
    #[serde(default = "d_lr")]
    pub learning_rate: f64,
    #[serde(default)]
    pub seed: u64,
}
fn d_steps() -> usize {
    3000
}
fn d_batch() -> usize {
    32
}
fn d_lr() -> f64 {
    1e-3
}
impl Default for TrainingSection {
    fn default() -> Self {
        Self {
            n_maps: None,
            steps: d_steps(),
            batch_size: d_batch(),
            learning_rate: d_lr(),
            seed: 0,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSection {
    #[serde(default = "d_channels")]
    pub channels: Vec<usize>,
    #[serde(default = "d_embed")]
    pub embed_dim: usize,
    #[serde(default = "d_true")]
    pub hybrid: bool,
}
fn d_channels() -> Vec<usize> {
    vec![16, 32, 64]
}
fn d_embed() -> usize {
    64
}
fn d_true() -> bool {
    true
}
impl Default for NetworkSection {
    fn default() -> Self {
        Self {
            channels: d_channels(),
            embed_dim: d_embed(),
            hybrid: true,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SdeSection {
    #[serde(default = "d_kind")]
    pub kind: String,
    pub sigma_min: Option<f64>,
    pub sigma_max: Option<f64>,
    pub beta_min: Option<f64>,
    pub beta_max: Option<f64>,
    pub t_min: Option<f64>,
}
fn d_kind() -> String {
    "ve".into()
}
impl Default for SdeSection {
    fn default() -> Self {
        Self {
            kind: d_kind(),
            sigma_min: None,
            sigma_max: None,
            beta_min: None,
            beta_max: None,
            t_min: None,
        }
    }
}

impl SdeSection {
    pub(crate) fn build(&self) -> Result<SdeConfig> {
        let c = match self.kind.as_str() {
            "ve" => {
                if self.beta_min.is_some() || self.beta_max.is_some() || self.t_min.is_some() {
                    bail!("[sde] kind = \"ve\" takes sigma_min and sigma_max only");
                }
                SdeConfig::Ve {
                    sigma_min: self.sigma_min.unwrap_or(0.005),
                    sigma_max: self.sigma_max.unwrap_or(50.0),
                }
            }
            "vp" => {
                if self.sigma_min.is_some() || self.sigma_max.is_some() {
                    bail!("[sde] kind = \"vp\" takes beta_min, beta_max and t_min only");
                }
                SdeConfig::Vp {
                    beta_min: self.beta_min.unwrap_or(0.1),
                    beta_max: self.beta_max.unwrap_or(20.0),
                    t_min: self.t_min.unwrap_or(1e-3),
                }
            }
            k => bail!("[sde] kind = \"{k}\": expected \"ve\" or \"vp\""),
        };
        c.sde(1.0).validate().map_err(|e| anyhow!("[sde] {e}"))?;
        Ok(c)
    }
}

/// Training maps: from `data` or simulated (first and only source bin).
pub fn training_maps(
    cfg: &PriorConfig,
    base: &Path,
    n_maps: usize,
    seed: u64,
) -> Result<(Grid2, Vec<Vec<f64>>)> {
    if let Some(d) = &cfg.data {
        if cfg.map.is_some()
            || !cfg.source.is_empty()
            || cfg.cosmology.is_some()
            || cfg.options.is_some()
            || cfg.field.is_some()
        {
            bail!("give either `data` or a simulator ([cosmology], [options], [map], [[source]], [field]), not both");
        }
        let path = base.join(d);
        let p = path.display().to_string();
        let f = std::fs::File::open(&path).with_context(|| format!("cannot open {p}"))?;
        let mut z = ndarray_npy::NpzReader::new(f)
            .map_err(|e| anyhow!("{p}: not a readable .npz ({e})"))?;
        let a = crate::io::npz_float(&mut z, "kappa")
            .map_err(|e| anyhow!("{p}: no float array 'kappa' ({e})"))?;
        let s = a.shape().to_vec();
        let (nm, n) = match s.as_slice() {
            [m, n1, n2] if n1 == n2 => (*m, *n1),
            _ => bail!("{p}: 'kappa' has shape {s:?}; expected [n_maps, npix, npix]"),
        };
        let pix = cfg
            .pixel_arcmin
            .ok_or_else(|| anyhow!("`pixel_arcmin` is required with `data`"))?;
        let grid = Grid2::new(n, pix).map_err(|e| anyhow!("{p}: {e}"))?;
        let flat: Vec<f64> = a.iter().copied().collect();
        if flat.iter().any(|v| !v.is_finite()) {
            bail!("{p}: 'kappa' contains NaN or infinite values");
        }
        let maps = flat.chunks(n * n).map(|c| c.to_vec()).collect::<Vec<_>>();
        debug_assert_eq!(maps.len(), nm);
        return Ok((grid, maps));
    }
    let field = simulator_field(&simulator_setup(cfg, base)?)?;
    Ok((*field.grid(), simulate_maps(&field, n_maps, seed)))
}

/// The config's simulator (exactly one source bin): grid, theory C_ell and
/// field kind.
fn simulator_setup(cfg: &PriorConfig, base: &Path) -> Result<LensingSetup> {
    let map = cfg.map.as_ref().ok_or_else(|| {
        anyhow!("need `data = \"maps.npz\"` or a simulator with [map] and [[source]]")
    })?;
    if cfg.source.len() != 1 {
        bail!(
            "the simulator needs exactly one [[source]] block for a prior (got {})",
            cfg.source.len()
        );
    }
    if cfg.pixel_arcmin.is_some() {
        bail!("`pixel_arcmin` goes with `data`; the simulator uses [map] pixel_arcmin");
    }
    let lc = LensingConfig {
        cosmology: cfg.cosmology.clone().unwrap_or_default(),
        options: cfg.options.clone().unwrap_or_default(),
        map: map.clone(),
        source: cfg.source.clone(),
        field: cfg.field.clone().unwrap_or_default(),
    };
    lensing_setup(&lc, base)
}

/// The convergence field of a simulator setup.
fn simulator_field(s: &LensingSetup) -> Result<TomoField> {
    TomoField::new(s.grid, &s.table, s.kind.clone()).map_err(|e| anyhow!("{e}"))
}

/// `n_maps` convergence maps of the field's first bin from `seed`.
fn simulate_maps(field: &TomoField, n_maps: usize, seed: u64) -> Vec<Vec<f64>> {
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let pb = crate::report::progress(n_maps as u64, "simulating maps");
    let maps = (0..n_maps)
        .map(|_| {
            pb.inc(1);
            field.sample(&mut rng).remove(0)
        })
        .collect();
    pb.finish_and_clear();
    maps
}
