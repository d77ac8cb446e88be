//! Learned noise schedules of a variational diffusion model (Kingma, Salimans,
//! Poole & Ho 2021, "Variational Diffusion Models", arXiv:2107.00630).
//!
//! **Sign convention** (the VDM paper's and google-research/vdm's): `gamma(t)`
//! is the *negative* log signal-to-noise ratio, increasing from
//! `gamma_0 = gamma(0)` (almost clean) to `gamma_1 = gamma(1)` (almost pure
//! noise):
//!
//! ```text
//! SNR(t) = alpha_t^2 / sigma_t^2 = exp(-gamma(t)),
//! sigma_t^2 = sigmoid(gamma(t)),   alpha_t^2 = sigmoid(-gamma(t)).
//! ```
//!
//! point-cloud-galaxy-diffusion (Cuesta-Lazaro & Mishra-Sharma 2023) flips it
//! (its `gamma` is `+log SNR`, decreasing; its defaults `gamma_min = -8`,
//! `gamma_max = 14` are our `gamma_0 = -14`, `gamma_1 = 8`).
//!
//! Two shapes, both with learnable endpoints:
//! - `linear`: `gamma(t) = gamma_0 + (gamma_1 - gamma_0) t`;
//! - `net`: the monotone network of VDM (appendix H), `g(t) = l1(t) +
//!   l3(phi(l2(2t - 1))) / F` with non-negative weights in `l1`, `l2`, `l3`
//!   (their absolute values), `phi(u) = 2 sigmoid(u) - 1` and `F` features,
//!   rescaled to the endpoints: `gamma(t) = gamma_0 + (gamma_1 - gamma_0)
//!   (g(t) - g(0)) / (g(1) - g(0))`.
//!
//! The expected continuous-time diffusion loss depends on the schedule only
//! through its endpoints (VDM eq. 18; tested in [`crate::vdm`]), so the
//! shape of `net` only changes the variance of the loss estimate. Here every
//! parameter trains on the ELBO, as in point-cloud-galaxy-diffusion; VDM's
//! separate variance-minimising update of the shape is not implemented.
//! `gamma'(t)`, which the continuous loss needs, is computed in closed form
//! (differentiable in the parameters).

use cosmodiff_nn::burn;

use burn::module::{Module, Param};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::error::{invalid, Result};

/// The shape of a schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    /// Linear in `t` between the endpoints.
    Linear,
    /// VDM's monotone network between the endpoints.
    Net,
}

/// Settings of a [`NoiseSchedule`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleConfig {
    /// Shape.
    pub kind: ScheduleKind,
    /// Initial `gamma(0) = -log SNR(0)` (about `sigma_0 = exp(gamma_0 / 2)`
    /// in units of the data scale).
    pub gamma_0: f64,
    /// Initial `gamma(1) = -log SNR(1)`.
    pub gamma_1: f64,
    /// Learn the endpoints (else they stay at the initial values).
    pub learn_endpoints: bool,
    /// Hidden features of the monotone network (`net` only).
    pub features: usize,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            kind: ScheduleKind::Linear,
            gamma_0: -14.0,
            gamma_1: 8.0,
            learn_endpoints: true,
            features: 1024,
        }
    }
}

impl ScheduleConfig {
    /// Check the settings.
    pub fn validate(&self) -> Result<()> {
        if !(self.gamma_0.is_finite() && self.gamma_1.is_finite() && self.gamma_0 < self.gamma_1) {
            return invalid(format!(
                "schedule: gamma_0 < gamma_1 required (finite), got {} and {}",
                self.gamma_0, self.gamma_1
            ));
        }
        if self.kind == ScheduleKind::Net && self.features == 0 {
            return invalid("schedule: features must be at least 1");
        }
        Ok(())
    }
}

/// VDM's monotone network `g(t)` (unnormalised).
#[derive(Module, Debug)]
struct MonotoneNet {
    w1: Param<Tensor<1>>,
    /// `[F]` weights and biases of the hidden layer.
    w2: Param<Tensor<1>>,
    b2: Param<Tensor<1>>,
    w3: Param<Tensor<1>>,
}

impl MonotoneNet {
    fn new(features: usize, device: &Device) -> Self {
        let normal = |n| Tensor::random([n], Distribution::Normal(0.0, 1.0), device);
        Self {
            w1: Param::from_tensor(Tensor::ones([1], device)),
            w2: Param::from_tensor(normal(features)),
            b2: Param::from_tensor(normal(features)),
            w3: Param::from_tensor(normal(features) * 0.1),
        }
    }

    /// `(g(t), g'(t))` for `t` `[n]`.
    fn forward(&self, t: Tensor<1>) -> (Tensor<1>, Tensor<1>) {
        let f = self.w2.dims()[0] as f64;
        let [w1, w2, w3] = [&self.w1, &self.w2, &self.w3].map(|w| w.val().abs());
        let n = t.dims()[0];
        let u = (t.clone() * 2.0 - 1.0).reshape([n, 1]) * w2.clone().unsqueeze_dim(0)
            + self.b2.val().unsqueeze_dim(0);
        let s = sigmoid(u);
        let phi = s.clone() * 2.0 - 1.0;
        // d phi / dt = 2 s (1 - s) * 2 w2
        let dphi = s.clone() * (s.neg() + 1.0) * w2.unsqueeze_dim(0) * 4.0;
        let w3 = w3.reshape([f as usize, 1]);
        let g = t * w1.clone() + phi.matmul(w3.clone()).reshape([n]) / f;
        let dg = w1 + dphi.matmul(w3).reshape([n]) / f;
        (g, dg)
    }
}

