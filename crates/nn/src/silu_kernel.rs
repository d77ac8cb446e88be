//! SiLU, `y = x sigmoid(x)` (Elfwing et al. 2018), as one fused CPU kernel
//! with a hand-written backward pass, `g_x = g_y [s + x s (1 - s)]`,
//! `s = sigmoid(x)`.
//!
//! burn's `flex` backend evaluates SiLU as a chain of element-wise
//! operations with a scalar `expf` each; in the graph network and the
//! ResNet encoder that was a third of inference time (perf, `nn bench`).
//! Here: one vectorised pass with the branch-free `exp_f32` of `cpu.rs`,
//! split over the kernel threads. Registered for `flex` and its autodiff
//! wrapper; [`silu`] uses burn's own elsewhere.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::Autodiff;
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Backend, Dispatch, Flex, TensorMetadata};
use burn::tensor::Tensor;

use crate::cpu::{f32_tensor, f32_values, flex_device, par_rows, sigmoid};

/// Fused SiLU, differentiable in `x`.
#[backend_extension(Flex, Autodiff)]
pub trait SiluOps: Backend {
    /// Element-wise `x sigmoid(x)`.
    fn fused_silu(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// The backward kernel.
#[backend_extension(Flex)]
pub trait SiluKernels: Backend {
    /// `grad * silu'(x)`, element-wise.
    fn fused_silu_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// `x sigmoid(x)`: the fused kernel on the CPU backend, burn's elsewhere.
pub fn silu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if flex_device(&x.device()).is_none() {
        return burn::tensor::activation::silu(x);
    }
    Tensor::from_dispatch(Dispatch::fused_silu(x.into_dispatch()))
}

/// Elements per parallel part (below it one thread does the whole tensor).
const MIN_PART: usize = 1 << 14;

/// `silu(x)`, split over the kernel threads; zipped slices (no indexing)
/// so the loops vectorise.
fn forward(x: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0f32; x.len()];
    par_rows(&mut out, 1, MIN_PART, |rows, part| {
        for (o, &v) in part.iter_mut().zip(&x[rows]) {
            *o = v * sigmoid(v);
        }
    });
    out
}

/// `g silu'(x)`, as [`forward`].
fn backward(x: &[f32], g: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0f32; x.len()];
    par_rows(&mut out, 1, MIN_PART, |rows, part| {
        for ((o, &v), &gv) in part.iter_mut().zip(&x[rows.clone()]).zip(&g[rows]) {
            let s = sigmoid(v);
            *o = gv * (s + v * s * (1.0 - s));
        }
    });
    out
}

impl SiluOps for Flex {
    fn fused_silu(x: FlexTensor) -> FlexTensor {
        let (shape, dtype) = (x.shape(), x.dtype());
        f32_tensor(forward(&f32_values(&x)), shape, dtype)
    }
}

impl SiluKernels for Flex {
    fn fused_silu_backward(x: FlexTensor, grad: FlexTensor) -> FlexTensor {
        let (shape, dtype) = (x.shape(), x.dtype());
        let out = backward(&f32_values(&x), &f32_values(&grad));
        f32_tensor(out, shape, dtype)
    }
}

#[derive(Debug)]
struct SiluBackward;

impl<B: Backend + SiluKernels> Backward<B, 1> for SiluBackward {
    /// The input `x`.
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        if let [Some(parent)] = ops.parents {
            grads.register::<B>(parent.id, B::fused_silu_backward(ops.state, grad));
        }
    }
}

impl<B: Backend + SiluOps + SiluKernels, C: CheckpointStrategy> SiluOps for Autodiff<B, C> {
    fn fused_silu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let (x, node) = x.into_parts();
        match SiluBackward.prepare::<C>([node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let out = B::fused_silu(x.clone());
                prep.finish(x, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fused_silu(x)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::silu;
    use crate::tensor::to_vec;
    use burn::tensor::{Device, Distribution, Tensor};

    #[test]
    fn fused_matches_burn_in_values_and_gradients() {
        let dev = Device::flex().autodiff();
        // more elements than one part, values across the saturation range
        let x0 = Tensor::<2>::random([300, 257], Distribution::Uniform(-12.0, 12.0), &dev);
        let w = Tensor::<2>::random([300, 257], Distribution::Default, &dev);
        let x = x0.clone().require_grad();
        let ours = silu(x.clone());
        let gx = x
            .grad(&(ours.clone() * w.clone()).sum().backward())
            .unwrap();
        let x = x0.require_grad();
        let theirs = burn::tensor::activation::silu(x.clone());
        let gt = x.grad(&(theirs.clone() * w).sum().backward()).unwrap();
        for (a, b) in to_vec(ours).iter().zip(to_vec(theirs)) {
            assert!((a - b).abs() < 2e-6 * (1.0 + b.abs()), "{a} vs {b}");
        }
        for (a, b) in to_vec(gx).iter().zip(to_vec(gt)) {
            assert!((a - b).abs() < 2e-6 * (1.0 + b.abs()), "grad {a} vs {b}");
        }
    }
}
