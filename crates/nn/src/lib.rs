//! Neural models for cosmodiff on [burn](https://burn.dev) (CPU `flex`
//! backend by default; `wgpu` / `cuda` behind cargo features, chosen at run
//! time by [`device`]).
//!
//! - [`flow`]: conditional normalizing flows `q(y | c)` — RealNVP affine
//!   coupling, MAF, rational-quadratic neural spline flows (coupling and
//!   autoregressive, linear tails), permutations and LU-linear layers;
//!   `log_prob` and sampling for batches.
//! - [`embedding`]: summary networks for the conditioning data (MLP; CNN and
//!   ResNet for 2-D maps), trained jointly with the flow.
//! - [`compressor`]: a summary network trained alone by regression (MSE or
//!   MAE) on the parameters.
//! - [`estimator`]: flow + embedding + standardisation as one conditional
//!   density estimator with `fit`, `log_prob`, `sample`, `save`, `load`.
//! - [`train`]: the shared training loop (Adam/AdamW, schedule, clipping,
//!   validation split with early stopping, progress bar, seeds).
//! - [`unet`]: a noise-conditional U-Net for score / denoising models on maps.
//! - [`checkpoint`]: safetensors weights + JSON configuration.
//! - [`resume`]: checkpoints of a training run in progress, from which an
//!   interrupted run continues to the same weights.
//!
//! Fused CPU kernels, burn backend extensions on `flex` with hand-written
//! backward passes (each tested against burn's composed operations; other
//! backends use the composed operations): [`spline_kernel`] (the
//! rational-quadratic spline), [`residual_kernel`] (the flows' gated
//! residual block), [`conv_kernel`] ("same" convolution), [`norm_kernel`]
//! (GroupNorm + SiLU), [`silu_kernel`] (SiLU alone) and [`adam_kernel`]
//! (the Adam update). The networks
//! here are small enough that on the CPU burn's per-operation overhead, not
//! arithmetic, dominated training; see docs/benchmarks.md. The spline and
//! residual kernels split each batch over the cores with spinning helper
//! threads (`fork.rs`; `COSMODIFF_KERNEL_THREADS` sets their number).

pub mod adam_kernel;
pub mod bench;
pub mod checkpoint;
pub mod compressor;
pub mod conv_kernel;
mod cpu;
pub mod device;
pub mod embedding;
pub mod error;
pub mod estimator;
pub mod flow;
mod fork;
pub mod fourier_kernel;
pub mod graph;
pub mod layers;
pub mod norm_kernel;
pub mod residual_kernel;
pub mod resume;
pub mod silu_kernel;
pub mod spline;
pub mod spline_kernel;
pub mod standardize;
pub mod tensor;
pub mod train;
pub mod trenf;
pub mod unet;

pub use burn;
pub use compressor::{Compressor, RegressionLoss};
pub use device::{default_device, DeviceKind};
pub use embedding::{EmbeddingConfig, EmbeddingKind};
pub use error::NnError;
pub use estimator::{ConditionalEstimator, EstimatorConfig};
pub use flow::{Flow, FlowConfig, FlowKind};
pub use resume::{CheckpointSettings, LossState};
pub use standardize::Standardizer;
pub use train::{fit, fit_with_state, LrSchedule, TrainConfig, TrainReport};
pub use unet::{UNet, UNetConfig};
