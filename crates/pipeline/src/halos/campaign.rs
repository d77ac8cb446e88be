//! `cosmodiff simulate halos --config campaign.toml --out DIR`: one
//! particle-mesh run and friends-of-friends halo catalogue per cosmology of a
//! design: the data factory for models of `p(halos | Omega_m, sigma8)`.
//! `cosmodiff simulate density` runs the same design and keeps each run's
//! final overdensity instead: the data of field-level models of
//! `p(delta | Omega_m, sigma8)` (`cosmodiff fieldflow train`).
//!
//! ```toml
//! [cosmology]   # the parameters the design does not vary (Planck 2015 by default)
//! [box] [ic] [steps] [force]   # as in `cosmodiff pm run`
//! [halos]       # linking_length = 0.2, min_particles = 20
//! [design]
//! kind = "latin_hypercube"   # or "list"
//! n = 100                    # latin_hypercube: number of simulations
//! seed = 0                   # latin_hypercube: seed of the design
//! Omega_m = [0.1, 0.5]       # latin_hypercube: range; list: one value per simulation
//! sigma8 = [0.6, 1.0]
//! ```
//!
//! Simulation `i` uses the white-noise seed `[ic] seed + i` (default seed 0)
//! and `Omega_c = Omega_m - Omega_b` at the config's `Omega_b`. Writes
//! `DIR/params.csv` (`index,seed,Omega_m,sigma8,Omega_c`), `DIR/config.toml`
//! (the config the campaign was started with) and `DIR/halos_00000.npz`, ...
//! (halos; `[halos]` optional) or `DIR/density_00000.npy`, ... (density: the
//! CIC overdensity `delta = rho / rho_mean - 1` on the `[box] n_mesh` grid,
//! float32; `[density] n_grid = N` sums the counts over blocks to a coarser
//! `N^3` grid) and, once every run is done, `DIR/fields.npz` with `theta`
//! `[n, 2]`, `theta_names` (`Omega_m`, `sigma8`), `field` `[n, N, N, N]`
//! (float32) and `box_size` (Mpc/h), as `cosmodiff fieldflow train` reads it.
//!
//! Resumable: each catalogue is written under a temporary name and renamed
//! when complete, so a finished file is never redone or corrupted; rerunning
//! the same command skips the finished simulations. A rerun with a different
//! config or design in the same folder is refused.

use super::{halos_of_simulation, write_halos};
use crate::config::load;
use crate::pm::{simulate, PmToml};
use anyhow::{anyhow, bail, Context, Result};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// `[design]` of a campaign.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DesignSection {
    /// "latin_hypercube" (default) or "list".
    pub kind: Option<String>,
    /// Number of simulations (latin_hypercube).
    pub n: Option<usize>,
    /// Seed of the latin hypercube (default 0).
    pub seed: Option<u64>,
    /// Range [lo, hi] (latin_hypercube) or one value per simulation (list).
    #[serde(rename = "Omega_m")]
    pub omega_m: Option<Vec<f64>>,
    /// Range [lo, hi] (latin_hypercube) or one value per simulation (list).
    pub sigma8: Option<Vec<f64>>,
}

/// `[density]` of a `simulate density` campaign.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DensitySection {
    /// Cells per side of the written overdensity (default `[box] n_mesh`);
    /// must divide `n_mesh`: the CIC counts are summed over blocks of
    /// `(n_mesh / n_grid)^3` cells (a top-hat smoothing, fewer and less
    /// shot-noisy cells).
    pub n_grid: Option<usize>,
}

/// `cosmodiff simulate halos`.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct CampaignSettings {
    /// TOML config: the `pm run` sections plus [halos] and [design].
    #[cfg_attr(feature = "cli", arg(long))]
    pub config: PathBuf,
    /// Output folder (params.csv and one file per simulation); rerunning resumes.
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
    /// Simulations run at the same time (each on its share of the threads).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 1))]
    pub workers: usize,
    #[cfg_attr(feature = "cli", command(flatten))]
    pub reuse: crate::run_dir::Reuse,
}

