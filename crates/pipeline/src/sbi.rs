//! `cosmodiff sbi`: simulation-based inference with normalizing flows —
//! train NPE / NLE on (theta, x) simulations, sample posteriors, and run the
//! sbibm benchmark tasks with C2ST.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use cosmodiff_sbi::arrays::rows;
use cosmodiff_sbi::benchmark::{find_reference_root, run_task};
use cosmodiff_sbi::tasks::Task;
use cosmodiff_sbi::{Method, SbiModel, SbiOptions, SbiPrior};
use ndarray::Array2;

/// Network and training options shared by `train` and `benchmark`.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct NetSettings {
    /// Flow family: nsf (spline coupling, default for npe), maf (default for nle), realnvp, nsf_ar.
    #[cfg_attr(feature = "cli", arg(long))]
    pub flow: Option<String>,
    /// Embedding network for x (npe only): mlp or cnn (square 2-D maps); default none.
    #[cfg_attr(feature = "cli", arg(long))]
    pub embedding: Option<String>,
    /// Number of learned summaries of the embedding network (needs --embedding).
    #[cfg_attr(feature = "cli", arg(long))]
    pub summary_dim: Option<usize>,
    /// Flow transforms.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 5))]
    pub transforms: usize,
    /// Hidden units per layer.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 50))]
    pub hidden: usize,
    /// Spline bins (nsf, nsf_ar only) [default: 10].
    #[cfg_attr(feature = "cli", arg(long))]
    pub bins: Option<usize>,
    /// Adam learning rate.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 5e-4))]
    pub lr: f64,
    /// Mini-batch size (sbi's default 200; sbibm's published numbers used
    /// 10000, i.e. full-batch training, which is slower and less accurate here).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 200))]
    pub batch_size: usize,
    /// Maximum epochs (training stops earlier when the validation loss stalls).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 2000))]
    pub max_epochs: usize,
    /// Epochs without validation improvement before stopping.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 20))]
    pub patience: usize,
    /// AdamW weight decay (0: Adam).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0.0))]
    pub weight_decay: f64,
    /// Cosine learning-rate decay to 1% over max-epochs instead of a constant rate.
    #[cfg_attr(feature = "cli", arg(long))]
    pub cosine: bool,
}

#[derive(Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct TrainSettings {
    /// Parameters of the simulations, [N, dim_theta] (.npy, float64 or float32).
    #[cfg_attr(feature = "cli", arg(long))]
    pub theta: PathBuf,
    /// Simulated data, [N, dim_x] (.npy); 2-D maps may be [N, side, side].
    #[cfg_attr(feature = "cli", arg(long))]
    pub x: PathBuf,
    /// npe (posterior) or nle (likelihood).
    #[cfg_attr(feature = "cli", arg(long))]
    pub method: String,
    /// Model directory to write.
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
    /// Prior: TOML with one [[param]] block per dimension (name, prior = "uniform", low, high, ...).
    /// Default: the bounding box of THETA.
    #[cfg_attr(feature = "cli", arg(long))]
    pub prior: Option<PathBuf>,
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0))]
    pub seed: u64,
    #[cfg_attr(feature = "cli", command(flatten))]
    pub net: NetSettings,
    #[cfg_attr(feature = "cli", command(flatten))]
    pub reuse: crate::run_dir::Reuse,
    #[cfg_attr(feature = "cli", command(flatten))]
    pub checkpoints: crate::run_dir::Checkpoints,
}

#[derive(Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct SampleSettings {
    /// Model directory written by `cosmodiff sbi train`.
    #[cfg_attr(feature = "cli", arg(long))]
    pub model: PathBuf,
    /// One observation, [dim_x] or [1, dim_x] (.npy).
    #[cfg_attr(feature = "cli", arg(long))]
    pub x_obs: PathBuf,
    #[cfg_attr(feature = "cli", arg(long))]
    pub num_samples: usize,
    /// Output .npy, [N, dim_theta] float64.
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0))]
    pub seed: u64,
}

