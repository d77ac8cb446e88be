//! The `cosmodiff pointcloud` workflows: a variational diffusion model of
//! halo catalogues `p(halos | Omega_m, sigma8)` ([`cosmodiff_pointcloud`]),
//! trained on a `cosmodiff simulate halos` campaign, sampled, and used as a
//! likelihood (the ELBO) to infer the cosmology of one catalogue.
//!
//! Training config (`--config`, TOML; every key optional):
//!
//! ```toml
//! [data]
//! n_halos = 256      # the most massive halos of each catalogue
//! velocity = false   # model velocities [km/s] (catalogues need them)
//! mass = true        # model log10 masses
//! dequantize = true  # spread FoF masses over their particle-count bins
//! [net]              # kind = "gnn" | "egnn", hidden, layers, k, noise_features, fourier
//! [schedule]         # kind = "linear" | "net", gamma_0, gamma_1, learn_endpoints, features
//! [train]            # steps, batch_size, learning_rate, seed, augment
//! ```
//!
//! A model directory holds `pointcloud.json` (the model, its normalisation,
//! and under `simulation` the campaign's `config.toml` and the halo
//! selection) and `weights.safetensors`; `train.json` summarises the run.

pub mod baseline;
pub mod bench;
pub mod evaluate;
pub mod infer;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use cosmodiff_pointcloud::model::{train as train_model, PointVdmConfig, FORMAT};
use cosmodiff_pointcloud::{NetConfig, PointVdm, ScheduleConfig, TrainSettings as ModelTrain};
use serde::Deserialize;
use serde_json::json;

use crate::pm::PmToml;

/// `cosmodiff pointcloud train`.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct TrainSettings {
    /// Campaign folder written by `cosmodiff simulate halos` (params.csv, config.toml, halos_*.npz).
    #[cfg_attr(feature = "cli", arg(long))]
    pub catalogs: PathBuf,
    /// Model directory to write (pointcloud.json, weights.safetensors, train.json).
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
    /// TOML with [data] (n_halos, velocity, mass), [net] (kind = gnn|egnn, hidden, layers, k), [schedule] and [train] (steps, batch_size, learning_rate, seed, augment).
    #[cfg_attr(feature = "cli", arg(long))]
    pub config: Option<PathBuf>,
    #[cfg_attr(feature = "cli", command(flatten))]
    pub reuse: crate::run_dir::Reuse,
    #[cfg_attr(feature = "cli", command(flatten))]
    pub checkpoints: crate::run_dir::Checkpoints,
}

/// The training config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainToml {
    pub data: DataSection,
    pub net: NetConfig,
    pub schedule: ScheduleConfig,
    pub train: TrainSection,
}

/// `[data]`: which halos and columns make a cloud.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataSection {
    /// The most massive halos of each catalogue.
    pub n_halos: usize,
    /// Model velocities.
    pub velocity: bool,
    /// Model log10 masses.
    pub mass: bool,
    /// Spread each friends-of-friends mass uniformly over its particle-count
    /// bin, `M (1 + (u - 1/2) / n_particles)` with `u ~ U(0, 1)` seeded by
    /// the catalogue (catalogues with `n_particles` only). FoF masses are
    /// whole numbers of particles: the few hundred most massive halos of a
    /// box take fewer than a hundred distinct values, a discrete variable
    /// whose continuous density is unbounded (the learned schedule's
    /// `gamma_0` then runs away, and the mass quantum, proportional to
    /// Omega_m, would leak the parameter).
    #[serde(default)]
    pub dequantize: bool,
}

impl Default for DataSection {
    fn default() -> Self {
        Self {
            n_halos: 256,
            velocity: false,
            mass: true,
            dequantize: true,
        }
    }
}

/// `[train]`: the optimiser's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainSection {
    pub steps: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub seed: u64,
    pub augment: bool,
}

impl Default for TrainSection {
    fn default() -> Self {
        let d = ModelTrain::default();
        Self {
            steps: d.steps,
            batch_size: d.batch_size,
            learning_rate: d.learning_rate,
            seed: d.seed,
            augment: d.augment,
        }
    }
}

/// The catalogues of a campaign as clouds.
pub struct Campaign {
    /// `[Omega_m, sigma8]` of each simulation.
    pub theta: Vec<Vec<f64>>,
    /// One cloud per simulation (row-major `[n_halos, F]`).
    pub clouds: Vec<Vec<f64>>,
    /// Side of the box [Mpc/h].
    pub box_size: f64,
    /// The campaign's `config.toml`.
    pub config_text: String,
    /// Index (params.csv) of each catalogue.
    pub index: Vec<usize>,
}

