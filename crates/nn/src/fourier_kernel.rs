//! A real, mode-wise Fourier filter of periodic fields, `u = F^-1[t(k) F x]`,
//! as a burn operation with a hand-written backward pass: the convolution
//! layer of translation- and rotation-equivariant flows (TRENF, Dai & Seljak
//! 2022, arXiv:2202.05282, eq. 5) and the reason [`crate::trenf`] needs no
//! FFT in burn.
//!
//! Rows are square maps (`L = n^2` pixels) or cubes (`L = n^3` cells) in C
//! order; the filter `t` lives on the `M` modes of the real FFT
//! (`numpy.fft.rfftn` layout, [`cosmodiff_field::fft3::Fft3`]), and must be
//! Hermitian-consistent (`t(k) = t(-k)`, true of any radial function).
//!
//! Mode bookkeeping: a half-complex mode with `0 < k_last < n/2` stands for
//! itself and its conjugate partner, which is not stored; modes on the
//! `k_last = 0` and Nyquist planes are stored with their partners. So with
//! [`mode_weights`] `w_m` (2 or 1):
//! - `log |det du/dx| = sum_m w_m log |t_m|`;
//! - backward, for `g = dL/du`: `dL/dx = F^-1[t F g]` (the filter is a
//!   symmetric matrix) and `dL/dt_m = w_m Re(X_m conj(G_m)) / L`.
//!
//! The arithmetic is in the tensors' own precision: f32 FFTs for f32 tensors
//! (training), f64 for f64 (the exactness tests). Registered for the `flex`
//! CPU backend and its autodiff wrapper; on other backends (GPUs)
//! [`fourier_filter`] composes the same filter from burn's matrix products
//! ([`fourier_filter_composed`]).

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::Autodiff;
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Backend, Dispatch, Flex, TensorMetadata};
use burn::tensor::{DType, Shape, Slice, Tensor, TensorData};
use cosmodiff_field::fft3::{freq, Fft3};
use rayon::prelude::*;
use realfft::num_complex::Complex;
use realfft::FftNum;

/// The filter, differentiable in `x` and `t`.
#[backend_extension(Flex, Autodiff)]
pub trait FourierFilterOps: Backend {
    /// `x` `[R, L]`, `t` `[R, M]` -> `u` `[R, L]`, row by row.
    fn fourier_filter(
        x: FloatTensor<Self>,
        t: FloatTensor<Self>,
        n: usize,
        dims: usize,
    ) -> FloatTensor<Self>;
}

/// The backward kernel.
#[backend_extension(Flex)]
pub trait FourierFilterKernels: Backend {
    /// `[R, L + M]`: `dL/dx` then `dL/dt` for the output gradient `grad`.
    fn fourier_filter_vjp(
        x: FloatTensor<Self>,
        t: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        n: usize,
        dims: usize,
    ) -> FloatTensor<Self>;
}

/// `u = F^-1[t F x]` on tensors `x` `[R, n^dims]` and `t` `[R, M]` (see
/// [`n_modes`]); differentiable. The FFT kernel on the `flex` CPU backend,
/// [`fourier_filter_composed`] elsewhere.
pub fn fourier_filter(x: Tensor<2>, t: Tensor<2>, n: usize, dims: usize) -> Tensor<2> {
    if crate::cpu::flex_device(&x.device()).is_none() {
        return fourier_filter_composed(x, t, n, dims);
    }
    Tensor::from_dispatch(Dispatch::fourier_filter(
        x.into_dispatch(),
        t.into_dispatch(),
        n,
        dims,
    ))
}

