//! Exact pair counts of points in a periodic box and the two-point
//! correlation function with analytic randoms (natural estimator,
//! Peebles & Hauser 1974):
//!
//! `DD_b = sum_{i<j} w_i w_j [e_b <= r_ij < e_{b+1}]` (each pair once,
//! minimum-image separation `r_ij`; unit weights give integer counts),
//!
//! `RR_b = ((sum w)^2 - sum w^2) / 2 * V_b / L^3`, `V_b = 4 pi/3 (e_{b+1}^3 - e_b^3)`,
//!
//! `xi_b = DD_b / RR_b - 1`.
//!
//! The shells must fit the minimum image: `e_last <= L/2`. The bin radius
//! reported is the mean separation of random pairs in the shell,
//! `r_b = 3/4 (e_{b+1}^4 - e_b^4) / (e_{b+1}^3 - e_b^3)`.
//!
//! [`xi_vjp`] gives `dL/dw_i = sum_b g_b dxi_b/dw_i` for a cotangent `g_b`:
//! `dDD_b/dw_i = sum_{j in b} w_j`, `dRR_b/dw_i = (W - w_i) V_b / L^3`
//! (`W = sum w`), so `dxi_b/dw_i = (dDD_b/dw_i) / RR_b - DD_b dRR_b/dw_i / RR_b^2`.
//!
//! Work is split over a fixed number of blocks of columns (summed in block
//! order), so results do not depend on the number of threads.

use crate::columns::{Columns, Offset};
use crate::{check_positions, input, Result};
use rayon::prelude::*;
use std::f64::consts::PI;

/// Blocks of columns whose partial sums are added in a fixed order.
const BLOCKS: usize = 64;
/// Blocks for the VJP (each holds one gradient vector).
const VJP_BLOCKS: usize = 8;

/// xi(r) with its ingredients.
#[derive(Debug, Clone, Default)]
pub struct Xi {
    /// Bin edges [Mpc/h].
    pub edges: Vec<f64>,
    /// Mean separation of random pairs in each shell [Mpc/h].
    pub r: Vec<f64>,
    /// `xi_b = DD_b / RR_b - 1`.
    pub xi: Vec<f64>,
    /// `DD_b`: pairs counted once (weighted when weights are given).
    pub pair_counts: Vec<f64>,
    /// Analytic random pairs `RR_b`.
    pub rr: Vec<f64>,
}

/// Check bin edges [Mpc/h]: at least two, finite, `>= 0`, strictly
/// increasing, the last `<= L/2` (the minimum-image limit).
pub fn check_edges(edges: &[f64], box_size: f64) -> Result<()> {
    if edges.len() < 2 {
        return input(format!(
            "r edges: need at least two edges, got {}",
            edges.len()
        ));
    }
    if let Some(e) = edges.iter().find(|e| !(e.is_finite() && **e >= 0.0)) {
        return input(format!("r edges: {e} is not a finite separation >= 0"));
    }
    if let Some(w) = edges.windows(2).find(|w| !(w[1] > w[0])) {
        return input(format!(
            "r edges must be strictly increasing, got {} then {}",
            w[0], w[1]
        ));
    }
    let last = edges[edges.len() - 1];
    if last > box_size / 2.0 {
        return input(format!(
            "r edges: r_max = {last} exceeds L/2 = {} (the minimum-image limit)",
            box_size / 2.0
        ));
    }
    Ok(())
}

fn check_weights(w: Option<&[f64]>, n: usize) -> Result<()> {
    if let Some(w) = w {
        if w.len() != n {
            return input(format!("{} weights for {n} points", w.len()));
        }
        if let Some(i) = w.iter().position(|x| !x.is_finite()) {
            return input(format!("weight {i} is not finite"));
        }
    }
    Ok(())
}

