//! Continuous normalizing flows: an adaptive Dormand-Prince ODE solver with
//! dense output, and the change of variables along an ODE (Chen et al.
//! 2018, "Neural ordinary differential equations"; Grathwohl et al. 2019,
//! FFJORD).
//!
//! For `dy/dt = f(t, y)` the log-density of the solution changes as
//! `d log p(y(t)) / dt = -tr(df/dy)` (the instantaneous change of
//! variables), so integrating the augmented state `[y, l]`, `dl/dt =
//! tr(df/dy)`, from `t0` to `t1` gives
//!
//! ```text
//! log p_t0(y(t0)) = log p_t1(y(t1)) + l(t1) - l(t0).
//! ```
//!
//! The trace is exact (`D` vector-Jacobian products, for small `D` and
//! tests) or Hutchinson's estimator `v^T (df/dy) v` with one Rademacher
//! probe `v` fixed for the whole solve (FFJORD), unbiased.
//!
//! The solver is written here rather than taken from a crate: `ode_solvers`
//! (the maintained Rust DOPRI5) pulls in a second nalgebra and fifteen
//! versions of glam, for about 150 lines of well-known tableau.

use crate::error::{invalid, Result};

/// Tolerances and limits of [`dopri5`].
#[derive(Clone, Debug)]
pub struct OdeSettings {
    /// Relative tolerance.
    pub rtol: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// First step (default: 1% of the interval).
    pub h0: Option<f64>,
    /// Most accepted + rejected steps.
    pub max_steps: usize,
}

impl Default for OdeSettings {
    fn default() -> Self {
        Self {
            rtol: 1e-5,
            atol: 1e-5,
            h0: None,
            max_steps: 100_000,
        }
    }
}

/// One accepted step with its continuous extension.
#[derive(Clone, Debug)]
pub struct DenseStep {
    /// Start of the step.
    pub t0: f64,
    /// Signed length of the step.
    pub h: f64,
    /// The five coefficient vectors of the interpolant.
    r: [Vec<f64>; 5],
}

impl DenseStep {
    /// The solution at `t` inside the step (Hairer, Norsett & Wanner,
    /// "Solving ODEs I", the DOPRI5 dense output of order 4).
    pub fn at(&self, t: f64) -> Vec<f64> {
        let s = (t - self.t0) / self.h;
        let s1 = 1.0 - s;
        let [r1, r2, r3, r4, r5] = &self.r;
        (0..r1.len())
            .map(|i| r1[i] + s * (r2[i] + s1 * (r3[i] + s * (r4[i] + s1 * r5[i]))))
            .collect()
    }
}

/// The result of [`dopri5`].
#[derive(Clone, Debug)]
pub struct OdeSolution {
    /// `y(t1)`.
    pub y: Vec<f64>,
    /// Accepted steps.
    pub steps: usize,
    /// Rejected steps.
    pub rejected: usize,
    /// Evaluations of `f`.
    pub evals: usize,
    /// Every accepted step's interpolant (when asked for).
    pub dense: Vec<DenseStep>,
}

impl OdeSolution {
    /// The dense output at `t` (within the solved interval).
    pub fn at(&self, t: f64) -> Option<Vec<f64>> {
        self.dense
            .iter()
            .find(|s| {
                let (a, b) = (s.t0, s.t0 + s.h);
                (a.min(b)..=a.max(b)).contains(&t)
            })
            .map(|s| s.at(t))
    }
}