/// [`fourier_filter`] from burn's own operations, for backends without the
/// kernel: the discrete Fourier transform along each axis as products with
/// the `n x n` matrices `C_jk = cos(2 pi j k / n)`, `S_jk = sin(2 pi j k / n)`
/// (`F = C - i S`, `F^-1 = (C + i S) / n`), and the half-complex `t` spread
/// onto every mode of the full grid through `t(-k) = t(k)`. O(n^(dims+1))
/// per field instead of the FFT's O(n^dims log n), which a GPU's matrix
/// products absorb at the sizes of the flows (n <= 128); autodiff
/// differentiates it like any composition.
pub fn fourier_filter_composed(x: Tensor<2>, t: Tensor<2>, n: usize, dims: usize) -> Tensor<2> {
    let [r, l] = x.dims();
    let dev = x.device();
    let dtype = x.dtype();
    let matrix = |f: fn(f64) -> f64| {
        let v: Vec<f64> = (0..n * n)
            .map(|i| f(2.0 * std::f64::consts::PI * ((i / n) * (i % n) % n) as f64 / n as f64))
            .collect();
        Tensor::<2>::from_data(TensorData::new(v, [n, n]), (&dev, dtype)).reshape([1, n, n])
    };
    let (c, s) = (matrix(f64::cos), matrix(f64::sin));
    // the transform along one axis of a [r n^a, n, n^(dims-1-a)] view:
    // `sign` -1 forward (C - i S), +1 inverse (C + i S)
    let along = |re: Tensor<2>, im: Tensor<2>, a: usize, sign: f64| {
        let shape = [r * n.pow(a as u32), n, n.pow((dims - 1 - a) as u32)];
        let (re, im) = (re.reshape(shape), im.reshape(shape));
        let cr = c.clone().matmul(re.clone());
        let ci = c.clone().matmul(im.clone());
        let sr = s.clone().matmul(re);
        let si = s.clone().matmul(im);
        let (re, im) = (cr - si.mul_scalar(sign), ci + sr.mul_scalar(sign));
        (re.reshape([r, l]), im.reshape([r, l]))
    };
    // t on the full grid: mode k (C order, last axis fastest) reads the
    // stored half-complex mode k, or -k when k_last > n/2
    let nh = n / 2 + 1;
    let index: Vec<usize> = (0..l)
        .map(|f| {
            let mut k: Vec<usize> = (0..dims)
                .map(|a| f / n.pow((dims - 1 - a) as u32) % n)
                .collect();
            if k[dims - 1] >= nh {
                k.iter_mut().for_each(|v| *v = (n - *v) % n);
            }
            k[..dims - 1].iter().fold(0, |m, &v| m * n + v) * nh + k[dims - 1]
        })
        .collect();
    let t = t.select(1, crate::tensor::int_tensor(&index, &dev));
    let (mut re, mut im) = (x.clone(), x.zeros_like());
    for a in 0..dims {
        (re, im) = along(re, im, a, -1.0);
    }
    let (mut re, mut im) = (re * t.clone(), im * t);
    for a in 0..dims {
        (re, im) = along(re, im, a, 1.0);
    }
    re.div_scalar(l as f64)
}

/// Number of half-complex modes of a field of side `n`: `n^(dims-1) (n/2 + 1)`.
pub fn n_modes(n: usize, dims: usize) -> usize {
    n.pow(dims as u32 - 1) * (n / 2 + 1)
}

/// `|k|` of every half-complex mode, in units of the fundamental `2 pi / n`
/// (integer frequencies, numpy's `fftfreq * n`).
pub fn mode_k(n: usize, dims: usize) -> Vec<f64> {
    let nh = n / 2 + 1;
    (0..n_modes(n, dims))
        .map(|m| {
            let last = (m % nh) as i64;
            let mut rest = m / nh;
            let mut k2 = last * last;
            for _ in 0..dims - 1 {
                let f = freq(rest % n, n);
                k2 += f * f;
                rest /= n;
            }
            (k2 as f64).sqrt()
        })
        .collect()
}

/// How many full-plane modes each half-complex mode stands for: 1 on the
/// `k_last = 0` and Nyquist planes, 2 elsewhere. `sum_m w_m = n^dims`.
pub fn mode_weights(n: usize, dims: usize) -> Vec<f64> {
    let nh = n / 2 + 1;
    (0..n_modes(n, dims))
        .map(|m| {
            let last = m % nh;
            if last == 0 || (n.is_multiple_of(2) && last == n / 2) {
                1.0
            } else {
                2.0
            }
        })
        .collect()
}

/// FFT plans by (side, dimension, precision).
type Plans = Mutex<HashMap<(usize, usize, TypeId), Arc<dyn Any + Send + Sync>>>;

