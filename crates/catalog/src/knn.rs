//! k-nearest-neighbour cumulative distribution functions (Banerjee & Abel
//! 2021, MNRAS 500, 5479): for volume-filling random query points, the
//! fraction whose k-th nearest data point lies within `r`,
//!
//! `CDF_k(r) = P(r_k <= r)`,
//!
//! which is the probability that a sphere of radius `r` holds at least `k`
//! points: it carries every connected N-point function. `CDF_1` is the void
//! probability complement `1 - P_0(r)`.
//!
//! Periodic minimum-image distances; queries are uniform in the box from a
//! seeded generator and searched in parallel on the periodic [`Columns`]
//! (a sphere that does not yet hold `k` points is doubled).

use crate::columns::Columns;
use crate::{check_positions, input, Result};
use rayon::prelude::*;

/// kNN-CDF settings.
#[derive(Debug, Clone)]
pub struct KnnSettings {
    /// Neighbour orders (each >= 1). Default 1..=9.
    pub k: Vec<usize>,
    /// Random query points. Default 100,000.
    pub n_query: usize,
    /// Radii [Mpc/h] at which the CDFs are evaluated (increasing); default
    /// (`None`): 64 log-spaced values between the 0.1% quantile of the
    /// smallest order's distances and the 99.9% quantile of the largest's.
    pub r: Option<Vec<f64>>,
    /// Seed of the query points. Default 0.
    pub seed: u64,
}

impl Default for KnnSettings {
    fn default() -> Self {
        Self {
            k: (1..=9).collect(),
            n_query: 100_000,
            r: None,
            seed: 0,
        }
    }
}

/// kNN-CDFs on a radius grid.
#[derive(Debug, Clone, Default)]
pub struct KnnCdf {
    /// Neighbour orders.
    pub k: Vec<usize>,
    /// Radii [Mpc/h].
    pub r: Vec<f64>,
    /// `cdf[i][j] = CDF_{k_i}(r_j)`.
    pub cdf: Vec<Vec<f64>>,
}

/// Distances [Mpc/h] from each query point to its `k_max` nearest data points,
/// sorted (row `q`: `k_max` values).
pub fn neighbour_distances(
    data: &[[f64; 3]],
    queries: &[[f64; 3]],
    box_size: f64,
    k_max: usize,
) -> Vec<Vec<f64>> {
    let n = data.len();
    let sep = box_size / (n as f64).cbrt();
    let cols = Columns::new(data, box_size, sep);
    let r_all = box_size * 3f64.sqrt() / 2.0; // every minimum image is within
    let r0 = (sep * (k_max as f64).cbrt()).min(r_all);
    // search radii r0, 2 r0, ... up to r_all, with their stencils
    let mut levels = vec![r0];
    while *levels.last().expect("non-empty") < r_all {
        levels.push((2.0 * levels.last().expect("non-empty")).min(r_all));
    }
    let stencils: Vec<_> = levels.iter().map(|r| cols.full_stencil(*r)).collect();
    queries
        .par_iter()
        .map_init(Vec::new, |buf: &mut Vec<f64>, q| {
            for (r, full) in levels.iter().zip(&stencils) {
                buf.clear();
                cols.for_each_within(q, *r, full, |_, d2| buf.push(d2));
                if buf.len() >= k_max {
                    break;
                }
            }
            buf.sort_unstable_by(f64::total_cmp);
            buf.iter().take(k_max).map(|d2| d2.sqrt()).collect()
        })
        .collect()
}