/// A noise schedule `gamma(t)` with learnable endpoints.
#[derive(Module, Debug)]
pub struct NoiseSchedule {
    /// `[1]`: `gamma(0)`.
    gamma_0: Param<Tensor<1>>,
    /// `[1]`: `log(gamma(1) - gamma(0))`.
    log_range: Param<Tensor<1>>,
    net: Option<MonotoneNet>,
}

impl NoiseSchedule {
    /// A schedule from its settings (validated).
    pub fn new(cfg: &ScheduleConfig, device: &Device) -> Result<Self> {
        cfg.validate()?;
        let scalar = |v: f64| {
            let p = Param::from_tensor(Tensor::from_data(
                TensorData::new(vec![v as f32], [1]),
                device,
            ));
            if cfg.learn_endpoints {
                p
            } else {
                p.set_require_grad(false)
            }
        };
        Ok(Self {
            gamma_0: scalar(cfg.gamma_0),
            log_range: scalar((cfg.gamma_1 - cfg.gamma_0).ln()),
            net: (cfg.kind == ScheduleKind::Net).then(|| MonotoneNet::new(cfg.features, device)),
        })
    }

    /// The endpoints `(gamma(0), gamma(1))`, each `[1]`.
    pub fn endpoints(&self) -> (Tensor<1>, Tensor<1>) {
        let g0 = self.gamma_0.val();
        (g0.clone(), g0 + self.log_range.val().exp())
    }

    /// `(gamma(t), gamma'(t))` for times `t` `[n]` in `[0, 1]`.
    pub fn forward(&self, t: Tensor<1>) -> (Tensor<1>, Tensor<1>) {
        let n = t.dims()[0];
        let g0 = self.gamma_0.val();
        let range = self.log_range.val().exp();
        match &self.net {
            None => (t * range.clone() + g0, range.expand([n])),
            Some(net) => {
                let ends = Tensor::from_data(TensorData::new(vec![0.0f32, 1.0], [2]), &t.device());
                let (g, dg) = net.forward(Tensor::cat(vec![t, ends], 0));
                let g_t = g.clone().slice(0..n);
                let (g_0, g_1) = (g.clone().slice(n..n + 1), g.slice(n + 1..n + 2));
                let scale = range / (g_1 - g_0.clone());
                ((g_t - g_0) * scale.clone() + g0, dg.slice(0..n) * scale)
            }
        }
    }

    /// `gamma(t)` alone.
    pub fn gamma(&self, t: Tensor<1>) -> Tensor<1> {
        self.forward(t).0
    }
}

/// `sigma^2 = sigmoid(gamma)`.
pub fn sigma2<const D: usize>(gamma: Tensor<D>) -> Tensor<D> {
    sigmoid(gamma)
}

/// `alpha^2 = sigmoid(-gamma)`.
pub fn alpha2<const D: usize>(gamma: Tensor<D>) -> Tensor<D> {
    sigmoid(gamma.neg())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cosmodiff_nn::tensor::{default_device, to_vec};

    fn times(n: usize) -> Tensor<1> {
        let t: Vec<f32> = (0..=n).map(|i| i as f32 / n as f32).collect();
        Tensor::from_data(TensorData::new(t, [n + 1]), &default_device())
    }

    /// Both shapes hit their endpoints, increase, and their closed-form
    /// derivative equals a finite difference.
    #[test]
    fn schedules_are_monotone_between_their_endpoints_with_exact_derivatives() {
        let dev = default_device();
        for kind in [ScheduleKind::Linear, ScheduleKind::Net] {
            let cfg = ScheduleConfig {
                kind,
                features: 64,
                ..Default::default()
            };
            let s = NoiseSchedule::new(&cfg, &dev).unwrap();
            let (g, dg) = s.forward(times(100));
            let (g, dg) = (to_vec(g), to_vec(dg));
            assert!(
                (g[0] + 14.0).abs() < 1e-4 && (g[100] - 8.0).abs() < 1e-4,
                "{kind:?}"
            );
            assert!(g.windows(2).all(|w| w[1] > w[0]), "{kind:?} not increasing");
            for i in 1..100 {
                let fd = (g[i + 1] - g[i - 1]) / 0.02;
                assert!(
                    (fd - dg[i]).abs() < 2e-2 * dg[i].abs().max(1.0),
                    "{kind:?} t {i}"
                );
            }
        }
        let bad = ScheduleConfig {
            gamma_0: 3.0,
            gamma_1: 1.0,
            ..Default::default()
        };
        assert!(NoiseSchedule::new(&bad, &dev).is_err());
    }
}