/// The `n` most massive halos of a catalogue as a cloud (positions, then
/// velocities and log10 masses as `data` asks).
pub fn select(path: &Path, box_size: f64, data: &DataSection, flag: &str) -> Result<Vec<f64>> {
    let cat = crate::halos::read_catalogue(path, box_size, flag)?;
    let n = cat.position.len();
    if n < data.n_halos {
        bail!(
            "{flag} {}: {n} halos, fewer than the {} the model uses",
            path.display(),
            data.n_halos
        );
    }
    let mass = cat
        .mass
        .ok_or_else(|| anyhow!("{flag} {}: no 'mass' array", path.display()))?;
    if let Some(i) = mass.iter().position(|m| !(*m > 0.0)) {
        bail!("{flag} {}: mass {i} is not positive", path.display());
    }
    let velocity = if data.velocity {
        let f = std::fs::File::open(path)?;
        let mut z = ndarray_npy::NpzReader::new(f)?;
        let v = crate::io::npz_float(&mut z, "velocity").map_err(|_| {
            anyhow!(
                "{flag} {}: no 'velocity' array ([data] velocity = true needs catalogues with velocities)",
                path.display()
            )
        })?;
        if v.shape() != [n, 3] || v.iter().any(|x| !x.is_finite()) {
            bail!(
                "{flag} {}: 'velocity' must be [{n}, 3] finite values",
                path.display()
            );
        }
        Some(v.iter().copied().collect::<Vec<f64>>())
    } else {
        None
    };
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| mass[b].total_cmp(&mass[a]).then(a.cmp(&b)));
    let mass = if data.mass && data.dequantize {
        dequantized(path, &cat.position, &mass, flag)?
    } else {
        mass
    };
    let mut cloud = vec![];
    for &i in &order[..data.n_halos] {
        cloud.extend(cat.position[i]);
        if let Some(v) = &velocity {
            cloud.extend(&v[3 * i..3 * i + 3]);
        }
        if data.mass {
            cloud.push(mass[i].log10());
        }
    }
    Ok(cloud)
}

/// Masses spread over their particle-count bins (see
/// [`DataSection::dequantize`]); unchanged when the catalogue has no
/// `n_particles`.
fn dequantized(path: &Path, pos: &[[f64; 3]], mass: &[f64], flag: &str) -> Result<Vec<f64>> {
    use rand::{RngExt, SeedableRng};
    let f = std::fs::File::open(path)?;
    let mut z = ndarray_npy::NpzReader::new(f)?;
    let counts: Vec<f64> = match z.by_name::<ndarray::OwnedRepr<i64>, ndarray::IxDyn>("n_particles")
    {
        Ok(a) => a.iter().map(|&c| c as f64).collect(),
        Err(_) => match z.by_name::<ndarray::OwnedRepr<i64>, ndarray::IxDyn>("n_particles.npy") {
            Ok(a) => a.iter().map(|&c| c as f64).collect(),
            Err(_) => return Ok(mass.to_vec()),
        },
    };
    if counts.len() != mass.len() || counts.iter().any(|c| !(*c >= 1.0)) {
        bail!(
            "{flag} {}: 'n_particles' must hold one count >= 1 per halo",
            path.display()
        );
    }
    // seeded by the catalogue's content: the same catalogue, the same masses
    let seed = pos
        .iter()
        .take(8)
        .flatten()
        .fold(0x9e37_79b9_7f4a_7c15u64, |h, x| {
            (h ^ x.to_bits()).wrapping_mul(0x100_0000_01b3)
        });
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    Ok(mass
        .iter()
        .zip(&counts)
        .map(|(m, c)| m * (1.0 + (rng.random::<f64>() - 0.5) / c))
        .collect())
}

