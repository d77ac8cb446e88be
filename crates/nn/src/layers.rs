//! Building blocks: dense conditioner networks and MADE (masked autoencoder
//! for distribution estimation, Germain et al. 2015).

use burn::module::{Module, Param};
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::module::linear;
use burn::tensor::{Device, Tensor};

use burn::backend::Dispatch;

use crate::cpu::flex_device;
use crate::residual_kernel::{GatedBlock, GatedResidualOps};
use crate::tensor::const2;

/// Small weights for the last layer of a conditioner so that every
/// transform starts close to the identity (stable early training).
pub(crate) fn near_zero_linear(d_in: usize, d_out: usize, device: &Device) -> Linear {
    LinearConfig::new(d_in, d_out)
        .with_initializer(Initializer::Uniform {
            min: -1e-3,
            max: 1e-3,
        })
        .init(device)
}

/// One residual block: `h + g(c) * W2 relu(W1 relu(h))` with the context
/// gate `g(c) = sigmoid(W_c c)` (a GLU; `g = 1` without context). `W2`
/// starts near zero so the block starts near the identity.
#[derive(Module, Debug)]
pub struct ResidualBlock {
    first: Linear,
    second: Linear,
    gate: Option<Linear>,
}

/// Residual MLP, the conditioner of nflows' coupling layers (Durkan et al.
/// 2019): `h_0 = W_in [x, c]`, `h_{l+1}` = [`ResidualBlock`], `y = W_out h_L`.
#[derive(Module, Debug)]
pub struct ResidualNet {
    input: Linear,
    blocks: Vec<ResidualBlock>,
    output: Linear,
    hidden: usize,
}

impl ResidualNet {
    /// `d_in` inputs, `d_context` context features (0: none), `d_out` outputs.
    pub fn new(
        d_in: usize,
        d_context: usize,
        d_out: usize,
        hidden: usize,
        blocks: usize,
        device: &Device,
    ) -> Self {
        Self {
            input: LinearConfig::new((d_in + d_context).max(1), hidden).init(device),
            blocks: (0..blocks)
                .map(|_| ResidualBlock {
                    first: LinearConfig::new(hidden, hidden).init(device),
                    second: near_zero_linear(hidden, hidden, device),
                    gate: (d_context > 0)
                        .then(|| LinearConfig::new(d_context, hidden).init(device)),
                })
                .collect(),
            output: LinearConfig::new(hidden, d_out).init(device),
            hidden,
        }
    }

    /// Width of the hidden layers.
    pub fn hidden(&self) -> usize {
        self.hidden
    }

    pub fn forward(&self, x: Tensor<2>, context: &Option<Tensor<2>>) -> Tensor<2> {
        let x = match context {
            Some(c) => Tensor::cat(vec![x, c.clone()], 1),
            None => x,
        };
        let mut h = self.input.forward(x);
        for b in &self.blocks {
            h = b.forward(h, context);
        }
        self.output.forward(h)
    }
}

impl ResidualBlock {
    fn forward(&self, h: Tensor<2>, context: &Option<Tensor<2>>) -> Tensor<2> {
        if let (Some(gate), Some(c)) = (&self.gate, context) {
            if let Some(block) = self.fused(&h, c, gate) {
                return Tensor::from_dispatch(Dispatch::gated_residual(block));
            }
        }
        let mut t = self
            .second
            .forward(relu(self.first.forward(relu(h.clone()))));
        if let (Some(g), Some(c)) = (&self.gate, context) {
            t = t * sigmoid(g.forward(c.clone()));
        }
        h + t
    }

    /// The inputs of the fused CPU kernel ([`crate::residual_kernel`]),
    /// when it can run: `flex` backend and biases on all three layers.
    fn fused(&self, h: &Tensor<2>, c: &Tensor<2>, gate: &Linear) -> Option<GatedBlock<Dispatch>> {
        flex_device(&h.device())?;
        let bias = |l: &Linear| l.bias.as_ref().map(|b| b.val().into_dispatch());
        Some(GatedBlock {
            h: h.clone().into_dispatch(),
            c: c.clone().into_dispatch(),
            w1: self.first.weight.val().into_dispatch(),
            b1: bias(&self.first)?,
            w2: self.second.weight.val().into_dispatch(),
            b2: bias(&self.second)?,
            wc: gate.weight.val().into_dispatch(),
            bc: bias(gate)?,
        })
    }
}

/// Plain MLP with ReLU between layers: `[d_in] -> hidden^layers -> [d_out]`.
#[derive(Module, Debug)]
pub struct Mlp {
    layers: Vec<Linear>,
}