/// The FFT plan of a side, dimension and precision, made once per process.
pub(crate) fn plan<T: FftNum>(n: usize, dims: usize) -> Arc<Fft3<T>> {
    static PLANS: OnceLock<Plans> = OnceLock::new();
    let mut plans = PLANS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let any = plans
        .entry((n, dims, TypeId::of::<T>()))
        .or_insert_with(|| Arc::new(Fft3::<T>::with_dims(n, dims)))
        .clone();
    any.downcast::<Fft3<T>>()
        .expect("plan of the keyed precision")
}

/// `rows` Gaussian random fields `[rows * n^dims]` of side `n`, row `i`
/// with pixel power `pk(i, |k|)` (`|k|` in grid units):
/// `x = F^-1[sqrt(P) F w]` for unit white noise `w` drawn from a ChaCha8
/// stream seeded by `seed` (fields whose exact likelihood is known, to
/// test and demonstrate flows).
pub fn gaussian_fields(
    n: usize,
    dims: usize,
    rows: usize,
    seed: u64,
    pk: impl Fn(usize, f64) -> f64,
) -> Vec<f64> {
    use rand::SeedableRng;
    use rand_distr::Distribution;
    let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(seed);
    let normal = rand_distr::Normal::new(0.0, 1.0).expect("unit normal");
    let w: Vec<f64> = (0..rows * n.pow(dims as u32))
        .map(|_| normal.sample(&mut rng))
        .collect();
    let km = mode_k(n, dims);
    let t: Vec<f64> = (0..rows)
        .flat_map(|i| km.iter().map(move |&k| (i, k)))
        .map(|(i, k)| pk(i, k).sqrt())
        .collect();
    filter_rows(&w, &t, n, dims)
}

/// `F^-1[t F x]` for every row of `x` (rows in parallel, f32 or f64).
pub fn filter_rows<T: FftNum>(x: &[T], t: &[T], n: usize, dims: usize) -> Vec<T> {
    let (l, m) = (n.pow(dims as u32), n_modes(n, dims));
    let fft = plan::<T>(n, dims);
    let mut out = vec![T::zero(); x.len()];
    out.par_chunks_mut(l)
        .zip(x.par_chunks(l))
        .zip(t.par_chunks(m))
        .for_each(|((o, xr), tr)| {
            let mut k = fft.forward(xr);
            for (kv, &tv) in k.iter_mut().zip(tr) {
                *kv = *kv * tv;
            }
            fft.inverse_inplace(&mut k, o);
        });
    out
}

/// Backward pass of [`filter_rows`] for the output gradient `g`: per row,
/// `dL/dx` (`L` values) then `dL/dt` (`M` values).
pub fn filter_vjp<T: FftNum>(x: &[T], t: &[T], g: &[T], n: usize, dims: usize) -> Vec<T> {
    let (l, m) = (n.pow(dims as u32), n_modes(n, dims));
    let fft = plan::<T>(n, dims);
    // w_m / L in the working precision.
    let w: Vec<T> = mode_weights(n, dims)
        .into_iter()
        .map(|w| T::from_f64(w / l as f64).expect("a float"))
        .collect();
    let mut out = vec![T::zero(); (x.len() / l) * (l + m)];
    out.par_chunks_mut(l + m)
        .zip(x.par_chunks(l))
        .zip(t.par_chunks(m).zip(g.par_chunks(l)))
        .for_each(|((o, xr), (tr, gr))| {
            let xk = fft.forward(xr);
            let mut gk = fft.forward(gr);
            let (gx, gt) = o.split_at_mut(l);
            for (i, gt) in gt.iter_mut().enumerate() {
                let p: Complex<T> = xk[i] * gk[i].conj();
                *gt = w[i] * p.re;
            }
            for (kv, &tv) in gk.iter_mut().zip(tr) {
                *kv = *kv * tv;
            }
            fft.inverse_inplace(&mut gk, gx);
        });
    out
}

/// Values of a flex tensor in precision `T`.
fn values<T: burn::tensor::Element>(t: &FlexTensor) -> Vec<T> {
    t.clone()
        .into_data()
        .try_to_vec_as::<T>()
        .expect("float tensor converts")
}

fn tensor<T: burn::tensor::Element>(v: Vec<T>, shape: Shape, dtype: DType) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(v, shape).convert_dtype(dtype))
}