/// Shell of `d2` among squared edges `e2` (`e2[b] <= d2 < e2[b+1]`), scanning
/// down from the top (most pairs are at large separations).
#[inline]
fn shell(d2: f64, e2: &[f64]) -> Option<usize> {
    let nb = e2.len() - 1;
    if d2 >= e2[nb] || d2 < e2[0] {
        return None;
    }
    let mut b = nb - 1;
    while d2 < e2[b] {
        b -= 1;
    }
    Some(b)
}

/// Columns and half stencil for separations up to `r_max`: columns of side
/// `r_max / 2` (the visited volume is then ~2.6x the sphere's, against ~4.3x
/// with side `r_max`).
fn neighbours(pos: &[[f64; 3]], box_size: f64, r_max: f64) -> (Columns, Vec<Offset>) {
    let cols = Columns::new(pos, box_size, r_max / 2.0);
    let half = cols.half_stencil(r_max);
    (cols, half)
}

fn block_columns(b: usize, nblock: usize, ncol: usize) -> std::ops::Range<usize> {
    let per = ncol.div_ceil(nblock);
    (b * per).min(ncol)..((b + 1) * per).min(ncol)
}

/// Lanes of the pair-count kernel: separations are computed 8 at a time
/// and compared with every edge, so that the compiler vectorises the loop.
const LANES: usize = 16;

/// Per-block cumulative counts `cum[k][lane] = sum [d^2 < e_k^2]` (or
/// weighted by `w_i w_j`), kept per lane so that weighted sums are
/// vectorised without reordering (deterministic).
struct Cumulative {
    counts: Vec<[u64; LANES]>,
    weights: Vec<[f64; LANES]>,
}

impl Cumulative {
    fn new(ne: usize) -> Self {
        Self {
            counts: vec![[0; LANES]; ne],
            weights: vec![[0.0; LANES]; ne],
        }
    }
}

/// Count the candidates `a..b` of point `i` with image shifts `s` into `acc`.
#[inline(always)]
fn count_range(
    cols: &Columns,
    i: usize,
    (a, b): (usize, usize),
    s: [f64; 3],
    e2: &[f64],
    w: Option<&[f64]>,
    acc: &mut Cumulative,
) {
    let ne = e2.len();
    let emax = e2[ne - 1];
    if s.iter().any(|v| v.is_nan()) {
        // aliased stencil or whole-column window: minimum image per pair
        let l = cols.box_size();
        for j in a..b {
            let dx = crate::min_image(cols.x[j] - cols.x[i], l);
            let dy = crate::min_image(cols.y[j] - cols.y[i], l);
            let dz = crate::min_image(cols.z[j] - cols.z[i], l);
            let d2 = dx * dx + dy * dy + dz * dz;
            for k in 0..ne {
                if d2 < e2[k] {
                    match w {
                        None => acc.counts[k][0] += 1,
                        Some(w) => acc.weights[k][0] += w[i] * w[j],
                    }
                }
            }
        }
        return;
    }
    let (xi, yi, zi) = (cols.x[i] - s[0], cols.y[i] - s[1], cols.z[i] - s[2]);
    let (xs, ys, zs) = (&cols.x[a..b], &cols.y[a..b], &cols.z[a..b]);
    let n = b - a;
    let wi = w.map_or(1.0, |w| w[i]);
    let full = n / LANES * LANES;
    // full chunks: fixed-size arrays, no bounds checks, vectorised
    for t in (0..full).step_by(LANES) {
        let x8: &[f64; LANES] = xs[t..t + LANES].try_into().expect("chunk");
        let y8: &[f64; LANES] = ys[t..t + LANES].try_into().expect("chunk");
        let z8: &[f64; LANES] = zs[t..t + LANES].try_into().expect("chunk");
        let mut d2 = [0.0f64; LANES];
        for u in 0..LANES {
            let dx = x8[u] - xi;
            let dy = y8[u] - yi;
            let dz = z8[u] - zi;
            d2[u] = dx * dx + dy * dy + dz * dz;
        }
        let wj = w.map(|w| -> [f64; LANES] { w[a + t..a + t + LANES].try_into().expect("chunk") });
        accumulate(&d2, wi, wj.as_ref(), e2, emax, acc);
    }
    // the tail, padded with separations beyond every edge
    if full < n {
        let mut d2 = [f64::INFINITY; LANES];
        let mut wj = [0.0f64; LANES];
        for u in 0..n - full {
            let dx = xs[full + u] - xi;
            let dy = ys[full + u] - yi;
            let dz = zs[full + u] - zi;
            d2[u] = dx * dx + dy * dy + dz * dz;
            if let Some(w) = w {
                wj[u] = w[a + full + u];
            }
        }
        accumulate(&d2, wi, w.map(|_| &wj), e2, emax, acc);
    }
}

