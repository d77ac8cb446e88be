//! Neural posterior estimation (NPE, Papamakarios & Murray 2016; Greenberg
//! et al. 2019) and neural likelihood estimation (NLE, Papamakarios et al.
//! 2019) from simulated pairs `(theta_i, x_i)`, `theta_i ~ p(theta)`.
//!
//! - NPE fits `q(theta | f(x))` by minimising `-mean log q(theta_i | f(x_i))`
//!   (amortised: any observation afterwards); samples outside the prior's
//!   support are rejected ("leakage"). With an embedding network `f`, this is
//!   also variational mutual-information maximisation (VMIM, Jeffrey et al.
//!   2021): maximising `E log q(theta | f(x))` is a lower bound on
//!   `I(theta; f(x))`, so `f(x)` are learned, reusable summaries.
//! - NLE fits `q(x | theta)`; the posterior `q(x_o | theta) p(theta)` is
//!   sampled by vectorised slice sampling started by SIR from the prior.

use std::path::Path;
use std::time::Instant;

use cosmodiff_nn::{
    ConditionalEstimator, EmbeddingConfig, EmbeddingKind, FlowConfig, FlowKind, LrSchedule,
    TrainConfig, TrainReport,
};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewD, Axis};
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::error::{invalid, SbiError};
use crate::mcmc::{sir_init, slice_sample_batched, SliceSettings};
use crate::prior::SbiPrior;

/// Which density the network learns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Posterior `q(theta | x)`.
    Npe,
    /// Likelihood `q(x | theta)`.
    Nle,
}

impl Method {
    pub fn parse(s: &str) -> Result<Self, SbiError> {
        match s {
            "npe" => Ok(Self::Npe),
            "nle" => Ok(Self::Nle),
            _ => invalid(format!("unknown method '{s}': expected npe or nle")),
        }
    }
    pub fn name(&self) -> &'static str {
        match self {
            Self::Npe => "npe",
            Self::Nle => "nle",
        }
    }
}

/// Network and training choices (defaults: sbi's / sbibm's).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SbiOptions {
    pub method: Method,
    pub flow: FlowKind,
    pub embedding: EmbeddingKind,
    /// Number of learned summaries for `mlp` / `cnn` / `resnet` embeddings.
    pub summary_dim: Option<usize>,
    /// Width of the embedding network (MLP hidden units, ResNet channels
    /// of the first stage); `None`: the embedding's default.
    #[serde(default)]
    pub embedding_width: Option<usize>,
    /// Map channels of a convolutional embedding (`x` holds `channels` maps
    /// one after the other); `None`: one.
    #[serde(default)]
    pub map_channels: Option<usize>,
    pub num_transforms: usize,
    pub hidden: usize,
    pub bins: usize,
    pub train: TrainConfig,
    /// NLE posterior sampler.
    pub mcmc_chains: usize,
    pub mcmc_warmup: usize,
    pub mcmc_thin: usize,
}

impl SbiOptions {
    pub fn new(method: Method) -> Self {
        Self {
            method,
            flow: match method {
                Method::Npe => FlowKind::Nsf,
                Method::Nle => FlowKind::Maf,
            },
            embedding: EmbeddingKind::Identity,
            summary_dim: None,
            embedding_width: None,
            map_channels: None,
            num_transforms: 5,
            hidden: 50,
            bins: 10,
            train: TrainConfig::default(),
            mcmc_chains: 100,
            mcmc_warmup: 100,
            mcmc_thin: 10,
        }
    }

    /// The method's defaults with the choices a user names (the flags of
    /// `cosmodiff sbi train`, the keywords of `cosmodiff.sbi_train`): flow
    /// family and embedding by name (`None`: the method's default), spline
    /// bins (spline flows only) and cosine learning-rate decay to 1%.
    pub fn from_names(
        method: Method,
        flow: Option<&str>,
        embedding: Option<&str>,
        bins: Option<usize>,
        cosine: bool,
    ) -> Result<Self, SbiError> {
        let mut o = Self::new(method);
        if let Some(f) = flow {
            o.flow = FlowKind::parse(f)?;
        }
        if let Some(e) = embedding {
            o.embedding = EmbeddingKind::parse(e)?;
        }
        if let Some(b) = bins {
            if !o.flow.has_splines() {
                return invalid(format!(
                    "bins applies to spline flows (nsf, nsf_ar), not {}",
                    o.flow.name()
                ));
            }
            o.bins = b;
        }
        if cosine {
            o.train.schedule = LrSchedule::Cosine {
                final_fraction: 0.01,
            };
        }
        Ok(o)
    }
}

