//! `cosmodiff simulate halos --config campaign.toml --out DIR`: one
//! particle-mesh run and friends-of-friends halo catalogue per cosmology of a
//! design: the data factory for models of `p(halos | Omega_m, sigma8)`.
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

/// `cosmodiff simulate halos`.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct CampaignSettings {
    /// TOML config: the `pm run` sections plus [halos] and [design].
    #[cfg_attr(feature = "cli", arg(long))]
    pub config: PathBuf,
    /// Output folder (params.csv, halos_00000.npz, ...); rerunning resumes.
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
    /// Simulations run at the same time (each on its share of the threads).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 1))]
    pub workers: usize,
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

/// Catalogue file of simulation `i`.
pub fn catalogue_name(i: usize) -> String {
    format!("halos_{i:05}.npz")
}

/// `cosmodiff simulate halos`: run (or resume) a campaign.
pub fn run(s: &CampaignSettings) -> Result<()> {
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
    let points = design_points(design, base.omega_b, t.ic.seed.unwrap_or(0))?;
    if s.workers == 0 {
        bail!("--workers must be at least 1");
    }
    if s.out.exists() && !s.out.is_dir() {
        bail!("--out {}: exists and is not a folder", s.out.display());
    }
    std::fs::create_dir_all(&s.out)
        .with_context(|| format!("cannot create --out {}", s.out.display()))?;
    // the campaign's identity: resume only the same config and design
    let csv = params_csv(&points);
    for (name, content) in [("params.csv", &csv), ("config.toml", &text)] {
        let p = s.out.join(name);
        match std::fs::read_to_string(&p) {
            Ok(old) if &old == content => {}
            Ok(_) => bail!(
                "--out {} holds another campaign ({name} differs from this config's): choose a new folder",
                s.out.display()
            ),
            Err(_) => crate::output::write_bytes(&p, content.as_bytes())?,
        }
    }
    let todo: Vec<DesignPoint> = points
        .iter()
        .copied()
        .filter(|p| !s.out.join(catalogue_name(p.index)).exists())
        .collect();
    let done = points.len() - todo.len();
    if todo.is_empty() {
        say!(
            "{}: all {} simulations are done",
            s.out.display(),
            points.len()
        );
        return Ok(());
    }
    if done > 0 {
        say!(
            "resuming {}: {done} of {} simulations done",
            s.out.display(),
            points.len()
        );
    }
    let pb = crate::report::progress(points.len() as u64, "simulate halos");
    pb.set_position(done as u64);
    pb.reset_eta(); // the ETA counts this run's simulations, not the resumed ones
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let workers = s.workers.min(todo.len());
    let threads = (rayon::current_num_threads() / workers).max(1);
    let one = |p: &DesignPoint| -> Result<usize> {
        let mut c = base;
        c.omega_c = p.omega_c;
        c.sigma8 = p.sigma8;
        c.validate()
            .map_err(|e| anyhow!("simulation {}: cosmology: {e}", p.index))?;
        let sim = simulate(&t, &c, &s.config, Some(p.seed))
            .with_context(|| format!("simulation {}", p.index))?;
        let h = halos_of_simulation(&sim, c.omega_m(), &fof)?;
        write_halos(&s.out.join(catalogue_name(p.index)), &h)?;
        Ok(h.len())
    };
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
                    if failed.load(Ordering::SeqCst) {
                        return;
                    }
                    let k = next.fetch_add(1, Ordering::SeqCst);
                    let Some(p) = todo.get(k) else { return };
                    match pool.install(|| one(p)) {
                        Ok(nh) => {
                            pb.inc(1);
                            pb.set_message(format!("simulate halos ({nh} halos in #{})", p.index));
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
    if let Some(e) = first_error.into_inner().expect("lock") {
        return Err(e.context(format!(
            "campaign {} stopped; finished catalogues are kept, rerun the same command to resume",
            s.out.display()
        )));
    }
    say!(
        "wrote {}: params.csv and {} halo catalogues ({} new)",
        s.out.display(),
        points.len(),
        todo.len()
    );
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
