//! The context-gated residual block of the flows' conditioner
//! ([`crate::layers::ResidualBlock`]) as one fused CPU kernel with a
//! hand-written backward pass.
//!
//! Forward, for a batch of rows `h` `[B, H]` and context `c` `[B, C]`
//! (nflows' `ResidualBlock` with a GLU context gate; Durkan et al. 2019):
//!
//! ```text
//! z1 = relu(h) W1 + b1,   t = relu(z1) W2 + b2,   g = sigmoid(c Wc + bc),   y = h + g * t
//! ```
//!
//! Backward, with `g_t = g_y g` and `g_zc = g_y t g (1 - g)`:
//!
//! ```text
//! g_W2 = relu(z1)^T g_t,   g_z1 = (g_t W2^T) [z1 > 0],   g_W1 = relu(h)^T g_z1,
//! g_h = g_y + (g_z1 W1^T) [h > 0],   g_Wc = c^T g_zc,   g_c = g_zc Wc^T,
//! g_b = column sums of g_t, g_z1, g_zc
//! ```
//!
//! Composed from burn operations a block is ~12 tensor operations forward
//! and ~20 backward on `[200, 50]` matrices, which on the CPU is mostly
//! per-operation overhead; here it is one call each way (the intermediate
//! activations are recomputed in the backward pass). Registered as a burn
//! backend extension for `flex` (and its autodiff wrapper); the layer
//! composes burn operations on any other backend.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::Autodiff;
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Backend, ExtensionType, Flex, TensorMetadata};
use burn::tensor::Shape;

use crate::cpu::{
    f32_tensor, f32_values, matmul, par_rows, register_flat_grads, row_parts, sigmoid, Mat,
};

/// The inputs of one gated residual block: rows, context and the three
/// linear layers (weights `[d_in, d_out]` as in burn's `Linear`).
#[derive(ExtensionType)]
pub struct GatedBlock<B: Backend> {
    pub h: FloatTensor<B>,
    pub c: FloatTensor<B>,
    pub w1: FloatTensor<B>,
    pub b1: FloatTensor<B>,
    pub w2: FloatTensor<B>,
    pub b2: FloatTensor<B>,
    pub wc: FloatTensor<B>,
    pub bc: FloatTensor<B>,
}

/// The fused block, differentiable in all eight inputs.
#[backend_extension(Flex, Autodiff)]
pub trait GatedResidualOps: Backend {
    /// `y = h + sigmoid(c Wc + bc) * (relu(relu(h) W1 + b1) W2 + b2)`, `[B, H]`.
    fn gated_residual(#[extension_type] block: GatedBlock<Self>) -> FloatTensor<Self>;
}

/// The backward kernel.
#[backend_extension(Flex)]
pub trait GatedResidualKernels: Backend {
    /// With `grad` `[B, H]`, the flat concatenation of the gradients in
    /// `h, c, W1, b1, W2, b2, Wc, bc` (in that order).
    fn gated_residual_backward(
        #[extension_type] block: GatedBlock<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

/// Sizes: rows, hidden width, context width.
#[derive(Clone, Copy)]
struct Dims {
    b: usize,
    h: usize,
    c: usize,
}

/// f32 buffers of the eight inputs.
struct Values<'a> {
    h: std::borrow::Cow<'a, [f32]>,
    c: std::borrow::Cow<'a, [f32]>,
    w1: std::borrow::Cow<'a, [f32]>,
    b1: std::borrow::Cow<'a, [f32]>,
    w2: std::borrow::Cow<'a, [f32]>,
    b2: std::borrow::Cow<'a, [f32]>,
    wc: std::borrow::Cow<'a, [f32]>,
    bc: std::borrow::Cow<'a, [f32]>,
}

impl<'a> Values<'a> {
    fn new(k: &'a GatedBlock<Flex>) -> (Self, Dims) {
        let (hs, cs) = (k.h.shape(), k.c.shape());
        let d = Dims {
            b: hs[0],
            h: hs[1],
            c: cs[1],
        };
        let v = Self {
            h: f32_values(&k.h),
            c: f32_values(&k.c),
            w1: f32_values(&k.w1),
            b1: f32_values(&k.b1),
            w2: f32_values(&k.w2),
            b2: f32_values(&k.b2),
            wc: f32_values(&k.wc),
            bc: f32_values(&k.bc),
        };
        (v, d)
    }

