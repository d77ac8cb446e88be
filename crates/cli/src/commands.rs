//! The subcommand tree: each leaf parses into a settings type of
//! `cosmodiff-pipeline` and runs its workflow; nothing else happens here.

use anyhow::Result;
use clap::Subcommand;
use cosmodiff_pipeline::{
    bin_shear, cosmology, demo, fieldflow, halos, hod, lensing_cosmology, massmap, nn_bench, pm,
    pointcloud, prior, sample, sbi, simulate, stats,
};

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the end-to-end demonstration on built-in defaults (no downloads).
    Demo(demo::Settings),
    /// Background, growth, P(k), angular C_ell, covariance and Fisher matrix from a TOML config.
    Cosmology(cosmology::Settings),
    /// Simulate fields and observations (e.g. tomographic lensing maps).
    #[command(subcommand)]
    Simulate(Simulate),
    /// Bin galaxy shear catalogues (x, y or RA/Dec, e1, e2, weights) into the shear, noise and
    /// mask maps that massmap reads.
    BinShear(bin_shear::Settings),
    /// Reconstruct convergence (mass) maps from shear: Kaiser-Squires, Wiener, diffusion prior.
    Massmap(massmap::Settings),
    /// Sample cosmological parameters with NUTS from the Gaussian C_ell likelihood.
    Sample(sample::Settings),
    /// Particle-mesh N-body simulation.
    #[command(subcommand)]
    Pm(Pm),
    /// Learned score (diffusion) priors of convergence maps: train, evaluate, bench.
    #[command(subcommand)]
    Prior(Prior),
    /// Simulation-based inference: neural posterior / likelihood estimation with normalizing flows.
    #[command(subcommand)]
    Sbi(Sbi),
    /// Halo catalogues from N-body particles (friends-of-friends).
    #[command(subcommand)]
    Halos(Halos),
    /// Galaxies in halos: the Zheng et al. (2007) halo occupation distribution.
    #[command(subcommand)]
    Hod(Hod),
    /// Clustering statistics of a catalogue: xi(r), P(k), kNN-CDFs.
    #[command(subcommand)]
    Stats(Stats),
    /// Cosmology from weak-lensing maps on the sbi_lens benchmark: C_ell, full-field, learned summaries.
    #[command(subcommand)]
    LensingCosmology(LensingCosmology),
    /// Field-level likelihoods from TRENF normalizing flows: train, logprob, infer, fisher, calibrate.
    #[command(subcommand)]
    Fieldflow(Fieldflow),
    /// The neural backend: time the networks on every device of this build.
    #[command(subcommand)]
    Nn(Nn),
    /// Likelihoods of halo catalogues from diffusion models on point clouds: train, sample, mock, infer.
    #[command(subcommand)]
    Pointcloud(Pointcloud),
}

#[derive(Subcommand, Debug)]
pub enum Pointcloud {
    /// Train a variational diffusion model p(halos | Omega_m, sigma8) on a `simulate halos` campaign.
    Train(pointcloud::TrainSettings),
    /// Draw halo catalogues from a trained model at given parameters.
    Sample(pointcloud::SampleSettings),
    /// Simulate one catalogue with the model's recorded settings (PM, friends-of-friends, selection).
    Mock(pointcloud::MockSettings),
    /// Posterior of (Omega_m, sigma8) for one catalogue, the model's ELBO as likelihood on a grid.
    Infer(pointcloud::infer::InferSettings),
    /// Coverage of the ELBO posteriors on held-out catalogues, xi(r) of samples against simulations,
    /// and the ELBO against the exact probability-flow likelihood.
    Evaluate(pointcloud::evaluate::EvaluateSettings),
    /// Time a training step and ELBO evaluations, against the JAX twin of the reference GNN.
    Bench(pointcloud::bench::Settings),
}

#[derive(Subcommand, Debug)]
pub enum Nn {
    /// Time training steps and inference of the U-Net (64^2, 128^2), the
    /// NSF flows (two_moons, slcp), the VMIM encoder and a graph layer on
    /// each device; with --torch-json, ratios against
    /// bench/nn/torch_twins.py run on the same machine.
    Bench(nn_bench::Settings),
}