// Dormand & Prince (1980) 5(4) tableau.
const C: [f64; 7] = [0.0, 0.2, 0.3, 0.8, 8.0 / 9.0, 1.0, 1.0];
const A: [[f64; 6]; 7] = [
    [0.0; 6],
    [0.2, 0.0, 0.0, 0.0, 0.0, 0.0],
    [3.0 / 40.0, 9.0 / 40.0, 0.0, 0.0, 0.0, 0.0],
    [44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0, 0.0, 0.0, 0.0],
    [
        19372.0 / 6561.0,
        -25360.0 / 2187.0,
        64448.0 / 6561.0,
        -212.0 / 729.0,
        0.0,
        0.0,
    ],
    [
        9017.0 / 3168.0,
        -355.0 / 33.0,
        46732.0 / 5247.0,
        49.0 / 176.0,
        -5103.0 / 18656.0,
        0.0,
    ],
    [
        35.0 / 384.0,
        0.0,
        500.0 / 1113.0,
        125.0 / 192.0,
        -2187.0 / 6784.0,
        11.0 / 84.0,
    ],
];
/// Fifth-order weights minus the embedded fourth-order ones.
const E: [f64; 7] = [
    71.0 / 57600.0,
    0.0,
    -71.0 / 16695.0,
    71.0 / 1920.0,
    -17253.0 / 339200.0,
    22.0 / 525.0,
    -1.0 / 40.0,
];
/// Dense-output weights.
const D: [f64; 7] = [
    -12715105075.0 / 11282082432.0,
    0.0,
    87487479700.0 / 32700410799.0,
    -10690763975.0 / 1880347072.0,
    701980252875.0 / 199316789632.0,
    -1453857185.0 / 822651844.0,
    69997945.0 / 29380423.0,
];

/// Solve `dy/dt = f(t, y)` from `t0` to `t1` (either direction) with
/// adaptive Dormand-Prince 5(4) steps: a step is accepted when the RMS of
/// its error estimate over `atol + rtol max(|y_n|, |y_n+1|)` is at most one,
/// and the next step is `h min(5, max(0.2, 0.9 err^(-1/5)))`. With `dense`,
/// each accepted step's interpolant is kept ([`OdeSolution::at`]).
pub fn dopri5(
    mut f: impl FnMut(f64, &[f64]) -> Vec<f64>,
    t0: f64,
    t1: f64,
    y0: &[f64],
    s: &OdeSettings,
    dense: bool,
) -> Result<OdeSolution> {
    if !(s.rtol > 0.0 && s.atol > 0.0) {
        return invalid("ODE tolerances must be positive");
    }
    let n = y0.len();
    let dir = if t1 >= t0 { 1.0 } else { -1.0 };
    let span = (t1 - t0).abs();
    let mut out = OdeSolution {
        y: y0.to_vec(),
        steps: 0,
        rejected: 0,
        evals: 1,
        dense: vec![],
    };
    if span == 0.0 {
        return Ok(out);
    }
    let mut h = s.h0.unwrap_or(0.01 * span).min(span) * dir;
    let mut t = t0;
    let mut y = y0.to_vec();
    let mut k1 = f(t, &y);
    let axpy = |y: &[f64], h: f64, ks: &[&Vec<f64>], a: &[f64]| -> Vec<f64> {
        (0..n)
            .map(|i| y[i] + h * ks.iter().zip(a).map(|(k, c)| c * k[i]).sum::<f64>())
            .collect()
    };
    while (t1 - t) * dir > 0.0 {
        if out.steps + out.rejected >= s.max_steps {
            return invalid(format!(
                "the ODE solver took more than {} steps (t = {t}, step {h}): too stiff for these tolerances",
                s.max_steps
            ));
        }
        if (t + h - t1) * dir > 0.0 {
            h = t1 - t;
        }
        let k2 = f(t + C[1] * h, &axpy(&y, h, &[&k1], &A[1][..1]));
        let k3 = f(t + C[2] * h, &axpy(&y, h, &[&k1, &k2], &A[2][..2]));
        let k4 = f(t + C[3] * h, &axpy(&y, h, &[&k1, &k2, &k3], &A[3][..3]));
        let k5 = f(
            t + C[4] * h,
            &axpy(&y, h, &[&k1, &k2, &k3, &k4], &A[4][..4]),
        );
        let k6 = f(t + h, &axpy(&y, h, &[&k1, &k2, &k3, &k4, &k5], &A[5][..5]));
        let y1 = axpy(&y, h, &[&k1, &k2, &k3, &k4, &k5, &k6], &A[6]);
        let k7 = f(t + h, &y1);
        out.evals += 6;
        let ks = [&k1, &k2, &k3, &k4, &k5, &k6, &k7];
        let err = ((0..n)
            .map(|i| {
                let e = h * (0..7).map(|j| E[j] * ks[j][i]).sum::<f64>();
                let sc = s.atol + s.rtol * y[i].abs().max(y1[i].abs());
                (e / sc).powi(2)
            })
            .sum::<f64>()
            / n.max(1) as f64)
            .sqrt();
        if !err.is_finite() {
            return invalid(format!("the ODE solution is not finite at t = {t}"));
        }
        let factor = (0.9 * err.max(1e-10).powf(-0.2)).clamp(0.2, 5.0);
        if err <= 1.0 {
            if dense {
                let r2: Vec<f64> = (0..n).map(|i| y1[i] - y[i]).collect();
                let r3: Vec<f64> = (0..n).map(|i| h * k1[i] - r2[i]).collect();
                let r4: Vec<f64> = (0..n).map(|i| r2[i] - h * k7[i] - r3[i]).collect();
                let r5: Vec<f64> = (0..n)
                    .map(|i| h * (0..7).map(|j| D[j] * ks[j][i]).sum::<f64>())
                    .collect();
                out.dense.push(DenseStep {
                    t0: t,
                    h,
                    r: [y.clone(), r2, r3, r4, r5],
                });
            }
            t += h;
            y = y1;
            k1 = k7; // first same as last
            out.steps += 1;
            h *= factor;
        } else {
            out.rejected += 1;
            h *= factor.min(1.0);
        }
    }
    out.y = y;
    Ok(out)
}

