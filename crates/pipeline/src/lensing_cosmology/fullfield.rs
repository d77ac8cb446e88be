//! The explicit full-field posterior `p(theta, z | x)`: NUTS over the
//! cosmological parameters and the simulator's latent white noise jointly
//! (Porqueres et al. 2021; the "HMC" column of Zeghal et al. 2024).
//!
//! The latent field is sampled in its orthonormal Hartley basis,
//! `z_b = H w_b` ([`cosmodiff_field::fft2::Fft2::hartley`]): `H` is
//! orthogonal, so `w ~ N(0, I)` like `z`, but each coordinate of `w` is one
//! real Fourier mode. The likelihood's curvature is nearly diagonal in `k`
//! (signal-to-noise `~ lambda^2 C^G(k) / sigma_n^2` per mode), so the
//! adapted diagonal mass matrix of NUTS becomes a per-mode preconditioner:
//! the structure of this posterior, learnt from the warm-up draws.

use super::model::FieldModel;
use cosmodiff_field::fft2::Fft2;
use cosmodiff_infer::{
    run_nuts, DensityError, LogDensity, NutsSettings, Posterior, Prior, Samples,
};

/// `log L(x | theta, z = H w)` on `(theta, w)` (the priors are added by
/// [`Posterior`]). A failed evaluation (a cosmology outside the valid
/// range) is a [`DensityError`]: a divergence for the sampler.
pub struct FullFieldLikelihood<'a> {
    model: &'a FieldModel,
    data: &'a [Vec<f64>],
    fft: Fft2,
    npix2: usize,
}

impl<'a> FullFieldLikelihood<'a> {
    /// `data`: the observed maps `[n_bins][npix^2]`.
    pub fn new(model: &'a FieldModel, data: &'a [Vec<f64>]) -> Self {
        let n = model.setup.npix;
        Self {
            model,
            data,
            fft: Fft2::new(n),
            npix2: n * n,
        }
    }

    fn n_theta(&self) -> usize {
        self.model.setup.n_params()
    }

    /// The latent maps `z_b = H w_b` of a point `(theta, w)`.
    pub fn latent(&self, x: &[f64]) -> Result<Vec<Vec<f64>>, DensityError> {
        x[self.n_theta()..]
            .chunks(self.npix2)
            .map(|w| self.fft.hartley(w).map_err(|e| DensityError(e.to_string())))
            .collect()
    }

    /// The priors of `(theta, w)`: the set-up's, then `N(0, 1)` per latent.
    pub fn priors(&self) -> Vec<Prior> {
        let mut p = self.model.setup.priors.clone();
        p.extend(std::iter::repeat_n(
            Prior::Normal { mean: 0.0, sd: 1.0 },
            self.dim() - self.n_theta(),
        ));
        p
    }
}

impl LogDensity for FullFieldLikelihood<'_> {
    type Error = DensityError;
    fn dim(&self) -> usize {
        self.n_theta() + self.model.setup.n_bins() * self.npix2
    }
    fn names(&self) -> Vec<String> {
        let mut n: Vec<String> = self
            .model
            .setup
            .names
            .iter()
            .map(|s| s.to_string())
            .collect();
        n.extend((0..self.dim() - self.n_theta()).map(|i| format!("w{i}")));
        n
    }
    fn logp_and_grad(&self, x: &[f64], grad: &mut [f64]) -> Result<f64, DensityError> {
        let nt = self.n_theta();
        let z = self.latent(x)?;
        let lg = self
            .model
            .log_likelihood(self.data, &x[..nt], &z)
            .map_err(|e| DensityError(format!("{e:#}")))?;
        grad[..nt].copy_from_slice(&lg.theta);
        for (g, zb) in grad[nt..].chunks_mut(self.npix2).zip(&lg.z) {
            let h = self
                .fft
                .hartley(zb)
                .map_err(|e| DensityError(e.to_string()))?;
            g.copy_from_slice(&h);
        }
        Ok(lg.value)
    }
}

/// NUTS over `(theta, w)`, keeping the draws of `theta` only. Chains start
/// at `theta0` (e.g. the prior mean) and `w = 0` (the mean map), jittered
/// by `init_radius` in the unconstrained space.
pub fn sample(
    model: &FieldModel,
    data: &[Vec<f64>],
    theta0: &[f64],
    mut settings: NutsSettings,
) -> anyhow::Result<Samples> {
    let like = FullFieldLikelihood::new(model, data);
    let priors = like.priors();
    let mut init = theta0.to_vec();
    init.resize(like.dim(), 0.0);
    settings.init = Some(init);
    settings.keep = Some(model.setup.n_params());
    let post = Posterior::new(like, priors)?;
    Ok(run_nuts(&post, &settings)?)
}
