//! FastPM kick-drift-kick integration, its exact reversal, and the adjoint.
//!
//! State: displacement `s` from the Lagrangian lattice `q` (mesh cells,
//! float32 — storing `s` rather than `x` keeps float32 precision uniform)
//! and momentum `p = a^3 E dx/da` (mesh cells). Positions `x = q + s`.
//!
//! Step `i` (factors of [`Schedule`]):
//! `p += K1_i F(x_i); s += Dr_i p; p += K2_i F(x_{i+1})`.
//! Reversal undoes the same operations in the opposite order, recomputing the
//! forces (Li et al. 2022, pmwd): the backward trajectory equals the forward
//! one up to float32 rounding.
//!
//! Adjoint (discrete; Li et al. 2022 sec. 3): with `lam_s = dL/ds`,
//! `lam_p = dL/dp` at the end, each step backwards does
//!
//! ```text
//! lam_s += (K2_i + K1_{i+1}) J(x_{i+1})^T lam_p      (one VJP per force evaluation)
//! dL/dK2_i = <lam_p, F(x_{i+1})>;  p_{1/2} = p_{i+1} - K2_i F(x_{i+1})
//! dL/dDr_i = <lam_s, p_{1/2}>;     lam_p += Dr_i lam_s;  s_i = s_{i+1} - Dr_i p_{1/2}
//! F(x_i) recomputed;  dL/dK1_i = <lam_p, F(x_i)>;  p_i = p_{1/2} - K1_i F(x_i)
//! ```
//!
//! and finally `lam_s += K1_0 J(x_0)^T lam_p`. Memory: the state, the
//! adjoint state, one set of force meshes — independent of the number of
//! steps. The checkpointed variant stores `(s, p)` after every step of the
//! forward run instead of reversing it (exact but O(n_steps) memory), or
//! every `k`-th step and re-runs each segment.

use crate::force::{ForceMeshes, ForceSolver};
use crate::schedule::Schedule;
use rayon::prelude::*;

/// Particle state (mesh-cell units).
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    pub a: f64,
    pub disp: Vec<[f32; 3]>,
    pub mom: Vec<[f32; 3]>,
}

/// How the adjoint recovers the forward trajectory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdjointMode {
    /// Integrate the particles backwards alongside the adjoint (pmwd): memory
    /// independent of the number of steps.
    Reverse,
    /// Store the state every `k` steps in the forward pass and re-run each
    /// segment forward (storing its `k` states) during the backward pass.
    Checkpoint(usize),
}

/// Result of the adjoint pass.
#[derive(Debug, Clone)]
pub struct Adjoint {
    /// `dL/ds` and `dL/dp` at the initial state.
    pub lam_s: Vec<[f32; 3]>,
    pub lam_p: Vec<[f32; 3]>,
    /// `dL/d(coefficient)` for the kick/drift factors (`lpt` left at 0).
    pub schedule_bar: Schedule,
    /// The initial state as recovered by the backward pass.
    pub initial: State,
}

/// Integrator over a force solver (which holds the lattice).
pub struct Integrator<'a> {
    pub force: &'a ForceSolver,
}

fn axpy(y: &mut [[f32; 3]], a: f32, x: &[[f32; 3]]) {
    y.par_iter_mut().zip(x).for_each(|(y, x)| {
        y[0] += a * x[0];
        y[1] += a * x[1];
        y[2] += a * x[2];
    });
}

fn dot(x: &[[f32; 3]], y: &[[f32; 3]]) -> f64 {
    x.par_iter()
        .zip(y)
        .map(|(x, y)| {
            x[0] as f64 * y[0] as f64 + x[1] as f64 * y[1] as f64 + x[2] as f64 * y[2] as f64
        })
        .sum()
}

/// Force buffers reused across steps.
struct Buf {
    f: Vec<[f32; 3]>,
    meshes: ForceMeshes,
}

