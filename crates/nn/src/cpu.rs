//! Shared pieces of the fused CPU kernels ([`crate::spline_kernel`],
//! [`crate::norm_kernel`], [`crate::conv_kernel`],
//! [`crate::residual_kernel`]): where they can run, f32 buffers in and out
//! of `flex` tensors, a strided single-threaded matrix product (the `gemm`
//! crate burn's CPU backend uses too), and the registration of gradients
//! that a backward kernel returns as one flat tensor.

use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::NodeId;
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, DispatchDevice};
use burn::tensor::{DType, Device, Shape, Slice, TensorData};

/// Register the gradients of an operation's parents from `flat`, which
/// holds them one after the other in parent order; each is reshaped to its
/// parent's shape. Untracked parents (`None`) are skipped.
pub(crate) fn register_flat_grads<B: Backend, const N: usize>(
    grads: &mut Gradients,
    parents: [Option<NodeId>; N],
    shapes: [Shape; N],
    flat: FloatTensor<B>,
) {
    let mut start = 0;
    for (parent, shape) in parents.into_iter().zip(shapes) {
        let n = shape.num_elements();
        if let Some(id) = parent {
            let part = B::float_slice(flat.clone(), &[Slice::from(start..start + n)]);
            grads.register::<B>(id, B::float_reshape(part, shape));
        }
        start += n;
    }
}

/// Split `n` rows into one contiguous range per kernel thread
/// ([`crate::fork`]), each of at least `min` rows (a single range when
/// `n < 2 min`).
pub(crate) fn row_parts(n: usize, min: usize) -> Vec<std::ops::Range<usize>> {
    split_rows(n, min, crate::fork::threads())
}

/// [`row_parts`] for a given number of threads.
fn split_rows(n: usize, min: usize, threads: usize) -> Vec<std::ops::Range<usize>> {
    let parts = threads.min(n / min.max(1)).max(1);
    (0..parts)
        .map(|i| i * n / parts..(i + 1) * n / parts)
        .collect()
}

/// Call `f(rows, part)` in parallel on the parts of `out` (`stride` values
/// per row) that [`row_parts`] gives.
pub(crate) fn par_rows<T: Send>(
    out: &mut [T],
    stride: usize,
    min: usize,
    f: impl Fn(std::ops::Range<usize>, &mut [T]) + Sync,
) {
    let ranges = row_parts(out.len() / stride.max(1), min);
    let mut tasks = Vec::with_capacity(ranges.len());
    let mut rest = out;
    for r in ranges {
        let (part, tail) = rest.split_at_mut(r.len() * stride);
        let f = &f;
        tasks.push(move || f(r, part));
        rest = tail;
    }
    crate::fork::fork(tasks);
}

/// Call `f(elements, columns)` in parallel on the parts of a row-major
/// `[rows, n]` matrix `out` split by columns (elements) as [`row_parts`]
/// splits `n`: `columns` holds each row's segment for those elements.
pub(crate) fn par_columns<T: Send>(
    out: &mut [T],
    n: usize,
    min: usize,
    f: impl Fn(std::ops::Range<usize>, Vec<&mut [T]>) + Sync,
) {
    let ranges = row_parts(n, min);
    let mut parts: Vec<Vec<&mut [T]>> = ranges.iter().map(|_| Vec::new()).collect();
    for row in out.chunks_mut(n.max(1)) {
        let mut rest = row;
        for (r, part) in ranges.iter().zip(parts.iter_mut()) {
            let (seg, tail) = rest.split_at_mut(r.len());
            part.push(seg);
            rest = tail;
        }
    }
    let f = &f;
    let tasks = ranges
        .into_iter()
        .zip(parts)
        .map(|(r, cols)| move || f(r, cols))
        .collect();
    crate::fork::fork(tasks);
}

