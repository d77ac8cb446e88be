//! Seeding and reading vector dual numbers: the gradient of any function of
//! `N` parameters in one forward pass (`DualSVec64<N>`, one derivative
//! direction per parameter).

use num_dual::{Derivative, DualSVec64};

/// `x_j` as dual numbers seeded with the unit vector `e_j`.
pub fn seed_gradient<const N: usize>(x: &[f64]) -> Vec<DualSVec64<N>> {
    x.iter()
        .enumerate()
        .map(|(j, v)| {
            let mut e = nalgebra::SVector::<f64, N>::zeros();
            e[j] = 1.0;
            DualSVec64::<N>::new(*v, Derivative::some(e))
        })
        .collect()
}

/// The gradient carried by `d` (zeros where nothing depended on the seeds).
pub fn gradient<const N: usize>(d: &DualSVec64<N>) -> Vec<f64> {
    d.eps
        .unwrap_generic(nalgebra::Const::<N>, nalgebra::Const::<1>)
        .iter()
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradient_of_a_product() {
        let x = seed_gradient::<2>(&[3.0, 5.0]);
        let f = x[0] * x[1] * x[1];
        assert_eq!(f.re, 75.0);
        assert_eq!(gradient(&f), vec![25.0, 30.0]);
    }
}
