//! `cosmodiff pm run --config FILE.toml --out DIR`: a FastPM particle-mesh
//! simulation (crate `cosmodiff-pm`) from a TOML config.
//!
//! ```toml
//! [cosmology]            # any key omitted takes the Planck 2015 value
//! Omega_c = 0.2589
//! sigma8 = 0.8159
//! [box]
//! n_mesh = 64            # even, >= n_particles (any even size; powers of 2 are fastest)
//! n_particles = 64       # even
//! box_size = 256.0       # Mpc/h
//! [ic]
//! seed = 0               # or linear_field = "lin.npy" (a = 1, particle grid) or white_noise = "w.npy"
//! lpt_order = 2
//! a_start = 0.1
//! [steps]
//! n = 10                # at most 10000
//! spacing = "linear"     # or "log"
//! half_step = "geometric" # or "arithmetic"
//! a_end = 1.0
//! snapshots = [0.5, 1.0] # optional: states at these a (in [a_start, a_end]) into snapshot.npz
//! [force]
//! gradient = "fd4"       # or "exact"
//! deconvolve = false     # divide by the CIC window in the force
//! [gradient]             # optional: adjoint gradient of a loss of the final density
//! loss = "pk"            # or "mse"
//! target = "pk_target.txt" # pk: table of k [h/Mpc] and P [(Mpc/h)^3]; mse: density .npy [nm, nm, nm]
//! pk_form = "log"        # pk: "log" or "chi2"
//! target_column = 2      # pk: 1-based column of P in the table (5 = P_raw of a pk.txt)
//! k_min = 0.0            # pk: bins with k_min <= k <= k_max [h/Mpc] (default: the table's range)
//! k_max = 0.4
//! compensate = false     # pk: CIC-compensated P(k) (P_cic_compensated of pk.txt)
//! omega_m_step = 1e-3    # central-difference step for d/dOmega_m of the schedule and P_lin
//! ```
//!
//! Relative `.npy` paths are resolved against the config file's folder.
//! Growth functions and the linear P(k) (Eisenstein-Hu with BAO, a = 1) come
//! from `cosmodiff-cosmo` through [`CosmoGrowth`].
//!
//! Writes `DIR/density.npy` (CIC particle counts per mesh cell, float32),
//! `DIR/positions.npy` (`[N, N, N, 3]`, mesh-cell units, not wrapped),
//! `DIR/pk.txt` (nbodykit-style P(k) of the density) and `DIR/pk.png`, plus
//! `DIR/snapshot.npz` (float64): the final `positions`, `momenta`,
//! `density`, `a`, `box_size`, and with `[steps] snapshots = [a1, ...]` also
//! `snapshot_a` `[S]`, `snapshot_positions` `[S, N, N, N, 3]`,
//! `snapshot_momenta` `[S, N, N, N, 3]` and `snapshot_density`
//! `[S, nm, nm, nm]` at exactly those scale factors (sorted; a snapshot
//! between two steps is one FastPM kick-drift-kick step from the previous
//! stage, so the main run is unchanged).
//!
//! With `[gradient]` the run also computes, by the discrete adjoint
//! (`Pm::gradient`, reverse mode: particles re-integrated backwards), the
//! gradient of a scalar loss `L` of the final CIC counts `rho` (the
//! `density.npy` field), and writes
//! `DIR/grad_white_noise.npy` (`dL/dw`, `[N, N, N]` float64, for `[ic] seed`
//! or `white_noise`; the seed's white noise is `cosmodiff_field::grf2`'s) or
//! `DIR/grad_linear_field.npy` (`dL/d delta_L` for `[ic] linear_field`), and
//! `DIR/grad_cosmology.json` (`loss`, `dloss_dsigma8`, `dloss_dOmega_m` and
//! its two parts, see below). Losses:
//!
//! - `loss = "mse"`: `L = mean_c (rho_c - t_c)^2` against the target counts
//!   `t` (`.npy`, `[nm, nm, nm]`, float32 or float64);
//! - `loss = "pk"`: with `P_b` the P(k) of `rho` exactly as in `pk.txt`
//!   (`P_raw`, or `P_cic_compensated` with `compensate = true`) and `T_b` the
//!   target table interpolated linearly in `(ln k, ln P)` at the bin's mean
//!   `k`, over the bins inside the table's k range and `[k_min, k_max]`:
//!   `pk_form = "log"`: `L = sum_b (ln P_b - ln T_b)^2`;
//!   `pk_form = "chi2"`: `L = sum_b N_b (P_b - T_b)^2 / (2 T_b^2)` (Gaussian
//!   variance `2 T^2 / N_b`, `N_b` the `Nmodes` column). The P(k) VJP is
//!   `cosmodiff_field::pk3::power_spectrum_vjp`.
//!
//! `dloss_dsigma8 = (dL/dln A)/sigma8` (exact: the linear field is
//! proportional to sigma8; null for `[ic] linear_field`, where sigma8 does
//! not enter). `dloss_dOmega_m` is at fixed `Omega_b`, `h`, `n_s`, `sigma8`,
//! `Omega_k`, `w0`, `wa` (`Omega_c` varied): the sum of
//! `dloss_dOmega_m_dynamics` (adjoint cotangent of the LPT and
//! kick/drift factors contracted with their central difference between the
//! growth of `Omega_m +- omega_m_step`) and `dloss_dOmega_m_linear_power`
//! (`<dL/d delta_L, d delta_L/dOmega_m>` through the linear P(k) at fixed
//! white noise; 0 for `[ic] linear_field`).