#[derive(Subcommand, Debug)]
pub enum Fieldflow {
    /// Train a translation- and rotation-equivariant flow p(field | theta) on simulated fields.
    Train(fieldflow::TrainSettings),
    /// Exact log-likelihood log p(field | theta) of one field.
    Logprob(fieldflow::LogprobSettings),
    /// Posterior of theta for one observed field from the flow likelihood.
    Infer(fieldflow::InferSettings),
    /// Fisher matrix of the flow likelihood at a fiducial theta (fields simulated there, or flow samples).
    Fisher(fieldflow::fisher::FisherSettings),
    /// Coverage and figures of merit of grid posteriors on held-out fields, against a P(k)-only likelihood.
    Calibrate(fieldflow::calibrate::CalibrateSettings),
}

#[derive(Subcommand, Debug)]
pub enum LensingCosmology {
    /// Simulate log-normal convergence maps with theta drawn from the set-up's prior.
    Simulate(lensing_cosmology::SimulateSettings),
    /// Posterior of the cosmological parameters of one observed map set.
    Infer(lensing_cosmology::InferSettings),
    /// Compare posteriors of one map: mean, sd, FoM, pairwise C2ST, one overlaid corner plot.
    Compare(lensing_cosmology::CompareSettings),
}

#[derive(Subcommand, Debug)]
pub enum Halos {
    /// Friends-of-friends halos: position [n, 3] (Mpc/h), velocity [n, 3] (km/s,
    /// with --velocities), mass [n] (Msun/h), n_particles [n], sorted by mass.
    #[command(verbatim_doc_comment)]
    Fof(halos::FofArgs),
}

#[derive(Subcommand, Debug)]
pub enum Hod {
    /// Populate halos with galaxies: position [n, 3], is_central [n], weight [n].
    Populate(hod::PopulateSettings),
}

#[derive(Subcommand, Debug)]
pub enum Stats {
    /// Two-point correlation function by exact periodic pair counts (analytic randoms).
    Xi(stats::XiSettings),
    /// Power spectrum of the points (CIC, interlacing, shot noise subtracted).
    Pk(stats::PkSettings),
    /// k-nearest-neighbour CDFs from random query points (Banerjee & Abel 2021).
    Knn(stats::KnnArgs),
    /// Halo mass function dn/dln M, with Tinker08 / Sheth-Tormen predictions (--omega-m).
    Hmf(stats::HmfSettings),
}

#[derive(Subcommand, Debug)]
pub enum Simulate {
    /// Tomographic weak-lensing maps: convergence, shear and noisy ellipticities.
    ///
    /// Config (TOML):
    ///   [cosmology]  as in `cosmodiff cosmology` (missing keys: Planck 2015)
    ///   [options]    transfer, nonlinear (as in `cosmodiff cosmology`)
    ///   [map]        npix = 128, pixel_arcmin = 2.0
    ///   [[source]]   nz = {kind = "smail", a = 1.0, b = 2.0, z0 = 1.0}, sigma_e = 0.26,
    ///                gals_per_arcmin2 = 10.0 (arcmin^-2), lognormal_shift (optional)
    ///   [field]      kind = "gaussian" | "lognormal", seed = 1
    /// Output (.npz): kappa, gamma1, gamma2 (noiseless), e1, e2 (with shape noise),
    /// noise_std [n_bins, npix, npix]; ell, cl_theory [n_pairs, n_ell]; pixel_arcmin.
    #[command(verbatim_doc_comment)]
    Lensing(simulate::LensingSettings),
    /// A campaign of PM runs + friends-of-friends over a design of cosmologies (resumable).
    ///
    /// Config (TOML): the `pm run` sections ([cosmology] [box] [ic] [steps] [force]),
    ///   [halos]   linking_length = 0.2, min_particles = 20
    ///   [design]  kind = "latin_hypercube", n = 100, seed = 0,
    ///             Omega_m = [0.1, 0.5], sigma8 = [0.6, 1.0]
    ///             (or kind = "list" with one Omega_m and sigma8 value per simulation)
    /// Output: DIR/params.csv (index,seed,Omega_m,sigma8,Omega_c), DIR/halos_00000.npz, ...
    /// Rerunning the same command resumes an interrupted campaign.
    #[command(verbatim_doc_comment)]
    Halos(halos::campaign::CampaignSettings),
    /// A campaign of PM runs over a design of cosmologies keeping each final density (resumable).
    ///
    /// Config (TOML): as for `simulate halos`, without [halos].
    /// Output: DIR/params.csv, DIR/density_00000.npy, ... (overdensity
    /// delta = rho/rho_mean - 1 on the n_mesh^3 grid, float32) and, when all
    /// runs are done, DIR/fields.npz (theta [n, 2], theta_names = Omega_m,
    /// sigma8; field [n, N, N, N]; box_size) for `cosmodiff fieldflow train`.
    /// Rerunning the same command resumes an interrupted campaign.
    #[command(verbatim_doc_comment)]
    Density(halos::campaign::CampaignSettings),
}

