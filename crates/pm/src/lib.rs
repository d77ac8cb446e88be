//! cosmodiff-pm: a differentiable particle-mesh N-body code (FastPM scheme)
//! with constant-memory adjoint gradients.
//!
//! Pipeline (all periodic, cubic box of side `L` Mpc/h):
//! white noise `w` (particle grid `np^3`) -> linear density `delta_L` at `a = 1`
//! ([`lpt`]) -> 1LPT/2LPT displacements and momenta at `a_start` -> FastPM
//! kick-drift-kick steps ([`schedule`], [`nbody`]) with CIC/FFT forces on a
//! mesh of side `nm >= np` ([`force`]) -> final particles, CIC density.
//!
//! Gradients of a scalar loss of the final state with respect to the white
//! noise, the linear field, `sigma8` (an amplitude of `delta_L`: exact) and
//! every cosmology-dependent coefficient of the [`Schedule`] (contract with
//! `d schedule / d Omega_m` from a [`growth::Growth`] implementation) come
//! from the discrete adjoint integrated backwards while the particles are
//! re-integrated backwards (Li et al. 2022, pmwd), or from checkpoints.
//!
//! References: Feng et al. 2016 (FastPM, MNRAS 463, 2273); Li et al. 2022
//! (pmwd, arXiv:2211.09958); Modi et al. 2021 (FlowPM, A&C 37, 100505).
//! Units and conventions: see `docs/pm.md`.

pub mod cic;
pub mod force;
pub mod growth;
pub mod kernels;
pub mod lpt;
pub mod nbody;
pub mod schedule;

pub use cic::Lattice;
pub use force::ForceSolver;
pub use growth::{EdsGrowth, Growth, LcdmGrowth, TableGrowth};
pub use kernels::GradientKernel;
pub use nbody::{AdjointMode, Integrator, State};
pub use schedule::{Factors, HalfStep, Schedule, Spacing, StepConfig};

use rayon::prelude::*;

/// Errors of the particle-mesh code.
#[derive(Debug, thiserror::Error)]
pub enum PmError {
    #[error("pm config: {0}")]
    Config(String),
    #[error("pm input: {0}")]
    Input(String),
    #[error(transparent)]
    Growth(#[from] growth::GrowthError),
}

/// Geometry and numerics of a run.
#[derive(Debug, Clone)]
pub struct PmConfig {
    /// Particles per side (`np^3` particles on a lattice).
    pub n_particles: usize,
    /// Mesh cells per side (`>= np`, a multiple of... any even size; see docs).
    pub n_mesh: usize,
    /// Box side [Mpc/h].
    pub box_size: f64,
    pub kernel: GradientKernel,
    /// Divide by the CIC window (paint and readout) in the force.
    pub deconvolve: bool,
    pub steps: StepConfig,
}

impl PmConfig {
    pub fn validate(&self) -> Result<(), PmError> {
        let e = |m: String| Err(PmError::Config(m));
        if self.n_particles < 2 || !self.n_particles.is_multiple_of(2) {
            return e(format!(
                "box.n_particles must be even and >= 2, got {}",
                self.n_particles
            ));
        }
        if self.n_mesh < self.n_particles || !self.n_mesh.is_multiple_of(2) {
            return e(format!(
                "box.n_mesh must be even and >= n_particles = {}, got {}",
                self.n_particles, self.n_mesh
            ));
        }
        if self.n_mesh < 8 {
            return e(format!(
                "box.n_mesh = {} is too coarse (need >= 8 cells per side for forces and P(k))",
                self.n_mesh
            ));
        }
        if self.n_mesh > 2048 {
            return e(format!(
                "box.n_mesh = {} exceeds 2048 (single-node limit)",
                self.n_mesh
            ));
        }
        if !(self.box_size > 0.0 && self.box_size.is_finite()) {
            return e(format!(
                "box.box_size must be positive, got {}",
                self.box_size
            ));
        }
        Schedule::stages(&self.steps)?;
        Ok(())
    }
}

/// The whole forward model for one geometry.
pub struct Pm {
    pub cfg: PmConfig,
    pub force: ForceSolver,
    pub lpt: lpt::LptSolver,
}

/// Result of a gradient computation.
#[derive(Debug, Clone)]
pub struct Gradient {
    pub loss: f64,
    /// `dL/d delta_L` (particle grid).
    pub linear_field: Vec<f64>,
    /// `dL/dw` for the white noise (when the run started from white noise).
    pub white_noise: Option<Vec<f64>>,
    /// `dL/d(ln amplitude)` of `delta_L`, i.e. `sigma8 dL/dsigma8`.
    pub dlog_amplitude: f64,
    /// `dL/d(coefficient)` for every schedule coefficient, incl. LPT ones.
    pub schedule: Schedule,
    /// Initial state recovered by the backward pass (for diagnostics).
    pub recovered_initial: State,
}

impl Pm {
    pub fn new(cfg: PmConfig) -> Result<Self, PmError> {
        cfg.validate()?;
        let force = ForceSolver::new(cfg.n_mesh, cfg.n_particles, cfg.kernel, cfg.deconvolve);
        let lpt = lpt::LptSolver::new(cfg.n_particles, cfg.kernel);
        Ok(Self { cfg, force, lpt })
    }