/// Read a campaign folder (see [`TrainSettings::catalogs`]).
pub fn read_campaign(dir: &Path, data: &DataSection) -> Result<Campaign> {
    let flag = "--catalogs";
    let config_path = dir.join("config.toml");
    let config_text = std::fs::read_to_string(&config_path).with_context(|| {
        format!(
            "{flag} {}: no config.toml (a folder written by `cosmodiff simulate halos`)",
            dir.display()
        )
    })?;
    let t: PmToml = crate::config::parse(&config_text, &config_path)?;
    let (_, _, box_size) = t.geometry();
    let csv = std::fs::read_to_string(dir.join("params.csv"))
        .with_context(|| format!("{flag} {}: no params.csv", dir.display()))?;
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let col = |name: &str| {
        header.iter().position(|h| h.trim() == name).ok_or_else(|| {
            anyhow!(
                "{flag} {}: params.csv has no '{name}' column",
                dir.display()
            )
        })
    };
    let (ci, cm, cs) = (col("index")?, col("Omega_m")?, col("sigma8")?);
    let (mut theta, mut clouds, mut indices) = (vec![], vec![], vec![]);
    let mut missing = 0;
    for (ln, line) in lines.enumerate() {
        let f: Vec<&str> = line.split(',').collect();
        let num = |c: usize| -> Result<f64> {
            f.get(c)
                .and_then(|v| v.trim().parse::<f64>().ok())
                .ok_or_else(|| {
                    anyhow!(
                        "{flag} {}: params.csv line {} is malformed",
                        dir.display(),
                        ln + 2
                    )
                })
        };
        let index = num(ci)? as usize;
        let path = dir.join(crate::halos::campaign::Product::Halos.file_name(index));
        if !path.is_file() {
            missing += 1;
            continue;
        }
        clouds.push(select(&path, box_size, data, flag)?);
        theta.push(vec![num(cm)?, num(cs)?]);
        indices.push(index);
    }
    if missing > 0 {
        say!(
            "{flag} {}: {missing} simulations not finished; training on the {} done",
            dir.display(),
            clouds.len()
        );
    }
    if clouds.len() < 2 {
        bail!(
            "{flag} {}: need at least 2 finished catalogues, found {}",
            dir.display(),
            clouds.len()
        );
    }
    Ok(Campaign {
        theta,
        clouds,
        box_size,
        config_text,
        index: indices,
    })
}