#[derive(Subcommand, Debug)]
pub enum Pm {
    /// Run a FastPM simulation from a TOML config and write density, positions, P(k).
    ///
    /// Optional [gradient] section: adjoint gradient of a loss of the final
    /// density, loss = "pk" (P(k) against a target table: pk_form = "log" or
    /// "chi2") or "mse" (against a target density .npy), written to
    /// DIR/grad_white_noise.npy (or grad_linear_field.npy for [ic]
    /// linear_field) and DIR/grad_cosmology.json (d loss/d sigma8, d loss/d
    /// Omega_m). See docs/pm.md.
    Run(pm::RunSettings),
}

#[derive(Subcommand, Debug)]
pub enum Prior {
    /// Train a score prior p(kappa) by denoising score matching.
    ///
    /// Config (TOML), either a simulator as in `cosmodiff simulate lensing`
    /// (exactly one [[source]]; maps are drawn on the fly from it) or data:
    ///   data = "maps.npz"      array `kappa` [n_maps, npix, npix] (relative to the config)
    ///   pixel_arcmin = 2.0     pixel size of the data maps
    ///   [cosmology] [options] [map] [[source]] [field]   simulator (when no `data`)
    ///   [training]  n_maps = 2000 (simulator only), steps = 3000, batch_size = 32,
    ///               learning_rate = 1e-3, seed = 0
    ///   [network]   channels = [16, 32, 64], embed_dim = 64,
    ///               hybrid = true (learn the residual of the Gaussian score
    ///               of the maps' power spectrum)
    ///   [sde]       kind = "ve", sigma_min = 0.005, sigma_max = 50.0 (units of
    ///               the maps' pixel std) | kind = "vp", beta_min = 0.1,
    ///               beta_max = 20.0, t_min = 1e-3
    /// Output: MODEL_DIR/weights.safetensors, MODEL_DIR/score_model.json
    /// (architecture, data scale, noise schedule, Gaussian power, training losses).
    #[command(verbatim_doc_comment)]
    Train(prior::TrainSettings),
    /// Validate a prior on held-out simulations, side by side with
    /// Kaiser-Squires and the Wiener filter.
    ///
    /// Uses the simulator of a `prior train` config (its [[source]] sets the
    /// shape noise) with a seed disjoint from the training maps. Writes
    /// DIR/metrics.json (RMSE, Pearson r, 68%/95% per-pixel coverage of
    /// mean +- 1, 2 std, C_ell of posterior samples / truth, prior-sample
    /// C_ell and one-point PDF vs the simulations) and DIR/maps.png.
    #[command(verbatim_doc_comment)]
    Evaluate(prior::EvaluateSettings),
    /// Time the default U-Net: training throughput (maps/s) and one batched
    /// score evaluation; with --torch-json, ratios against
    /// bench/diffusion/unet_torch.py run on the same machine.
    Bench(prior::BenchSettings),
}