    pub fn integrator(&self) -> Integrator<'_> {
        Integrator { force: &self.force }
    }

    fn ratio(&self) -> f64 {
        self.cfg.n_mesh as f64 / self.cfg.n_particles as f64
    }

    /// Linear field from white noise (particle grid, float64).
    pub fn linear_field(
        &self,
        white: &[f64],
        pk: &(dyn Fn(f64) -> f64 + Sync),
    ) -> Result<Vec<f64>, PmError> {
        self.check_grid(white.len())?;
        Ok(self.lpt.linear_field(white, self.cfg.box_size, pk))
    }

    fn check_grid(&self, len: usize) -> Result<(), PmError> {
        let np = self.cfg.n_particles;
        if len != np * np * np {
            return Err(PmError::Input(format!(
                "field has {len} values, expected n_particles^3 = {}",
                np * np * np
            )));
        }
        Ok(())
    }

    /// LPT state at `stages[0]` from the linear field, plus the LPT fields.
    pub fn initial_state(
        &self,
        delta_l: &[f64],
        sch: &Schedule,
    ) -> Result<(State, lpt::LptFields), PmError> {
        self.initial_state_impl(delta_l, sch, true)
    }

    /// `keep`: keep what the LPT VJP needs.
    fn initial_state_impl(
        &self,
        delta_l: &[f64],
        sch: &Schedule,
        keep: bool,
    ) -> Result<(State, lpt::LptFields), PmError> {
        self.check_grid(delta_l.len())?;
        let order = if sch.lpt[1] != 0.0 || sch.lpt[3] != 0.0 {
            2
        } else {
            1
        };
        let f = if keep {
            self.lpt.fields(delta_l, order)
        } else {
            self.lpt.fields_forward(delta_l, order)
        };
        let r = self.ratio();
        let [cx1, cx2, cp1, cp2] = sch.lpt;
        let n = delta_l.len();
        let mut disp = vec![[0.0f32; 3]; n];
        let mut mom = vec![[0.0f32; 3]; n];
        disp.par_iter_mut()
            .zip(mom.par_iter_mut())
            .enumerate()
            .for_each(|(i, (d, m))| {
                for a in 0..3 {
                    let (s1, s2) = (f.s1[a][i], f.s2[a][i]);
                    d[a] = (r * (cx1 * s1 + cx2 * s2)) as f32;
                    m[a] = (r * (cp1 * s1 + cp2 * s2)) as f32;
                }
            });
        // Displacements are in mesh cells. More than ten box lengths means the
        // input is no linear field (e.g. white noise far from unit variance),
        // and positions that large would lose all float32 precision.
        let finite = disp
            .par_iter()
            .chain(mom.par_iter())
            .all(|d| d.iter().all(|v| v.is_finite()));
        if !finite {
            return Err(PmError::Input(
                "the linear field gives non-finite initial (LPT) displacements".into(),
            ));
        }
        let max = disp
            .par_iter()
            .map(|d| d.iter().fold(0.0f32, |m, v| m.max(v.abs())))
            .reduce(|| 0.0, f32::max);
        if max > 10.0 * self.cfg.n_mesh as f32 {
            return Err(PmError::Input(format!(
                "the initial (LPT) displacements reach {:.3e} box lengths: the linear field is far outside the linear regime (white noise must have unit variance)",
                max / self.cfg.n_mesh as f32
            )));
        }
        Ok((
            State {
                a: sch.stages[0],
                disp,
                mom,
            },
            f,
        ))
    }