/// `f::<f32>` for f32 tensors, `f::<f64>` otherwise, as a tensor of `dtype`.
macro_rules! in_precision {
    ($dtype:expr, $shape:expr, |$t:ident| $body:expr) => {
        if $dtype == DType::F32 {
            type $t = f32;
            tensor::<f32>($body, $shape, $dtype)
        } else {
            type $t = f64;
            tensor::<f64>($body, $shape, $dtype)
        }
    };
}

impl FourierFilterOps for Flex {
    fn fourier_filter(x: FlexTensor, t: FlexTensor, n: usize, dims: usize) -> FlexTensor {
        let (shape, dtype) = (x.shape(), x.dtype());
        in_precision!(dtype, shape, |P| filter_rows(
            &values::<P>(&x),
            &values::<P>(&t),
            n,
            dims
        ))
    }
}

impl FourierFilterKernels for Flex {
    fn fourier_filter_vjp(
        x: FlexTensor,
        t: FlexTensor,
        grad: FlexTensor,
        n: usize,
        dims: usize,
    ) -> FlexTensor {
        let (shape, dtype) = (x.shape(), x.dtype());
        let rows = shape[0];
        let width = n.pow(dims as u32) + n_modes(n, dims);
        in_precision!(dtype, Shape::from(vec![rows, width]), |P| filter_vjp(
            &values::<P>(&x),
            &values::<P>(&t),
            &values::<P>(&grad),
            n,
            dims
        ))
    }
}

#[derive(Debug)]
struct FourierFilterBackward {
    n: usize,
    dims: usize,
}

impl<B: Backend + FourierFilterKernels> Backward<B, 2> for FourierFilterBackward {
    /// The inputs `x` and `t`.
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_t] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x, t) = ops.state;
        let l = self.n.pow(self.dims as u32);
        let m = n_modes(self.n, self.dims);
        let g = B::fourier_filter_vjp(x, t, grad, self.n, self.dims);
        let full = Slice::from(..);
        if let Some(node) = node_x {
            grads.register::<B>(
                node.id,
                B::float_slice(g.clone(), &[full, Slice::from(0..l)]),
            );
        }
        if let Some(node) = node_t {
            grads.register::<B>(node.id, B::float_slice(g, &[full, Slice::from(l..l + m)]));
        }
    }
}