/// One point of the design.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DesignPoint {
    pub index: usize,
    pub seed: u64,
    pub omega_m: f64,
    pub sigma8: f64,
    pub omega_c: f64,
}

/// Latin hypercube of `n` points in `ranges`: along each axis the `n` strata
/// `[lo + (hi - lo) k/n, lo + (hi - lo) (k+1)/n)` are each used once, in a
/// random order, with a uniform position inside the stratum (McKay, Beckman
/// & Conover 1979).
pub fn latin_hypercube(n: usize, ranges: &[[f64; 2]], seed: u64) -> Vec<Vec<f64>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut pts = vec![vec![0.0; ranges.len()]; n];
    for (d, r) in ranges.iter().enumerate() {
        let mut perm: Vec<usize> = (0..n).collect();
        perm.shuffle(&mut rng);
        for (i, p) in pts.iter_mut().enumerate() {
            let u: f64 = rng.random();
            p[d] = r[0] + (r[1] - r[0]) * (perm[i] as f64 + u) / n as f64;
        }
    }
    pts
}

/// The design points of a config (checked).
pub fn design_points(d: &DesignSection, omega_b: f64, base_seed: u64) -> Result<Vec<DesignPoint>> {
    let om = d
        .omega_m
        .as_ref()
        .ok_or_else(|| anyhow!("[design] Omega_m is missing"))?;
    let s8 = d
        .sigma8
        .as_ref()
        .ok_or_else(|| anyhow!("[design] sigma8 is missing"))?;
    let pairs: Vec<(f64, f64)> = match d.kind.as_deref().unwrap_or("latin_hypercube") {
        "latin_hypercube" => {
            let n = d.n.ok_or_else(|| anyhow!("[design] n is missing"))?;
            if n == 0 {
                bail!("[design] n must be at least 1");
            }
            for (k, r) in [("Omega_m", om), ("sigma8", s8)] {
                if r.len() != 2 || !(r[0] < r[1]) || !r.iter().all(|x| x.is_finite()) {
                    bail!("[design] {k} = {r:?}: a latin hypercube needs a range [lo, hi] with lo < hi");
                }
            }
            latin_hypercube(n, &[[om[0], om[1]], [s8[0], s8[1]]], d.seed.unwrap_or(0))
                .into_iter()
                .map(|p| (p[0], p[1]))
                .collect()
        }
        "list" => {
            if d.n.is_some() || d.seed.is_some() {
                bail!("[design] n and seed belong to kind = \"latin_hypercube\"; a list is given by Omega_m and sigma8");
            }
            if om.len() != s8.len() || om.is_empty() {
                bail!(
                    "[design] kind = \"list\": Omega_m ({}) and sigma8 ({}) need the same, non-zero number of values",
                    om.len(),
                    s8.len()
                );
            }
            om.iter().copied().zip(s8.iter().copied()).collect()
        }
        k => bail!("[design] kind = \"{k}\": expected \"latin_hypercube\" or \"list\""),
    };
    pairs
        .into_iter()
        .enumerate()
        .map(|(i, (m, s))| {
            if !(m > omega_b && m <= 1.0) {
                bail!("[design] Omega_m = {m} must be in (Omega_b = {omega_b}, 1]");
            }
            if !(s > 0.0 && s < 3.0) {
                bail!("[design] sigma8 = {s} must be in (0, 3)");
            }
            Ok(DesignPoint {
                index: i,
                seed: base_seed + i as u64,
                omega_m: m,
                sigma8: s,
                omega_c: m - omega_b,
            })
        })
        .collect()
}

/// `params.csv` of a design.
pub fn params_csv(points: &[DesignPoint]) -> String {
    let mut s = String::from("index,seed,Omega_m,sigma8,Omega_c\n");
    for p in points {
        s += &format!(
            "{},{},{},{},{}\n",
            p.index, p.seed, p.omega_m, p.sigma8, p.omega_c
        );
    }
    s
}