    /// LPT + N-body: the final state.
    pub fn simulate(&self, delta_l: &[f64], sch: &Schedule) -> Result<State, PmError> {
        let (st, _) = self.initial_state_impl(delta_l, sch, false)?;
        Ok(self.integrator().run(st, sch, |_, _| {}))
    }

    /// LPT + N-body with snapshots at the scale factors `snaps` (each in
    /// `[stages[0], stages[n]]`): returns the final state and one state per
    /// requested `a`, in the order given. The main trajectory is not changed:
    /// a snapshot at a stage is that state; one strictly inside step `i`
    /// (`a_i < a_s < a_{i+1}`) is one extra FastPM kick-drift-kick step from
    /// the state at `a_i` to `a_s` with the factors of `growth` and the run's
    /// half-step rule (exact for linear growth, like every FastPM step).
    pub fn simulate_snapshots(
        &self,
        delta_l: &[f64],
        sch: &Schedule,
        growth: &dyn Growth,
        snaps: &[f64],
    ) -> Result<(State, Vec<State>), PmError> {
        let st = &sch.stages;
        let (a0, an) = (st[0], st[st.len() - 1]);
        let tol = |a: f64| 1e-9 * a.abs().max(1.0);
        for &a in snaps {
            if !(a >= a0 - tol(a0) && a <= an + tol(an)) {
                return Err(PmError::Config(format!(
                    "snapshot a = {a} outside the run's range [{a0}, {an}]"
                )));
            }
        }
        let (s0, _) = self.initial_state_impl(delta_l, sch, false)?;
        let integ = self.integrator();
        let steps = &self.cfg.steps;
        let mut out: Vec<Option<State>> = vec![None; snaps.len()];
        let fin = integ.run_with_forces(s0, sch, |j, state, f| {
            for (q, &a) in snaps.iter().enumerate() {
                if out[q].is_some() {
                    continue;
                }
                if (a - st[j]).abs() <= tol(st[j]) {
                    let mut c = state.clone();
                    c.a = a;
                    out[q] = Some(c);
                } else if j + 1 < st.len() && a > st[j] && a < st[j + 1] {
                    let fac =
                        Schedule::step_factors(growth, steps.half_step, steps.factors, st[j], a);
                    out[q] = Some(integ.substep(state, f, fac, a));
                }
            }
        });
        Ok((
            fin,
            out.into_iter()
                .map(|s| s.expect("every snapshot lies in a step"))
                .collect(),
        ))
    }

    /// CIC particle counts per mesh cell (mean `np^3/nm^3`).
    pub fn density_counts(&self, st: &State) -> Vec<f32> {
        self.force.counts(&st.disp)
    }

