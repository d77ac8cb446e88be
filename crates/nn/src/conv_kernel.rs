//! "Same" 2-D convolution (stride 1, odd square kernel, zero padding
//! `k / 2`) as a fused CPU kernel with a hand-written backward pass: the
//! convolutions of the [`crate::unet`].
//!
//! Each map `n` is unrolled into columns (im2col), `col_n[(c, i, j), p] =
//! x[n, c, p + (i, j) - k/2]`, so that with `W` as a `[C_out, C_in k^2]`
//! matrix
//!
//! ```text
//! y_n = W col_n + b,    g_W = sum_n g_{y_n} col_n^T,    g_b = sum_{n, p} g_{y_n},
//! g_{col_n} = W^T g_{y_n},   g_x = col2im(g_{col_n})
//! ```
//!
//! every pass is one matrix product per map (the `gemm` crate, the same one
//! burn's CPU backend uses), parallel over maps. Burn's own CPU convolution
//! spends much of its time outside the matrix products (3-D
//! generalisation, transposed convolution for the input gradient); this
//! kernel doubled the U-Net's training throughput. Registered as a burn
//! backend extension for `flex` (and its autodiff wrapper); [`conv2d_same`]
//! uses burn's `Conv2d::forward` on any other backend or configuration.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::Autodiff;
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Backend, Dispatch, Flex, TensorMetadata};
use burn::nn::conv::Conv2d;
use burn::nn::PaddingConfig2d;
use burn::tensor::{Shape, Tensor};

use crate::cpu::{f32_tensor, f32_values, flex_device, matmul, register_flat_grads, Mat};
use rayon::prelude::*;

