//! The trained score prior and its model directory.
//!
//! Maps are handled in units of the training maps' pixel standard deviation
//! `sigma_d` (`x_n = x / sigma_d`, `sigma_n = sigma / sigma_d`). With the
//! preconditioning of Karras et al. (2022), the network sees
//! `c_in x_n`, `c_in = 1 / sqrt(1 + sigma_n^2)`, and the noise code
//! `ln(sigma_n) / 4`, and its output `F` is a scaled score:
//!
//! `s_n(x_n, sigma_n) = F(c_in x_n, ln sigma_n / 4) / sigma_n [+ s_G(x_n, sigma_n)]`,
//! `s(x, sigma) = s_n(x / sigma_d, sigma / sigma_d) / sigma_d`,
//!
//! where the optional `s_G` is the analytic score of the Gaussian field with
//! the training maps' isotropic power (hybrid prior, Remy et al. 2022).
//!
//! Directory layout: `weights.safetensors` (burn-store) and `score_model.json`
//! (this configuration, with the training report).

use std::path::Path;

use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::{Device, Tensor, TensorData};
use cosmodiff_field::Grid2;
use cosmodiff_lensing::score::{GaussianScore, MapScore, Sde};
use cosmodiff_lensing::LensingError;
use cosmodiff_nn::burn;
use cosmodiff_nn::tensor::{default_device, to_vec};
use cosmodiff_nn::{TrainReport, UNet, UNetConfig};
use serde::{Deserialize, Serialize};

use crate::error::{invalid, ScoreError};
use crate::power::mode_variance;

/// File name of the network weights in a model directory.
pub const WEIGHTS: &str = "weights.safetensors";
/// File name of the [`ScoreModelConfig`] in a model directory.
pub const CONFIG: &str = "score_model.json";

/// Noise schedule, in units of the data standard deviation.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SdeConfig {
    /// Variance exploding (Song et al. 2021):
    /// `sigma(t) = sigma_min (sigma_max / sigma_min)^t`, `t in [0, 1]`.
    Ve {
        /// Smallest noise level, in units of the data standard deviation.
        sigma_min: f64,
        /// Largest noise level, in units of the data standard deviation.
        sigma_max: f64,
    },
    /// Variance preserving (Song et al. 2021), as its equivalent noise
    /// level `sigma(t) = sqrt(exp(beta_min t + (beta_max - beta_min) t^2 / 2) - 1)`.
    Vp {
        /// `beta(0)`.
        beta_min: f64,
        /// `beta(1)`.
        beta_max: f64,
        /// Smallest time, `t in [t_min, 1]`.
        t_min: f64,
    },
}

impl Default for SdeConfig {
    fn default() -> Self {
        SdeConfig::Ve {
            sigma_min: 0.005,
            sigma_max: 50.0,
        }
    }
}

impl SdeConfig {
    /// Check the schedule. VE noise levels are in units of the training
    /// maps' pixel std, so far outside `[1e-5, 1e4]` they either vanish in
    /// float32 or drown the maps (sampling then diverges).
    pub fn validate(&self) -> Result<(), ScoreError> {
        self.sde(1.0).validate()?;
        if let SdeConfig::Ve {
            sigma_min,
            sigma_max,
        } = *self
        {
            if !(sigma_min >= 1e-5 && sigma_max <= 1e4) {
                return invalid(format!(
                    "[sde] sigma_min = {sigma_min}, sigma_max = {sigma_max}: in units of the maps' pixel std they must lie in [1e-5, 1e4]"
                ));
            }
        }
        Ok(())
    }

    /// The schedule in data units (normalised units times `scale`).
    ///
    /// For VP the schedule's shape is fixed by `beta`; `scale` only matters
    /// for VE.
    pub fn sde(&self, scale: f64) -> Sde {
        match *self {
            SdeConfig::Ve {
                sigma_min,
                sigma_max,
            } => Sde::Ve {
                sigma_min: sigma_min * scale,
                sigma_max: sigma_max * scale,
            },
            SdeConfig::Vp {
                beta_min,
                beta_max,
                t_min,
            } => Sde::Vp {
                beta_min,
                beta_max,
                t_min,
            },
        }
    }
}