#[derive(Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct BenchmarkSettings {
    /// two_moons, gaussian_linear, gaussian_mixture or slcp.
    #[cfg_attr(feature = "cli", arg(long))]
    pub task: String,
    #[cfg_attr(feature = "cli", arg(long))]
    pub num_simulations: usize,
    /// npe or nle.
    #[cfg_attr(feature = "cli", arg(long))]
    pub method: String,
    /// Output directory (c2st.json, timings.json, samples, model/).
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
    /// Posterior draws per observation.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 10_000))]
    pub num_samples: usize,
    /// Observations to score (1-5).
    #[cfg_attr(
        feature = "cli",
        arg(long, value_delimiter = ',', default_value = "1,2,3,4,5")
    )]
    pub observations: Vec<usize>,
    /// Folder with the reference tasks (default: ../shared/reference/sbi).
    #[cfg_attr(feature = "cli", arg(long))]
    pub reference: Option<PathBuf>,
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0))]
    pub seed: u64,
    #[cfg_attr(feature = "cli", command(flatten))]
    pub net: NetSettings,
    #[cfg_attr(feature = "cli", command(flatten))]
    pub reuse: crate::run_dir::Reuse,
}

/// Read a float .npy (float64 or float32) as a matrix (see
/// [`cosmodiff_sbi::arrays::rows`]).
fn read_matrix(path: &Path, what: &str) -> Result<Array2<f64>> {
    let a = crate::io::read_float_npy(path, what)?;
    Ok(rows(
        a.view(),
        &format!("{what} {}", path.display()),
        false,
    )?)
}

/// Parameters of simulations: `[N, dim_theta]` (or `[N]`), never flattened
/// from more axes.
fn read_theta(path: &Path) -> Result<Array2<f64>> {
    let a = crate::io::read_float_npy(path, "--theta")?;
    if a.ndim() > 2 {
        bail!(
            "--theta {}: shape {:?}; expected [N, dim_theta] (one row of parameters per simulation)",
            path.display(),
            a.shape()
        );
    }
    Ok(rows(
        a.view(),
        &format!("--theta {}", path.display()),
        false,
    )?)
}

fn options(method: Method, net: &NetSettings, seed: u64) -> Result<SbiOptions> {
    let mut o = SbiOptions::from_names(
        method,
        net.flow.as_deref(),
        net.embedding.as_deref(),
        net.bins,
        net.cosine,
    )?;
    o.summary_dim = net.summary_dim;
    o.num_transforms = net.transforms;
    o.hidden = net.hidden;
    o.train.learning_rate = net.lr;
    o.train.batch_size = net.batch_size;
    o.train.max_epochs = net.max_epochs;
    o.train.patience = net.patience;
    o.train.weight_decay = net.weight_decay;
    o.train.seed = seed;
    o.train.progress = !crate::report::is_quiet();
    // Weights, gradients and the two Adam moments in f32 for about three
    // hidden-by-hidden layers per transform, plus the activations of a batch.
    let (t, h) = (net.transforms as f64, net.hidden as f64);
    let bytes = 16.0 * t * 3.0 * h * h + 40.0 * net.batch_size as f64 * t * h;
    crate::budget::check(
        &format!(
            "a flow of --transforms {} with --hidden {}",
            net.transforms, net.hidden
        ),
        bytes,
    )?;
    Ok(o)
}

/// `cosmodiff sbi train`: fit NPE or NLE to (theta, x) simulations.
pub fn train(a: &TrainSettings) -> Result<()> {
    let method = Method::parse(&a.method)?;
    let theta = read_theta(&a.theta)?;
    let x = read_matrix(&a.x, "--x")?;
    if theta.nrows() != x.nrows() {
        bail!(
            "--theta has {} simulations but --x has {}",
            theta.nrows(),
            x.nrows()
        );
    }
    let prior = match &a.prior {
        Some(p) => SbiPrior::from_toml_file(p)?,
        None => SbiPrior::bounding_box(theta.view())?,
    };
    let mut opts = options(method, &a.net, a.seed)?;
    a.checkpoints.check()?;
    let mut inputs = vec![("--theta", a.theta.as_path()), ("--x", a.x.as_path())];
    if let Some(p) = &a.prior {
        inputs.push(("--prior", p.as_path()));
    }
    let dir = crate::run_dir::RunDir::open(
        &a.out,
        "sbi train",
        a,
        a.reuse,
        crate::run_dir::Kind::Training,
        &inputs,
    )?;
    opts.train.checkpoint = Some(dir.training_checkpoint(a.checkpoints)?);
    log::info!(
        "training {} ({}) on {} simulations",
        method.name(),
        opts.flow.name(),
        theta.nrows()
    );
    let model = {
        let _listening = crate::report::InterruptScope::new();
        dir.training_result(SbiModel::train(theta.view(), x.view(), prior, &opts))?
    };
    crate::output::write_folder_via(&a.out, |t| Ok(model.save(t)?))?;
    dir.training_done()?;
    loss_plot(&a.out.join("loss.png"), &model)?;
    let r = &model.report;
    if !crate::report::is_quiet() {
        eprintln!(
            "trained {} in {:.1} s: {} epochs, best {} loss {:.4} at epoch {}; model in {}",
            method.name(),
            r.seconds,
            r.epochs,
            if r.n_validation > 0 {
                "validation"
            } else {
                "training"
            },
            r.best_validation_loss,
            r.best_epoch + 1,
            a.out.display()
        );
    }
    dir.finish()
}