use crate::config::{load, CosmologySection};
use crate::run_dir::{Kind, Reuse, RunDir};
use anyhow::{anyhow, bail, Context, Result};
use cosmodiff_cosmo::{Cosmology, NonLinear, PowerSpectrum, TransferFunction};
use cosmodiff_field::pk3::{k_bins, power_spectrum, power_spectrum_vjp, Compensation, PkOptions};
use cosmodiff_plot::lines::{LinePlot, Series};
use cosmodiff_pm::{
    Factors, GradientKernel, Growth, HalfStep, Pm, PmConfig, Schedule, Spacing, StepConfig,
};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

mod gradient;
use gradient::{gradient_outputs, GradContext, GradSetup};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PmToml {
    #[serde(default)]
    pub(crate) cosmology: CosmologySection,
    #[serde(rename = "box", default)]
    box_: BoxSection,
    #[serde(default)]
    pub(crate) ic: IcSection,
    #[serde(default)]
    steps: StepsSection,
    #[serde(default)]
    force: ForceSection,
    pub(crate) gradient: Option<GradientSection>,
    /// `[halos]`: friends-of-friends on the final particles (`halos.npz`).
    pub(crate) halos: Option<crate::halos::HalosSection>,
    /// `[design]`: the cosmologies of a `simulate halos` campaign.
    pub(crate) design: Option<crate::halos::campaign::DesignSection>,
    /// `[density]`: the grid `simulate density` writes.
    pub(crate) density: Option<crate::halos::campaign::DensitySection>,
}

/// Most time steps of one run.
pub const MAX_STEPS: usize = 10_000;

impl PmToml {
    /// `[box]` with its defaults: particles per side, mesh cells per side
    /// (the particle count by default), side length in Mpc/h.
    pub(crate) fn geometry(&self) -> (usize, usize, f64) {
        let np = self.box_.n_particles.unwrap_or(64);
        let nm = self.box_.n_mesh.unwrap_or(np);
        (np, nm, self.box_.box_size.unwrap_or(256.0))
    }