/// Diagnostics of one posterior sampling run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SampleInfo {
    /// NPE: fraction of flow draws inside the prior support.
    pub acceptance: f64,
    pub seconds: f64,
}

/// What is stored in `MODEL_DIR/sbi.json` besides the estimator.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelMeta {
    /// Layout version of `sbi.json` (files without it are version 1).
    #[serde(default = "cosmodiff_nn::checkpoint::format_v1")]
    format_version: u32,
    method: Method,
    prior: SbiPrior,
    dim_theta: usize,
    dim_x: usize,
    options: SbiOptions,
    report: TrainReport,
}

/// The `format_version` written into `sbi.json`.
const SBI_FORMAT: u32 = 1;

/// A trained NPE or NLE model with its prior.
pub struct SbiModel {
    pub method: Method,
    pub prior: SbiPrior,
    pub estimator: ConditionalEstimator,
    pub options: SbiOptions,
    pub report: TrainReport,
    pub dim_x: usize,
}

impl SbiModel {
    /// Train on simulations `theta` `[n, dim_theta]`, `x` `[n, dim_x]`.
    pub fn train(
        theta: ArrayView2<f64>,
        x: ArrayView2<f64>,
        prior: SbiPrior,
        opts: &SbiOptions,
    ) -> Result<Self, SbiError> {
        if theta.nrows() != x.nrows() {
            return invalid(format!(
                "theta has {} rows but x has {}",
                theta.nrows(),
                x.nrows()
            ));
        }
        if theta.nrows() < 10 {
            return invalid(format!(
                "{} simulations are too few to train on (need at least 10)",
                theta.nrows()
            ));
        }
        prior.check_dim(theta.ncols(), "theta")?;
        let outside = theta
            .outer_iter()
            .filter(|t| !prior.contains(t.view()))
            .count();
        if outside > 0 {
            return invalid(format!(
                "{outside} rows of theta lie outside the prior's support"
            ));
        }
        let (y, c) = match opts.method {
            Method::Npe => (theta, x),
            Method::Nle => (x, theta),
        };
        if opts.method == Method::Nle && opts.embedding != EmbeddingKind::Identity {
            return invalid("embedding networks apply to NPE only (NLE models x itself)");
        }
        let mut flow = FlowConfig::new(opts.flow, y.ncols(), 0);
        flow.num_transforms = opts.num_transforms;
        flow.hidden = opts.hidden;
        flow.bins = opts.bins;
        flow.seed = opts.train.seed;
        let mut emb = EmbeddingConfig::new(opts.embedding, c.ncols());
        if let Some(d) = opts.summary_dim {
            if opts.embedding == EmbeddingKind::Identity {
                return invalid(
                    "a summary dimension needs an embedding network (mlp, cnn or resnet); without one x is used as it is",
                );
            }
            if d == 0 {
                return invalid("summary dimension must be at least 1");
            }
            emb.output_dim = d;
        }
        if let Some(w) = opts.embedding_width {
            emb.hidden = w;
        }
        if let Some(c) = opts.map_channels {
            emb.channels = c;
        }
        let (estimator, report) = ConditionalEstimator::fit(y, c, flow, emb, opts.train.clone())?;
        Ok(Self {
            method: opts.method,
            prior,
            estimator,
            options: opts.clone(),
            report,
            dim_x: x.ncols(),
        })
    }

    pub fn dim_theta(&self) -> usize {
        self.prior.dim()
    }

    /// Learned summaries `f(x)` of an NPE model with an embedding network.
    pub fn summaries(&self, x: ArrayView2<f64>) -> Result<Array2<f64>, SbiError> {
        if self.method != Method::Npe {
            return invalid("summaries exist for NPE models only");
        }
        Ok(self.estimator.summaries(x)?)
    }

    /// One observation from an array: `[dim_x]`, `[1, dim_x]`, or any shape
    /// holding `dim_x` values (a CNN model's `[side, side]` map).
    pub fn observation(&self, x: ArrayViewD<f64>, what: &str) -> Result<Array1<f64>, SbiError> {
        let mut xo = crate::arrays::rows(x, what, true)?;
        if xo.nrows() > 1 && xo.len() == self.dim_x {
            xo = xo
                .into_shape_with_order((1, self.dim_x))
                .expect("dim_x values");
        }
        if xo.nrows() != 1 {
            return invalid(format!(
                "{what} must hold one observation ([dim_x] or [1, dim_x]); got {} rows",
                xo.nrows()
            ));
        }
        Ok(xo.row(0).to_owned())
    }