/// Add one chunk of separations to the cumulative counts (`wj`: the
/// partners' weights, for weighted counts).
#[inline(always)]
fn accumulate(
    d2: &[f64; LANES],
    wi: f64,
    wj: Option<&[f64; LANES]>,
    e2: &[f64],
    emax: f64,
    acc: &mut Cumulative,
) {
    if d2.iter().fold(f64::INFINITY, |a, b| a.min(*b)) >= emax {
        return;
    }
    match wj {
        None => {
            for (k, &e) in e2.iter().enumerate() {
                let c = &mut acc.counts[k];
                for u in 0..LANES {
                    c[u] += (d2[u] < e) as u64;
                }
            }
        }
        Some(wj) => {
            for (k, &e) in e2.iter().enumerate() {
                let c = &mut acc.weights[k];
                for u in 0..LANES {
                    c[u] += if d2[u] < e { wi * wj[u] } else { 0.0 };
                }
            }
        }
    }
}

/// Cumulative counts of the columns `range` (see [`count_range`]).
#[inline(always)]
fn count_columns_generic(
    cols: &Columns,
    half: &[Offset],
    range: std::ops::Range<usize>,
    e2: &[f64],
    w: Option<&[f64]>,
) -> Cumulative {
    let mut acc = Cumulative::new(e2.len());
    // the ranges first, then the kernel in a plain loop: a closure would be
    // compiled outside the AVX2 function that calls this one
    let mut ranges: Vec<(usize, usize, usize, [f64; 3])> = Vec::new();
    for c in range {
        ranges.clear();
        cols.for_each_candidate_range(c, half, |i, a, b, s| ranges.push((i, a, b, s)));
        for &(i, a, b, s) in &ranges {
            count_range(cols, i, (a, b), s, e2, w, &mut acc);
        }
    }
    acc
}

/// The same kernel compiled for AVX2 (4 doubles per instruction), chosen at
/// run time: identical arithmetic, so identical counts.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn count_columns_avx2(
    cols: &Columns,
    half: &[Offset],
    range: std::ops::Range<usize>,
    e2: &[f64],
    w: Option<&[f64]>,
) -> Cumulative {
    count_columns_generic(cols, half, range, e2, w)
}

fn count_columns(
    cols: &Columns,
    half: &[Offset],
    range: std::ops::Range<usize>,
    e2: &[f64],
    w: Option<&[f64]>,
) -> Cumulative {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { count_columns_avx2(cols, half, range, e2, w) };
    }
    count_columns_generic(cols, half, range, e2, w)
}