fn loss_plot(path: &Path, m: &SbiModel) -> Result<()> {
    let r = &m.report;
    let ep: Vec<f64> = (1..=r.train_loss.len()).map(|e| e as f64).collect();
    let mut plot = cosmodiff_plot::lines::LinePlot::new("training", "epoch", "-mean log q").add(
        cosmodiff_plot::lines::Series::line("train", &ep, &r.train_loss),
    );
    if !r.validation_loss.is_empty() {
        plot = plot.add(cosmodiff_plot::lines::Series::line(
            "validation",
            &ep,
            &r.validation_loss,
        ));
    }
    crate::output::write_via(path, |t| Ok(plot.save(t)?))
}

/// `cosmodiff sbi sample`: posterior samples for one observation.
pub fn sample(a: &SampleSettings) -> Result<()> {
    if a.num_samples == 0 || a.num_samples > 100_000_000 {
        bail!("--num-samples must be between 1 and 100000000");
    }
    if a.out.extension().and_then(|e| e.to_str()) != Some("npy") {
        bail!("--out {}: the samples are written as .npy", a.out.display());
    }
    crate::output::refuse_overwriting_inputs("--out", &a.out, &[("--x-obs", &a.x_obs)])?;
    let model = SbiModel::load(&a.model)?;
    let x = crate::io::read_float_npy(&a.x_obs, "--x-obs")?;
    let xo = model.observation(x.view(), &format!("--x-obs {}", a.x_obs.display()))?;
    let (s, info) = model.sample(xo.view(), a.num_samples, a.seed)?;
    crate::output::write_npy(&a.out, &s)?;
    if !crate::report::is_quiet() {
        eprintln!(
            "{} samples in {:.2} s (prior acceptance {:.3}) -> {}",
            a.num_samples,
            info.seconds,
            info.acceptance,
            a.out.display()
        );
    }
    Ok(())
}

/// `cosmodiff sbi benchmark`: an sbibm task end to end, scored by C2ST.
pub fn benchmark(a: &BenchmarkSettings) -> Result<()> {
    let task = Task::from_name(&a.task)?;
    let method = Method::parse(&a.method)?;
    if let Some(o) = a.observations.iter().find(|&&o| !(1..=5).contains(&o)) {
        bail!("--observations {o}: reference posteriors exist for observations 1-5");
    }
    let obs = &a.observations;
    if let Some(o) = (1..obs.len()).find(|&i| obs[..i].contains(&obs[i])) {
        bail!("--observations: {} is listed twice", obs[o]);
    }
    let reference = find_reference_root(a.reference.as_deref())?;
    let opts = options(method, &a.net, a.seed)?;
    // parameters, data and their standardised copies in f64 (slcp: 5 + 8)
    crate::budget::check(
        &format!("--num-simulations {}", a.num_simulations),
        50e6 + 320.0 * a.num_simulations as f64,
    )?;
    let dir = crate::run_dir::RunDir::open(
        &a.out,
        "sbi benchmark",
        a,
        a.reuse,
        crate::run_dir::Kind::Rewritten,
        &[],
    )?;
    let r = run_task(
        task,
        a.num_simulations,
        &opts,
        &reference,
        &a.out,
        a.num_samples,
        &a.observations,
    )?;
    if !crate::report::is_quiet() {
        println!(
            "{} {} ({}) with {} simulations",
            r.task, r.method, r.flow, r.num_simulations
        );
        println!("| observation | C2ST | sampling s |\n|---|---|---|");
        for (k, v) in &r.c2st {
            println!("| {k} | {v:.3} | {:.2} |", r.sample_seconds[k]);
        }
        println!(
            "mean C2ST {:.3}; training {:.1} s ({} epochs); simulation {:.2} s; results in {}",
            r.mean_c2st,
            r.train_seconds,
            r.epochs,
            r.simulate_seconds,
            a.out.display()
        );
    }
    dir.finish()
}