/// What each simulation of a campaign leaves behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Product {
    /// A friends-of-friends catalogue, `halos_00000.npz`.
    Halos,
    /// The final CIC overdensity, `density_00000.npy`; then `fields.npz`.
    Density,
}

impl Product {
    /// File of simulation `i`.
    pub fn file_name(self, i: usize) -> String {
        match self {
            Product::Halos => format!("halos_{i:05}.npz"),
            Product::Density => format!("density_{i:05}.npy"),
        }
    }

    fn command(self) -> &'static str {
        match self {
            Product::Halos => "simulate halos",
            Product::Density => "simulate density",
        }
    }
}

/// `cosmodiff simulate halos`: run (or resume) a campaign of halo catalogues.
pub fn run(s: &CampaignSettings) -> Result<()> {
    run_campaign(s, Product::Halos)
}

/// `cosmodiff simulate density`: run (or resume) a campaign of density
/// boxes, then gather them into `DIR/fields.npz`.
pub fn run_density(s: &CampaignSettings) -> Result<()> {
    run_campaign(s, Product::Density)
}

/// Run (or resume) the campaign of `s`, keeping `product` of each run.
pub fn run_campaign(s: &CampaignSettings, product: Product) -> Result<()> {
    let text = std::fs::read_to_string(&s.config)
        .with_context(|| format!("cannot read --config {}", s.config.display()))?;
    let t: PmToml = load(&s.config)?;
    if t.gradient.is_some() {
        bail!(
            "{}: [gradient] is not used by campaigns; remove it",
            s.config.display()
        );
    }
    let design = t.design.as_ref().ok_or_else(|| {
        anyhow!(
            "{}: a campaign needs a [design] section",
            s.config.display()
        )
    })?;
    let base = t.cosmology.build()?;
    let fof = t.halos.clone().unwrap_or_default().settings()?;
    if product == Product::Density && t.halos.is_some() {
        bail!(
            "{}: [halos] is not used by `simulate density`; remove it",
            s.config.display()
        );
    }
    if product == Product::Halos && t.density.is_some() {
        bail!(
            "{}: [density] is used by `simulate density` only; remove it",
            s.config.display()
        );
    }
    let n_grid = density_grid(&t, &s.config)?;
    let (_, _, box_size) = t.geometry();
    let points = design_points(design, base.omega_b, t.ic.seed.unwrap_or(0))?;
    if s.workers == 0 {
        bail!("--workers must be at least 1");
    }
    t.check_memory(Some(s.workers))?;
    let dir = crate::run_dir::RunDir::open(
        &s.out,
        product.command(),
        s,
        s.reuse,
        crate::run_dir::Kind::Resumable,
        &[("--config", &s.config)],
    )?;
    // the campaign's identity: resume only the same config and design
    let csv = params_csv(&points);
    for (name, content) in [("params.csv", &csv), ("config.toml", &text)] {
        let p = s.out.join(name);
        match std::fs::read_to_string(&p) {
            Ok(old) if &old == content => {}
            Ok(_) => bail!(
                "--out {} holds another campaign ({name} differs from this config's): pass --overwrite to replace it, or choose a new folder",
                s.out.display()
            ),
            Err(_) => crate::output::write_bytes(&p, content.as_bytes())?,
        }
    }
    let todo: Vec<DesignPoint> = points
        .iter()
        .copied()
        .filter(|p| !s.out.join(product.file_name(p.index)).exists())
        .collect();
    let done = points.len() - todo.len();
    if todo.is_empty() {
        say!(
            "{}: all {} simulations are done",
            s.out.display(),
            points.len()
        );
        finish(s, product, &points, 0, (n_grid, box_size))?;
        return dir.finish();
    }
    if done > 0 {
        say!(
            "resuming {}: {done} of {} simulations done",
            s.out.display(),
            points.len()
        );
    }
    let pb = crate::report::progress(points.len() as u64, product.command());
    pb.set_position(done as u64);
    pb.reset_eta(); // the ETA counts this run's simulations, not the resumed ones
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let workers = s.workers.min(todo.len());
    let threads = (rayon::current_num_threads() / workers).max(1);
    let one = |p: &DesignPoint| -> Result<String> {
        let mut c = base;
        c.omega_c = p.omega_c;
        c.sigma8 = p.sigma8;
        c.validate()
            .map_err(|e| anyhow!("simulation {}: cosmology: {e}", p.index))?;
        let sim = simulate(&t, &c, &s.config, Some(p.seed))
            .with_context(|| format!("simulation {}", p.index))?;
        let path = s.out.join(product.file_name(p.index));
        match product {
            Product::Halos => {
                let h = halos_of_simulation(&sim, c.omega_m(), &fof)?;
                write_halos(&path, &h)?;
                Ok(format!("{} halos in #{}", h.len(), p.index))
            }
            Product::Density => {
                let counts = block_sum(&sim.pm.density_counts(&sim.st), sim.n_mesh, n_grid);
                let delta = overdensity(&counts);
                let n = n_grid;
                let a = ndarray::Array3::from_shape_vec((n, n, n), delta).expect("n^3 cells");
                crate::output::write_npy(&path, &a)?;
                Ok(format!("#{}", p.index))
            }
        }
    };
    // Ctrl-C: the running simulations finish and are kept, no new one starts.
    let listening = crate::report::InterruptScope::new();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                let pool = match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
                    Ok(p) => p,
                    Err(e) => {
                        failed.store(true, Ordering::SeqCst);
                        *first_error.lock().expect("lock") = Some(anyhow!("thread pool: {e}"));
                        return;
                    }
                };
                loop {
                    if failed.load(Ordering::SeqCst) || crate::report::interrupted() {
                        return;
                    }
                    let k = next.fetch_add(1, Ordering::SeqCst);
                    let Some(p) = todo.get(k) else { return };
                    match pool.install(|| one(p)) {
                        Ok(msg) => {
                            pb.inc(1);
                            pb.set_message(format!("{} ({msg})", product.command()));
                        }
                        Err(e) => {
                            failed.store(true, Ordering::SeqCst);
                            first_error.lock().expect("lock").get_or_insert(e);
                            return;
                        }
                    }
                }
            });
        }
    });
    pb.finish_and_clear();
    drop(listening);
    if crate::report::interrupted() {
        let done = points
            .iter()
            .filter(|p| s.out.join(product.file_name(p.index)).exists())
            .count();
        bail!(
            "interrupted: {done} of {} simulations are done and kept in {}; rerun the same command to resume",
            points.len(),
            s.out.display()
        );
    }
    if let Some(e) = first_error.into_inner().expect("lock") {
        return Err(e.context(format!(
            "campaign {} stopped; finished catalogues are kept, rerun the same command to resume",
            s.out.display()
        )));
    }
    finish(s, product, &points, todo.len(), (n_grid, box_size))?;
    dir.finish()
}

