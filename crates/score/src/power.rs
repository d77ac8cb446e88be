//! Isotropic per-mode power of a set of maps, the Gaussian part of the
//! hybrid score prior.
//!
//! With the unitary FFT `x_k`, the per-mode variance is averaged over maps
//! and over shells of integer radius `r = round(|m|)` of the frequency index
//! `m = (m_x, m_y)`: `S(r) = <|x_k|^2>_{maps, |m| ~ r}`. The `m = 0` shell
//! is 0 (maps are zero-mean).

use cosmodiff_field::{Fft2, Grid2};
use rayon::prelude::*;

/// Shell index of every Fourier mode (row-major).
pub fn shell_index(n: usize) -> Vec<usize> {
    let g = Grid2::new(n, 1.0).expect("n >= 2");
    (0..n * n)
        .map(|k| {
            let (mx, my) = (g.freq_index(k % n) as f64, g.freq_index(k / n) as f64);
            (mx * mx + my * my).sqrt().round() as usize
        })
        .collect()
}

/// Number of shells (radii `0 ..= max |m|`) of a side-`n` map: the length of
/// its [`radial_power`] table.
pub fn n_shells(n: usize) -> usize {
    shell_index(n).into_iter().max().unwrap_or(0) + 1
}

/// Radial power `S(r)` of zero-mean maps of side `n` (each `n*n`, row-major).
pub fn radial_power(maps: &[Vec<f64>], n: usize) -> Vec<f64> {
    let shells = shell_index(n);
    let nr = n_shells(n);
    let fft = Fft2::new(n);
    let parts: Vec<(Vec<f64>, Vec<usize>)> = maps
        .par_iter()
        .map(|m| {
            let mut sum = vec![0.0; nr];
            let mut cnt = vec![0usize; nr];
            let b = fft.forward_real(m).expect("map of n*n values");
            let norm = 1.0 / (n * n) as f64;
            for (k, v) in b.iter().enumerate() {
                sum[shells[k]] += v.norm_sqr() * norm;
                cnt[shells[k]] += 1;
            }
            (sum, cnt)
        })
        .collect();
    let mut sum = vec![0.0; nr];
    let mut cnt = vec![0usize; nr];
    for (s, c) in parts {
        for r in 0..nr {
            sum[r] += s[r];
            cnt[r] += c[r];
        }
    }
    let mut p: Vec<f64> = sum
        .iter()
        .zip(&cnt)
        .map(|(s, &c)| if c > 0 { s / c as f64 } else { 0.0 })
        .collect();
    p[0] = 0.0;
    p
}

/// Per-mode variance (row-major) from a radial table.
pub fn mode_variance(radial: &[f64], n: usize) -> Vec<f64> {
    shell_index(n)
        .into_iter()
        .map(|r| radial.get(r).copied().unwrap_or(0.0))
        .collect()
}