/// `cosmodiff pointcloud train`.
pub fn train(s: &TrainSettings) -> Result<PointVdm> {
    let cfg: TrainToml = match &s.config {
        Some(p) => crate::config::load(p)?,
        None => TrainToml::default(),
    };
    cfg.net.validate()?;
    cfg.schedule.validate()?;
    s.checkpoints.check()?;
    if cfg.data.n_halos <= cfg.net.k {
        bail!(
            "[data] n_halos = {} must exceed [net] k = {}",
            cfg.data.n_halos,
            cfg.net.k
        );
    }
    let campaign = read_campaign(&s.catalogs, &cfg.data)?;
    crate::output::refuse_overwriting_inputs(
        "--out",
        &s.out.join(cosmodiff_pointcloud::model::CONFIG),
        &[("--catalogs", &s.catalogs)],
    )?;
    let mut inputs = vec![
        ("--catalogs params.csv", s.catalogs.join("params.csv")),
        ("--catalogs config.toml", s.catalogs.join("config.toml")),
    ];
    if let Some(p) = &s.config {
        inputs.push(("--config", p.clone()));
    }
    // the catalogues themselves: a campaign that finished more simulations
    // since is a different training set
    for i in 0..campaign.index.len() {
        let name = crate::halos::campaign::Product::Halos.file_name(campaign.index[i]);
        inputs.push(("--catalogs", s.catalogs.join(name)));
    }
    let inputs: Vec<(&str, &Path)> = inputs.iter().map(|(a, b)| (*a, b.as_path())).collect();
    let dir = crate::run_dir::RunDir::open(
        &s.out,
        "pointcloud train",
        s,
        s.reuse,
        crate::run_dir::Kind::Training,
        &inputs,
    )?;
    let start = Instant::now();
    let config = PointVdmConfig {
        format: FORMAT,
        n_points: cfg.data.n_halos,
        box_size: campaign.box_size,
        velocity: cfg.data.velocity,
        mass: cfg.data.mass,
        theta_names: vec!["Omega_m".into(), "sigma8".into()],
        theta_mean: vec![],
        theta_std: vec![],
        theta_range: vec![],
        scalar_mean: vec![],
        scalar_std: vec![],
        net: cfg.net.clone(),
        schedule: cfg.schedule.clone(),
        simulation: json!({
            "campaign_config": campaign.config_text,
            "selection": cfg.data,
            "n_catalogues": campaign.clouds.len(),
        }),
        report: None,
    };
    let settings = ModelTrain {
        batch_size: cfg.train.batch_size,
        steps: cfg.train.steps,
        learning_rate: cfg.train.learning_rate,
        seed: cfg.train.seed,
        augment: cfg.train.augment,
        progress: true,
        checkpoint: Some(dir.training_checkpoint(s.checkpoints)?),
    };
    let model = {
        let _listening = crate::report::InterruptScope::new();
        dir.training_result(train_model(
            &campaign.clouds,
            &campaign.theta,
            config,
            &settings,
        ))?
    };
    crate::output::write_folder_via(&s.out, |t| Ok(model.save(t)?))?;
    dir.training_done()?;
    let report = model.config.report.clone().unwrap_or_default();
    let summary = json!({
        "n_catalogues": campaign.clouds.len(),
        "n_halos": cfg.data.n_halos,
        "features": model.config.features(),
        "net": cfg.net.kind,
        "epochs": report.epochs,
        "train_nelbo_nats_per_dim": report.train_loss,
        "gamma_endpoints": [model.endpoints().0, model.endpoints().1],
        "wall_seconds": start.elapsed().as_secs_f64(),
    });
    crate::output::write_bytes(
        &s.out.join("train.json"),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    println!(
        "trained a {:?} diffusion model on {} catalogues of {} halos in {:.0} s: final -ELBO {:.4} nats/dim; wrote {}",
        cfg.net.kind,
        campaign.clouds.len(),
        cfg.data.n_halos,
        start.elapsed().as_secs_f64(),
        report.train_loss.last().copied().unwrap_or(f64::NAN),
        s.out.display()
    );
    dir.finish()?;
    Ok(model)
}

/// The model of `--model`, or the shipped default.
pub fn load_model(model: Option<&Path>) -> Result<PointVdm> {
    match model {
        Some(dir) => PointVdm::load(dir).map_err(|e| anyhow!("--model: {e}")),
        None => bail!(
            "no default point-cloud model is shipped yet: pass --model (a directory written by `cosmodiff pointcloud train`)"
        ),
    }
}

/// Refuse parameters outside the model's training design.
pub fn check_theta(model: &PointVdm, theta: &[f64], what: &str) -> Result<()> {
    let c = &model.config;
    if theta.len() != c.theta_names.len() {
        bail!(
            "{what}: {} values, the model has {} parameters ({})",
            theta.len(),
            c.theta_names.len(),
            c.theta_names.join(", ")
        );
    }
    for ((v, name), r) in theta.iter().zip(&c.theta_names).zip(&c.theta_range) {
        if !(*v >= r[0] && *v <= r[1]) {
            bail!(
                "{what}: {name} = {v} is outside the training design [{}, {}]",
                r[0],
                r[1]
            );
        }
    }
    Ok(())
}

/// `cosmodiff pointcloud sample`.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct SampleSettings {
    /// Model directory (default: the shipped model).
    #[cfg_attr(feature = "cli", arg(long))]
    pub model: Option<PathBuf>,
    /// Parameters "Omega_m,sigma8", e.g. "0.3,0.8".
    #[cfg_attr(feature = "cli", arg(long, allow_hyphen_values = true))]
    pub theta: String,
    /// Catalogues to draw.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 8))]
    pub n: usize,
    /// Output .npz: position [n, N, 3] (Mpc/h), velocity [n, N, 3] (km/s) and mass [n, N] (Msun/h) when modelled, theta.
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
    /// Seed of the sampler.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0))]
    pub seed: u64,
    /// Ancestral sampling steps.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 256))]
    pub steps: usize,
}

/// Clouds as a catalogue archive: `position` `[n, N, 3]`, `velocity`,
/// `mass` (Msun/h), from rows of `F` columns.
pub fn clouds_npz(model: &PointVdm, clouds: &[Vec<f64>]) -> Result<crate::io::Npz> {
    let c = &model.config;
    let (n, np, f) = (clouds.len(), c.n_points, c.features());
    let col = |range: std::ops::Range<usize>| -> Vec<f64> {
        clouds
            .iter()
            .flat_map(|cl| cl.chunks_exact(f).flat_map(|r| r[range.clone()].to_vec()))
            .collect()
    };
    let mut z = crate::io::Npz::new();
    z.add("position", &[n, np, 3], col(0..3))?;
    if c.velocity {
        z.add("velocity", &[n, np, 3], col(3..6))?;
    }
    if c.mass {
        let m = col(f - 1..f).iter().map(|l| 10f64.powf(*l)).collect();
        z.add("mass", &[n, np], m)?;
    }
    Ok(z)
}