/// Everything needed to rebuild a [`ScoreModel`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoreModelConfig {
    /// Side of the square maps, pixels.
    pub side: usize,
    /// Pixel size of the training maps, arcmin.
    pub pixel_arcmin: f64,
    /// The network.
    pub unet: UNetConfig,
    /// Pixel standard deviation of the (zero-mean) training maps.
    pub data_std: f64,
    /// Noise schedule in units of `data_std`.
    pub sde: SdeConfig,
    /// Add the analytic Gaussian score of `radial_power`.
    pub hybrid: bool,
    /// Isotropic per-mode variance of the normalised training maps by
    /// integer shell `|m|` (see [`crate::power`]).
    pub radial_power: Vec<f64>,
    /// How training went (absent for an untrained model).
    #[serde(default)]
    pub report: Option<TrainReport>,
}

impl ScoreModelConfig {
    /// The grid of the training maps.
    pub fn grid(&self) -> Result<Grid2, ScoreError> {
        Grid2::new(self.side, self.pixel_arcmin)
            .map_err(|e| ScoreError::Invalid(format!("model grid: {e}")))
    }
    /// The noise schedule in data (convergence) units.
    pub fn sde(&self) -> Sde {
        self.sde.sde(self.data_std)
    }
}

/// A trained (or freshly initialised) score prior.
#[derive(Debug)]
pub struct ScoreModel {
    /// What rebuilds the model (saved as [`CONFIG`]).
    pub config: ScoreModelConfig,
    net: UNet,
    gaussian: Option<GaussianScore>,
    device: Device,
}

/// Maps per network call.
const CHUNK: usize = 32;

impl ScoreModel {
    pub(crate) fn gaussian_for(
        config: &ScoreModelConfig,
    ) -> Result<Option<GaussianScore>, ScoreError> {
        if !config.hybrid {
            return Ok(None);
        }
        let grid = config.grid()?;
        Ok(Some(GaussianScore::from_mode_variance(
            grid,
            mode_variance(&config.radial_power, config.side),
        )?))
    }

    pub(crate) fn from_parts(config: ScoreModelConfig, net: UNet) -> Result<Self, ScoreError> {
        let gaussian = Self::gaussian_for(&config)?;
        Ok(Self {
            config,
            net,
            gaussian,
            device: default_device(),
        })
    }

    /// Score in normalised units for a batch of normalised maps.
    fn score_normalised(&self, x: &[Vec<f64>], sigma: f64) -> Result<Vec<Vec<f64>>, ScoreError> {
        let n = self.config.side;
        let np = n * n;
        let c_in = 1.0 / (1.0 + sigma * sigma).sqrt();
        let code = (sigma.ln() / 4.0) as f32;
        let mut out: Vec<Vec<f64>> = Vec::with_capacity(x.len());
        for chunk in x.chunks(CHUNK) {
            let b = chunk.len();
            let v: Vec<f32> = chunk
                .iter()
                .flat_map(|m| m.iter().map(|&u| (c_in * u) as f32))
                .collect();
            let t: Tensor<4> = Tensor::from_data(TensorData::new(v, [b, 1, n, n]), &self.device);
            let f = to_vec(self.net.forward(t, &vec![code; b]));
            for i in 0..b {
                out.push(f[i * np..(i + 1) * np].iter().map(|v| v / sigma).collect());
            }
        }
        if let Some(g) = &self.gaussian {
            let sg = g.score(x, sigma)?;
            for (o, s) in out.iter_mut().zip(sg) {
                for (u, v) in o.iter_mut().zip(s) {
                    *u += v;
                }
            }
        }
        Ok(out)
    }

    /// A model with freshly initialised (untrained) network weights.
    pub fn init(config: ScoreModelConfig, seed: u64) -> Result<Self, ScoreError> {
        config.unet.validate(config.side)?;
        let device = default_device();
        device.seed(seed);
        let net = config.unet.init(&device);
        Self::from_parts(config, net)
    }

    /// Save to `dir` (created if needed).
    pub fn save(&self, dir: &Path) -> Result<(), ScoreError> {
        let err = |e: String| ScoreError::Model {
            path: dir.display().to_string(),
            msg: e,
        };
        std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
        let path = dir.join(WEIGHTS);
        let mut store = cosmodiff_nn::checkpoint::weights_store(&path);
        self.net
            .save_into(&mut store)
            .map_err(|e| err(e.to_string()))?;
        cosmodiff_nn::checkpoint::make_readable(&path).map_err(|e| err(e.to_string()))?;
        let json = serde_json::to_string_pretty(&self.config).expect("config serialises");
        std::fs::write(dir.join(CONFIG), json).map_err(|e| err(e.to_string()))?;
        Ok(())
    }