/// Cells per side of a density campaign's boxes (checked).
fn density_grid(t: &PmToml, config: &std::path::Path) -> Result<usize> {
    let (_, nm, _) = t.geometry();
    let n = t.density.as_ref().and_then(|d| d.n_grid).unwrap_or(nm);
    if n == 0 || !nm.is_multiple_of(n) {
        bail!(
            "{}: [density] n_grid = {n} must divide [box] n_mesh = {nm}",
            config.display()
        );
    }
    Ok(n)
}

/// Counts on an `nm^3` mesh summed over blocks of `(nm / n)^3` cells.
fn block_sum(counts: &[f32], nm: usize, n: usize) -> Vec<f32> {
    let f = nm / n;
    let mut out = vec![0.0f32; n * n * n];
    for (i, &c) in counts.iter().enumerate() {
        let (a, b, d) = (i / (nm * nm), (i / nm) % nm, i % nm);
        out[((a / f) * n + b / f) * n + d / f] += c;
    }
    out
}

/// `delta = rho / rho_mean - 1` from CIC counts.
fn overdensity(counts: &[f32]) -> Vec<f32> {
    let mean = counts.iter().map(|&c| c as f64).sum::<f64>() / counts.len() as f64;
    counts
        .iter()
        .map(|&c| (c as f64 / mean - 1.0) as f32)
        .collect()
}