    /// `n` posterior draws `[n, dim_theta]` for one observation.
    pub fn sample(
        &self,
        x_obs: ArrayView1<f64>,
        n: usize,
        seed: u64,
    ) -> Result<(Array2<f64>, SampleInfo), SbiError> {
        if x_obs.len() != self.dim_x {
            return invalid(format!(
                "the observation has {} values, the model was trained on {}",
                x_obs.len(),
                self.dim_x
            ));
        }
        if x_obs.iter().any(|v| !v.is_finite()) {
            return invalid("the observation contains non-finite values");
        }
        if n == 0 {
            return invalid("number of samples must be at least 1");
        }
        let t0 = Instant::now();
        let (s, acc) = match self.method {
            Method::Npe => self.sample_npe(x_obs, n, seed)?,
            Method::Nle => (self.sample_nle(x_obs, n, seed)?, 1.0),
        };
        Ok((
            s,
            SampleInfo {
                acceptance: acc,
                seconds: t0.elapsed().as_secs_f64(),
            },
        ))
    }

    fn sample_npe(
        &self,
        x_obs: ArrayView1<f64>,
        n: usize,
        seed: u64,
    ) -> Result<(Array2<f64>, f64), SbiError> {
        let d = self.dim_theta();
        let mut out = Array2::zeros((n, d));
        let (mut got, mut drawn) = (0usize, 0usize);
        let mut round = 0u64;
        while got < n {
            let want = ((n - got) as f64 * 1.2).ceil() as usize + 16;
            let draws = self.estimator.sample(
                x_obs,
                want,
                seed.wrapping_add(round.wrapping_mul(0x9e37_79b9)),
            )?;
            for row in draws.outer_iter() {
                if got == n {
                    break;
                }
                drawn += 1;
                if self.prior.contains(row) {
                    out.row_mut(got).assign(&row);
                    got += 1;
                }
            }
            round += 1;
            let acc = got as f64 / drawn as f64;
            if drawn > 1000 && acc < 1e-3 {
                return invalid(format!(
                    "only {got} of {drawn} posterior draws fall inside the prior: the estimator leaks out of the prior support (is the observation far from the simulations?)"
                ));
            }
        }
        Ok((out, got as f64 / drawn as f64))
    }

    /// `log q(x_o | theta) + log p(theta)` for a batch of parameters.
    pub fn nle_log_posterior(
        &self,
        x_obs: ArrayView1<f64>,
        theta: ArrayView2<f64>,
    ) -> Result<Vec<f64>, SbiError> {
        let lp: Vec<f64> = theta.outer_iter().map(|t| self.prior.log_prob(t)).collect();
        let inside: Vec<usize> = (0..theta.nrows()).filter(|&i| lp[i].is_finite()).collect();
        let mut out = vec![f64::NEG_INFINITY; theta.nrows()];
        if inside.is_empty() {
            return Ok(out);
        }
        let th = theta.select(Axis(0), &inside);
        let xo = x_obs.insert_axis(Axis(0));
        let xs = xo
            .broadcast((inside.len(), x_obs.len()))
            .expect("broadcast")
            .to_owned();
        let ll = self.estimator.log_prob(xs.view(), th.view())?;
        for (k, &i) in inside.iter().enumerate() {
            out[i] = ll[k] + lp[i];
        }
        Ok(out)
    }

    fn sample_nle(
        &self,
        x_obs: ArrayView1<f64>,
        n: usize,
        seed: u64,
    ) -> Result<Array2<f64>, SbiError> {
        let o = &self.options;
        let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(seed);
        let cand = self.prior.sample(100 * o.mcmc_chains, &mut rng);
        let lw = self.nle_log_posterior(x_obs, cand.view())?;
        // SIR weights: likelihood only (the candidates are prior draws).
        let lw: Vec<f64> = lw
            .iter()
            .zip(cand.outer_iter())
            .map(|(l, t)| l - self.prior.log_prob(t))
            .collect();
        let init = sir_init(cand.view(), &lw, o.mcmc_chains, &mut rng);
        let spread = {
            let sd = cand.std_axis(Axis(0), 0.0);
            sd.iter().cloned().fold(f64::INFINITY, f64::min).max(1e-6)
        };
        let settings = SliceSettings {
            chains: o.mcmc_chains,
            warmup: o.mcmc_warmup,
            thin: o.mcmc_thin,
            width: 0.1 * spread,
            max_steps_out: 20,
            seed: seed.wrapping_add(1),
        };
        let err = std::cell::RefCell::new(None);
        let draws = slice_sample_batched(
            |t| match self.nle_log_posterior(x_obs, t) {
                Ok(v) => v,
                Err(e) => {
                    *err.borrow_mut() = Some(e);
                    vec![f64::NEG_INFINITY; t.nrows()]
                }
            },
            init.view(),
            n,
            &settings,
        );
        if let Some(e) = err.into_inner() {
            return Err(e);
        }
        Ok(draws)
    }