    /// Build from the contents of a model directory (JSON config, safetensors weights).
    pub fn from_bytes(config_json: &str, weights: &[u8]) -> Result<Self, ScoreError> {
        Self::from_store(
            config_json,
            SafetensorsStore::from_bytes(Some(weights.to_vec())),
            "(in memory)",
        )
    }

    /// Parse and check the configuration, then load the weights into a
    /// network built from it; errors name `origin`.
    fn from_store(
        config_json: &str,
        mut store: SafetensorsStore,
        origin: &str,
    ) -> Result<Self, ScoreError> {
        let err = |e: String| ScoreError::Model {
            path: origin.to_string(),
            msg: e,
        };
        let config: ScoreModelConfig =
            serde_json::from_str(config_json).map_err(|e| err(format!("{CONFIG}: {e}")))?;
        // a hand-edited file must give an error, not a panic further on
        config.grid().map_err(|e| err(format!("{CONFIG}: {e}")))?;
        config
            .sde
            .validate()
            .map_err(|e| err(format!("{CONFIG}: {e}")))?;
        config.unet.validate(config.side)?;
        if !(config.data_std > 0.0 && config.data_std.is_finite()) {
            return invalid(format!("{CONFIG}: data_std must be positive"));
        }
        let shells = crate::power::n_shells(config.side);
        if config.radial_power.len() != shells
            || config
                .radial_power
                .iter()
                .any(|p| !(p.is_finite() && *p >= 0.0))
        {
            return invalid(format!(
                "{CONFIG}: radial_power must have {shells} finite values >= 0 for {}x{} maps (has {})",
                config.side,
                config.side,
                config.radial_power.len()
            ));
        }
        let mut net = config.unet.init(&default_device());
        net.load_from(&mut store).map_err(|e| {
            err(format!(
                "{WEIGHTS} does not match the network of {CONFIG}: {}",
                cosmodiff_nn::checkpoint::load_error_line(&e)
            ))
        })?;
        Self::from_parts(config, net)
    }

    /// The default prior shipped with cosmodiff (compiled into the binary):
    /// 64x64 log-normal convergence maps with 2-arcmin pixels (Planck 2015,
    /// LSST-like sources), trained with `examples/prior.toml`.
    pub fn default_model() -> Result<Self, ScoreError> {
        Self::from_bytes(
            include_str!("../models/lognormal64/score_model.json"),
            include_bytes!("../models/lognormal64/weights.safetensors"),
        )
    }

    /// Load a model directory written by [`save`](Self::save).
    pub fn load(dir: &Path) -> Result<Self, ScoreError> {
        let text = std::fs::read_to_string(dir.join(CONFIG)).map_err(|e| ScoreError::Model {
            path: dir.display().to_string(),
            msg: format!("cannot read {CONFIG}: {e}"),
        })?;
        Self::from_store(
            &text,
            SafetensorsStore::from_file(dir.join(WEIGHTS)),
            &dir.display().to_string(),
        )
    }
}

impl MapScore for ScoreModel {
    fn side(&self) -> usize {
        self.config.side
    }
    fn score(&self, maps: &[Vec<f64>], sigma: f64) -> cosmodiff_lensing::Result<Vec<Vec<f64>>> {
        let d = self.config.data_std;
        let np = self.config.side * self.config.side;
        if !(sigma > 0.0 && sigma.is_finite()) {
            return Err(LensingError::Value {
                what: "noise level".into(),
                msg: format!("sigma must be > 0, got {sigma}"),
            });
        }
        if let Some(m) = maps.iter().find(|m| m.len() != np) {
            return Err(LensingError::Value {
                what: "map".into(),
                msg: format!("{} pixels, the prior expects {np}", m.len()),
            });
        }
        let xn: Vec<Vec<f64>> = maps
            .iter()
            .map(|m| m.iter().map(|v| v / d).collect())
            .collect();
        let s = self
            .score_normalised(&xn, sigma / d)
            .map_err(|e| LensingError::Value {
                what: "score model".into(),
                msg: e.to_string(),
            })?;
        Ok(s.into_iter()
            .map(|m| m.into_iter().map(|v| v / d).collect())
            .collect())
    }
}