impl Mlp {
    pub fn new(d_in: usize, d_out: usize, hidden: usize, layers: usize, device: &Device) -> Self {
        let mut v = Vec::new();
        let mut d = d_in;
        for _ in 0..layers {
            v.push(LinearConfig::new(d, hidden).init(device));
            d = hidden;
        }
        v.push(LinearConfig::new(d, d_out).init(device));
        Self { layers: v }
    }

    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let n = self.layers.len();
        let mut h = x;
        for (i, l) in self.layers.iter().enumerate() {
            h = l.forward(h);
            if i + 1 < n {
                h = relu(h);
            }
        }
        h
    }
}

/// A dense layer whose weight is multiplied elementwise by a fixed 0/1 mask.
#[derive(Module, Debug)]
pub struct MaskedLinear {
    weight: Param<Tensor<2>>,
    bias: Param<Tensor<1>>,
    mask: Tensor<2>,
}

impl MaskedLinear {
    /// `mask[i][o] = 1` when output `o` may see input `i`.
    fn new(mask: Vec<Vec<bool>>, near_zero: bool, device: &Device) -> Self {
        let d_in = mask.len();
        let d_out = mask.first().map_or(0, |r| r.len());
        let lin = if near_zero {
            near_zero_linear(d_in, d_out, device)
        } else {
            LinearConfig::new(d_in, d_out).init(device)
        };
        let m: Vec<f32> = mask
            .iter()
            .flatten()
            .map(|&b| if b { 1.0 } else { 0.0 })
            .collect();
        Self {
            weight: lin.weight,
            bias: lin.bias.expect("bias enabled"),
            mask: const2(m, [d_in, d_out], device),
        }
    }

    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        linear(
            x,
            self.weight.val() * self.mask.clone(),
            Some(self.bias.val()),
        )
    }
}

/// MADE: outputs `n_params` numbers per feature, where the numbers of
/// feature `i` depend only on features `< i` (and on the context).
///
/// Degrees: inputs `1..=D`; hidden unit `k` gets `k mod max(1, D-1) + 1`;
/// a hidden unit sees inputs of degree `<=` its own, an output of feature `i`
/// sees hidden units of degree `< i+1`. Output layout `[param, feature]`.
#[derive(Module, Debug)]
pub struct Made {
    first: MaskedLinear,
    context: Option<Linear>,
    hidden: Vec<MaskedLinear>,
    output: MaskedLinear,
    dim: usize,
    n_params: usize,
}

impl Made {
    pub fn new(
        dim: usize,
        context_dim: usize,
        hidden: usize,
        layers: usize,
        n_params: usize,
        device: &Device,
    ) -> Self {
        let in_deg: Vec<usize> = (1..=dim).collect();
        let h_deg: Vec<usize> = (0..hidden)
            .map(|k| k % dim.saturating_sub(1).max(1) + 1)
            .collect();
        let mask_hidden = |from: &[usize], to: &[usize]| -> Vec<Vec<bool>> {
            from.iter()
                .map(|&a| to.iter().map(|&b| b >= a).collect())
                .collect()
        };
        let out_deg: Vec<usize> = (0..n_params).flat_map(|_| 1..=dim).collect();
        let first = MaskedLinear::new(mask_hidden(&in_deg, &h_deg), false, device);
        let hidden_layers = (1..layers.max(1))
            .map(|_| MaskedLinear::new(mask_hidden(&h_deg, &h_deg), false, device))
            .collect();
        let out_mask = h_deg
            .iter()
            .map(|&a| out_deg.iter().map(|&b| b > a).collect())
            .collect();
        Self {
            first,
            context: (context_dim > 0).then(|| LinearConfig::new(context_dim, hidden).init(device)),
            hidden: hidden_layers,
            output: MaskedLinear::new(out_mask, true, device),
            dim,
            n_params,
        }
    }

    /// `[B, D]` (+ `[B, C]` context) -> `[B, n_params, D]`.
    pub fn forward(&self, x: Tensor<2>, context: Option<Tensor<2>>) -> Tensor<3> {
        let [b, _] = x.dims();
        let mut h = self.first.forward(x);
        if let (Some(l), Some(c)) = (&self.context, context) {
            h = h + l.forward(c);
        }
        h = relu(h);
        for l in &self.hidden {
            h = relu(l.forward(h));
        }
        self.output.forward(h).reshape([b, self.n_params, self.dim])
    }
}