    /// Refuse a run whose estimated peak memory does not fit (see
    /// [`crate::budget`]): `workers` campaign runs at once, or one `pm run`
    /// (`workers = None`) with its outputs, snapshots, gradient and halos.
    ///
    /// The model is fitted to the peak resident memory of runs with 64^3 to
    /// 256^3 meshes and 32^3 to 128^3 particles (docs/reliability.md): per
    /// particle 200 B (states, positions, the snapshot archive), per mesh
    /// cell 75 B (density and FFT buffers), per snapshot 155 B per particle
    /// and 32 B per cell, for `[gradient]` 150 B and 40 B, for `[halos]`
    /// 30 B per particle; a campaign run keeps no snapshot archive (100 B
    /// per particle, 55 B per cell). Sizes that the config checks refuse
    /// anyway (n_mesh above 2048, fewer cells than particles) are left to
    /// those checks and their clearer messages.
    pub(crate) fn check_memory(&self, workers: Option<usize>) -> Result<()> {
        let (np, nm, _) = self.geometry();
        if nm > 2048 || np > nm {
            return Ok(());
        }
        let (p, c) = ((np as f64).powi(3), (nm as f64).powi(3));
        let base = 50e6;
        let (bytes, what) = match workers {
            None => {
                let snaps = self.steps.snapshots.as_ref().map_or(0, Vec::len) as f64;
                let mut b = base + 200.0 * p + 75.0 * c + snaps * (155.0 * p + 32.0 * c);
                if self.gradient.is_some() {
                    b += 150.0 * p + 40.0 * c;
                }
                if self.halos.is_some() {
                    b += 30.0 * p;
                }
                (b, "pm run".to_string())
            }
            Some(w) => (
                base + w as f64 * (130.0 * p + 55.0 * c),
                format!("a campaign with --workers {w}"),
            ),
        };
        crate::budget::check(
            &format!("{what} (n_particles = {np}, n_mesh = {nm})"),
            bytes,
        )
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GradientSection {
    loss: Option<String>,
    target: Option<PathBuf>,
    pk_form: Option<String>,
    target_column: Option<usize>,
    k_min: Option<f64>,
    k_max: Option<f64>,
    compensate: Option<bool>,
    omega_m_step: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BoxSection {
    n_mesh: Option<usize>,
    n_particles: Option<usize>,
    box_size: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IcSection {
    pub(crate) seed: Option<u64>,
    linear_field: Option<PathBuf>,
    white_noise: Option<PathBuf>,
    lpt_order: Option<usize>,
    a_start: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepsSection {
    n: Option<usize>,
    spacing: Option<String>,
    half_step: Option<String>,
    a_end: Option<f64>,
    snapshots: Option<Vec<f64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ForceSection {
    gradient: Option<String>,
    deconvolve: Option<bool>,
}

/// [`cosmodiff_pm::Growth`] from `cosmodiff-cosmo`: `E(a)` from the
/// background, `D1`, `f1` from the growth ODE (`D1(1) = 1`), and the
/// second-order growth converted to the positive convention of the PM code,
/// `D2_pm = -(7/3) D2_cosmo` (so `x = q + D1 s1 + 3/7 D2_pm s2`).
pub struct CosmoGrowth {
    cosmo: Cosmology,
    growth: cosmodiff_cosmo::Growth<f64>,
}

impl CosmoGrowth {
    pub fn new(cosmo: &Cosmology) -> Result<Self> {
        let growth = cosmodiff_cosmo::Growth::new(cosmo).map_err(|e| anyhow!("growth: {e}"))?;
        Ok(Self {
            cosmo: *cosmo,
            growth,
        })
    }
}

impl Growth for CosmoGrowth {
    fn omega_m(&self) -> f64 {
        self.cosmo.omega_m()
    }
    fn e(&self, a: f64) -> f64 {
        cosmodiff_cosmo::background::efunc(&self.cosmo, a)
    }
    fn d1(&self, a: f64) -> f64 {
        self.growth.d1(a)
    }
    fn f1(&self, a: f64) -> f64 {
        self.growth.f1(a)
    }
    fn d2(&self, a: f64) -> f64 {
        -7.0 / 3.0 * self.growth.d2(a)
    }
    fn f2(&self, a: f64) -> f64 {
        self.growth.f2(a)
    }
    fn a_range(&self) -> (f64, f64) {
        (1e-5, 1.0)
    }
}

fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

fn read_cube(path: &Path, n: usize, what: &str) -> Result<Vec<f64>> {
    let a = crate::io::read_float_npy(path, what)?;
    if a.shape() != [n, n, n] {
        bail!(
            "{what} {}: shape {:?}, expected [{n}, {n}, {n}] (n_particles)",
            path.display(),
            a.shape()
        );
    }
    let v: Vec<f64> = a.iter().copied().collect();
    if v.iter().any(|x| !x.is_finite()) {
        bail!("{what} {}: contains non-finite values", path.display());
    }
    Ok(v)
}

/// `cosmodiff pm run`: where the config and the outputs are.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct RunSettings {
    /// TOML config ([cosmology], [box], [ic], [steps], [force], optional [gradient]).
    #[cfg_attr(feature = "cli", arg(long))]
    pub config: PathBuf,
    /// Output folder (created if needed).
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
    #[cfg_attr(feature = "cli", command(flatten))]
    pub reuse: Reuse,
}

/// A finished particle-mesh run and what produced it.
pub(crate) struct Simulation {
    pub(crate) pm: Pm,
    pub(crate) growth: CosmoGrowth,
    pub(crate) sch: Schedule,
    pub(crate) steps: StepConfig,
    pub(crate) power: PowerSpectrum<f64>,
    pub(crate) lin: Vec<f64>,
    pub(crate) white: Option<Vec<f64>>,
    pub(crate) st: cosmodiff_pm::State,
    pub(crate) snaps: Vec<cosmodiff_pm::State>,
    pub(crate) snap_a: Vec<f64>,
    pub(crate) box_size: f64,
    pub(crate) n_particles: usize,
    pub(crate) n_mesh: usize,
    pub(crate) elapsed_s: f64,
}

/// Checks of a config that need no simulation: geometry, choices, the
/// initial-condition source. `seed` overrides `[ic] seed` (campaigns).
pub(crate) fn simulate(
    t: &PmToml,
    cosmo: &Cosmology,
    config: &Path,
    seed: Option<u64>,
) -> Result<Simulation> {
    let base = config.parent().map(Path::to_path_buf).unwrap_or_default();
    let (np, nm, box_size) = t.geometry();
    let spacing = match t.steps.spacing.as_deref().unwrap_or("linear") {
        "linear" => Spacing::Linear,
        "log" => Spacing::Log,
        s => bail!("[steps] spacing = \"{s}\": expected \"linear\" or \"log\""),
    };
    let half_step = match t.steps.half_step.as_deref().unwrap_or("geometric") {
        "geometric" => HalfStep::Geometric,
        "arithmetic" => HalfStep::Arithmetic,
        s => bail!("[steps] half_step = \"{s}\": expected \"geometric\" or \"arithmetic\""),
    };
    let kernel = match t.force.gradient.as_deref().unwrap_or("fd4") {
        "fd4" => GradientKernel::Fd4,
        "exact" => GradientKernel::Exact,
        s => bail!("[force] gradient = \"{s}\": expected \"exact\" or \"fd4\""),
    };
    let n_steps = t.steps.n.unwrap_or(10);
    if n_steps > MAX_STEPS {
        bail!("[steps] n = {n_steps}: at most {MAX_STEPS} steps (FastPM-style runs need 5 to 100)");
    }
    let steps = StepConfig {
        a_start: t.ic.a_start.unwrap_or(0.1),
        a_end: t.steps.a_end.unwrap_or(1.0),
        n_steps,
        spacing,
        half_step,
        factors: Factors::FastPm,
        lpt_order: t.ic.lpt_order.unwrap_or(2),
    };
    let cfg = PmConfig {
        n_particles: np,
        n_mesh: nm,
        box_size,
        kernel,
        deconvolve: t.force.deconvolve.unwrap_or(false),
        steps: steps.clone(),
    };
    let pm = Pm::new(cfg).map_err(|e| anyhow!("{}: {e}", config.display()))?;
    let growth = CosmoGrowth::new(cosmo)?;
    let sch = Schedule::new(&growth, &steps).map_err(|e| anyhow!("{}: {e}", config.display()))?;
    let power = PowerSpectrum::new(cosmo, TransferFunction::EisensteinHu, NonLinear::Linear)
        .map_err(|e| anyhow!("power spectrum: {e}"))?;
    let pk = |k: f64| {
        if k > 0.0 {
            power.pk_linear(k, 1.0)
        } else {
            0.0
        }
    };

    let n_ic = [
        t.ic.seed.is_some() || seed.is_some(),
        t.ic.linear_field.is_some(),
        t.ic.white_noise.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if n_ic > 1 {
        bail!("[ic]: give only one of seed, linear_field, white_noise");
    }
    let t0 = Instant::now();
    let (lin, white) = if let Some(p) = &t.ic.linear_field {
        (
            read_cube(&resolve(&base, p), np, "[ic] linear_field")?,
            None,
        )
    } else {
        let w = match &t.ic.white_noise {
            Some(p) => read_cube(&resolve(&base, p), np, "[ic] white_noise")?,
            None => {
                cosmodiff_field::grf2::white_noise(np * np * np, seed.or(t.ic.seed).unwrap_or(0))
            }
        };
        (pm.linear_field(&w, &pk)?, Some(w))
    };
    let mut snap_a: Vec<f64> = t.steps.snapshots.clone().unwrap_or_default();
    if let Some(a) = snap_a.iter().find(|a| !a.is_finite()) {
        bail!("[steps] snapshots: {a} is not a number");
    }
    snap_a.sort_by(f64::total_cmp);
    if let Some(w) = snap_a.windows(2).find(|w| w[0] == w[1]) {
        bail!("[steps] snapshots: a = {} is listed twice", w[0]);
    }
    let (st, snaps) = pm
        .simulate_snapshots(&lin, &sch, &growth, &snap_a)
        .map_err(|e| anyhow!("{}: [steps] {e}", config.display()))?;
    let elapsed_s = t0.elapsed().as_secs_f64();
    log::info!(
        "pm: {np}^3 particles, {nm}^3 mesh, {} steps in {elapsed_s:.2} s",
        steps.n_steps
    );
    Ok(Simulation {
        pm,
        growth,
        sch,
        steps,
        power,
        lin,
        white,
        st,
        snaps,
        snap_a,
        box_size,
        n_particles: np,
        n_mesh: nm,
        elapsed_s,
    })
}

/// `cosmodiff pm run`: simulate, then write density, positions, P(k), the
/// optional gradients and the optional halo catalogue into the output folder.
pub fn run(settings: &RunSettings) -> Result<()> {
    let RunSettings { config, out, .. } = settings;
    let t: PmToml = load(config)?;
    if t.design.is_some() {
        bail!(
            "{}: [design] belongs to `cosmodiff simulate halos` campaigns, not to `pm run`",
            config.display()
        );
    }
    let base = config.parent().map(Path::to_path_buf).unwrap_or_default();
    let cosmo = t.cosmology.build()?;
    let halo_settings = t.halos.as_ref().map(|h| h.settings()).transpose()?;
    let (_, nm, box_size) = t.geometry();
    // check the [gradient] section before the run
    let grad_setup = match &t.gradient {
        Some(g) => Some(GradSetup::new(g, &base, nm, box_size)?),
        None => None,
    };
    t.check_memory(None)?;
    let dir = RunDir::open(
        out,
        "pm run",
        settings,
        settings.reuse,
        Kind::Rewritten,
        &[("--config", config)],
    )?;
    let sim = simulate(&t, &cosmo, config, None)?;
    let Simulation {
        pm,
        growth,
        sch,
        steps,
        power,
        lin,
        white,
        st,
        snaps,
        snap_a,
        n_particles: np,
        elapsed_s: el,
        ..
    } = &sim;
    let (np, el) = (*np, *el);
    let pk = |k: f64| {
        if k > 0.0 {
            power.pk_linear(k, 1.0)
        } else {
            0.0
        }
    };

    let rho = pm.density_counts(st);
    let arr = ndarray::Array3::from_shape_vec((nm, nm, nm), rho.clone())?;
    crate::output::write_npy(&out.join("density.npy"), &arr)?;
    let x = pm.integrator().positions(&st.disp);
    let flat: Vec<f32> = x.iter().flatten().copied().collect();
    let pos = ndarray::Array4::from_shape_vec((np, np, np, 3), flat)?;
    crate::output::write_npy(&out.join("positions.npy"), &pos)?;
    // Snapshot of the final state: positions, momenta (p = a^3 E dx/da), density, a.
    {
        let mut snap = crate::io::Npz::new();
        snap.add(
            "positions",
            &[np, np, np, 3],
            pos.iter().map(|v| *v as f64).collect(),
        )?;
        snap.add(
            "momenta",
            &[np, np, np, 3],
            st.mom.iter().flatten().map(|v| *v as f64).collect(),
        )?;
        snap.add(
            "density",
            &[nm, nm, nm],
            rho.iter().map(|v| *v as f64).collect(),
        )?;
        snap.add("a", &[], vec![st.a])?;
        snap.add("box_size", &[], vec![box_size])?;
        if !snaps.is_empty() {
            let ns = snaps.len();
            snap.add("snapshot_a", &[ns], snap_a.clone())?;
            let mut xs = Vec::with_capacity(ns * np * np * np * 3);
            let mut ps = Vec::with_capacity(ns * np * np * np * 3);
            let mut ds = Vec::with_capacity(ns * nm * nm * nm);
            for s in snaps {
                let x = pm.integrator().positions(&s.disp);
                xs.extend(x.iter().flatten().map(|v| *v as f64));
                ps.extend(s.mom.iter().flatten().map(|v| *v as f64));
                ds.extend(pm.density_counts(s).iter().map(|v| *v as f64));
            }
            snap.add("snapshot_positions", &[ns, np, np, np, 3], xs)?;
            snap.add("snapshot_momenta", &[ns, np, np, np, 3], ps)?;
            snap.add("snapshot_density", &[ns, nm, nm, nm], ds)?;
        }
        snap.write(&out.join("snapshot.npz"))?;
    }

    let ps = power_spectrum(&rho, nm, box_size, &PkOptions::default())?;
    let psc = power_spectrum(
        &rho,
        nm,
        box_size,
        &PkOptions {
            compensate: Some(Compensation::Cic),
            is_delta: false,
        },
    )?;
    let d_end = growth.d1(steps.a_end);
    let mut txt = format!(
        "# cosmodiff pm: P(k) of the CIC density at a = {}, nbodykit FFTPower-style bins (dk = 2pi/L from 0, k = mean |k|, Hermitian weights), no shot-noise subtraction (V/N = {:.6e})\n# k_mean[h/Mpc] k_lo k_hi Nmodes P_raw P_cic_compensated P_lin(k)D1^2 [(Mpc/h)^3]\n",
        steps.a_end,
        box_size.powi(3) / (np as f64).powi(3)
    );
    for i in 0..ps.k.len() {
        txt += &format!(
            "{:.8e} {:.8e} {:.8e} {} {:.8e} {:.8e} {:.8e}\n",
            ps.k[i],
            ps.edge_lo[i],
            ps.edge_hi[i],
            ps.n_modes[i],
            ps.p[i],
            psc.p[i],
            pk(ps.k[i]) * d_end * d_end
        );
    }
    crate::output::write_bytes(&out.join("pk.txt"), txt.as_bytes())?;
    let plin: Vec<f64> = ps.k.iter().map(|k| pk(*k) * d_end * d_end).collect();
    let plot = LinePlot::new(
        &format!(
            "PM {np}^3 in {box_size} Mpc/h, {} steps, a = {}",
            steps.n_steps, steps.a_end
        ),
        "k [h/Mpc]",
        "P(k) [(Mpc/h)^3]",
    )
    .log_x(true)
    .log_y(true)
    .add(Series::line("PM (CIC compensated)", &ps.k, &psc.p))
    .add(Series::line("PM raw", &ps.k, &ps.p))
    .add(Series::line("linear theory", &ps.k, &plin));
    crate::output::write_via(&out.join("pk.png"), |t| Ok(plot.save(t)?))?;
    println!(
        "wrote {}/density.npy, positions.npy, pk.txt, pk.png, snapshot.npz ({el:.2} s)",
        out.display()
    );
    if let Some(hs) = halo_settings {
        let h = crate::halos::halos_of_simulation(&sim, cosmo.omega_m(), &hs)?;
        crate::halos::write_halos(&out.join("halos.npz"), &h)?;
        println!(
            "wrote {}/halos.npz: {} friends-of-friends halos (b = {}, >= {} particles)",
            out.display(),
            h.len(),
            hs.linking_length,
            hs.min_particles
        );
    }
    if let Some(gs) = grad_setup {
        let ctx = GradContext {
            pm,
            sch,
            cosmo: &cosmo,
            steps,
            lin,
            white: white.as_deref(),
            config,
        };
        gradient_outputs(&gs, &ctx, out)?;
    }
    dir.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_is_named() {
        let e =
            crate::config::parse::<PmToml>("[box]\nn_mesh = 8\nbogus = 1\n", Path::new("x.toml"))
                .unwrap_err();
        assert!(format!("{e}").contains("bogus"), "{e}");
    }

    #[test]
    fn runs_small_box_and_matches_reference_when_present() {
        let dir = std::env::temp_dir().join(format!("cosmodiff_pm_cli_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cfgp = dir.join("c.toml");
        std::fs::write(&cfgp, "[box]\nn_mesh = 32\nn_particles = 16\nbox_size = 128.0\n[ic]\nseed = 3\n[steps]\nn = 3\n").unwrap();
        run(&RunSettings {
            config: cfgp.clone(),
            out: dir.join("o"),
            reuse: Default::default(),
        })
        .unwrap();
        for f in [
            "density.npy",
            "positions.npy",
            "pk.txt",
            "pk.png",
            "snapshot.npz",
        ] {
            assert!(dir.join("o").join(f).exists(), "{f}");
        }
        let d: ndarray::Array3<f32> = ndarray_npy::read_npy(dir.join("o/density.npy")).unwrap();
        let s: f64 = d.iter().map(|v| *v as f64).sum();
        assert!((s - 4096.0).abs() < 1e-2);
        // bad input: odd mesh, a mesh too coarse for forces and P(k)
        for (text, needle) in [
            ("[box]\nn_mesh = 33\nn_particles = 16\n", "even"),
            ("[box]\nn_mesh = 2\nn_particles = 2\n", "too coarse"),
        ] {
            std::fs::write(&cfgp, text).unwrap();
            let e = run(&RunSettings {
                config: cfgp.clone(),
                out: dir.join("o2"),
                reuse: Default::default(),
            })
            .unwrap_err();
            assert!(format!("{e:#}").contains(needle), "{e:#}");
            assert!(!dir.join("o2").exists(), "no partial output");
        }

        // the reference problem through the CLI (cosmology from cosmodiff-cosmo)
        let refd = PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/reference/pm/n64/jaxpm"
        ));
        if refd.join("linear_field_a1.npy").exists() {
            let cfg = format!("[box]\nn_mesh = 64\nn_particles = 64\nbox_size = 256.0\n[ic]\nlinear_field = \"{}\"\n[steps]\nn = 10\n[force]\ngradient = \"fd4\"\n", refd.join("linear_field_a1.npy").display());
            let p = dir.join("ref.toml");
            std::fs::write(&p, cfg).unwrap();
            run(&RunSettings {
                config: p,
                out: dir.join("r"),
                reuse: Default::default(),
            })
            .unwrap();
            let a: ndarray::Array3<f32> = ndarray_npy::read_npy(dir.join("r/density.npy")).unwrap();
            let b: ndarray::Array3<f32> =
                ndarray_npy::read_npy(refd.join("fastpm10_density_cic_a1.npy")).unwrap();
            let (a, b): (Vec<f32>, Vec<f32>) =
                (a.iter().copied().collect(), b.iter().copied().collect());
            let c = cosmodiff_field::pk3::compare(&b, &a, 64, 256.0, 0.5).unwrap();
            eprintln!(
                "CLI vs fastpm10: max|dP/P| {:.2e}, min r {:.6}",
                c.max_abs_dp, c.min_r
            );
            assert!(c.max_abs_dp < 5e-3 && c.min_r > 0.999);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
