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
use crate::io::Npz;
use anyhow::Context;
use cosmodiff_field::fft2::Fft2;
use cosmodiff_infer::{
    run_nuts_chains, ChainOutput, DensityError, LogDensity, NutsSettings, Posterior, Prior, Samples,
};
use std::path::Path;

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
///
/// With `checkpoint = Some(path)` the run is resumable: every
/// [`CHECKPOINT_SECONDS`] (and at the end) the draws so far, their
/// divergence flags and each chain's last position are written atomically
/// to `path`. A later call with the same chains, seed, set-up and data finds
/// them, restarts each chain at its last position after a short
/// re-adaptation (`min(warmup, 150)` iterations: the step size and mass
/// matrix are not stored) and draws only what is missing, so an interrupted
/// run loses at most the last interval, and a finished one can be extended
/// with more `draws`.
pub fn sample(
    model: &FieldModel,
    data: &[Vec<f64>],
    theta0: &[f64],
    mut settings: NutsSettings,
    checkpoint: Option<&Path>,
) -> anyhow::Result<Samples> {
    let like = FullFieldLikelihood::new(model, data);
    let priors = like.priors();
    let dim = like.dim();
    let np = model.setup.n_params();
    let mut init = theta0.to_vec();
    init.resize(dim, 0.0);
    settings.init = Some(init);
    settings.keep = Some(np);
    let post = Posterior::new(like, priors)?;
    let start = std::time::Instant::now();
    let meta = vec![
        settings.chains as f64,
        settings.seed as f64,
        dim as f64,
        data.iter().flatten().sum::<f64>(),
        data.iter().flatten().map(|v| v * v).sum::<f64>(),
    ];
    let chains = settings.chains;
    let draws = settings.draws;
    let old = match checkpoint {
        Some(p) if p.exists() => Some(read_checkpoint(p, &meta, chains, np)?),
        _ => None,
    };
    let state = std::sync::Mutex::new(match &old {
        Some(o) => o.clone(),
        None => State {
            draws: vec![vec![]; chains],
            diverging: vec![vec![]; chains],
            position: vec![vec![]; chains],
        },
    });
    let done: Vec<usize> = (0..chains)
        .map(|c| old.as_ref().map_or(0, |o| o.diverging[c].len()))
        .collect();
    let missing = done
        .iter()
        .map(|&d| draws.saturating_sub(d))
        .max()
        .unwrap_or(0);
    let mut outputs: Vec<ChainOutput> = vec![];
    if missing > 0 {
        if let Some(o) = &old {
            settings.start = Some(o.position.clone());
            settings.warmup = settings.warmup.min(150);
            settings.draws = missing;
            eprintln!(
                "resuming from {}: {} draws per chain so far, {missing} to go",
                checkpoint.unwrap().display(),
                done.iter().min().unwrap()
            );
        }
        let last_write = std::sync::Mutex::new(std::time::Instant::now());
        let write_error = std::sync::Mutex::new(None);
        let observer = |c: usize, y: &[f64], draw: Option<(&[f64], bool)>| {
            let Some(path) = checkpoint else { return };
            let mut st = state.lock().unwrap();
            st.position[c] = y.to_vec();
            if let Some((x, div)) = draw {
                if st.diverging[c].len() < draws {
                    st.draws[c].extend_from_slice(x);
                    st.diverging[c].push(div);
                }
            }
            let mut lw = last_write.lock().unwrap();
            if lw.elapsed().as_secs_f64() > CHECKPOINT_SECONDS && draw.is_some() {
                if let Err(e) = write_checkpoint(path, &meta, &st, np) {
                    *write_error.lock().unwrap() = Some(e);
                }
                *lw = std::time::Instant::now();
            }
        };
        // Ctrl-C: every chain stops after its iteration, the checkpoint is
        // written from what the observer kept, and the run says how to go on.
        let listening = checkpoint.map(|_| crate::report::InterruptScope::new());
        if checkpoint.is_some() {
            settings.stop = Some(crate::report::interrupt_flag());
        }
        let run = run_nuts_chains(&post, &settings, &observer);
        drop(listening);
        if let (Err(cosmodiff_infer::InferError::Interrupted), Some(path)) = (&run, checkpoint) {
            let st = state.lock().unwrap();
            if st.position.iter().any(Vec::is_empty) {
                anyhow::bail!(
                    "interrupted before every chain had started: nothing to resume, rerun the same command to start again"
                );
            }
            write_checkpoint(path, &meta, &st, np).context("writing the full-field checkpoint")?;
            let kept = st.diverging.iter().map(Vec::len).min().unwrap_or(0);
            anyhow::bail!(
                "interrupted: {kept} draws per chain kept in {}; rerun the same command to resume",
                path.display()
            );
        }
        outputs = run?;
        if let Some(e) = write_error.into_inner().unwrap() {
            return Err(e.context("writing the full-field checkpoint"));
        }
    }
    // Each chain: its stored draws, then the new ones it still needed.
    let merged: Vec<ChainOutput> = (0..chains)
        .map(|c| {
            let mut o = ChainOutput::default();
            if let Some(prev) = &old {
                let n = prev.diverging[c].len().min(draws);
                o.draws.extend_from_slice(&prev.draws[c][..n * np]);
                o.diverging.extend_from_slice(&prev.diverging[c][..n]);
                o.step_size.resize(n, f64::NAN);
                o.tree_depth.resize(n, 0);
                o.n_leapfrog.resize(n, 0);
                o.energy.resize(n, f64::NAN);
                o.logp.resize(n, f64::NAN);
                o.accept.resize(n, f64::NAN);
            }
            if let Some(new) = outputs.get(c) {
                let k = draws - o.diverging.len();
                o.draws.extend_from_slice(&new.draws[..k * np]);
                o.diverging.extend_from_slice(&new.diverging[..k]);
                o.step_size.extend_from_slice(&new.step_size[..k]);
                o.tree_depth.extend_from_slice(&new.tree_depth[..k]);
                o.n_leapfrog.extend_from_slice(&new.n_leapfrog[..k]);
                o.energy.extend_from_slice(&new.energy[..k]);
                o.logp.extend_from_slice(&new.logp[..k]);
                o.accept.extend_from_slice(&new.accept[..k]);
                o.warmup_divergences = new.warmup_divergences;
                o.failed_evaluations = new.failed_evaluations;
                o.first_problem = new.first_problem.clone();
            }
            o
        })
        .collect();
    if let Some(p) = checkpoint {
        let st = state.into_inner().unwrap();
        write_checkpoint(p, &meta, &st, np).context("writing the full-field checkpoint")?;
    }
    let names = model.setup.names.iter().map(|s| s.to_string()).collect();
    Ok(Samples::from_chains(
        names,
        np,
        merged,
        "nuts",
        settings.warmup,
        settings.seed,
        start.elapsed().as_secs_f64(),
    )?)
}

