//! Adam (Kingma & Ba 2015) with the update of each parameter tensor as one
//! fused CPU kernel.
//!
//! Per parameter and step `t` (burn's and PyTorch's form of the bias
//! correction):
//!
//! ```text
//! m <- b1 m + (1 - b1) g,   v <- b2 v + (1 - b2) g^2,
//! theta <- theta - lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps sqrt(1 - b2^t))
//! ```
//!
//! burn's `Adam` spends ~10 tensor operations per parameter tensor on this,
//! which for the ~60 small tensors of a flow is ~10% of a training step on
//! the CPU; here it is one call per tensor. The state is burn's
//! [`AdamState`], so checkpoints and the arithmetic are burn's. On any
//! backend other than `flex` the step is burn's `Adam`.

use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Backend, Dispatch, Flex};
use burn::optim::{Adam, AdamConfig, AdamState, AdaptiveMomentumState, LearningRate, Optimizer};
use burn::tensor::{Device, Shape, Tensor};

use crate::cpu::{f32_tensor, f32_values, flex_device};

/// The fused update.
#[backend_extension(Flex)]
pub trait AdamOps: Backend {
    /// `param`, `grad`, `m`, `v` of equal shape -> the flat `[3 N]`
    /// concatenation of the new `param`, `m`, `v`.
    #[allow(clippy::too_many_arguments)]
    fn adam_update(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        m: FloatTensor<Self>,
        v: FloatTensor<Self>,
        lr: f64,
        beta_1: f64,
        beta_2: f64,
        epsilon: f64,
        time: usize,
    ) -> FloatTensor<Self>;
}

impl AdamOps for Flex {
    fn adam_update(
        param: FlexTensor,
        grad: FlexTensor,
        m: FlexTensor,
        v: FlexTensor,
        lr: f64,
        beta_1: f64,
        beta_2: f64,
        epsilon: f64,
        time: usize,
    ) -> FlexTensor {
        let dtype = param.dtype();
        let (p, g, m, v) = (
            f32_values(&param),
            f32_values(&grad),
            f32_values(&m),
            f32_values(&v),
        );
        let n = p.len();
        let t = time as i32;
        let bc2 = (1.0 - beta_2.powi(t)).sqrt();
        let step = (lr * bc2 / (1.0 - beta_1.powi(t))) as f32;
        let eps = (epsilon * bc2) as f32;
        let (b1, b2) = (beta_1 as f32, beta_2 as f32);
        let mut out = vec![0.0f32; 3 * n];
        let (po, rest) = out.split_at_mut(n);
        let (mo, vo) = rest.split_at_mut(n);
        for i in 0..n {
            let mi = b1 * m[i] + (1.0 - b1) * g[i];
            let vi = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
            po[i] = p[i] - step * mi / (vi.sqrt() + eps);
            mo[i] = mi;
            vo[i] = vi;
        }
        f32_tensor(out, Shape::from([3 * n]), dtype)
    }
}

/// Adam (no weight decay, no AMSGrad) with the fused update on the CPU
/// (`flex`) backend.
#[derive(Clone)]
pub struct FusedAdam {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    fallback: Adam,
}

impl FusedAdam {
    pub fn new(beta_1: f32, beta_2: f32, epsilon: f32) -> Self {
        Self {
            beta_1,
            beta_2,
            epsilon,
            fallback: AdamConfig::new()
                .with_beta_1(beta_1)
                .with_beta_2(beta_2)
                .with_epsilon(epsilon)
                .build(),
        }
    }
}

impl Optimizer for FusedAdam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        if flex_device(&tensor.device()) != Some(false) {
            return self.fallback.step(lr, tensor, grad, state);
        }
        let shape = tensor.shape();
        let n = shape.num_elements();
        let (m, v, time) = match state {
            Some(s) => (
                s.momentum.moment_1,
                s.momentum.moment_2,
                s.momentum.time + 1,
            ),
            None => (grad.zeros_like(), grad.zeros_like(), 1),
        };
        let out = Tensor::<1>::from_dispatch(Dispatch::adam_update(
            tensor.into_dispatch(),
            grad.into_dispatch(),
            m.into_dispatch(),
            v.into_dispatch(),
            lr,
            self.beta_1 as f64,
            self.beta_2 as f64,
            self.epsilon as f64,
            time,
        ));
        let part = |k: usize| out.clone().narrow(0, k * n, n).reshape(shape.clone());
        let momentum = AdaptiveMomentumState::new(time, part(1), part(2));
        (part(0), Some(AdamState::new(momentum)))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        <Adam as Optimizer>::to_device(state, device)
    }
}

#[cfg(test)]
mod tests {
    use super::FusedAdam;
    use crate::tensor::to_vec;
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
    use burn::tensor::Device;
    use burn::tensor::{Distribution, Tensor};

    /// Five steps of the fused Adam give burn's Adam to f32 rounding.
    #[test]
    fn fused_adam_matches_burn_adam() {
        let dev = Device::flex().autodiff();
        let start = LinearConfig::new(4, 3).init(&dev);
        let x = Tensor::<2>::random([6, 4], Distribution::Normal(0.0, 1.0), &dev);
        let train = |mut optim: ModuleOptimizer| {
            let mut m: Linear = start.clone();
            for _ in 0..5 {
                let g = m.forward(x.clone()).powi_scalar(3).sum().backward();
                let g = GradientsParams::from_grads(g, &m);
                m = optim.step(1e-2, m, g);
            }
            let mut v = to_vec(m.weight.val());
            v.extend(to_vec(m.bias.as_ref().expect("bias").val()));
            v
        };
        let fused = train(ModuleOptimizer::from(FusedAdam::new(0.9, 0.999, 1e-8)));
        let burn = train(AdamConfig::new().with_epsilon(1e-8).init());
        let start: Vec<f64> = to_vec(start.weight.val());
        assert!(
            fused.iter().zip(&start).any(|(a, b)| (a - b).abs() > 1e-3),
            "weights moved"
        );
        for (a, b) in fused.iter().zip(&burn) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }
}
