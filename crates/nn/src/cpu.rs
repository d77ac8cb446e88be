//! Shared pieces of the fused CPU kernels ([`crate::spline_kernel`],
//! [`crate::norm_kernel`], [`crate::conv_kernel`],
//! [`crate::residual_kernel`]): where they can run, f32 buffers in and out
//! of `flex` tensors, and a strided single-threaded matrix product (the
//! `gemm` crate burn's CPU backend uses too).

use burn::backend::flex::FlexTensor;
use burn::backend::DispatchDevice;
use burn::tensor::{DType, Device, Shape, TensorData};

/// `Some(autodiff)` on the `flex` CPU backend (plain or autodiff-wrapped),
/// `None` on any other backend.
pub(crate) fn flex_device(device: &Device) -> Option<bool> {
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