#[derive(Subcommand, Debug)]
pub enum Sbi {
    /// Train a neural posterior (npe) or likelihood (nle) estimator on simulations.
    Train(sbi::TrainSettings),
    /// Draw posterior samples for one observation from a trained model.
    Sample(sbi::SampleSettings),
    /// Simulate, train and score an sbibm task (C2ST against reference posteriors).
    Benchmark(sbi::BenchmarkSettings),
}

impl Command {
    /// Run the workflow the arguments name.
    pub fn run(&self) -> Result<()> {
        match self {
            Command::Demo(s) => demo::run(s),
            Command::Cosmology(s) => cosmology::run(s),
            Command::Simulate(Simulate::Lensing(s)) => simulate::lensing(s),
            Command::BinShear(s) => bin_shear::run(s),
            Command::Massmap(s) => massmap::run(s),
            Command::Sample(s) => sample::run(s),
            Command::Pm(Pm::Run(s)) => pm::run(s),
            Command::Prior(Prior::Train(s)) => prior::train(s),
            Command::Prior(Prior::Evaluate(s)) => prior::evaluate(s),
            Command::Prior(Prior::Bench(s)) => prior::bench(s),
            Command::Sbi(Sbi::Train(s)) => sbi::train(s),
            Command::Sbi(Sbi::Sample(s)) => sbi::sample(s),
            Command::Sbi(Sbi::Benchmark(s)) => sbi::benchmark(s),
            Command::Simulate(Simulate::Halos(s)) => halos::campaign::run(s),
            Command::Simulate(Simulate::Density(s)) => halos::campaign::run_density(s),
            Command::Halos(Halos::Fof(s)) => halos::fof(s).map(drop),
            Command::Hod(Hod::Populate(s)) => hod::populate(s).map(drop),
            Command::Stats(Stats::Xi(s)) => stats::xi(s).map(drop),
            Command::Stats(Stats::Pk(s)) => stats::pk(s).map(drop),
            Command::Stats(Stats::Knn(s)) => stats::knn(s).map(drop),
            Command::Stats(Stats::Hmf(s)) => stats::hmf(s).map(drop),
            Command::LensingCosmology(LensingCosmology::Simulate(s)) => {
                lensing_cosmology::simulate(s)
            }
            Command::LensingCosmology(LensingCosmology::Infer(s)) => {
                lensing_cosmology::infer(s).map(drop)
            }
            Command::LensingCosmology(LensingCosmology::Compare(s)) => {
                lensing_cosmology::compare(s).map(drop)
            }
            Command::Nn(Nn::Bench(s)) => nn_bench::run(s).map(drop),
            Command::Pointcloud(Pointcloud::Train(s)) => pointcloud::train(s).map(drop),
            Command::Pointcloud(Pointcloud::Sample(s)) => pointcloud::sample(s).map(drop),
            Command::Pointcloud(Pointcloud::Mock(s)) => pointcloud::mock(s).map(drop),
            Command::Pointcloud(Pointcloud::Infer(s)) => pointcloud::infer::infer(s).map(drop),
            Command::Pointcloud(Pointcloud::Bench(s)) => pointcloud::bench::run(s).map(drop),
            Command::Pointcloud(Pointcloud::Evaluate(s)) => {
                pointcloud::evaluate::evaluate(s).map(drop)
            }
            Command::Fieldflow(Fieldflow::Train(s)) => fieldflow::train(s).map(drop),
            Command::Fieldflow(Fieldflow::Logprob(s)) => fieldflow::logprob(s).map(drop),
            Command::Fieldflow(Fieldflow::Infer(s)) => fieldflow::infer(s).map(drop),
            Command::Fieldflow(Fieldflow::Fisher(s)) => fieldflow::fisher::fisher(s).map(drop),
            Command::Fieldflow(Fieldflow::Calibrate(s)) => {
                fieldflow::calibrate::calibrate(s).map(drop)
            }
        }
    }
}
