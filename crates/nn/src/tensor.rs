//! Conversions between `ndarray` (f64, the rest of cosmodiff) and burn tensors
//! (f32 on the default CPU backend).

use burn::tensor::{Device, Int, Tensor, TensorData};
use ndarray::{Array1, Array2, ArrayView2};

pub use crate::device::default_device;

/// A `[rows, cols]` f32 tensor from an f64 matrix.
pub fn to_tensor(a: ArrayView2<f64>, device: &Device) -> Tensor<2> {
    let (r, c) = a.dim();
    let v: Vec<f32> = a.iter().map(|&x| x as f32).collect();
    Tensor::from_data(TensorData::new(v, [r, c]), device)
}

/// A 1-D integer tensor (indices).
pub fn int_tensor(v: &[usize], device: &Device) -> Tensor<1, Int> {
    let v: Vec<i64> = v.iter().map(|&i| i as i64).collect();
    let n = v.len();
    Tensor::from_data(TensorData::new(v, [n]), device)
}

/// A 2-D f32 constant tensor from row-major values.
pub fn const2(v: Vec<f32>, shape: [usize; 2], device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(v, shape), device)
}

/// Values of a float tensor as f64 (row-major).
pub fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    let data = t.into_data();
    match data.try_to_vec::<f32>() {
        Ok(v) => v.into_iter().map(f64::from).collect(),
        Err(_) => data.try_to_vec::<f64>().unwrap_or_default(),
    }
}

/// A `[rows, cols]` f64 matrix from a 2-D float tensor.
pub fn to_array2(t: Tensor<2>) -> Array2<f64> {
    let [r, c] = t.dims();
    Array2::from_shape_vec((r, c), to_vec(t)).expect("tensor shape matches its data")
}

/// A vector from a 1-D float tensor.
pub fn to_array1(t: Tensor<1>) -> Array1<f64> {
    Array1::from(to_vec(t))
}

/// A scalar from a one-element tensor.
pub fn scalar(t: Tensor<1>) -> f64 {
    to_vec(t).first().copied().unwrap_or(f64::NAN)
}
