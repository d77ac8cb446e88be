//! The summary-statistics baseline of `pointcloud evaluate`: a Gaussian
//! likelihood ([`crate::emulator::QuadraticGaussian`]) of the halos'
//! two-point function and mass ranks, fitted on the training campaign.
//!
//! Summaries of one cloud: xi(r) in 5 logarithmic bins over 10-100 Mpc/h
//! (`catalog::xi`, analytic randoms; a few hundred halos in a 500 Mpc/h box
//! have almost no pairs below 10 Mpc/h) and, when masses are modelled, the
//! log10 masses of the halos of rank 1, 8, 32, 128 and N (those up to N;
//! the mass
//! function's information at fixed number).

use anyhow::Result;
use nalgebra::DMatrix;
use ndarray::Array2;

use crate::emulator::QuadraticGaussian;

/// The summaries of one cloud (row-major `[N, F]`, raw units).
pub fn summaries(cloud: &[f64], features: usize, mass: bool, box_size: f64) -> Result<Vec<f64>> {
    let edges: Vec<f64> = (0..=5).map(|i| 10.0 * 10f64.powf(i as f64 / 5.0)).collect();
    let pos: Vec<[f64; 3]> = cloud
        .chunks_exact(features)
        .map(|r| [r[0], r[1], r[2]])
        .collect();
    let mut y = cosmodiff_catalog::xi(&pos, None, box_size, &edges)?.xi;
    if mass {
        let mut m: Vec<f64> = cloud
            .chunks_exact(features)
            .map(|r| r[features - 1])
            .collect();
        m.sort_by(|a, b| b.total_cmp(a));
        let n = m.len();
        let mut ranks: Vec<usize> = [1, 8, 32, 128, n].into_iter().filter(|&r| r <= n).collect();
        ranks.dedup();
        for rank in ranks {
            y.push(m[rank - 1]);
        }
    }
    Ok(y)
}

/// The baseline likelihood fitted on training clouds and their parameters.
pub struct SummaryLikelihood {
    gauss: QuadraticGaussian,
    features: usize,
    mass: bool,
    box_size: f64,
}

impl SummaryLikelihood {
    /// Fit on `clouds` at `theta`.
    pub fn fit(
        clouds: &[Vec<f64>],
        theta: &[Vec<f64>],
        features: usize,
        mass: bool,
        box_size: f64,
    ) -> Result<Self> {
        let ys: Vec<Vec<f64>> = clouds
            .iter()
            .map(|c| summaries(c, features, mass, box_size))
            .collect::<Result<_>>()?;
        let d = ys.first().map_or(0, Vec::len);
        let y = DMatrix::from_fn(ys.len(), d, |i, j| ys[i][j]);
        let p = theta.first().map_or(0, Vec::len);
        let t = Array2::from_shape_fn((theta.len(), p), |(i, j)| theta[i][j]);
        Ok(Self {
            gauss: QuadraticGaussian::fit(&y, t.view(), "--baseline-catalogs")?,
            features,
            mass,
            box_size,
        })
    }

    /// `ln L` of one cloud on the grid `omega_m x sigma8` (`[i][j]`).
    pub fn grid(&self, cloud: &[f64], omega_m: &[f64], sigma8: &[f64]) -> Result<Vec<Vec<f64>>> {
        let y = summaries(cloud, self.features, self.mass, self.box_size)?;
        let pts = Array2::from_shape_fn((omega_m.len() * sigma8.len(), 2), |(k, j)| {
            if j == 0 {
                omega_m[k / sigma8.len()]
            } else {
                sigma8[k % sigma8.len()]
            }
        });
        let ll = self.gauss.log_likelihood(&y, pts.view());
        Ok(ll.chunks(sigma8.len()).map(<[f64]>::to_vec).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    /// Clouds of 64 uniform points whose log masses shift with the first
    /// parameter: the fitted likelihood peaks at the truth of a new cloud.
    #[test]
    fn baseline_likelihood_finds_the_mass_shift() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let cloud = |a: f64, rng: &mut rand::rngs::StdRng| -> Vec<f64> {
            (0..64)
                .flat_map(|i| {
                    let p = [0, 1, 2].map(|_| rng.random_range(0.0..200.0));
                    [
                        p[0],
                        p[1],
                        p[2],
                        13.0 + a - 0.01 * i as f64 + 0.01 * rng.random::<f64>(),
                    ]
                })
                .collect()
        };
        let theta: Vec<Vec<f64>> = (0..80)
            .map(|_| vec![rng.random_range(0.1..0.5), rng.random_range(0.6..1.0)])
            .collect();
        let clouds: Vec<Vec<f64>> = theta.iter().map(|t| cloud(t[0], &mut rng)).collect();
        let like = SummaryLikelihood::fit(&clouds, &theta, 4, true, 200.0).unwrap();
        let om: Vec<f64> = (0..9).map(|i| 0.1 + 0.05 * i as f64).collect();
        let ll = like.grid(&cloud(0.3, &mut rng), &om, &[0.8]).unwrap();
        let best = (0..9)
            .max_by(|&a, &b| ll[a][0].total_cmp(&ll[b][0]))
            .unwrap();
        assert!((om[best] - 0.3).abs() < 1e-9, "{ll:?}");
    }
}