/// `Some(autodiff)` on the `flex` CPU backend (plain or autodiff-wrapped),
/// `None` on any other backend and when the `flex` device was selected to
/// run burn's composed operations only ([`crate::device`]).
pub(crate) fn flex_device(device: &Device) -> Option<bool> {
    if !crate::device::kernels_enabled() {
        return None;
    }
    match device.as_dispatch() {
        DispatchDevice::Flex(_) => Some(false),
        DispatchDevice::Autodiff(d) => {
            matches!(d.clone().inner(), DispatchDevice::Flex(_)).then_some(true)
        }
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// f32 values of a tensor (a view when it is contiguous f32 already).
pub(crate) fn f32_values(t: &FlexTensor) -> std::borrow::Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(
            t.clone()
                .into_data()
                .try_to_vec_as::<f32>()
                .expect("float tensor converts to f32"),
        ),
    }
}

pub(crate) fn f32_tensor(v: Vec<f32>, shape: Shape, dtype: DType) -> FlexTensor {
    let data = TensorData::new(v, shape);
    FlexTensor::from_data(if dtype == DType::F32 {
        data
    } else {
        data.convert_dtype(dtype)
    })
}

/// A row-major matrix view: `rows x cols` with row stride `ld`, optionally
/// read transposed.
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a> {
    data: &'a [f32],
    ld: usize,
    t: bool,
}

impl<'a> Mat<'a> {
    pub(crate) fn new(data: &'a [f32], ld: usize) -> Self {
        Self { data, ld, t: false }
    }
    pub(crate) fn t(self) -> Self {
        Self { t: true, ..self }
    }
    /// `(column stride, row stride)` of the (possibly transposed) view.
    fn strides(&self) -> (isize, isize) {
        if self.t {
            (self.ld as isize, 1)
        } else {
            (1, self.ld as isize)
        }
    }
    /// Elements spanned by an `m x n` view.
    fn extent(&self, m: usize, n: usize) -> usize {
        let (r, c) = if self.t { (n, m) } else { (m, n) };
        if r == 0 || c == 0 {
            0
        } else {
            (r - 1) * self.ld + c
        }
    }
}

/// `dst (+)= lhs rhs` with `dst` `m x n` (row stride `ld_dst`), `lhs`
/// `m x k`, `rhs` `k x n`.
#[inline(never)]
pub(crate) fn matmul(
    dst: &mut [f32],
    ld_dst: usize,
    lhs: Mat,
    rhs: Mat,
    (m, n, k): (usize, usize, usize),
    accumulate: bool,
) {
    assert!(dst.len() >= Mat::new(dst, ld_dst).extent(m, n));
    assert!(lhs.data.len() >= lhs.extent(m, k) && rhs.data.len() >= rhs.extent(k, n));
    let ((lcs, lrs), (rcs, rrs)) = (lhs.strides(), rhs.strides());
    // SAFETY: the asserts bound every element the strides address; `dst`
    // is a unique borrow, so it does not alias the inputs.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            ld_dst as isize,
            accumulate,
            lhs.data.as_ptr(),
            lcs,
            lrs,
            rhs.data.as_ptr(),
            rcs,
            rrs,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// `e^x` in f32 as `2^n e^u`, `n = round(x / ln 2)`, `u = x - n ln 2`
/// (Cody-Waite: `ln 2` in two parts) in `[-ln 2 / 2, ln 2 / 2]`, with the
/// Taylor polynomial of `e^u` to degree 6 (relative error ~2e-7, like
/// `expf`), without branches or calls so that loops over it vectorise.
/// Saturates below `x = -87` and above `x = 88`.
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Round to nearest by adding 1.5 * 2^23: the sum's low mantissa bits
    // are `n` itself (no `roundps` on the baseline x86-64 target, and no
    // float-to-int conversion).
    const MAGIC: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let k = x * std::f32::consts::LOG2_E + MAGIC;
    let n = k - MAGIC;
    let u = (x - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + u * (1.0
            + u * (0.5
                + u * (1.0 / 6.0 + u * (1.0 / 24.0 + u * (1.0 / 120.0 + u * (1.0 / 720.0))))));
    let two_n = k.to_bits().wrapping_sub(MAGIC.to_bits()).wrapping_add(127) << 23;
    p * f32::from_bits(two_n)
}

#[inline(always)]
pub(crate) fn sigmoid(a: f32) -> f32 {
    1.0 / (1.0 + exp_f32(-a))
}

/// `a` and `b` have equal length and agree elementwise to `tol` relative to
/// `1 + |b|` (the kernels' tests against burn's composed operations).
#[cfg(test)]
pub(crate) fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(u, v)| (u - v).abs() <= tol * (1.0 + v.abs()))
}