/// kNN-CDFs of the points `data` [Mpc/h, in `[0, L)`].
pub fn knn_cdf(data: &[[f64; 3]], box_size: f64, s: &KnnSettings) -> Result<KnnCdf> {
    check_positions(data, box_size)?;
    if data.is_empty() {
        return input("the catalogue is empty");
    }
    if s.k.is_empty() || s.k.contains(&0) {
        return input(format!("k must be a list of orders >= 1, got {:?}", s.k));
    }
    let k_max = *s.k.iter().max().expect("non-empty");
    if k_max > data.len() {
        return input(format!(
            "k = {k_max} exceeds the {} points of the catalogue",
            data.len()
        ));
    }
    if s.n_query == 0 {
        return input("n query must be at least 1");
    }
    if let Some(r) = &s.r {
        if r.is_empty() || r.iter().any(|x| !(x.is_finite() && *x >= 0.0)) {
            return input("r: radii must be finite and >= 0");
        }
        if r.windows(2).any(|w| !(w[1] > w[0])) {
            return input("r: radii must be strictly increasing");
        }
    }
    let queries = crate::uniform_points(s.n_query, box_size, s.seed);
    let d = neighbour_distances(data, &queries, box_size, k_max);
    // sorted distances per order
    let per_k: Vec<Vec<f64>> =
        s.k.iter()
            .map(|&k| {
                let mut v: Vec<f64> = d.iter().map(|row| row[k - 1]).collect();
                v.sort_unstable_by(f64::total_cmp);
                v
            })
            .collect();
    let r = match &s.r {
        Some(r) => r.clone(),
        None => {
            let q = |v: &[f64], f: f64| v[((v.len() - 1) as f64 * f).round() as usize];
            let kmin_i = (0..s.k.len()).min_by_key(|&i| s.k[i]).expect("non-empty");
            let kmax_i = (0..s.k.len()).max_by_key(|&i| s.k[i]).expect("non-empty");
            let lo = q(&per_k[kmin_i], 0.001).max(1e-6 * box_size);
            let hi = q(&per_k[kmax_i], 0.999).max(lo * 1.01);
            (0..64)
                .map(|i| lo * (hi / lo).powf(i as f64 / 63.0))
                .collect()
        }
    };
    let cdf = per_k
        .iter()
        .map(|v| {
            r.iter()
                .map(|x| v.partition_point(|d| d <= x) as f64 / v.len() as f64)
                .collect()
        })
        .collect();
    Ok(KnnCdf {
        k: s.k.clone(),
        r,
        cdf,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::min_image;

    /// Brute-force neighbour distances on a small set, and the Poisson
    /// prediction `CDF_k(r) = P(N(V(r)) >= k)`, `N ~ Poisson(n V)`.
    #[test]
    fn distances_match_brute_force_and_poisson_cdf() {
        let l = 100.0;
        let data: Vec<[f64; 3]> = crate::uniform_points(4000, l, 4);
        let queries = [[0.1, 99.9, 50.0], [50.0, 50.0, 50.0], [99.99, 0.0, 0.5]];
        let got = neighbour_distances(&data, &queries, l, 9);
        for (q, row) in queries.iter().zip(&got) {
            let mut all: Vec<f64> = data
                .iter()
                .map(|p| {
                    (0..3)
                        .map(|a| min_image(p[a] - q[a], l).powi(2))
                        .sum::<f64>()
                        .sqrt()
                })
                .collect();
            all.sort_unstable_by(f64::total_cmp);
            assert_eq!(row.as_slice(), &all[..9]);
        }
        let s = KnnSettings {
            k: vec![1, 5, 9],
            n_query: 20_000,
            r: Some(vec![2.0, 4.0, 6.0, 8.0]),
            seed: 1,
        };
        let c = knn_cdf(&data, l, &s).unwrap();
        let nbar = 4000.0 / l.powi(3);
        for (i, &k) in c.k.iter().enumerate() {
            for (j, &r) in c.r.iter().enumerate() {
                let lam = nbar * 4.0 / 3.0 * std::f64::consts::PI * r.powi(3);
                // P(N >= k) = regularised lower incomplete gamma P(k, lam)
                let want = statrs::function::gamma::gamma_lr(k as f64, lam);
                // queries share one data set: the effective number of
                // independent samples is at most the number of spheres of
                // radius r that fit in the box
                let n_eff =
                    (l.powi(3) / (4.0 / 3.0 * std::f64::consts::PI * r.powi(3))).min(20_000.0);
                let se = (want * (1.0 - want) / n_eff).sqrt().max(1e-4);
                assert!(
                    (c.cdf[i][j] - want).abs() < 5.0 * se,
                    "k {k} r {r}: {} vs {want}",
                    c.cdf[i][j]
                );
            }
        }
    }

    #[test]
    fn bad_k_is_named() {
        let data = vec![[1.0, 1.0, 1.0]; 3];
        let s = KnnSettings {
            k: vec![4],
            n_query: 10,
            ..Default::default()
        };
        let e = knn_cdf(&data, 10.0, &s).unwrap_err();
        assert!(e.to_string().contains("k = 4"), "{e}");
    }
}
