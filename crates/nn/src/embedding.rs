//! Embedding (summary) networks `s = f(x)` applied to the conditioning data
//! before it reaches the flow, trained jointly with it.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, AvgPool2d, AvgPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{invalid, NnError};
use crate::layers::Mlp;

/// Which summary network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmbeddingKind {
    /// No network: the (standardised) data condition the flow directly.
    Identity,
    /// Fully connected ReLU network.
    Mlp,
    /// Convolutional network for `channels x side x side` maps
    /// (flattened row-major, channel first).
    Cnn,
}

impl EmbeddingKind {
    pub fn parse(s: &str) -> Result<Self, NnError> {
        match s {
            "identity" | "none" => Ok(Self::Identity),
            "mlp" => Ok(Self::Mlp),
            "cnn" => Ok(Self::Cnn),
            _ => invalid(format!(
                "unknown embedding '{s}': expected identity, mlp or cnn"
            )),
        }
    }
}

/// Architecture of an embedding network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingConfig {
    pub kind: EmbeddingKind,
    pub input_dim: usize,
    /// Number of summaries (ignored for `Identity`).
    pub output_dim: usize,
    pub hidden: usize,
    pub layers: usize,
    /// Map channels for `Cnn` (`input_dim = channels * side^2`).
    pub channels: usize,
}

impl EmbeddingConfig {
    pub fn new(kind: EmbeddingKind, input_dim: usize) -> Self {
        let output_dim = match kind {
            EmbeddingKind::Identity => input_dim,
            _ => 20.min(input_dim.max(2)),
        };
        Self {
            kind,
            input_dim,
            output_dim,
            hidden: 50,
            layers: 2,
            channels: 1,
        }
    }

    /// Dimension of the summaries handed to the flow.
    pub fn summary_dim(&self) -> usize {
        match self.kind {
            EmbeddingKind::Identity => self.input_dim,
            _ => self.output_dim,
        }
    }

    /// Side of the square map for `Cnn`.
    pub fn side(&self) -> Result<usize, NnError> {
        let c = self.channels.max(1);
        if !self.input_dim.is_multiple_of(c) {
            return invalid(format!(
                "CNN input of {} values is not {c} channels",
                self.input_dim
            ));
        }
        let px = self.input_dim / c;
        let side = (px as f64).sqrt().round() as usize;
        if side * side != px || side < 4 {
            return invalid(format!(
                "the CNN embedding needs square maps of at least 4x4 pixels per channel; {px} values is not a square"
            ));
        }
        Ok(side)
    }

    pub fn init(&self, device: &Device) -> Result<Option<Embedding>, NnError> {
        if self.input_dim == 0 {
            return invalid("embedding input dimension must be at least 1");
        }
        Ok(match self.kind {
            EmbeddingKind::Identity => None,
            EmbeddingKind::Mlp => Some(Embedding::Mlp(Mlp::new(
                self.input_dim,
                self.output_dim,
                self.hidden,
                self.layers,
                device,
            ))),
            EmbeddingKind::Cnn => {
                let side = self.side()?;
                Some(Embedding::Cnn(Cnn::new(
                    self.channels.max(1),
                    side,
                    self.output_dim,
                    device,
                )))
            }
        })
    }
}

/// Two convolution blocks (3x3, ReLU, 2x2 average pooling), adaptive
/// average pooling to 4x4, then a dense layer.
#[derive(Module, Debug)]
pub struct Cnn {
    conv1: Conv2d,
    pool: AvgPool2d,
    conv2: Conv2d,
    adaptive: AdaptiveAvgPool2d,
    dense: Linear,
    out: Linear,
    channels: usize,
    side: usize,
}

impl Cnn {
    fn new(channels: usize, side: usize, out: usize, device: &Device) -> Self {
        Self {
            conv1: Conv2dConfig::new([channels, 8], [3, 3])
                .with_padding(PaddingConfig2d::Same)
                .init(device),
            pool: AvgPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            conv2: Conv2dConfig::new([8, 16], [3, 3])
                .with_padding(PaddingConfig2d::Same)
                .init(device),
            adaptive: AdaptiveAvgPool2dConfig::new([4, 4]).init(),
            dense: LinearConfig::new(16 * 16, 64).init(device),
            out: LinearConfig::new(64, out).init(device),
            channels,
            side,
        }
    }

    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let [b, _] = x.dims();
        let h = x.reshape([b, self.channels, self.side, self.side]);
        let h = self.pool.forward(relu(self.conv1.forward(h)));
        let h = self.adaptive.forward(relu(self.conv2.forward(h)));
        let h = relu(self.dense.forward(h.reshape([b, 16 * 16])));
        self.out.forward(h)
    }
}

/// A trainable summary network.
// One per estimator, so the size of the larger variant costs nothing; burn's
// `Module` derive does not see through a `Box`.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Embedding {
    Mlp(Mlp),
    Cnn(Cnn),
}

impl Embedding {
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        match self {
            Embedding::Mlp(m) => m.forward(x),
            Embedding::Cnn(c) => c.forward(x),
        }
    }
}
