//! Explicit field-level posterior of a simulated convergence field given
//! shear data: the exact posterior under the simulator's own prior.
//!
//! The simulator ([`TomoField`]) builds the convergence maps of `B` source
//! bins from white noise `w` (`B * npix` numbers, `w ~ N(0, I)`):
//! `g = L w` per Fourier mode (Gaussian), and `kappa = s (exp(g - sigma_g^2/2) - 1)`
//! for log-normal fields. With shear data `gamma_b = P kappa_b + n_b`,
//!
//! ```text
//! log p(w | gamma) = -|w|^2 / 2 - sum_b |gamma_b - P kappa_b(w)|^2_{Sigma_b^-1} / 2 + const
//! grad_w           = -w + J^T [P^T Sigma_b^-1 (gamma_b - P kappa_b)]_b
//! ```
//!
//! where `J^T` is [`TomoField::vjp_white`]. Sampling `w` with HMC/NUTS gives
//! exact posterior samples of `kappa(w)` (the "explicit full-field" approach,
//! e.g. Porqueres et al. 2021 for log-normal lensing fields; Fiedorowicz et
//! al. 2022). For held-out simulations this is the Bayes-optimal reference
//! that any learned prior can at best match.

use cosmodiff_field::tomo2::TomoField;

use crate::error::{check_len, value, Result};
use crate::score::ShearLikelihood;

/// `log p(w | gamma)` of a [`TomoField`] simulation observed through one
/// [`ShearLikelihood`] per source bin.
pub struct FieldPosterior<'a> {
    field: &'a TomoField,
    likelihoods: Vec<&'a ShearLikelihood>,
}

impl<'a> FieldPosterior<'a> {
    /// One likelihood per source bin of `field`, on the same grid.
    pub fn new(field: &'a TomoField, likelihoods: Vec<&'a ShearLikelihood>) -> Result<Self> {
        check_len(
            "shear likelihoods (one per bin)",
            field.n_bins(),
            likelihoods.len(),
        )?;
        if let Some(l) = likelihoods.iter().find(|l| l.grid() != field.grid()) {
            return Err(value(
                "shear likelihood",
                format!(
                    "grid {}x{} differs from the field's {}x{}",
                    l.grid().n,
                    l.grid().n,
                    field.grid().n,
                    field.grid().n
                ),
            ));
        }
        Ok(Self { field, likelihoods })
    }

    /// Number of white-noise parameters, `n_bins * npix`.
    pub fn dim(&self) -> usize {
        self.field.n_bins() * self.field.grid().npix()
    }

    fn split(&self, w: &[f64]) -> Result<Vec<Vec<f64>>> {
        check_len("white noise", self.dim(), w.len())?;
        Ok(w.chunks(self.field.grid().npix())
            .map(|c| c.to_vec())
            .collect())
    }

    /// Convergence maps `[n_bins][npix]` of the white noise `w`.
    pub fn maps(&self, w: &[f64]) -> Result<Vec<Vec<f64>>> {
        Ok(self.field.maps_from_white(&self.split(w)?)?)
    }

    /// `log p(w | gamma)` (up to a constant) and its gradient in `w`.
    pub fn logp_and_grad(&self, w: &[f64], grad: &mut [f64]) -> Result<f64> {
        check_len("gradient", self.dim(), grad.len())?;
        let ws = self.split(w)?;
        let kappa = self.field.maps_from_white(&ws)?;
        let mut logp = -0.5 * w.iter().map(|x| x * x).sum::<f64>();
        let mut cot = Vec::with_capacity(kappa.len());
        for (k, l) in kappa.iter().zip(&self.likelihoods) {
            let (ll, g) = l.log_likelihood(k)?;
            logp += ll;
            cot.push(g);
        }
        let gw = self.field.vjp_white(&ws, &cot)?;
        for ((g, x), v) in grad.iter_mut().zip(w).zip(gw.iter().flatten()) {
            *g = v - x;
        }
        Ok(logp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::add_shape_noise;
    use crate::shear::ShearOp;
    use cosmodiff_field::spectrum::ClMatrixTable;
    use cosmodiff_field::tomo2::FieldKind;
    use cosmodiff_field::Grid2;
    use rand::SeedableRng;

    fn setup(kind: FieldKind) -> (TomoField, ShearLikelihood) {
        let grid = Grid2::new(16, 4.0).unwrap();
        let ell: Vec<f64> = (0..400).map(|i| 10.0 + 30.0 * i as f64).collect();
        let cl: Vec<f64> = ell
            .iter()
            .map(|l| 2e-9 * (1.0 + l / 1000.0).powi(-2))
            .collect();
        let table = ClMatrixTable::new(ell, vec![cl]).unwrap();
        let field = TomoField::new(grid, &table, kind).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let truth = field.sample(&mut rng).remove(0);
        let (g1, g2) = ShearOp::new(grid).forward(&truth, None).unwrap();
        let noise = vec![0.01; grid.npix()];
        let (g1, g2) = add_shape_noise(&g1, &g2, &noise, &mut rng).unwrap();
        let lik = ShearLikelihood::new(grid, &g1, &g2, &noise, None).unwrap();
        (field, lik)
    }

    /// The gradient matches central finite differences of the log density
    /// along random directions (log-normal field, so the chain rule through
    /// the exponential is exercised).
    #[test]
    fn gradient_matches_finite_differences() {
        let (field, lik) = setup(FieldKind::LogNormal { shifts: vec![0.02] });
        let post = FieldPosterior::new(&field, vec![&lik]).unwrap();
        let n = post.dim();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let w = cosmodiff_field::grf2::white_noise_rng(n, &mut rng);
        let mut g = vec![0.0; n];
        post.logp_and_grad(&w, &mut g).unwrap();
        for _ in 0..3 {
            let v = cosmodiff_field::grf2::white_noise_rng(n, &mut rng);
            let h = 1e-5;
            let at = |t: f64| {
                let x: Vec<f64> = w.iter().zip(&v).map(|(a, b)| a + t * b).collect();
                post.logp_and_grad(&x, &mut vec![0.0; n]).unwrap()
            };
            let fd = (at(h) - at(-h)) / (2.0 * h);
            let an: f64 = g.iter().zip(&v).map(|(a, b)| a * b).sum();
            assert!(
                (fd - an).abs() < 1e-6 * an.abs().max(1.0),
                "fd {fd} vs analytic {an}"
            );
        }
    }

    #[test]
    fn rejects_mismatched_inputs() {
        let (field, lik) = setup(FieldKind::Gaussian);
        assert!(FieldPosterior::new(&field, vec![]).is_err());
        let post = FieldPosterior::new(&field, vec![&lik]).unwrap();
        assert!(post.logp_and_grad(&[0.0; 3], &mut [0.0; 3]).is_err());
    }
}