impl<'a> Integrator<'a> {
    /// Positions `q + s` in mesh cells (particle `(i, j, k)` in C order),
    /// rounded to float32 (for output; the forces never use them).
    pub fn positions(&self, disp: &[[f32; 3]]) -> Vec<[f32; 3]> {
        self.force.lattice.positions(disp)
    }

    fn buf(&self, n: usize) -> Buf {
        Buf {
            f: vec![[0.0f32; 3]; n],
            meshes: ForceMeshes::new(self.force.nm),
        }
    }

    fn forces(&self, disp: &[[f32; 3]], b: &mut Buf) {
        self.force.forces_into(disp, &mut b.f, &mut b.meshes);
    }

    /// One KDK step `i` given the force at the current positions in `b`;
    /// leaves the force at the new positions in `b`.
    fn step(&self, st: &mut State, sch: &Schedule, i: usize, b: &mut Buf) {
        axpy(&mut st.mom, sch.kick1[i] as f32, &b.f);
        axpy(&mut st.disp, sch.drift[i] as f32, &st.mom);
        self.forces(&st.disp, b);
        axpy(&mut st.mom, sch.kick2[i] as f32, &b.f);
        st.a = sch.stages[i + 1];
    }

    /// Integrate from `sch.stages[0]` to the end; `observe(i, state)` is
    /// called after each step `i` (state at `stages[i + 1]`).
    pub fn run(
        &self,
        mut st: State,
        sch: &Schedule,
        mut observe: impl FnMut(usize, &State),
    ) -> State {
        let mut b = self.buf(st.disp.len());
        self.forces(&st.disp, &mut b);
        for i in 0..sch.n_steps() {
            self.step(&mut st, sch, i, &mut b);
            observe(i, &st);
        }
        st
    }

    /// As [`Self::run`], but `observe(j, state, force)` sees the state at
    /// every stage `j = 0..=n` (the initial one included) with the unit force
    /// at its positions.
    pub fn run_with_forces(
        &self,
        mut st: State,
        sch: &Schedule,
        mut observe: impl FnMut(usize, &State, &[[f32; 3]]),
    ) -> State {
        let mut b = self.buf(st.disp.len());
        self.forces(&st.disp, &mut b);
        observe(0, &st, &b.f);
        for i in 0..sch.n_steps() {
            self.step(&mut st, sch, i, &mut b);
            observe(i + 1, &st, &b.f);
        }
        st
    }

    /// One kick-drift-kick step with factors `[K1, Dr, K2]` from a state
    /// with known force `f`, to scale factor `a1` (for snapshots between
    /// stages; one force evaluation).
    pub fn substep(&self, st: &State, f: &[[f32; 3]], factors: [f64; 3], a1: f64) -> State {
        let mut out = st.clone();
        let [k1, dr, k2] = factors;
        axpy(&mut out.mom, k1 as f32, f);
        axpy(&mut out.disp, dr as f32, &out.mom);
        let mut b = self.buf(st.disp.len());
        self.forces(&out.disp, &mut b);
        axpy(&mut out.mom, k2 as f32, &b.f);
        out.a = a1;
        out
    }

    /// Integrate backwards from the final state to `stages[0]`.
    pub fn reverse(&self, mut st: State, sch: &Schedule) -> State {
        let mut b = self.buf(st.disp.len());
        self.forces(&st.disp, &mut b);
        for i in (0..sch.n_steps()).rev() {
            axpy(&mut st.mom, -(sch.kick2[i] as f32), &b.f);
            axpy(&mut st.disp, -(sch.drift[i] as f32), &st.mom);
            self.forces(&st.disp, &mut b);
            axpy(&mut st.mom, -(sch.kick1[i] as f32), &b.f);
            st.a = sch.stages[i];
        }
        st
    }