/// `a` and `b` have equal length and agree elementwise to `tol` relative to
/// `max(1, max |b|)`: for reductions over many terms, whose f32 rounding
/// depends on the summation order and grows with the size of the sum.
#[cfg(test)]
pub(crate) fn close_to_scale(a: &[f64], b: &[f64], tol: f64) -> bool {
    let scale = b.iter().fold(1.0_f64, |m, v| m.max(v.abs()));
    a.len() == b.len() && a.iter().zip(b).all(|(u, v)| (u - v).abs() <= tol * scale)
}

#[cfg(test)]
mod tests {
    use super::{exp_f32, par_columns, par_rows, sigmoid, split_rows};

    #[test]
    fn row_splits_cover_every_row_once_with_at_least_min_each() {
        for (n, min, threads) in [
            (200, 64, 2),
            (200, 64, 8),
            (100, 64, 2),
            (0, 64, 4),
            (7, 1, 3),
        ] {
            let r = split_rows(n, min, threads);
            let expected = threads.min(n / min).max(1);
            assert_eq!(r.len(), expected, "{n} rows, min {min}, {threads} threads");
            assert_eq!(r.first().map(|r| r.start), Some(0));
            assert_eq!(r.last().map(|r| r.end), Some(n));
            assert!(r.windows(2).all(|w| w[0].end == w[1].start));
            if r.len() > 1 {
                assert!(r.iter().all(|p| p.len() >= min));
            }
        }
    }

    #[test]
    fn parallel_rows_and_columns_visit_each_element_once() {
        // 300 rows of 3 values: split over the kernel threads.
        let mut rows = vec![0usize; 900];
        par_rows(&mut rows, 3, 16, |range, part| {
            for (i, row) in range.zip(part.chunks_mut(3)) {
                row.iter_mut().for_each(|v| *v += i + 1);
            }
        });
        assert!(rows
            .chunks(3)
            .enumerate()
            .all(|(i, r)| r.iter().all(|&v| v == i + 1)));
        // A [4, 300] matrix split by columns.
        let n = 300;
        let mut m = vec![0usize; 4 * n];
        par_columns(&mut m, n, 16, |range, mut cols| {
            assert_eq!(cols.len(), 4);
            for (j, i) in range.enumerate() {
                for (r, col) in cols.iter_mut().enumerate() {
                    col[j] += r * n + i + 1;
                }
            }
        });
        assert!(m.iter().enumerate().all(|(k, &v)| v == k + 1));
    }

    #[test]
    fn polynomial_exp_is_as_accurate_as_expf() {
        let mut worst = 0.0f64;
        for i in -8000..=8000 {
            let x = i as f32 * 0.01;
            let (e, e0) = (exp_f32(x) as f64, (x as f64).exp());
            worst = worst.max((e - e0).abs() / e0);
        }
        assert!(worst < 5e-7, "relative error {worst}");
        assert!(exp_f32(-200.0) >= 0.0 && exp_f32(-200.0) < 1e-37);
        assert!(exp_f32(200.0).is_finite());
        assert!((sigmoid(0.0) - 0.5).abs() < 1e-7);
    }
}