    /// The block restricted to the rows `r` of `h` and `c` (a view).
    fn rows(&self, r: &std::ops::Range<usize>, d: Dims) -> (Values<'_>, Dims) {
        use std::borrow::Cow::Borrowed;
        let v = Values {
            h: Borrowed(&self.h[r.start * d.h..r.end * d.h]),
            c: Borrowed(&self.c[r.start * d.c..r.end * d.c]),
            w1: Borrowed(&self.w1),
            b1: Borrowed(&self.b1),
            w2: Borrowed(&self.w2),
            b2: Borrowed(&self.b2),
            wc: Borrowed(&self.wc),
            bc: Borrowed(&self.bc),
        };
        (v, Dims { b: r.len(), ..d })
    }
}

/// Rows per thread below which the kernels do not split a batch.
const PAR_ROWS: usize = 64;

/// `rows x n` matrix with every row set to `bias`.
fn broadcast(bias: &[f32], rows: usize) -> Vec<f32> {
    let mut m = Vec::with_capacity(rows * bias.len());
    for _ in 0..rows {
        m.extend_from_slice(bias);
    }
    m
}

fn relu(v: &[f32]) -> Vec<f32> {
    v.iter().map(|&x| x.max(0.0)).collect()
}

/// The block's intermediates: `relu(h)`, `z1`, `relu(z1)`, `t`, `g`, `y`.
struct Forward {
    r0: Vec<f32>,
    z1: Vec<f32>,
    r1: Vec<f32>,
    t: Vec<f32>,
    g: Vec<f32>,
    y: Vec<f32>,
}

fn forward(v: &Values, d: Dims) -> Forward {
    let (b, h, c) = (d.b, d.h, d.c);
    let r0 = relu(&v.h);
    let mut z1 = broadcast(&v.b1, b);
    matmul(
        &mut z1,
        h,
        Mat::new(&r0, h),
        Mat::new(&v.w1, h),
        (b, h, h),
        true,
    );
    let r1 = relu(&z1);
    let mut t = broadcast(&v.b2, b);
    matmul(
        &mut t,
        h,
        Mat::new(&r1, h),
        Mat::new(&v.w2, h),
        (b, h, h),
        true,
    );
    let mut g = broadcast(&v.bc, b);
    matmul(
        &mut g,
        h,
        Mat::new(&v.c, c),
        Mat::new(&v.wc, h),
        (b, h, c),
        true,
    );
    g.iter_mut().for_each(|z| *z = sigmoid(*z));
    let y =
        v.h.iter()
            .zip(&g)
            .zip(&t)
            .map(|((&x, &gv), &tv)| x + gv * tv)
            .collect();
    Forward {
        r0,
        z1,
        r1,
        t,
        g,
        y,
    }
}

/// Backward of `y = x W + b` (`x` `[rows, d_in]`, `W` `[d_in, d_out]`)
/// for `g = dL/dy`: `g_W = x^T g`, `g_b` = column sums of `g`,
/// `g_x = g W^T`, each written (not accumulated) into its slice.
fn linear_backward(
    (x, w, g): (&[f32], &[f32], &[f32]),
    (rows, d_in, d_out): (usize, usize, usize),
    (gw, gb, gx): (&mut [f32], &mut [f32], &mut [f32]),
) {
    matmul(
        gw,
        d_out,
        Mat::new(x, d_in).t(),
        Mat::new(g, d_out),
        (d_in, d_out, rows),
        false,
    );
    col_sums(g, d_out, gb);
    matmul(
        gx,
        d_in,
        Mat::new(g, d_out),
        Mat::new(w, d_out).t(),
        (rows, d_in, d_out),
        false,
    );
}

/// Column sums of a `rows x n` matrix into `out`.
fn col_sums(m: &[f32], n: usize, out: &mut [f32]) {
    out.fill(0.0);
    for row in m.chunks_exact(n) {
        out.iter_mut().zip(row).for_each(|(o, &x)| *o += x);
    }
}

fn backward(v: &Values, d: Dims, gy: &[f32]) -> Vec<f32> {
    let (b, h, c) = (d.b, d.h, d.c);
    let f = forward(v, d);
    let sizes = [b * h, b * c, h * h, h, h * h, h, c * h, h];
    let mut out = vec![0.0f32; sizes.iter().sum()];
    let mut parts = Vec::with_capacity(8);
    let mut rest = out.as_mut_slice();
    for s in sizes {
        let (p, r) = rest.split_at_mut(s);
        parts.push(p);
        rest = r;
    }
    let [gh, gc, gw1, gb1, gw2, gb2, gwc, gbc]: [&mut [f32]; 8] =
        parts.try_into().expect("eight parts");
    // Gate and branch.
    let gt: Vec<f32> = gy.iter().zip(&f.g).map(|(&u, &g)| u * g).collect();
    let gzc: Vec<f32> = gy
        .iter()
        .zip(&f.t)
        .zip(&f.g)
        .map(|((&u, &t), &g)| u * t * g * (1.0 - g))
        .collect();
    linear_backward((&v.c, &v.wc, &gzc), (b, c, h), (gwc, gbc, gc));
    // Second linear, then through the ReLU.
    let mut gz1 = vec![0.0f32; b * h];
    linear_backward((&f.r1, &v.w2, &gt), (b, h, h), (gw2, gb2, &mut gz1));
    gz1.iter_mut()
        .zip(&f.z1)
        .for_each(|(g, &z)| *g = if z > 0.0 { *g } else { 0.0 });
    // First linear.
    linear_backward((&f.r0, &v.w1, &gz1), (b, h, h), (gw1, gb1, gh));
    gh.iter_mut()
        .zip(v.h.iter())
        .zip(gy)
        .for_each(|((g, &x), &u)| *g = if x > 0.0 { *g + u } else { u });
    out
}

/// The flat gradients of a batch from those of its row blocks (each
/// from [`backward`]): the `h` and `c` rows concatenated in row order, the
/// parameter gradients summed.
fn merge_parts(ranges: &[std::ops::Range<usize>], mut parts: Vec<Vec<f32>>, d: Dims) -> Vec<f32> {
    if parts.len() == 1 {
        return parts.remove(0);
    }
    let n_params = parts[0].len() - ranges[0].len() * (d.h + d.c);
    let (mut gh, mut gc) = (Vec::with_capacity(d.b * d.h), Vec::with_capacity(d.b * d.c));
    let mut params = vec![0.0f32; n_params];
    for (r, p) in ranges.iter().zip(&parts) {
        let (h, rest) = p.split_at(r.len() * d.h);
        let (c, g) = rest.split_at(r.len() * d.c);
        gh.extend_from_slice(h);
        gc.extend_from_slice(c);
        params.iter_mut().zip(g).for_each(|(s, v)| *s += v);
    }
    gh.extend(gc);
    gh.extend(params);
    gh
}

impl GatedResidualOps for Flex {
    fn gated_residual(block: GatedBlock<Self>) -> FlexTensor {
        let (v, d) = Values::new(&block);
        let dtype = block.h.dtype();
        // Rows are independent: one block of rows per thread.
        let mut y = vec![0.0f32; d.b * d.h];
        par_rows(&mut y, d.h, PAR_ROWS, |r, part| {
            let (v, d) = v.rows(&r, d);
            part.copy_from_slice(&forward(&v, d).y);
        });
        f32_tensor(y, Shape::from([d.b, d.h]), dtype)
    }
}

impl GatedResidualKernels for Flex {
    fn gated_residual_backward(block: GatedBlock<Self>, grad: FlexTensor) -> FlexTensor {
        let (v, d) = Values::new(&block);
        let dtype = block.h.dtype();
        let gy = f32_values(&grad);
        // One block of rows per thread; the row gradients (`h`, `c`) are
        // concatenated, the parameter gradients summed over the blocks.
        let ranges = row_parts(d.b, PAR_ROWS);
        let mut parts = vec![Vec::new(); ranges.len()];
        let tasks = parts
            .iter_mut()
            .zip(&ranges)
            .map(|(part, r)| {
                let (v, gy) = (&v, &gy);
                move || {
                    let (v, d) = v.rows(r, d);
                    *part = backward(&v, d, &gy[r.start * d.h..r.end * d.h]);
                }
            })
            .collect();
        crate::fork::fork(tasks);
        let out = merge_parts(&ranges, parts, d);
        let len = out.len();
        f32_tensor(out, Shape::from([len]), dtype)
    }
}

#[derive(Debug)]
struct GatedResidualBackward;

/// The eight inputs as inner-backend tensors, kept for the backward pass.
type Inputs<B> = [FloatTensor<B>; 8];

impl<B: Backend + GatedResidualKernels> Backward<B, 8> for GatedResidualBackward {
    type State = Inputs<B>;