/// Seconds between checkpoint writes of a full-field run.
pub const CHECKPOINT_SECONDS: f64 = 60.0;

/// What a checkpoint holds per chain.
#[derive(Debug, Clone)]
struct State {
    /// Stored draws, flat `[n][n_params]`.
    draws: Vec<Vec<f64>>,
    diverging: Vec<Vec<bool>>,
    /// Last position in sampling space.
    position: Vec<Vec<f64>>,
}

fn write_checkpoint(path: &Path, meta: &[f64], st: &State, np: usize) -> anyhow::Result<()> {
    let mut z = Npz::new();
    z.add_1d("meta", meta)?;
    for c in 0..st.draws.len() {
        let n = st.diverging[c].len();
        z.add(
            &format!("draws_{c}"),
            &[n, np],
            st.draws[c][..n * np].to_vec(),
        )?;
        z.add_bool(&format!("diverging_{c}"), &[n], st.diverging[c].clone())?;
        z.add_1d(&format!("position_{c}"), &st.position[c])?;
    }
    z.write(path)
}

fn read_checkpoint(path: &Path, meta: &[f64], chains: usize, np: usize) -> anyhow::Result<State> {
    let bad = |m: String| anyhow::anyhow!("checkpoint {}: {m}", path.display());
    let f = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
    let mut z = ndarray_npy::NpzReader::new(f).map_err(|e| bad(e.to_string()))?;
    let m = crate::io::npz_float(&mut z, "meta").map_err(|e| bad(e.to_string()))?;
    if m.iter().copied().collect::<Vec<_>>() != meta {
        return Err(bad(
            "it belongs to another run (chains, seed, set-up or data differ); delete it or choose another --out".into(),
        ));
    }
    let mut st = State {
        draws: vec![],
        diverging: vec![],
        position: vec![],
    };
    for c in 0..chains {
        let d =
            crate::io::npz_float(&mut z, &format!("draws_{c}")).map_err(|e| bad(e.to_string()))?;
        let v: ndarray::ArrayD<bool> = z
            .by_name(&format!("diverging_{c}"))
            .map_err(|e| bad(e.to_string()))?;
        let p = crate::io::npz_float(&mut z, &format!("position_{c}"))
            .map_err(|e| bad(e.to_string()))?;
        if d.ndim() != 2
            || d.shape()[1] != np
            || d.shape()[0] != v.len()
            || p.len() != meta[2] as usize
        {
            return Err(bad(format!("chain {c} has inconsistent arrays")));
        }
        st.draws.push(d.iter().copied().collect());
        st.diverging.push(v.iter().copied().collect());
        st.position.push(p.iter().copied().collect());
    }
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lensing_cosmology::{Setup, SetupName};

    fn settings(draws: usize, seed: u64) -> NutsSettings {
        NutsSettings {
            chains: 1,
            warmup: 8,
            draws,
            seed,
            progress: false,
            max_depth: 4,
            init_radius: 0.1,
            ..Default::default()
        }
    }

    /// A finished run extended with more draws resumes from its checkpoint:
    /// the stored draws come back unchanged, only the missing ones are
    /// sampled; a checkpoint of another run is refused.
    #[test]
    fn checkpoint_resumes_without_losing_draws() {
        let model = FieldModel::new(Setup::new(SetupName::SbiLens128).unwrap()).unwrap();
        let s = &model.setup;
        let np2 = s.npix * s.npix;
        let z = vec![cosmodiff_field::grf2::white_noise(np2, 3)];
        let data = model.kappa(&s.fiducial, &z).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ck = dir.path().join("checkpoint.npz");
        let a = sample(&model, &data, &s.fiducial, settings(3, 5), Some(&ck)).unwrap();
        assert!(ck.exists());
        let b = sample(&model, &data, &s.fiducial, settings(5, 5), Some(&ck)).unwrap();
        assert_eq!(b.n_draws(), 5);
        let (fa, fb) = (a.flat_draws(), b.flat_draws());
        assert_eq!(&fb[..6], &fa[..6], "stored draws changed on resume");
        assert!(fb[6..].iter().all(|v| v.is_finite()));
        let e = sample(&model, &data, &s.fiducial, settings(5, 6), Some(&ck)).unwrap_err();
        assert!(e.to_string().contains("another run"), "{e}");
    }
}