/// The closing line of a finished campaign; density campaigns also gather
/// their boxes (`n^3` cells of a `box_size` box) into `fields.npz`
/// (rewritten on every finished run, so a resumed campaign's file is
/// always whole).
fn finish(
    s: &CampaignSettings,
    product: Product,
    points: &[DesignPoint],
    new: usize,
    (n, box_size): (usize, f64),
) -> Result<()> {
    match product {
        Product::Halos => say!(
            "wrote {}: params.csv and {} halo catalogues ({new} new)",
            s.out.display(),
            points.len()
        ),
        Product::Density => {
            let mut field = Vec::with_capacity(points.len() * n * n * n);
            for p in points {
                let path = s.out.join(product.file_name(p.index));
                let a: ndarray::Array3<f32> = ndarray_npy::read_npy(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                if a.dim() != (n, n, n) {
                    bail!(
                        "{}: shape {:?}, the config's mesh is {n}^3",
                        path.display(),
                        a.dim()
                    );
                }
                field.extend(a.iter());
            }
            let mut z = crate::io::Npz::new();
            let theta: Vec<f64> = points.iter().flat_map(|p| [p.omega_m, p.sigma8]).collect();
            z.add("theta", &[points.len(), 2], theta)?;
            z.add_str("theta_names", &["Omega_m", "sigma8"])?;
            z.add_f32("field", &[points.len(), n, n, n], field)?;
            z.add("box_size", &[], vec![box_size])?;
            z.write(&s.out.join("fields.npz"))?;
            say!(
                "wrote {}: params.csv, {} density boxes ({new} new) and fields.npz",
                s.out.display(),
                points.len()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin_hypercube_uses_each_stratum_once() {
        let pts = latin_hypercube(50, &[[0.1, 0.5], [0.6, 1.0]], 3);
        for (d, r) in [[0.1, 0.5], [0.6, 1.0]].iter().enumerate() {
            let mut strata: Vec<usize> = pts
                .iter()
                .map(|p| ((p[d] - r[0]) / (r[1] - r[0]) * 50.0).floor() as usize)
                .collect();
            strata.sort_unstable();
            assert_eq!(strata, (0..50).collect::<Vec<_>>());
        }
    }

    #[test]
    fn design_errors_name_the_key() {
        let d = DesignSection {
            kind: Some("list".into()),
            omega_m: Some(vec![0.3, 0.2]),
            sigma8: Some(vec![0.8]),
            ..Default::default()
        };
        let e = design_points(&d, 0.05, 0).unwrap_err();
        assert!(e.to_string().contains("same"), "{e}");
        let d = DesignSection {
            n: Some(3),
            omega_m: Some(vec![0.5, 0.1]),
            sigma8: Some(vec![0.6, 1.0]),
            ..Default::default()
        };
        let e = design_points(&d, 0.05, 0).unwrap_err();
        assert!(e.to_string().contains("Omega_m"), "{e}");
        let d = DesignSection {
            kind: Some("list".into()),
            omega_m: Some(vec![0.04]),
            sigma8: Some(vec![0.8]),
            ..Default::default()
        };
        let e = design_points(&d, 0.05, 0).unwrap_err();
        assert!(e.to_string().contains("Omega_b"), "{e}");
    }
}