/// Fused "same" convolution, differentiable in input, weight and bias.
#[backend_extension(Flex, Autodiff)]
pub trait Conv2dSameOps: Backend {
    /// `x` `[N, C_in, H, W]`, `weight` `[C_out, C_in, k, k]`, `bias`
    /// `[C_out]` -> `[N, C_out, H, W]`.
    fn conv2d_same(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

/// The backward kernel.
#[backend_extension(Flex)]
pub trait Conv2dSameKernels: Backend {
    /// With `grad` `[N, C_out, H, W]`, the flat concatenation of the
    /// gradients in `x`, `weight` and `bias`.
    fn conv2d_same_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

/// `conv.forward(x)`: the fused kernel on the CPU backend for stride-1,
/// undilated, ungrouped convolutions with an odd square kernel, "same"
/// padding and a bias; burn's implementation otherwise.
pub fn conv2d_same(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let on_flex = flex_device(&x.device()).is_some();
    let [kh, kw] = conv.kernel_size;
    let same = matches!(conv.padding, PaddingConfig2d::Same)
        || conv.padding == PaddingConfig2d::Explicit(kh / 2, kw / 2, kh / 2, kw / 2);
    let supported = on_flex
        && kh == kw
        && kh % 2 == 1
        && same
        && conv.stride == [1, 1]
        && conv.dilation == [1, 1]
        && conv.groups == 1;
    match (&conv.bias, supported) {
        (Some(bias), true) => Tensor::from_dispatch(Dispatch::conv2d_same(
            x.into_dispatch(),
            conv.weight.val().into_dispatch(),
            bias.val().into_dispatch(),
        )),
        _ => conv.forward(x),
    }
}

/// Sizes of one call: maps, channels in/out, kernel side, height, width.
#[derive(Clone, Copy)]
struct Dims {
    n: usize,
    cin: usize,
    cout: usize,
    k: usize,
    h: usize,
    w: usize,
}

impl Dims {
    fn new(x: &Shape, weight: &Shape) -> Self {
        Self {
            n: x[0],
            cin: x[1],
            cout: weight[0],
            k: weight[2],
            h: x[2],
            w: x[3],
        }
    }
    fn hw(&self) -> usize {
        self.h * self.w
    }
    /// Rows of the column matrix: `C_in k^2`.
    fn rows(&self) -> usize {
        self.cin * self.k * self.k
    }
}

/// Output rows per tile: about `TILE_PIXELS` pixels, so that a tile's
/// column matrix (`C_in k^2` rows) stays in cache.
const TILE_PIXELS: usize = 512;

fn tiles(d: Dims) -> impl Iterator<Item = (usize, usize)> {
    let rows = (TILE_PIXELS / d.w).clamp(1, d.h);
    (0..d.h)
        .step_by(rows)
        .map(move |y0| (y0, (y0 + rows).min(d.h)))
}

/// Column matrix of output rows `y0..y1`: row `(c, i, j)`, column
/// `(y - y0, x)` holds the input at `(y + i - k/2, x + j - k/2)` in
/// channel `c`, zero outside the map.
#[inline(never)]
fn im2col(xn: &[f32], d: Dims, (y0, y1): (usize, usize), col: &mut [f32]) {
    let (h, w, k, r) = (d.h as isize, d.w as isize, d.k, (d.k / 2) as isize);
    let tw = (y1 - y0) * d.w;
    for c in 0..d.cin {
        let xc = &xn[c * d.hw()..(c + 1) * d.hw()];
        for i in 0..k {
            for j in 0..k {
                let row = &mut col[((c * k + i) * k + j) * tw..][..tw];
                let (dy, dx) = (i as isize - r, j as isize - r);
                // Columns x with 0 <= x + dx < w.
                let lo = (-dx).clamp(0, w) as usize;
                let hi = (w - dx).clamp(0, w) as usize;
                for (t, out) in row.chunks_exact_mut(d.w).enumerate() {
                    let sy = (y0 + t) as isize + dy;
                    if sy < 0 || sy >= h || lo >= hi {
                        out.fill(0.0);
                        continue;
                    }
                    let src = &xc[sy as usize * d.w..][..d.w];
                    out[..lo].fill(0.0);
                    out[hi..].fill(0.0);
                    let s0 = (lo as isize + dx) as usize;
                    out[lo..hi].copy_from_slice(&src[s0..s0 + (hi - lo)]);
                }
            }
        }
    }
}

/// Adjoint of [`im2col`]: accumulate a tile's column matrix into the map.
#[inline(never)]
fn col2im(col: &[f32], d: Dims, (y0, y1): (usize, usize), xn: &mut [f32]) {
    let (h, w, k, r) = (d.h as isize, d.w as isize, d.k, (d.k / 2) as isize);
    let tw = (y1 - y0) * d.w;
    for c in 0..d.cin {
        let xc = &mut xn[c * d.hw()..(c + 1) * d.hw()];
        for i in 0..k {
            for j in 0..k {
                let row = &col[((c * k + i) * k + j) * tw..][..tw];
                let (dy, dx) = (i as isize - r, j as isize - r);
                let lo = (-dx).clamp(0, w) as usize;
                let hi = (w - dx).clamp(0, w) as usize;
                if lo >= hi {
                    continue;
                }
                for (t, src) in row.chunks_exact(d.w).enumerate() {
                    let sy = (y0 + t) as isize + dy;
                    if sy < 0 || sy >= h {
                        continue;
                    }
                    let s0 = (lo as isize + dx) as usize;
                    let dst = &mut xc[sy as usize * d.w + s0..][..hi - lo];
                    dst.iter_mut().zip(&src[lo..hi]).for_each(|(a, b)| *a += b);
                }
            }
        }
    }
}

fn forward(x: &[f32], weight: &[f32], bias: &[f32], d: Dims) -> Vec<f32> {
    let (hw, rows) = (d.hw(), d.rows());
    let tile_len = rows * TILE_PIXELS.max(d.w);
    let mut out = vec![0.0f32; d.n * d.cout * hw];
    out.par_chunks_mut(d.cout * hw)
        .zip(x.par_chunks(d.cin * hw))
        .for_each_init(
            || vec![0.0f32; if d.k == 1 { 0 } else { tile_len }],
            |col, (yn, xn)| {
                for (o, &b) in yn.chunks_mut(hw).zip(bias) {
                    o.fill(b);
                }
                let w = Mat::new(weight, rows);
                if d.k == 1 {
                    matmul(yn, hw, w, Mat::new(xn, hw), (d.cout, hw, rows), true);
                    return;
                }
                for (y0, y1) in tiles(d) {
                    let tw = (y1 - y0) * d.w;
                    im2col(xn, d, (y0, y1), col);
                    let cols = Mat::new(&col[..rows * tw], tw);
                    matmul(&mut yn[y0 * d.w..], hw, w, cols, (d.cout, tw, rows), true);
                }
            },
        );
    out
}

/// Flat `[g_x, g_W, g_b]`.
fn backward(x: &[f32], weight: &[f32], gy: &[f32], d: Dims) -> Vec<f32> {
    let (hw, rows) = (d.hw(), d.rows());
    let tile_len = rows * TILE_PIXELS.max(d.w);
    let nx = d.n * d.cin * hw;
    let nw = d.cout * rows;
    let mut out = vec![0.0f32; nx + nw + d.cout];
    let (gx, gwb) = out.split_at_mut(nx);
    let w = Mat::new(weight, rows);
    // Per map: g_x through col2im; g_W, g_b accumulated per worker.
    let (gw, gb) = gx
        .par_chunks_mut(d.cin * hw)
        .zip(x.par_chunks(d.cin * hw).zip(gy.par_chunks(d.cout * hw)))
        .fold(
            || {
                (
                    vec![0.0f32; tile_len],
                    vec![0.0f32; tile_len],
                    vec![0.0f32; nw],
                    vec![0.0f64; d.cout],
                )
            },
            |(mut col, mut gcol, mut gw, mut gb), (gxn, (xn, gyn))| {
                for (s, g) in gb.iter_mut().zip(gyn.chunks(hw)) {
                    *s += g.iter().map(|&v| v as f64).sum::<f64>();
                }
                if d.k == 1 {
                    // The column matrix is the map itself.
                    let (xm, gym) = (Mat::new(xn, hw), Mat::new(gyn, hw));
                    matmul(&mut gw, rows, gym, xm.t(), (d.cout, rows, hw), true);
                    matmul(gxn, hw, w.t(), gym, (rows, hw, d.cout), false);
                } else {
                    for (y0, y1) in tiles(d) {
                        let tw = (y1 - y0) * d.w;
                        im2col(xn, d, (y0, y1), &mut col);
                        let gyt = Mat::new(&gyn[y0 * d.w..], hw);
                        let cols = Mat::new(&col[..rows * tw], tw);
                        matmul(&mut gw, rows, gyt, cols.t(), (d.cout, rows, tw), true);
                        matmul(&mut gcol, tw, w.t(), gyt, (rows, tw, d.cout), false);
                        col2im(&gcol[..rows * tw], d, (y0, y1), gxn);
                    }
                }
                (col, gcol, gw, gb)
            },
        )
        .map(|(_, _, gw, gb)| (gw, gb))
        .reduce(
            || (vec![0.0f32; nw], vec![0.0f64; d.cout]),
            |(mut a, mut b), (c, e)| {
                a.iter_mut().zip(c).for_each(|(u, v)| *u += v);
                b.iter_mut().zip(e).for_each(|(u, v)| *u += v);
                (a, b)
            },
        );
    gwb[..nw].copy_from_slice(&gw);
    for (o, v) in gwb[nw..].iter_mut().zip(gb) {
        *o = v as f32;
    }
    out
}

impl Conv2dSameOps for Flex {
    fn conv2d_same(x: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
        let d = Dims::new(&x.shape(), &weight.shape());
        let dtype = x.dtype();
        let out = forward(&f32_values(&x), &f32_values(&weight), &f32_values(&bias), d);
        f32_tensor(out, Shape::from([d.n, d.cout, d.h, d.w]), dtype)
    }
}

impl Conv2dSameKernels for Flex {
    fn conv2d_same_backward(x: FlexTensor, weight: FlexTensor, grad: FlexTensor) -> FlexTensor {
        let d = Dims::new(&x.shape(), &weight.shape());
        let dtype = x.dtype();
        let out = backward(&f32_values(&x), &f32_values(&weight), &f32_values(&grad), d);
        let len = out.len();
        f32_tensor(out, Shape::from([len]), dtype)
    }
}

#[derive(Debug)]
struct Conv2dSameBackward;

impl<B: Backend + Conv2dSameKernels> Backward<B, 3> for Conv2dSameBackward {
    /// The input and the weight.
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let (x, weight) = ops.state;
        let (xs, ws) = (x.shape(), weight.shape());
        let bias = Shape::from([ws[0]]);
        let parents = ops.parents.map(|p| p.map(|n| n.id));
        let g = B::conv2d_same_backward(x, weight, grad);
        register_flat_grads::<B, 3>(grads, parents, [xs, ws, bias], g);
    }
}

impl<B: Backend + Conv2dSameOps + Conv2dSameKernels, C: CheckpointStrategy> Conv2dSameOps
    for Autodiff<B, C>
{
    fn conv2d_same(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let (x, nx) = x.into_parts();
        let (weight, nw) = weight.into_parts();
        let (bias, nb) = bias.into_parts();
        match Conv2dSameBackward
            .prepare::<C>([nx, nw, nb])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let out = B::conv2d_same(x.clone(), weight.clone(), bias);
                prep.finish((x, weight), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::conv2d_same(x, weight, bias)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::conv2d_same;
    use crate::cpu::{close, close_to_scale};
    use crate::tensor::to_vec;
    use burn::nn::conv::Conv2dConfig;
    use burn::nn::PaddingConfig2d;
    use burn::tensor::Device;
    use burn::tensor::{Distribution, Tensor};

    /// Values and all three gradients equal burn's convolution, for 3x3,
    /// 5x5 and 1x1 kernels on non-square maps, one of them split into
    /// several row tiles (100 columns: 5 rows per tile).
    #[test]
    fn fused_matches_burn_conv2d() {
        let dev = Device::flex().autodiff();
        for (k, [h, w]) in [(3, [6, 7]), (1, [6, 7]), (3, [9, 100]), (5, [11, 100])] {
            let conv = Conv2dConfig::new([3, 5], [k, k])
                .with_padding(PaddingConfig2d::Same)
                .init(&dev);
            let x = Tensor::<4>::random([2, 3, h, w], Distribution::Normal(0.0, 1.0), &dev);
            let w = Tensor::<4>::random([2, 5, h, w], Distribution::Normal(0.0, 1.0), &dev);
            let run = |fused: bool| {
                let x = x.clone().require_grad();
                let y = if fused {
                    conv2d_same(&conv, x.clone())
                } else {
                    conv.forward(x.clone())
                };
                let g = (y.clone() * w.clone()).sum().backward();
                let bias = conv.bias.as_ref().expect("bias").val();
                (
                    to_vec(y),
                    to_vec(x.grad(&g).expect("x tracked")),
                    to_vec(conv.weight.val().grad(&g).expect("weight tracked")),
                    to_vec(bias.grad(&g).expect("bias tracked")),
                )
            };
            let (y, gx, gw, gb) = run(true);
            let (y0, gx0, gw0, gb0) = run(false);
            assert!(close(&y, &y0, 1e-5), "values, k = {k}");
            assert!(close(&gx, &gx0, 1e-4), "gradient in x, k = {k}");
            // The weight and bias gradients sum 2 x h x w products in f32 in
            // different orders, so they agree relative to their largest entry.
            assert!(
                close_to_scale(&gw, &gw0, 1e-4),
                "gradient in the weight, k = {k}"
            );
            assert!(
                close_to_scale(&gb, &gb0, 1e-4),
                "gradient in the bias, k = {k}"
            );
        }
    }
}
