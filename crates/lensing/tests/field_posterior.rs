//! The explicit field-level posterior sampled with NUTS: for a Gaussian field
//! its posterior mean must be the Wiener filter (exact for a Gaussian prior
//! and Gaussian noise), and its per-pixel std that of Wiener constrained
//! realisations.

use cosmodiff_field::spectrum::{ClMatrixTable, ClTable};
use cosmodiff_field::tomo2::{FieldKind, TomoField};
use cosmodiff_field::Grid2;
use cosmodiff_infer::{run_nuts, LogDensity, NutsSettings};
use cosmodiff_lensing::field_posterior::FieldPosterior;
use cosmodiff_lensing::noise::add_shape_noise;
use cosmodiff_lensing::score::ShearLikelihood;
use cosmodiff_lensing::{LensingError, ShearOp, Wiener};
use rand::SeedableRng;

struct Density<'a>(FieldPosterior<'a>);

impl LogDensity for Density<'_> {
    type Error = LensingError;
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn logp_and_grad(&self, x: &[f64], grad: &mut [f64]) -> Result<f64, LensingError> {
        self.0.logp_and_grad(x, grad)
    }
}

fn centred(m: &[f64]) -> Vec<f64> {
    let mu = m.iter().sum::<f64>() / m.len() as f64;
    m.iter().map(|v| v - mu).collect()
}

fn rms(m: &[f64]) -> f64 {
    (m.iter().map(|v| v * v).sum::<f64>() / m.len() as f64).sqrt()
}

#[test]
fn gaussian_field_posterior_is_the_wiener_filter() {
    let grid = Grid2::new(16, 4.0).unwrap();
    let ell: Vec<f64> = (0..400).map(|i| 10.0 + 30.0 * i as f64).collect();
    let cl: Vec<f64> = ell
        .iter()
        .map(|l| 2e-9 * (1.0 + l / 1000.0).powi(-2))
        .collect();
    let table = ClMatrixTable::new(ell.clone(), vec![cl.clone()]).unwrap();
    let field = TomoField::new(grid, &table, FieldKind::Gaussian).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let truth = field.sample(&mut rng).remove(0);
    let (g1, g2) = ShearOp::new(grid).forward(&truth, None).unwrap();
    let noise = vec![0.004; grid.npix()];
    let (g1, g2) = add_shape_noise(&g1, &g2, &noise, &mut rng).unwrap();
    let lik = ShearLikelihood::new(grid, &g1, &g2, &noise, None).unwrap();

    let post = Density(FieldPosterior::new(&field, vec![&lik]).unwrap());
    let run = run_nuts(
        &post,
        &NutsSettings {
            chains: 2,
            warmup: 300,
            draws: 400,
            seed: 5,
            progress: false,
            init: Some(vec![0.0; grid.npix()]),
            init_radius: 0.5,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(run.divergences(), 0);
    let maps: Vec<Vec<f64>> = run
        .draws
        .outer_iter()
        .flat_map(|c| c.outer_iter().map(|w| w.to_vec()).collect::<Vec<_>>())
        .map(|w| centred(&post.0.maps(&w).unwrap()[0]))
        .collect();
    let n = maps.len() as f64;
    let np = grid.npix();
    let mean: Vec<f64> = (0..np)
        .map(|j| maps.iter().map(|m| m[j]).sum::<f64>() / n)
        .collect();
    let std: f64 = ((0..np)
        .map(|j| maps.iter().map(|m| (m[j] - mean[j]).powi(2)).sum::<f64>() / (n - 1.0))
        .sum::<f64>()
        / np as f64)
        .sqrt();

    let wiener = Wiener::from_cl(grid, &ClTable::new(ell, cl).unwrap(), &noise, None).unwrap();
    let wmean = centred(&wiener.cg(&g1, &g2, 1e-10, 10_000).unwrap().kappa);
    let diff: Vec<f64> = mean.iter().zip(&wmean).map(|(a, b)| a - b).collect();
    let err = rms(&diff) / rms(&wmean);
    // Per-pixel posterior std from Wiener constrained realisations.
    let wsamp = wiener.samples(&wmean, 64, 3, 1e-10).unwrap();
    let wstd = rms(&cosmodiff_lensing::wiener::pixel_std(&wsamp).unwrap());
    // Observed (seed 5): mean error 1.2% of the Wiener rms, about the Monte
    // Carlo floor of ~800 draws; std ratio 1.003.
    assert!(
        err < 0.05,
        "NUTS mean vs Wiener CG: {err:.4} of the Wiener rms"
    );
    assert!(
        (std / wstd - 1.0).abs() < 0.03,
        "per-pixel std {std:.3e} vs Wiener realisations {wstd:.3e}"
    );
    eprintln!(
        "NUTS mean error {err:.4} of the Wiener rms; std ratio {:.4}",
        std / wstd
    );
}
