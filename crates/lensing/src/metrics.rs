//! Map comparison metrics: masked RMSE, Pearson correlation, C_ell of the
//! residual, peak counts and the one-point PDF.

use crate::error::{check_len, value, Result};
use cosmodiff_field::cl2::{cl_auto, ClEstimate, EllBins};
use cosmodiff_field::{Fft2, Grid2};

/// 1 on pixels with mask > 0 (all without a mask), else 0.
fn weights(n: usize, mask: Option<&[f64]>) -> Result<Vec<f64>> {
    match mask {
        Some(m) => {
            check_len("mask", n, m.len())?;
            Ok(m.iter().map(|&w| if w > 0.0 { 1.0 } else { 0.0 }).collect())
        }
        None => Ok(vec![1.0; n]),
    }
}

/// The pixel pairs `(a_i, b_i)` with `mask_i > 0` (all without a mask);
/// masked pixels may hold anything (NaN included), an unmasked non-finite
/// value is an error.
fn unmasked(a: &[f64], b: &[f64], mask: Option<&[f64]>) -> Result<Vec<(f64, f64)>> {
    check_len("map b", a.len(), b.len())?;
    if let Some(m) = mask {
        check_len("mask", a.len(), m.len())?;
    }
    let mut out = Vec::with_capacity(a.len());
    for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
        if mask.is_some_and(|m| !(m[i] > 0.0)) {
            continue;
        }
        if !(x.is_finite() && y.is_finite()) {
            let which = if x.is_finite() { "b" } else { "a" };
            return Err(value(
                &format!("map {which}"),
                format!("non-finite value at unmasked pixel {i}"),
            ));
        }
        out.push((x, y));
    }
    Ok(out)
}

/// `sqrt( sum_{mask} (a - b)^2 / n_mask )` over pixels with mask > 0.
pub fn rmse(a: &[f64], b: &[f64], mask: Option<&[f64]>) -> Result<f64> {
    let px = unmasked(a, b, mask)?;
    if px.is_empty() {
        return Err(value("mask", "no unmasked pixels"));
    }
    Ok((px.iter().map(|(x, y)| (x - y).powi(2)).sum::<f64>() / px.len() as f64).sqrt())
}

/// Pearson correlation coefficient over unmasked pixels.
pub fn pearson(a: &[f64], b: &[f64], mask: Option<&[f64]>) -> Result<f64> {
    let px = unmasked(a, b, mask)?;
    if px.len() < 2 {
        return Err(value("mask", "need at least 2 unmasked pixels"));
    }
    let n = px.len() as f64;
    let ma = px.iter().map(|p| p.0).sum::<f64>() / n;
    let mb = px.iter().map(|p| p.1).sum::<f64>() / n;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in &px {
        sab += (x - ma) * (y - mb);
        saa += (x - ma).powi(2);
        sbb += (y - mb).powi(2);
    }
    if saa == 0.0 || sbb == 0.0 {
        return Err(value("maps", "constant map has no correlation coefficient"));
    }
    Ok(sab / (saa * sbb).sqrt())
}

/// C_ell of the residual `a - b` (masked pseudo-C_ell, see [`cosmodiff_field::cl2`]).
pub fn residual_cl(
    grid: &Grid2,
    a: &[f64],
    b: &[f64],
    bins: &EllBins,
    mask: Option<&[f64]>,
) -> Result<ClEstimate> {
    check_len("map b", a.len(), b.len())?;
    let r: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    Ok(cl_auto(grid, &Fft2::new(grid.n), &r, bins, mask)?)
}

/// Histogram of local maxima (pixels above all 8 periodic neighbours, in
/// unmasked pixels whose neighbours are unmasked) over the bin `edges`.
pub fn peak_counts(
    map: &[f64],
    n: usize,
    edges: &[f64],
    mask: Option<&[f64]>,
) -> Result<Vec<usize>> {
    check_len("map", n * n, map.len())?;
    if edges.len() < 2 || edges.windows(2).any(|e| !(e[1] > e[0])) {
        return Err(value("peak bins", "need >= 2 increasing edges"));
    }
    let w = weights(n * n, mask)?;
    let mut h = vec![0usize; edges.len() - 1];
    for y in 0..n {
        for x in 0..n {
            let v = map[y * n + x];
            let mut peak = w[y * n + x] > 0.0;
            for dy in [n - 1, 0, 1] {
                for dx in [n - 1, 0, 1] {
                    if dx == 0 && dy == 0 {
                        continue;
                    }
                    let j = ((y + dy) % n) * n + (x + dx) % n;
                    if map[j] >= v || w[j] == 0.0 {
                        peak = false;
                    }
                }
            }
            if peak && v >= edges[0] && v < edges[edges.len() - 1] {
                h[edges.partition_point(|&e| e <= v) - 1] += 1;
            }
        }
    }
    Ok(h)
}

/// One-point PDF: normalised histogram density over `edges` (unmasked pixels;
/// values outside the edges are dropped but count in the normalisation).
pub fn one_point_pdf(map: &[f64], edges: &[f64], mask: Option<&[f64]>) -> Result<Vec<f64>> {
    if edges.len() < 2 || edges.windows(2).any(|e| !(e[1] > e[0])) {
        return Err(value("pdf bins", "need >= 2 increasing edges"));
    }
    let w = weights(map.len(), mask)?;
    let n: f64 = w.iter().sum();
    if n == 0.0 {
        return Err(value("mask", "no unmasked pixels"));
    }
    let mut h = vec![0.0; edges.len() - 1];
    for (v, w) in map.iter().zip(&w) {
        if *w > 0.0 && *v >= edges[0] && *v < edges[edges.len() - 1] {
            h[edges.partition_point(|&e| e <= *v) - 1] += 1.0;
        }
    }
    Ok(h.iter()
        .enumerate()
        .map(|(i, c)| c / n / (edges[i + 1] - edges[i]))
        .collect())
}