/// `cosmodiff pointcloud sample`: catalogues drawn from the model at theta.
pub fn sample(s: &SampleSettings) -> Result<Vec<Vec<f64>>> {
    crate::io::require_npz(&s.out)?;
    let theta = crate::fieldflow::parse_theta(&s.theta)?;
    if s.n == 0 || s.steps == 0 {
        bail!("--n and --steps must be at least 1");
    }
    crate::output::check_parent_dir(Some(&s.out), "--out")?;
    let model = load_model(s.model.as_deref())?;
    check_theta(&model, &theta, "--theta")?;
    let start = Instant::now();
    let clouds = model.sample(&theta, s.n, s.steps, s.seed)?;
    let mut z = clouds_npz(&model, &clouds)?;
    z.add_1d("theta", &theta)?;
    z.write(&s.out)?;
    println!(
        "drew {} catalogues of {} halos at {} = {:?} in {:.1} s; wrote {}",
        s.n,
        model.config.n_points,
        model.config.theta_names.join(","),
        theta,
        start.elapsed().as_secs_f64(),
        s.out.display()
    );
    Ok(clouds)
}

/// `cosmodiff pointcloud mock`.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct MockSettings {
    /// Model directory whose simulation settings are used (default: the shipped model).
    #[cfg_attr(feature = "cli", arg(long))]
    pub model: Option<PathBuf>,
    /// Parameters "Omega_m,sigma8", e.g. "0.3,0.8".
    #[cfg_attr(feature = "cli", arg(long, allow_hyphen_values = true))]
    pub theta: String,
    /// White-noise seed of the initial conditions.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0))]
    pub seed: u64,
    /// Output catalogue (.npz, as `halos fof` writes): the model's halo selection.
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
}

/// One catalogue simulated at `theta` with the model's recorded settings
/// (PM run, friends-of-friends, the `n_halos` most massive halos).
pub fn simulate_catalogue(
    model: &PointVdm,
    theta: &[f64],
    seed: u64,
) -> Result<cosmodiff_catalog::Halos> {
    let sim = &model.config.simulation;
    let text = sim["campaign_config"]
        .as_str()
        .ok_or_else(|| anyhow!("the model records no simulation config (campaign_config)"))?;
    let data: DataSection = serde_json::from_value(sim["selection"].clone())
        .map_err(|e| anyhow!("the model's halo selection is unreadable: {e}"))?;
    let origin = Path::new("pointcloud.json (campaign_config)");
    let t: PmToml = crate::config::parse(text, origin)?;
    let mut c = t.cosmology.build()?;
    c.omega_c = theta[0] - c.omega_b;
    c.sigma8 = theta[1];
    c.validate()
        .map_err(|e| anyhow!("--theta: cosmology: {e}"))?;
    let fof = t.halos.clone().unwrap_or_default().settings()?;
    let s = crate::pm::simulate(&t, &c, origin, Some(seed))?;
    let h = crate::halos::halos_of_simulation(&s, theta[0], &fof)?;
    let n = h.len();
    if n < data.n_halos {
        bail!(
            "the simulation at {theta:?} formed {n} halos, fewer than the model's {}",
            data.n_halos
        );
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| h.mass[b].total_cmp(&h.mass[a]).then(a.cmp(&b)));
    let keep = &order[..data.n_halos];
    Ok(cosmodiff_catalog::Halos {
        position: keep.iter().map(|&i| h.position[i]).collect(),
        velocity: h
            .velocity
            .as_ref()
            .map(|v| keep.iter().map(|&i| v[i]).collect()),
        mass: keep.iter().map(|&i| h.mass[i]).collect(),
        n_particles: keep.iter().map(|&i| h.n_particles[i]).collect(),
        particle_halo: vec![],
    })
}

/// `cosmodiff pointcloud mock`: one simulated catalogue at theta.
pub fn mock(s: &MockSettings) -> Result<cosmodiff_catalog::Halos> {
    crate::io::require_npz(&s.out)?;
    let theta = crate::fieldflow::parse_theta(&s.theta)?;
    crate::output::check_parent_dir(Some(&s.out), "--out")?;
    let model = load_model(s.model.as_deref())?;
    check_theta(&model, &theta, "--theta")?;
    let start = Instant::now();
    let h = simulate_catalogue(&model, &theta, s.seed)?;
    crate::halos::write_halos(&s.out, &h)?;
    println!(
        "simulated {} halos at {:?} (seed {}) in {:.1} s; wrote {}",
        h.len(),
        theta,
        s.seed,
        start.elapsed().as_secs_f64(),
        s.out.display()
    );
    Ok(h)
}