    /// Gradient of `loss(final state) -> (L, dL/ds, dL/dp)` with
    /// respect to the linear field (and the white noise when `white` is
    /// given with its `pk`), the amplitude and the schedule.
    #[allow(clippy::type_complexity)]
    pub fn gradient(
        &self,
        delta_l: &[f64],
        white: Option<(&[f64], &(dyn Fn(f64) -> f64 + Sync))>,
        sch: &Schedule,
        loss: &dyn Fn(&State) -> (f64, Vec<[f32; 3]>, Vec<[f32; 3]>),
        mode: AdjointMode,
    ) -> Result<Gradient, PmError> {
        let (st0, fields) = self.initial_state(delta_l, sch)?;
        let integ = self.integrator();
        let fin = integ.run(st0.clone(), sch, |_, _| {});
        let (l, ls, lp) = loss(&fin);
        let init = match mode {
            AdjointMode::Reverse => None,
            AdjointMode::Checkpoint(_) => Some(&st0),
        };
        let adj = integ.adjoint(&fin, init, sch, ls, lp, mode);
        // LPT adjoint
        let r = self.ratio();
        let [cx1, cx2, cp1, cp2] = sch.lpt;
        let n = delta_l.len();
        let two = fields.s2[0].iter().any(|v| *v != 0.0);
        let mut s1bar: [Vec<f64>; 3] = std::array::from_fn(|_| vec![0.0; n]);
        let mut s2bar: [Vec<f64>; 3] = std::array::from_fn(|_| vec![0.0; n]);
        let mut sbar = adj.schedule_bar.clone();
        let mut lptbar = [0.0f64; 4];
        for a in 0..3 {
            for i in 0..n {
                let (ls, lp) = (adj.lam_s[i][a] as f64, adj.lam_p[i][a] as f64);
                s1bar[a][i] = r * (cx1 * ls + cp1 * lp);
                s2bar[a][i] = r * (cx2 * ls + cp2 * lp);
                let (s1, s2) = (fields.s1[a][i], fields.s2[a][i]);
                lptbar[0] += r * ls * s1;
                lptbar[1] += r * ls * s2;
                lptbar[2] += r * lp * s1;
                lptbar[3] += r * lp * s2;
            }
        }
        sbar.lpt = lptbar;
        let dbar = self
            .lpt
            .fields_vjp(&fields, &s1bar, if two { Some(&s2bar) } else { None });
        let dlog_amplitude = dbar.par_iter().zip(delta_l).map(|(a, b)| a * b).sum();
        let white_noise =
            white.map(|(_, pk)| self.lpt.linear_field_vjp(&dbar, self.cfg.box_size, pk));
        Ok(Gradient {
            loss: l,
            linear_field: dbar,
            white_noise,
            dlog_amplitude,
            schedule: sbar,
            recovered_initial: adj.initial,
        })
    }
}

/// Loss `L = sum_c u(c) rho(c)` of the CIC counts `rho` on the mesh, with its
/// gradient with respect to the displacements (a linear probe used in tests;
/// any loss of the density follows by setting `u = dL/drho`).
pub fn density_dot_loss<'a>(
    pm: &'a Pm,
    u: &'a [f32],
) -> impl Fn(&State) -> (f64, Vec<[f32; 3]>, Vec<[f32; 3]>) + 'a {
    move |st| {
        let rho = pm.force.counts(&st.disp);
        let l = rho
            .par_iter()
            .zip(u)
            .map(|(a, b)| *a as f64 * *b as f64)
            .sum();
        let g = pm.force.counts_vjp(&st.disp, u);
        (l, g, vec![[0.0; 3]; st.mom.len()])
    }
}

/// Loss `L = 1/2 sum_c (rho(c) - target(c))^2` of the CIC counts.
pub fn density_mse_loss<'a>(
    pm: &'a Pm,
    target: &'a [f32],
) -> impl Fn(&State) -> (f64, Vec<[f32; 3]>, Vec<[f32; 3]>) + 'a {
    move |st| {
        let rho = pm.force.counts(&st.disp);
        let r: Vec<f32> = rho.iter().zip(target).map(|(a, b)| a - b).collect();
        let l = r.iter().map(|v| 0.5 * (*v as f64).powi(2)).sum();
        let g = pm.force.counts_vjp(&st.disp, &r);
        (l, g, vec![[0.0; 3]; st.mom.len()])
    }
}