/// Pair counts `DD_b` of the points `pos` [Mpc/h, in `[0, L)`] in the shells
/// `edges` (each pair once; weighted by `w_i w_j` when `weights` are given).
pub fn pair_counts(
    pos: &[[f64; 3]],
    weights: Option<&[f64]>,
    box_size: f64,
    edges: &[f64],
) -> Result<Vec<f64>> {
    check_positions(pos, box_size)?;
    check_edges(edges, box_size)?;
    check_weights(weights, pos.len())?;
    let nb = edges.len() - 1;
    let r_max = edges[nb];
    let e2: Vec<f64> = edges.iter().map(|e| e * e).collect();
    let (cols, half) = neighbours(pos, box_size, r_max);
    let ncol = cols.n_columns();
    let sorted_w: Option<Vec<f64>> =
        weights.map(|w| cols.index.iter().map(|&i| w[i as usize]).collect());
    let parts: Vec<Vec<f64>> = (0..BLOCKS)
        .into_par_iter()
        .map(|b| {
            let acc = count_columns(
                &cols,
                &half,
                block_columns(b, BLOCKS, ncol),
                &e2,
                sorted_w.as_deref(),
            );
            // cumulative (d < e_k) -> shells [e_k, e_k+1), lanes summed in order
            let cum: Vec<f64> = (0..=nb)
                .map(|k| match &sorted_w {
                    None => acc.counts[k].iter().sum::<u64>() as f64,
                    Some(_) => acc.weights[k].iter().sum::<f64>(),
                })
                .collect();
            (0..nb).map(|k| cum[k + 1] - cum[k]).collect()
        })
        .collect();
    let mut dd = vec![0.0f64; nb];
    for p in &parts {
        for k in 0..nb {
            dd[k] += p[k];
        }
    }
    Ok(dd)
}

/// Shell volumes `V_b / L^3` and mean random-pair separations.
fn shells(edges: &[f64], box_size: f64) -> (Vec<f64>, Vec<f64>) {
    let v = box_size.powi(3);
    edges
        .windows(2)
        .map(|e| {
            let (a, b) = (e[0], e[1]);
            (
                4.0 * PI / 3.0 * (b.powi(3) - a.powi(3)) / v,
                0.75 * (b.powi(4) - a.powi(4)) / (b.powi(3) - a.powi(3)),
            )
        })
        .unzip()
}

/// Analytic random pairs, with `(sum w, sum w^2)`.
fn random_pairs(weights: Option<&[f64]>, n: usize, frac: &[f64]) -> (Vec<f64>, f64) {
    let (s1, s2) = match weights {
        None => (n as f64, n as f64),
        Some(w) => (w.iter().sum::<f64>(), w.iter().map(|x| x * x).sum::<f64>()),
    };
    let pairs = (s1 * s1 - s2) / 2.0;
    (frac.iter().map(|f| pairs * f).collect(), s1)
}

/// The two-point correlation function `xi(r)` of the points `pos` [Mpc/h]
/// in a periodic box, natural estimator with analytic randoms.
pub fn xi(pos: &[[f64; 3]], weights: Option<&[f64]>, box_size: f64, edges: &[f64]) -> Result<Xi> {
    if pos.len() < 2 {
        return input(format!(
            "the catalogue has {} points: xi needs at least two",
            pos.len()
        ));
    }
    let dd = pair_counts(pos, weights, box_size, edges)?;
    let (frac, r) = shells(edges, box_size);
    let (rr, _) = random_pairs(weights, pos.len(), &frac);
    if rr.iter().any(|x| !(*x > 0.0)) {
        return input("the weights give no random pairs (sum w^2 >= (sum w)^2)");
    }
    let xi = dd.iter().zip(&rr).map(|(d, r)| d / r - 1.0).collect();
    Ok(Xi {
        edges: edges.to_vec(),
        r,
        xi,
        pair_counts: dd,
        rr,
    })
}