    fn backward(self, ops: Ops<Self::State, 8>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let shapes = ops.state.each_ref().map(|t| t.shape());
        let parents = ops.parents.map(|p| p.map(|n| n.id));
        let [h, c, w1, b1, w2, b2, wc, bc] = ops.state;
        let block = GatedBlock {
            h,
            c,
            w1,
            b1,
            w2,
            b2,
            wc,
            bc,
        };
        let g = B::gated_residual_backward(block, grad);
        register_flat_grads::<B, 8>(grads, parents, shapes, g);
    }
}

impl<B: Backend + GatedResidualOps + GatedResidualKernels, C: CheckpointStrategy> GatedResidualOps
    for Autodiff<B, C>
{
    fn gated_residual(block: GatedBlock<Self>) -> FloatTensor<Self> {
        let parts = [
            block.h, block.c, block.w1, block.b1, block.w2, block.b2, block.wc, block.bc,
        ]
        .map(|t| t.into_parts());
        let (inner, nodes): (Vec<_>, Vec<_>) = parts.into_iter().unzip();
        let (Ok(inner), Ok(nodes)) = (<Inputs<B>>::try_from(inner), nodes.try_into()) else {
            unreachable!("eight inputs in, eight out")
        };
        let run = |[h, c, w1, b1, w2, b2, wc, bc]: Inputs<B>| {
            B::gated_residual(GatedBlock {
                h,
                c,
                w1,
                b1,
                w2,
                b2,
                wc,
                bc,
            })
        };
        match GatedResidualBackward
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let out = run(inner.clone());
                prep.finish(inner, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(run(inner)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{GatedBlock, GatedResidualOps};
    use crate::cpu::close;
    use crate::tensor::to_vec;
    use burn::backend::Dispatch;
    use burn::tensor::activation::{relu, sigmoid};
    use burn::tensor::Device;
    use burn::tensor::{Distribution, Tensor};

    /// Values and the gradients in all eight inputs equal burn's composed
    /// operations (ReLU kinks included: `h` and `z1` change sign).
    #[test]
    fn fused_matches_composed_values_and_gradients() {
        let dev = Device::flex().autodiff();
        // 150 rows: split over threads on a multi-core machine.
        let (b, h, c) = (150, 7, 3);
        let n = |shape: Vec<usize>| match shape.len() {
            1 => Tensor::<1>::random([shape[0]], Distribution::Normal(0.0, 0.7), &dev).into_data(),
            _ => Tensor::<2>::random([shape[0], shape[1]], Distribution::Normal(0.0, 0.7), &dev)
                .into_data(),
        };
        let data = [
            n(vec![b, h]),
            n(vec![b, c]),
            n(vec![h, h]),
            n(vec![h]),
            n(vec![h, h]),
            n(vec![h]),
            n(vec![c, h]),
            n(vec![h]),
        ];
        let wy = Tensor::<2>::random([b, h], Distribution::Normal(0.0, 1.0), &dev);
        let run = |fused: bool| {
            let m2 = |i: usize| Tensor::<2>::from_data(data[i].clone(), &dev).require_grad();
            let v1 = |i: usize| Tensor::<1>::from_data(data[i].clone(), &dev).require_grad();
            let (hh, cc, w1, w2, wc) = (m2(0), m2(1), m2(2), m2(4), m2(6));
            let (b1, b2, bc) = (v1(3), v1(5), v1(7));
            let y = if fused {
                Tensor::from_dispatch(Dispatch::gated_residual(GatedBlock {
                    h: hh.clone().into_dispatch(),
                    c: cc.clone().into_dispatch(),
                    w1: w1.clone().into_dispatch(),
                    b1: b1.clone().into_dispatch(),
                    w2: w2.clone().into_dispatch(),
                    b2: b2.clone().into_dispatch(),
                    wc: wc.clone().into_dispatch(),
                    bc: bc.clone().into_dispatch(),
                }))
            } else {
                let lin = |x: Tensor<2>, w: &Tensor<2>, bias: &Tensor<1>| {
                    x.matmul(w.clone()) + bias.clone().unsqueeze_dim::<2>(0)
                };
                let t = lin(relu(lin(relu(hh.clone()), &w1, &b1)), &w2, &b2);
                hh.clone() + t * sigmoid(lin(cc.clone(), &wc, &bc))
            };
            let g = (y.clone() * wy.clone()).sum().backward();
            let mut all = vec![to_vec(y)];
            for t in [&hh, &cc, &w1, &w2, &wc] {
                all.push(to_vec(t.grad(&g).expect("tracked")));
            }
            for t in [&b1, &b2, &bc] {
                all.push(to_vec(t.grad(&g).expect("tracked")));
            }
            all
        };
        let (fused, composed) = (run(true), run(false));
        for (i, (a, e)) in fused.iter().zip(&composed).enumerate() {
            assert_eq!(a.len(), e.len());
            assert!(
                close(a, e, 1e-5),
                "output {i} (0: values, then h, c, W1, W2, Wc, b1, b2, bc)"
            );
            assert!(
                e.iter().any(|v| v.abs() > 1e-4),
                "output {i} is not trivially zero"
            );
        }
    }
}
