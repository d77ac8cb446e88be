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

/// The `k` nearest data points of each query as `(d^2, sorted index)`
/// (unordered), by spheres of radius `r0, 2 r0, ...` around the query until
/// one holds `k` points (the `k` nearest then lie inside it), `exclude`
/// (a sorted index, the query itself) left out.
struct Search {
    cols: Columns,
    levels: Vec<f64>,
    stencils: Vec<Vec<crate::columns::Offset>>,
}

impl Search {
    fn new(data: &[[f64; 3]], box_size: f64, k: usize) -> Self {
        let sep = box_size / (data.len() as f64).cbrt();
        let cols = Columns::new(data, box_size, sep);
        let r_all = box_size * 3f64.sqrt() / 2.0; // every minimum image is within
        let r0 = (sep * (k as f64).cbrt()).min(r_all);
        let mut levels = vec![r0];
        while *levels.last().expect("non-empty") < r_all {
            levels.push((2.0 * levels.last().expect("non-empty")).min(r_all));
        }
        let stencils = levels.iter().map(|r| cols.full_stencil(*r)).collect();
        Self {
            cols,
            levels,
            stencils,
        }
    }

    fn nearest(&self, q: &[f64; 3], k: usize, exclude: Option<usize>, buf: &mut Vec<(f64, u32)>) {
        for (r, full) in self.levels.iter().zip(&self.stencils) {
            buf.clear();
            self.cols.for_each_within(q, *r, full, |j, d2| {
                if Some(j) != exclude {
                    buf.push((d2, self.cols.index[j]));
                }
            });
            if buf.len() >= k {
                break;
            }
        }
        // nearest first; equal distances by original index (deterministic,
        // the order of a brute-force search)
        let k = k.min(buf.len());
        if k > 0 && k < buf.len() {
            buf.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        }
        buf.truncate(k);
        buf.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    }
}

/// Distances [Mpc/h] from each query point to its `k_max` nearest data points,
/// sorted (row `q`: `k_max` values).
pub fn neighbour_distances(
    data: &[[f64; 3]],
    queries: &[[f64; 3]],
    box_size: f64,
    k_max: usize,
) -> Vec<Vec<f64>> {
    let search = Search::new(data, box_size, k_max);
    queries
        .par_iter()
        .map_init(Vec::new, |buf, q| {
            search.nearest(q, k_max, None, buf);
            buf.iter().map(|(d2, _)| d2.sqrt()).collect()
        })
        .collect()
}

/// The periodic k-nearest-neighbour graph of `points` (in `[0, L)`): row `i`
/// lists the indices of the `k` points nearest to point `i` (itself
/// excluded), nearest first, equal distances by index, with the
/// minimum-image distances. The same lists as a brute-force search, in
/// O(N log N) time (cell columns, [`Columns`]); fewer than `k` when the
/// catalogue has at most `k` points.
pub fn nearest_neighbours(points: &[[f64; 3]], box_size: f64, k: usize) -> Vec<Vec<(u32, f64)>> {
    if points.is_empty() || k == 0 {
        return vec![Vec::new(); points.len()];
    }
    let search = Search::new(points, box_size, k + 1);
    let mut rows = vec![Vec::new(); points.len()];
    // queries in sorted (cell) order: neighbouring queries share columns
    let sorted: Vec<(usize, Vec<(u32, f64)>)> = (0..points.len())
        .into_par_iter()
        .map_init(Vec::new, |buf, s| {
            let q = [search.cols.x[s], search.cols.y[s], search.cols.z[s]];
            search.nearest(&q, k, Some(s), buf);
            let row = buf.iter().map(|&(d2, j)| (j, d2.sqrt())).collect();
            (search.cols.index[s] as usize, row)
        })
        .collect();
    for (i, row) in sorted {
        rows[i] = row;
    }
    rows
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

    /// The graph equals a brute-force minimum-image search on 10^5 points
    /// (checked for 2,000 of them, including those near the faces, and a
    /// lattice whose equal distances test the tie order).
    #[test]
    fn nearest_neighbours_match_brute_force() {
        let l = 1000.0;
        let brute = |data: &[[f64; 3]], i: usize, k: usize| {
            let mut all: Vec<(f64, u32)> = (0..data.len())
                .filter(|&j| j != i)
                .map(|j| {
                    let d2: f64 = (0..3)
                        .map(|a| min_image(data[j][a] - data[i][a], l).powi(2))
                        .sum();
                    (d2, j as u32)
                })
                .collect();
            let order = |a: &(f64, u32), b: &(f64, u32)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
            all.select_nth_unstable_by(k, order);
            all.truncate(k);
            all.sort_unstable_by(order);
            all.iter()
                .map(|&(d2, j)| (j, d2.sqrt()))
                .collect::<Vec<_>>()
        };
        let data = crate::uniform_points(100_000, l, 7);
        let got = nearest_neighbours(&data, l, 20);
        for i in (0..data.len()).step_by(50) {
            assert_eq!(got[i], brute(&data, i, 20), "point {i}");
        }
        let lattice: Vec<[f64; 3]> = (0..512)
            .map(|i| {
                [
                    (i / 64) as f64 * 125.0,
                    (i / 8 % 8) as f64 * 125.0,
                    (i % 8) as f64 * 125.0,
                ]
            })
            .collect();
        let got = nearest_neighbours(&lattice, l, 18);
        for i in [0, 7, 63, 300, 511] {
            assert_eq!(got[i], brute(&lattice, i, 18), "lattice point {i}");
        }
        assert_eq!(nearest_neighbours(&lattice[..3], l, 5)[0].len(), 2);
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