/// Vector-Jacobian product of [`xi`] in the weights: `dL/dw_i` for the
/// cotangent `xi_bar_b = dL/dxi_b` (unit weights when `weights` is `None`).
pub fn xi_vjp(
    pos: &[[f64; 3]],
    weights: Option<&[f64]>,
    box_size: f64,
    edges: &[f64],
    xi_bar: &[f64],
) -> Result<Vec<f64>> {
    let n = pos.len();
    let ones;
    let w = match weights {
        Some(w) => w,
        None => {
            ones = vec![1.0; n];
            &ones
        }
    };
    let x = xi(pos, Some(w), box_size, edges)?;
    let nb = edges.len() - 1;
    if xi_bar.len() != nb {
        return input(format!("{} cotangents for {nb} bins", xi_bar.len()));
    }
    let (frac, _) = shells(edges, box_size);
    let total: f64 = w.iter().sum();
    // pair term: a_i = sum_b c_b sum_{j in b} w_j, c_b = g_b / RR_b
    let c: Vec<f64> = (0..nb).map(|b| xi_bar[b] / x.rr[b]).collect();
    let r_max = edges[nb];
    let e2: Vec<f64> = edges.iter().map(|e| e * e).collect();
    let (cols, half) = neighbours(pos, box_size, r_max);
    let ncol = cols.n_columns();
    let ws: Vec<f64> = cols.index.iter().map(|&i| w[i as usize]).collect();
    let parts: Vec<Vec<f64>> = (0..VJP_BLOCKS)
        .into_par_iter()
        .map(|b| {
            let mut a = vec![0.0f64; n];
            for col in block_columns(b, VJP_BLOCKS, ncol) {
                cols.for_each_pair_in_column(col, r_max, &half, |i, j, d2| {
                    if let Some(k) = shell(d2, &e2) {
                        a[i] += c[k] * ws[j];
                        a[j] += c[k] * ws[i];
                    }
                });
            }
            a
        })
        .collect();
    // random-pair term: - sum_b g_b DD_b / RR_b^2 (W - w_i) V_b / L^3
    let t: f64 = (0..nb)
        .map(|b| xi_bar[b] * x.pair_counts[b] / (x.rr[b] * x.rr[b]) * frac[b])
        .sum();
    let mut grad = vec![0.0f64; n];
    for (s, &o) in cols.index.iter().enumerate() {
        let pair: f64 = parts.iter().map(|p| p[s]).sum();
        grad[o as usize] = pair - t * (total - w[o as usize]);
    }
    Ok(grad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::min_image;

    fn uniform(n: usize, l: f64, seed: u64) -> Vec<[f64; 3]> {
        crate::uniform_points(n, l, seed)
    }

    fn brute(pos: &[[f64; 3]], w: Option<&[f64]>, l: f64, edges: &[f64]) -> Vec<f64> {
        let e2: Vec<f64> = edges.iter().map(|e| e * e).collect();
        let mut h = vec![0.0; edges.len() - 1];
        for i in 0..pos.len() {
            for j in i + 1..pos.len() {
                let d2: f64 = (0..3)
                    .map(|a| min_image(pos[j][a] - pos[i][a], l).powi(2))
                    .sum();
                if let Some(k) = shell(d2, &e2) {
                    h[k] += w.map_or(1.0, |w| w[i] * w[j]);
                }
            }
        }
        h
    }

    #[test]
    fn pair_counts_are_the_brute_force_integers() {
        let l = 100.0;
        let pos = uniform(3000, l, 11);
        for edges in [
            vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0],
            vec![0.0, 3.0, 6.0, 9.0],
            vec![10.0, 30.0],
        ] {
            let got = pair_counts(&pos, None, l, &edges).unwrap();
            let want = brute(&pos, None, l, &edges);
            assert_eq!(got, want, "edges {edges:?}");
        }
        // weighted
        let w: Vec<f64> = (0..pos.len())
            .map(|i| 0.1 + (i % 7) as f64 * 0.13)
            .collect();
        let edges = [2.0, 8.0, 25.0];
        let got = pair_counts(&pos, Some(&w), l, &edges).unwrap();
        let want = brute(&pos, Some(&w), l, &edges);
        for k in 0..2 {
            assert!(
                (got[k] - want[k]).abs() <= 1e-10 * want[k],
                "{got:?} {want:?}"
            );
        }
    }

    /// Poisson points: xi consistent with zero. For N uniform points in a
    /// periodic box two pair indicators sharing a point are independent
    /// (translation invariance), so the counts are multinomial over the
    /// `M = N(N-1)/2` pairs with shell probabilities `p_b = V_b / L^3`:
    /// `Cov = M (diag p - p p^T)`, whose inverse gives
    /// `chi^2 = sum_b (DD_b - RR_b)^2 / RR_b + (sum_b (DD_b - RR_b))^2 / (M (1 - sum p))`
    /// ~ chi^2(n_bins).
    #[test]
    fn xi_of_poisson_points_is_zero() {
        let l = 200.0;
        let n = 20_000;
        let pos = uniform(n, l, 12);
        let edges = [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0];
        let x = xi(&pos, None, l, &edges).unwrap();
        let m = (n * (n - 1) / 2) as f64;
        let ptot: f64 = x.rr.iter().sum::<f64>() / m;
        let dsum: f64 = (0..6).map(|b| x.pair_counts[b] - x.rr[b]).sum();
        let chi2: f64 = (0..6)
            .map(|b| (x.pair_counts[b] - x.rr[b]).powi(2) / x.rr[b])
            .sum::<f64>()
            + dsum * dsum / (m * (1.0 - ptot));
        let p = statrs::function::gamma::gamma_ur(3.0, chi2 / 2.0);
        eprintln!("xi {:?}, chi2 {chi2:.2} (6 bins), p {p:.3}", x.xi);
        assert!(p > 1e-3, "chi2 {chi2}, p {p}");
    }

    #[test]
    fn vjp_matches_finite_differences() {
        let l = 50.0;
        let pos = uniform(500, l, 13);
        let w: Vec<f64> = (0..pos.len()).map(|i| 0.5 + (i % 5) as f64 * 0.2).collect();
        let edges = [1.0, 4.0, 10.0, 20.0];
        let g = [0.3, -1.2, 2.0];
        let grad = xi_vjp(&pos, Some(&w), l, &edges, &g).unwrap();
        let loss = |w: &[f64]| -> f64 {
            let x = xi(&pos, Some(w), l, &edges).unwrap();
            x.xi.iter().zip(&g).map(|(a, b)| a * b).sum()
        };
        for i in [0, 17, 250, 499] {
            let h = 1e-5;
            let mut wp = w.clone();
            wp[i] += h;
            let mut wm = w.clone();
            wm[i] -= h;
            let fd = (loss(&wp) - loss(&wm)) / (2.0 * h);
            assert!(
                (fd - grad[i]).abs() <= 1e-6 * fd.abs().max(1e-3),
                "w{i}: vjp {} fd {fd}",
                grad[i]
            );
        }
    }

    /// The AVX2 build of the kernel and the baseline one give identical
    /// counts and bit-identical weighted sums (same arithmetic, same order).
    #[test]
    fn avx2_and_generic_kernels_agree() {
        let l = 60.0;
        let pos = uniform(4000, l, 21);
        let w: Vec<f64> = (0..pos.len())
            .map(|i| 0.3 + (i % 11) as f64 * 0.07)
            .collect();
        let edges = [0.5, 1.0, 3.0, 7.0, 12.0];
        let e2: Vec<f64> = edges.iter().map(|e| e * e).collect();
        let (cols, half) = neighbours(&pos, l, 12.0);
        let ws: Vec<f64> = cols.index.iter().map(|&i| w[i as usize]).collect();
        for weights in [None, Some(ws.as_slice())] {
            let a = count_columns_generic(&cols, &half, 0..cols.n_columns(), &e2, weights);
            let b = count_columns(&cols, &half, 0..cols.n_columns(), &e2, weights);
            assert_eq!(a.counts, b.counts);
            for k in 0..e2.len() {
                for u in 0..LANES {
                    assert_eq!(a.weights[k][u].to_bits(), b.weights[k][u].to_bits());
                }
            }
        }
    }

    #[test]
    fn bad_edges_are_named() {
        let pos = uniform(10, 10.0, 1);
        for (edges, needle) in [
            (vec![1.0], "two edges"),
            (vec![2.0, 1.0], "increasing"),
            (vec![1.0, 6.0], "L/2"),
            (vec![-1.0, 2.0], ">= 0"),
        ] {
            let e = xi(&pos, None, 10.0, &edges).unwrap_err();
            assert!(e.to_string().contains(needle), "{e}");
        }
    }
}