/// How the divergence `tr(df/dy)` is computed.
#[derive(Clone, Debug)]
pub enum Trace {
    /// Exactly, from `D` vector-Jacobian products.
    Exact,
    /// Hutchinson's `v^T (df/dy) v` with this probe (Rademacher, fixed for
    /// the solve).
    Hutchinson(Vec<f64>),
}

/// A Rademacher probe of `n` entries from `seed`.
pub fn rademacher(n: usize, seed: u64) -> Vec<f64> {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| if rng.random::<bool>() { 1.0 } else { -1.0 })
        .collect()
}

/// Dynamics of a continuous flow: `f(t, y)` and its divergence.
pub trait Dynamics {
    /// `(f(t, y), tr(df/dy) or its estimate)`.
    fn eval(&self, t: f64, y: &[f64], trace: &Trace) -> (Vec<f64>, f64);
}

/// Integrate `y` from `t0` to `t1` with the divergence accumulated:
/// returns `(y(t1), integral of tr(df/dy) dt from t0 to t1)`, so that
/// `log p_t0(y0) = log p_t1(y(t1)) + delta`.
pub fn flow(
    dynamics: &impl Dynamics,
    t0: f64,
    t1: f64,
    y0: &[f64],
    trace: &Trace,
    s: &OdeSettings,
) -> Result<(Vec<f64>, f64, OdeSolution)> {
    let n = y0.len();
    if let Trace::Hutchinson(v) = trace {
        if v.len() != n {
            return invalid(format!(
                "the probe has {} entries for {n} dimensions",
                v.len()
            ));
        }
    }
    let mut aug = y0.to_vec();
    aug.push(0.0);
    let sol = dopri5(
        |t, a| {
            let (mut dy, div) = dynamics.eval(t, &a[..n], trace);
            dy.push(div);
            dy
        },
        t0,
        t1,
        &aug,
        s,
        false,
    )?;
    let mut y = sol.y.clone();
    let delta = y.pop().unwrap_or(0.0);
    Ok((y, delta, sol))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Linear dynamics `dy/dt = A y`.
    struct Linear {
        a: Vec<Vec<f64>>,
    }

    impl Dynamics for Linear {
        fn eval(&self, _: f64, y: &[f64], trace: &Trace) -> (Vec<f64>, f64) {
            let n = y.len();
            let f = (0..n)
                .map(|i| (0..n).map(|j| self.a[i][j] * y[j]).sum())
                .collect();
            let div = match trace {
                Trace::Exact => (0..n).map(|i| self.a[i][i]).sum(),
                Trace::Hutchinson(v) => (0..n)
                    .map(|i| v[i] * (0..n).map(|j| self.a[i][j] * v[j]).sum::<f64>())
                    .sum(),
            };
            (f, div)
        }
    }

    fn matrix() -> Vec<Vec<f64>> {
        vec![
            vec![-0.5, 1.0, 0.2],
            vec![-1.0, -0.3, 0.0],
            vec![0.4, 0.1, 0.6],
        ]
    }

    /// `y' = -y` (and a rotation): the solution and the dense output match
    /// the exact ones within the tolerance; backwards round trip to 1e-5.
    #[test]
    fn dopri5_solves_and_interpolates_and_runs_backwards() {
        let s = OdeSettings {
            rtol: 1e-8,
            atol: 1e-10,
            ..Default::default()
        };
        let sol = dopri5(
            |_, y| vec![-y[0], y[2], -y[1]],
            0.0,
            3.0,
            &[1.0, 0.0, 1.0],
            &s,
            true,
        )
        .unwrap();
        assert!((sol.y[0] - (-3f64).exp()).abs() < 1e-8, "{:?}", sol.y);
        assert!((sol.y[1] - 3f64.sin()).abs() < 1e-7, "{:?}", sol.y);
        for t in [0.05, 0.77, 1.5, 2.93] {
            let y = sol.at(t).unwrap();
            assert!(
                (y[0] - (-t).exp()).abs() < 1e-7,
                "dense output at {t}: {y:?}"
            );
            assert!((y[2] - t.cos()).abs() < 1e-7, "dense output at {t}: {y:?}");
        }
        let back = dopri5(|_, y| vec![-y[0], y[2], -y[1]], 3.0, 0.0, &sol.y, &s, false).unwrap();
        for (a, b) in back.y.iter().zip([1.0, 0.0, 1.0]) {
            assert!((a - b).abs() < 1e-5, "{:?}", back.y);
        }
        assert!(sol.steps > 5 && sol.steps < 400, "{} steps", sol.steps);
    }

    /// For `dy/dt = A y` the log-determinant of the flow map at time `t` is
    /// `t tr(A)`; Hutchinson's estimate averages to it (its mean over 400
    /// probes within 3 standard errors), and the flow inverts.
    #[test]
    fn linear_flow_log_det_is_t_trace_a() {
        let dynamics = Linear { a: matrix() };
        let s = OdeSettings {
            rtol: 1e-9,
            atol: 1e-9,
            ..Default::default()
        };
        let y0 = [0.3, -1.2, 0.8];
        let tr = -0.5 - 0.3 + 0.6;
        let (y1, delta, _) = flow(&dynamics, 0.0, 1.5, &y0, &Trace::Exact, &s).unwrap();
        assert!((delta - 1.5 * tr).abs() < 1e-8, "{delta} vs {}", 1.5 * tr);
        let (back, minus, _) = flow(&dynamics, 1.5, 0.0, &y1, &Trace::Exact, &s).unwrap();
        assert!((minus + delta).abs() < 1e-8);
        for (a, b) in back.iter().zip(y0) {
            assert!((a - b).abs() < 1e-5);
        }
        let est: Vec<f64> = (0..400)
            .map(|k| {
                flow(
                    &dynamics,
                    0.0,
                    1.5,
                    &y0,
                    &Trace::Hutchinson(rademacher(3, k)),
                    &s,
                )
                .unwrap()
                .1
            })
            .collect();
        let mean = est.iter().sum::<f64>() / 400.0;
        let se = (est.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 399.0 / 400.0).sqrt();
        assert!(se > 0.0, "the estimator varies with the probe");
        assert!(
            (mean - 1.5 * tr).abs() < 3.0 * se,
            "{mean} +- {se} vs {}",
            1.5 * tr
        );
    }
}