impl<B: Backend + FourierFilterOps + FourierFilterKernels, C: CheckpointStrategy> FourierFilterOps
    for Autodiff<B, C>
{
    fn fourier_filter(
        x: FloatTensor<Self>,
        t: FloatTensor<Self>,
        n: usize,
        dims: usize,
    ) -> FloatTensor<Self> {
        let (x, x_node) = x.into_parts();
        let (t, t_node) = t.into_parts();
        let op = FourierFilterBackward { n, dims };
        match op.prepare::<C>([x_node, t_node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let out = B::fourier_filter(x.clone(), t.clone(), n, dims);
                prep.finish((x, t), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fourier_filter(x, t, n, dims)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::to_vec;
    use burn::tensor::Device;
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};

    fn normal(len: usize, seed: u64) -> Vec<f64> {
        let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(seed);
        (0..len)
            .map(|_| Normal::new(0.0, 1.0).expect("valid").sample(&mut rng))
            .collect()
    }

    /// A positive radial filter on the half-complex modes.
    fn radial(n: usize, dims: usize) -> Vec<f64> {
        mode_k(n, dims)
            .iter()
            .map(|k| (0.3 - 0.2 * k).exp() + 0.1)
            .collect()
    }

    fn f64_tensor(v: Vec<f64>, shape: [usize; 2], device: &Device) -> Tensor<2> {
        Tensor::from_data(TensorData::new(v, shape), (device, DType::F64))
    }

    #[test]
    fn modes_count_every_full_mode_once() {
        for &(n, dims) in &[(8usize, 2usize), (7, 2), (4, 3), (5, 3)] {
            let w: f64 = mode_weights(n, dims).iter().sum();
            assert_eq!(w as usize, n.pow(dims as u32));
            assert_eq!(mode_k(n, dims).len(), n_modes(n, dims));
        }
        // (ky, kx) = (-3, 4) on a 8x8 map: |k| = 5.
        let nh = 5;
        assert_eq!(mode_k(8, 2)[5 * nh + 4], 5.0);
    }

    /// The filter is the circulant matrix whose eigenvalues are `t`: its
    /// log-determinant, from the brute-force Jacobian, is `sum w log t`.
    #[test]
    fn log_det_matches_brute_force_jacobian() {
        for &(n, dims) in &[(8usize, 2usize), (4, 3)] {
            let l = n.pow(dims as u32);
            let t = radial(n, dims);
            let mut jac = nalgebra::DMatrix::<f64>::zeros(l, l);
            for j in 0..l {
                let mut e = vec![0.0; l];
                e[j] = 1.0;
                let col = filter_rows(&e, &t, n, dims);
                for i in 0..l {
                    jac[(i, j)] = col[i];
                }
            }
            let brute = jac.lu().determinant().abs().ln();
            let formula: f64 = mode_weights(n, dims)
                .iter()
                .zip(&t)
                .map(|(w, t)| w * t.ln())
                .sum();
            assert!((brute - formula).abs() < 1e-8 * formula.abs().max(1.0));
        }
    }

    /// Backward pass against central differences of `<v, u(x, t)>`, and the
    /// dot-product test `<v, J dx> = <J^T v, dx>`.
    #[test]
    fn gradients_match_finite_differences() {
        for &(n, dims) in &[(6usize, 2usize), (4, 3)] {
            let (l, m) = (n.pow(dims as u32), n_modes(n, dims));
            let x = normal(2 * l, 1);
            let t = [radial(n, dims), radial(n, dims)].concat();
            let v = normal(2 * l, 2);
            let f = |x: &[f64], t: &[f64]| -> f64 {
                filter_rows(x, t, n, dims)
                    .iter()
                    .zip(&v)
                    .map(|(a, b)| a * b)
                    .sum()
            };
            let g = filter_vjp(&x, &t, &v, n, dims);
            let h = 1e-6;
            for row in 0..2 {
                for &i in &[0usize, 1, l / 2, l - 1] {
                    let (mut xp, mut xm) = (x.clone(), x.clone());
                    xp[row * l + i] += h;
                    xm[row * l + i] -= h;
                    let fd = (f(&xp, &t) - f(&xm, &t)) / (2.0 * h);
                    assert!((fd - g[row * (l + m) + i]).abs() < 1e-7, "x {i}");
                }
                for i in 0..m {
                    // Perturb the mode and, on the k_last = 0 / Nyquist
                    // planes, its stored partner, keeping t Hermitian: the
                    // derivative is then the sum of both entries'.
                    let partner = partner(i, n, dims);
                    let (mut tp, mut tm) = (t.clone(), t.clone());
                    for j in [i, partner]
                        .iter()
                        .collect::<std::collections::BTreeSet<_>>()
                    {
                        tp[row * m + j] += h;
                        tm[row * m + j] -= h;
                    }
                    let fd = (f(&x, &tp) - f(&x, &tm)) / (2.0 * h);
                    let an = if partner == i {
                        g[row * (l + m) + l + i]
                    } else {
                        g[row * (l + m) + l + i] + g[row * (l + m) + l + partner]
                    };
                    assert!((fd - an).abs() < 1e-7, "t {i}: {fd} vs {an}");
                }
            }
            let dx = normal(2 * l, 3);
            let lhs: f64 = filter_rows(&dx, &t, n, dims)
                .iter()
                .zip(&v)
                .map(|(a, b)| a * b)
                .sum();
            let rhs: f64 = (0..2)
                .flat_map(|r| (0..l).map(move |i| (r, i)))
                .map(|(r, i)| g[r * (l + m) + i] * dx[r * l + i])
                .sum();
            assert!((lhs - rhs).abs() < 1e-10 * lhs.abs().max(1.0));
        }
    }

    /// The stored half-complex mode holding `-k` of mode `m` (itself when
    /// `-k` is not stored or `k` is self-conjugate).
    fn partner(m: usize, n: usize, dims: usize) -> usize {
        let nh = n / 2 + 1;
        let last = m % nh;
        if !(last == 0 || (n.is_multiple_of(2) && last == n / 2)) {
            return m;
        }
        let mut rest = m / nh;
        let mut idx = 0;
        let mut stride = 1;
        for _ in 0..dims - 1 {
            let i = rest % n;
            idx += ((n - i) % n) * stride;
            stride *= n;
            rest /= n;
        }
        idx * nh + last
    }

    /// The burn operation, in f64, gives the kernel's values and, through
    /// autodiff, its gradients.
    #[test]
    fn burn_operation_matches_kernel() {
        let dev = Device::flex().autodiff();
        let (n, dims) = (8, 2);
        let (l, m) = (64, n_modes(n, dims));
        let x0 = normal(3 * l, 5);
        let t0: Vec<f64> = (0..3).flat_map(|_| radial(n, dims)).collect();
        let v = normal(3 * l, 6);
        let x = f64_tensor(x0.clone(), [3, l], &dev).require_grad();
        let t = f64_tensor(t0.clone(), [3, m], &dev).require_grad();
        let u = fourier_filter(x.clone(), t.clone(), n, dims);
        let direct = filter_rows(&x0, &t0, n, dims);
        let got = to_vec(u.clone());
        for (a, b) in got.iter().zip(&direct) {
            assert!((a - b).abs() < 1e-14);
        }
        let loss = (u * f64_tensor(v.clone(), [3, l], &dev)).sum();
        let grads = loss.backward();
        let gx = to_vec(x.grad(&grads).expect("grad x"));
        let gt = to_vec(t.grad(&grads).expect("grad t"));
        let g = filter_vjp(&x0, &t0, &v, n, dims);
        for r in 0..3 {
            for i in 0..l {
                assert!((gx[r * l + i] - g[r * (l + m) + i]).abs() < 1e-14);
            }
            for i in 0..m {
                assert!((gt[r * m + i] - g[r * (l + m) + l + i]).abs() < 1e-14);
            }
        }
    }

    #[test]
    fn composed_filter_matches_the_kernel_in_values_and_gradients() {
        // 2-D and 3-D, odd and even sides; on the selected device (the
        // kernel's values are the reference)
        for (n, dims) in [(8usize, 2usize), (6, 2), (5, 3), (4, 3)] {
            let dev = crate::tensor::default_device().autodiff();
            let (l, m) = (n.pow(dims as u32), n_modes(n, dims));
            let x0 = normal(2 * l, 7);
            let t0: Vec<f64> = (0..2).flat_map(|_| radial(n, dims)).collect();
            let v = normal(2 * l, 8);
            // f64 where the device has it (not every GPU does). burn-flex's
            // f64 matrix-product backward loses digits for n = 6 (1.6e-8
            // against the exact F^-1[t F g]; 9e-16 for n = 8), hence 1e-7;
            // a wrong mode or sign is an O(1) error.
            let (dtype, tol) = if dev.supports_dtype(DType::F64) {
                (DType::F64, 1e-7)
            } else {
                (DType::F32, 1e-4)
            };
            let tensor = |v: Vec<f64>, shape: [usize; 2]| {
                Tensor::<2>::from_data(
                    TensorData::new(v, shape).convert_dtype(dtype),
                    (&dev, dtype),
                )
            };
            let x = tensor(x0.clone(), [2, l]).require_grad();
            let t = tensor(t0.clone(), [2, m]).require_grad();
            let u = fourier_filter_composed(x.clone(), t.clone(), n, dims);
            let direct = filter_rows(&x0, &t0, n, dims);
            let close = |a: f64, b: f64| (a - b).abs() < tol * (1.0 + b.abs());
            for (a, b) in to_vec(u.clone()).iter().zip(&direct) {
                assert!(close(*a, *b), "n {n} dims {dims}: {a} vs {b}");
            }
            let grads = (u * tensor(v.clone(), [2, l])).sum().backward();
            let gx = to_vec(x.grad(&grads).expect("grad x"));
            let gt = to_vec(t.grad(&grads).expect("grad t"));
            let g = filter_vjp(&x0, &t0, &v, n, dims);
            for row in 0..2 {
                for i in 0..l {
                    let (a, b) = (gx[row * l + i], g[row * (l + m) + i]);
                    assert!(close(a, b), "n {n} dims {dims} dx: {a} vs {b}");
                }
                for i in 0..m {
                    let (a, b) = (gt[row * m + i], g[row * (l + m) + l + i]);
                    assert!(close(a, b), "dt: {a} vs {b}");
                }
            }
        }
    }
}