    /// Adjoint pass from the final state `fin` (as returned by [`Self::run`])
    /// with cotangents `lam_s = dL/ds`, `lam_p = dL/dp`. For
    /// `Checkpoint(k)`, `initial` must be the initial state of the run.
    pub fn adjoint(
        &self,
        fin: &State,
        initial: Option<&State>,
        sch: &Schedule,
        lam_s: Vec<[f32; 3]>,
        lam_p: Vec<[f32; 3]>,
        mode: AdjointMode,
    ) -> Adjoint {
        let n = sch.n_steps();
        // Checkpointed: stored states at steps that are multiples of k.
        let (k, mut ckpt): (usize, Vec<Option<State>>) = match mode {
            AdjointMode::Reverse => (0, vec![]),
            AdjointMode::Checkpoint(k) => {
                let k = k.max(1);
                let init = initial
                    .expect("checkpointed adjoint needs the initial state")
                    .clone();
                let mut c: Vec<Option<State>> = vec![None; n + 1];
                c[0] = Some(init.clone());
                self.run(init, sch, |i, st| {
                    if (i + 1) % k == 0 && i + 1 < n {
                        c[i + 1] = Some(st.clone());
                    }
                });
                (k, c)
            }
        };
        // segment cache for the checkpointed mode: states at steps [lo, lo+k)
        let mut seg: Vec<(usize, State)> = vec![];
        let mut get_state = |i: usize, ckpt: &mut Vec<Option<State>>| -> State {
            if let Some((_, s)) = seg.iter().find(|(j, _)| *j == i) {
                return s.clone();
            }
            let lo = (i / k) * k;
            let base = ckpt[lo].clone().expect("checkpoint present");
            seg.clear();
            seg.push((lo, base.clone()));
            let mut st = base;
            let mut b = self.buf(st.disp.len());
            self.forces(&st.disp, &mut b);
            for j in lo..i {
                self.step(&mut st, sch, j, &mut b);
                seg.push((j + 1, st.clone()));
            }
            st
        };

        let mut st = fin.clone();
        let (mut lam_s, mut lam_p) = (lam_s, lam_p);
        let mut bar = sch.zeros_like();
        let mut b = self.buf(st.disp.len());
        // Every force evaluation of the backward pass is fused with the VJP
        // at the same positions (`lam_p` does not change between the two):
        // F(x_j) and lam_s += coef_j J(x_j)^T lam_p in one paint and one
        // read-out pass, coef_N = K2_{N-1}, coef_j = K1_j + K2_{j-1},
        // coef_0 = K1_0 (the same operations in the same order as the
        // separate force and VJP calls).
        let fused =
            |st: &State, lam_p: &[[f32; 3]], lam_s: &mut [[f32; 3]], b: &mut Buf, coef: f64| {
                self.force.forces_and_vjp_into(
                    &st.disp,
                    &mut b.f,
                    &mut b.meshes,
                    lam_p,
                    lam_s,
                    coef as f32,
                );
            };
        if n > 0 {
            fused(&st, &lam_p, &mut lam_s, &mut b, sch.kick2[n - 1]);
        }
        for i in (0..n).rev() {
            bar.kick2[i] = dot(&lam_p, &b.f);
            axpy(&mut st.mom, -(sch.kick2[i] as f32), &b.f); // p_{1/2}
            bar.drift[i] = dot(&lam_s, &st.mom);
            axpy(&mut lam_p, sch.drift[i] as f32, &lam_s);
            let coef = sch.kick1[i] + if i > 0 { sch.kick2[i - 1] } else { 0.0 };
            if k == 0 {
                axpy(&mut st.disp, -(sch.drift[i] as f32), &st.mom);
                fused(&st, &lam_p, &mut lam_s, &mut b, coef);
                bar.kick1[i] = dot(&lam_p, &b.f);
                axpy(&mut st.mom, -(sch.kick1[i] as f32), &b.f);
            } else {
                let s = get_state(i, &mut ckpt);
                st.disp = s.disp;
                fused(&st, &lam_p, &mut lam_s, &mut b, coef);
                bar.kick1[i] = dot(&lam_p, &b.f);
                st.mom = s.mom; // p_i exactly
            }
            st.a = sch.stages[i];
        }
        Adjoint {
            lam_s,
            lam_p,
            schedule_bar: bar,
            initial: st,
        }
    }
}