    /// Write the model to `dir`: `weights.safetensors`, `estimator.json`
    /// (architecture + standardisation) and `sbi.json` (method, prior,
    /// options, training report).
    pub fn save(&self, dir: &Path) -> Result<(), SbiError> {
        if dir.as_os_str().is_empty() {
            return invalid("the model directory path is empty");
        }
        self.estimator.save(dir)?;
        let meta = ModelMeta {
            format_version: SBI_FORMAT,
            method: self.method,
            prior: self.prior.clone(),
            dim_theta: self.dim_theta(),
            dim_x: self.dim_x,
            options: self.options.clone(),
            report: self.report.clone(),
        };
        std::fs::write(
            dir.join("sbi.json"),
            serde_json::to_string_pretty(&meta).expect("serialisable"),
        )?;
        Ok(())
    }

    pub fn load(dir: &Path) -> Result<Self, SbiError> {
        let p = dir.join("sbi.json");
        let text = std::fs::read_to_string(&p).map_err(|e| SbiError::File {
            path: p.display().to_string(),
            msg: format!("{e} (is this a model directory written by `cosmodiff sbi train`?)"),
        })?;
        let meta: ModelMeta = serde_json::from_str(&text).map_err(|e| SbiError::File {
            path: p.display().to_string(),
            msg: e.to_string(),
        })?;
        // a hand-edited file must give an error, not a panic or a hang later
        meta.prior.validate()?;
        if meta.prior.dim() != meta.dim_theta {
            return invalid(format!(
                "{}: the prior has {} parameters but dim_theta = {}",
                p.display(),
                meta.prior.dim(),
                meta.dim_theta
            ));
        }
        let o = &meta.options;
        if o.mcmc_chains == 0 || o.mcmc_thin == 0 || o.mcmc_warmup > 1_000_000 {
            return invalid(format!(
                "{}: need mcmc_chains >= 1, mcmc_thin >= 1 and mcmc_warmup <= 1000000",
                p.display()
            ));
        }
        if let Err(m) =
            cosmodiff_nn::checkpoint::check_format_version(meta.format_version, SBI_FORMAT)
        {
            return invalid(format!("{}: {m}", p.display()));
        }
        if meta.options.method != meta.method {
            return invalid(format!(
                "{}: method = {} but the model was trained with options.method = {}: the file was edited",
                p.display(),
                meta.method.name(),
                meta.options.method.name()
            ));
        }
        let estimator = ConditionalEstimator::load(dir)?;
        // The networks must be those of the method: NPE models theta given
        // x, NLE x given theta (a hand-edited `method` is caught here
        // unless dim_theta = dim_x).
        let (y, c) = match meta.method {
            Method::Npe => (meta.dim_theta, meta.dim_x),
            Method::Nle => (meta.dim_x, meta.dim_theta),
        };
        let ec = &estimator.config;
        if ec.flow.dim != y || ec.embedding.input_dim != c {
            return invalid(format!(
                "{}: method = {} with dim_theta = {}, dim_x = {} needs a flow over {y} dimensions given {c}, but estimator.json has {} given {}",
                p.display(),
                meta.method.name(),
                meta.dim_theta,
                meta.dim_x,
                ec.flow.dim,
                ec.embedding.input_dim
            ));
        }
        Ok(Self {
            method: meta.method,
            prior: meta.prior,
            estimator,
            options: meta.options,
            report: meta.report,
            dim_x: meta.dim_x,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_from_names_apply_defaults_and_refuse_mismatches() {
        let o = SbiOptions::from_names(Method::Nle, None, None, None, false).unwrap();
        assert_eq!(
            (o.flow, o.embedding),
            (FlowKind::Maf, EmbeddingKind::Identity)
        );
        assert_eq!(o.train.schedule, LrSchedule::Constant);
        let o = SbiOptions::from_names(Method::Npe, Some("nsf_ar"), Some("mlp"), Some(7), true)
            .unwrap();
        assert_eq!(
            (o.flow, o.embedding, o.bins),
            (FlowKind::NsfAr, EmbeddingKind::Mlp, 7)
        );
        assert_eq!(
            o.train.schedule,
            LrSchedule::Cosine {
                final_fraction: 0.01
            }
        );
        let e = SbiOptions::from_names(Method::Npe, Some("maf"), None, Some(7), false);
        assert!(e
            .unwrap_err()
            .to_string()
            .contains("bins applies to spline flows"));
        assert!(SbiOptions::from_names(Method::Npe, Some("glow"), None, None, false).is_err());
        assert!(
            SbiOptions::from_names(Method::Npe, None, Some("transformer"), None, false).is_err()
        );
    }
}
