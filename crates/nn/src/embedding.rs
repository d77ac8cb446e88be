//! Embedding (summary) networks `s = f(x)` applied to the conditioning data
//! before it reaches the flow, trained jointly with it.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, AvgPool2d, AvgPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::conv_kernel::conv2d_same;
use crate::error::{invalid, NnError};
use crate::layers::Mlp;
use crate::unet::ResBlock;

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
    /// Residual convolutional network ([`ResNet`]) for the same maps: the
    /// compressor of field-level implicit inference.
    #[serde(rename = "resnet")]
    ResNet,
}

impl EmbeddingKind {
    /// Whether the network reads square maps (and the data are standardised
    /// with one mean and scale for all pixels).
    pub fn reads_maps(&self) -> bool {
        matches!(self, Self::Cnn | Self::ResNet)
    }

    pub fn parse(s: &str) -> Result<Self, NnError> {
        match s {
            "identity" | "none" => Ok(Self::Identity),
            "mlp" => Ok(Self::Mlp),
            "cnn" => Ok(Self::Cnn),
            "resnet" => Ok(Self::ResNet),
            _ => invalid(format!(
                "unknown embedding '{s}': expected identity, mlp, cnn or resnet"
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
    /// Hidden width (MLP; CNN's dense layer is fixed); for `ResNet`, the
    /// channels of the first stage.
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
            hidden: if kind == EmbeddingKind::ResNet { 8 } else { 50 },
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
                "the convolutional embeddings need square maps of at least 4x4 pixels per channel; {px} values is not a square"
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
            EmbeddingKind::ResNet => {
                let side = self.side()?;
                if self.hidden == 0 || self.hidden > 256 {
                    return invalid(format!(
                        "ResNet width must be in 1..=256, got {}",
                        self.hidden
                    ));
                }
                Some(Embedding::ResNet(ResNet::new(
                    self.channels.max(1),
                    side,
                    self.hidden,
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

/// A residual network for maps (He et al. 2016, pre-activation blocks as in
/// He et al. 2016b), sized for CPUs: the compressor of implicit inference
/// on lensing maps, where sbi_lens uses a ResNet-18 (Zeghal et al. 2024).
///
/// `space-to-depth -> conv3x3 -> Res(w) -> [pool -> Res(w_l)]_{l=1..L} ->
/// SiLU -> global mean -> dense(64), SiLU -> dense(out)`, without
/// normalisation layers: GroupNorm (or any per-map normalisation) would
/// divide out each map's amplitude, the main carrier of sigma8, and left
/// summaries no better than the prior in a first version. Maps wider
/// than 64 pixels are first folded losslessly into channels (each `f x f`
/// pixel block becomes `f^2` channels at `1/f` the side; Shi et al. 2016's
/// pixel unshuffle), which costs `f^2` times less than convolving at full
/// resolution and lets the first convolution see `3f x 3f` pixels. Widths
/// `w_l = w 2^l` (at most `8 w`), 2x2 average pooling until the maps are
/// 8x8 (or 4x4 for smaller inputs), and the residual blocks of the
/// [`crate::unet`] without a noise embedding or norms. The global mean makes the
/// summaries invariant to translations of the map (the fields are
/// statistically homogeneous).
#[derive(Module, Debug)]
pub struct ResNet {
    conv_in: Conv2d,
    blocks: Vec<ResBlock>,
    pool: AvgPool2d,
    dense: Linear,
    out: Linear,
    channels: usize,
    side: usize,
    fold: usize,
}

impl ResNet {
    fn new(channels: usize, side: usize, width: usize, out: usize, device: &Device) -> Self {
        let mut fold = 1;
        while side / fold > 64 && side.is_multiple_of(2 * fold) {
            fold *= 2;
        }
        let s = side / fold;
        // Resolution levels: halve while the map stays at least 8 pixels wide.
        let mut levels = 1;
        while s >> levels >= 8 && s.is_multiple_of(1 << levels) {
            levels += 1;
        }
        let widths: Vec<usize> = (0..levels).map(|l| (width << l).min(8 * width)).collect();
        let blocks = (0..levels)
            .map(|l| {
                let cin = if l == 0 { width } else { widths[l - 1] };
                ResBlock::new(cin, widths[l], None, false, device)
            })
            .collect();
        let last = widths[levels - 1];
        Self {
            conv_in: Conv2dConfig::new([channels * fold * fold, width], [3, 3])
                .with_padding(PaddingConfig2d::Same)
                .init(device),
            blocks,
            pool: AvgPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            dense: LinearConfig::new(last, 64).init(device),
            out: LinearConfig::new(64, out).init(device),
            channels,
            side,
            fold,
        }
    }

    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let [b, _] = x.dims();
        let x = x.reshape([b, self.channels, self.side, self.side]);
        let mut h = conv2d_same(&self.conv_in, space_to_depth(x, self.fold));
        for (l, block) in self.blocks.iter().enumerate() {
            if l > 0 {
                h = self.pool.forward(h);
            }
            h = block.forward(h, None);
        }
        let h = crate::silu_kernel::silu(h);
        let c = h.dims()[1];
        let h = h.mean_dim(3).mean_dim(2).reshape([b, c]);
        self.out
            .forward(crate::silu_kernel::silu(self.dense.forward(h)))
    }
}

/// `[B, C, n, n] -> [B, C f^2, n/f, n/f]`: pixel `(f i + a, f j + b)` of
/// channel `c` becomes pixel `(i, j)` of channel `c f^2 + a f + b`.
pub fn space_to_depth(x: Tensor<4>, f: usize) -> Tensor<4> {
    let [b, c, n, _] = x.dims();
    let s = n / f;
    x.reshape([b, c, s, f, s, f])
        .permute([0, 1, 3, 5, 2, 4])
        .reshape([b, c * f * f, s, s])
}

/// A trainable summary network.
// One per estimator, so the size of the larger variant costs nothing; burn's
// `Module` derive does not see through a `Box`.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Embedding {
    Mlp(Mlp),
    Cnn(Cnn),
    ResNet(ResNet),
}

impl Embedding {
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        match self {
            Embedding::Mlp(m) => m.forward(x),
            Embedding::Cnn(c) => c.forward(x),
            Embedding::ResNet(r) => r.forward(x),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::{default_device, to_vec};
    use burn::tensor::TensorData;

    #[test]
    fn space_to_depth_moves_each_pixel_to_its_channel() {
        let (b, c, n, f) = (2, 3, 8, 4);
        let v: Vec<f32> = (0..b * c * n * n).map(|i| i as f32).collect();
        let x = Tensor::from_data(TensorData::new(v.clone(), [b, c, n, n]), &default_device());
        let y = to_vec(space_to_depth(x, f));
        let s = n / f;
        for (bi, ci, r, col) in (0..b).flat_map(|bi| {
            (0..c).flat_map(move |ci| {
                (0..n).flat_map(move |r| (0..n).map(move |col| (bi, ci, r, col)))
            })
        }) {
            let ch = ci * f * f + (r % f) * f + col % f;
            let out = ((bi * c * f * f + ch) * s + r / f) * s + col / f;
            assert_eq!(y[out], v[((bi * c + ci) * n + r) * n + col] as f64);
        }
    }

    /// A 128-pixel map is folded to 64 pixels (2 x 2 blocks into 4
    /// channels per bin) and pooled 64 -> 32 -> 16 -> 8 (4 levels); the
    /// summaries have the requested size.
    #[test]
    fn resnet_folds_large_maps_and_summarises_to_the_requested_size() {
        let dev = default_device();
        let cfg = EmbeddingConfig {
            channels: 2,
            ..EmbeddingConfig::new(EmbeddingKind::ResNet, 2 * 128 * 128)
        };
        let Some(Embedding::ResNet(net)) = cfg.init(&dev).unwrap() else {
            panic!("a ResNet")
        };
        assert_eq!((net.fold, net.blocks.len()), (2, 4));
        let v: Vec<f32> = (0..3 * 2 * 128 * 128)
            .map(|i| ((i % 977) as f32 * 0.37).sin())
            .collect();
        let y = net.forward(Tensor::from_data(
            TensorData::new(v, [3, 2 * 128 * 128]),
            &dev,
        ));
        assert_eq!(y.dims(), [3, 20]);
        assert!(to_vec(y).iter().all(|v| v.is_finite()));
    }
}
