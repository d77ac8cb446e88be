//! The sbibm benchmark tasks (Lueckmann et al. 2021, sbibm v1.1.0), ported
//! from the executable numpy specification
//! `shared/reference/sbi/tasks_numpy.py`.
//!
//! | task               | `theta` prior              | simulator `x | theta`                                        |
//! |--------------------|----------------------------|-------------------------------------------------------------|
//! | `two_moons`        | `U([-1, 1]^2)`             | `a ~ U(-pi/2, pi/2)`, `r ~ N(0.1, 0.01^2)`,                 |
//! |                    |                            | `x = (r cos a + 0.25 - |t1 + t2|/sqrt 2, r sin a + (t2 - t1)/sqrt 2)` |
//! | `gaussian_linear`  | `N(0, 0.1 I_10)`           | `x ~ N(theta, 0.1 I_10)`                                    |
//! | `gaussian_mixture` | `U([-10, 10]^2)`           | `x ~ N(theta, I)` or `N(theta, 0.01 I)` with probability 1/2 each (one component per simulation) |
//! | `slcp`             | `U([-3, 3]^5)`             | 4 iid draws `N(m, S)`, `m = (t1, t2)`, `s1 = t3^2`, `s2 = t4^2`, `rho = tanh t5`, `S = [[s1^2 + 1e-6, rho s1 s2], [rho s1 s2, s2^2 + 1e-6]]`; `x in R^8` ordered `(x1a, x1b, x2a, x2b, ...)` |
//!
//! Analytic posteriors (used by [`Task::sample_reference_posterior`]):
//! `gaussian_linear`: `N(x_o / 2, 0.05 I)` (precision `1/0.1 + 1/0.1 = 20`);
//! `gaussian_mixture`: `0.5 N(x_o, I) + 0.5 N(x_o, 0.01 I)` truncated to the
//! prior box; `two_moons`: sbibm's exact sampler (draw the noise, invert the
//! simulator, random sign of the folded coordinate, reject outside the
//! box). `slcp` has none (sbibm uses MCMC; here the batched slice sampler [`crate::mcmc`] serves).

use cosmodiff_infer::special::LN_SQRT_2PI;
use cosmodiff_infer::InferError;
use cosmodiff_infer::Prior;
use ndarray::{s, Array1, Array2, ArrayView1, ArrayView2};
use rand::{Rng, RngExt};
use rand_distr::StandardNormal;
use std::f64::consts::{FRAC_1_SQRT_2, FRAC_PI_2, PI};
use std::path::Path;

/// One of the four benchmark tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Task {
    TwoMoons,
    GaussianLinear,
    GaussianMixture,
    Slcp,
}

const TM_R_LOC: f64 = 0.1;
const TM_R_SCALE: f64 = 0.01;
const TM_OFFSET: f64 = 0.25;
const GL_DIM: usize = 10;
const GL_PRIOR_VAR: f64 = 0.1;
const GL_NOISE_VAR: f64 = 0.1;
const GM_BOUND: f64 = 10.0;
const GM_SCALES: [f64; 2] = [1.0, 0.1];
const SLCP_BOUND: f64 = 3.0;
const SLCP_N: usize = 4;

impl Task {
    /// All tasks, in the order of sbibm's table.
    pub const ALL: [Task; 4] = [
        Task::TwoMoons,
        Task::GaussianLinear,
        Task::GaussianMixture,
        Task::Slcp,
    ];

    /// Parse sbibm's task name.
    pub fn from_name(s: &str) -> Result<Task, InferError> {
        Task::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Task::ALL.iter().map(|t| t.name()).collect();
                InferError::Settings(format!(
                    "unknown SBI task '{s}' (expected one of: {})",
                    names.join(", ")
                ))
            })
    }

    /// sbibm's task name (`two_moons`, `gaussian_linear`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Task::TwoMoons => "two_moons",
            Task::GaussianLinear => "gaussian_linear",
            Task::GaussianMixture => "gaussian_mixture",
            Task::Slcp => "slcp",
        }
    }

    /// Number of parameters.
    pub fn dim_theta(&self) -> usize {
        match self {
            Task::TwoMoons | Task::GaussianMixture => 2,
            Task::GaussianLinear => GL_DIM,
            Task::Slcp => 5,
        }
    }

    /// Dimension of one simulated data vector.
    pub fn dim_x(&self) -> usize {
        match self {
            Task::TwoMoons | Task::GaussianMixture => 2,
            Task::GaussianLinear => GL_DIM,
            Task::Slcp => 2 * SLCP_N,
        }
    }

    /// The (independent) prior of each parameter.
    pub fn priors(&self) -> Vec<Prior> {
        let p = match self {
            Task::TwoMoons => Prior::Uniform {
                low: -1.0,
                high: 1.0,
            },
            Task::GaussianLinear => Prior::Normal {
                mean: 0.0,
                sd: GL_PRIOR_VAR.sqrt(),
            },
            Task::GaussianMixture => Prior::Uniform {
                low: -GM_BOUND,
                high: GM_BOUND,
            },
            Task::Slcp => Prior::Uniform {
                low: -SLCP_BOUND,
                high: SLCP_BOUND,
            },
        };
        vec![p; self.dim_theta()]
    }

    /// `log p(theta)` (normalised; `-inf` outside the support).
    pub fn log_prior(&self, theta: &[f64]) -> f64 {
        self.priors()
            .iter()
            .zip(theta)
            .map(|(p, &t)| p.log_pdf(t))
            .sum()
    }

    /// `n` draws from the prior, `[n, dim_theta]`.
    pub fn sample_prior<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> Array2<f64> {
        let priors = self.priors();
        Array2::from_shape_fn((n, self.dim_theta()), |(_, j)| match priors[j] {
            Prior::Uniform { low, high } => rng.random_range(low..high),
            Prior::Normal { mean, sd } => mean + sd * rng.sample::<f64, _>(StandardNormal),
            _ => unreachable!("benchmark priors are uniform or normal"),
        })
    }

    /// One simulation per row of `theta` (`[n, dim_theta]`), `[n, dim_x]`.
    ///
    /// Panics if `theta` has the wrong number of columns.
    pub fn simulate<R: Rng + ?Sized>(&self, theta: ArrayView2<f64>, rng: &mut R) -> Array2<f64> {
        assert_eq!(
            theta.ncols(),
            self.dim_theta(),
            "{}: theta must have {} columns",
            self.name(),
            self.dim_theta()
        );
        let n = theta.nrows();
        let mut x = Array2::zeros((n, self.dim_x()));
        for (t, mut xi) in theta.outer_iter().zip(x.outer_iter_mut()) {
            match self {
                Task::TwoMoons => {
                    let a = rng.random_range(-FRAC_PI_2..FRAC_PI_2);
                    let r = TM_R_LOC + TM_R_SCALE * rng.sample::<f64, _>(StandardNormal);
                    let (z0, z1) = two_moons_rotate(t[0], t[1]);
                    xi[0] = r * a.cos() + TM_OFFSET - z0.abs();
                    xi[1] = r * a.sin() + z1;
                }
                Task::GaussianLinear => {
                    let sd = GL_NOISE_VAR.sqrt();
                    for j in 0..GL_DIM {
                        xi[j] = t[j] + sd * rng.sample::<f64, _>(StandardNormal);
                    }
                }
                Task::GaussianMixture => {
                    let scale = GM_SCALES[usize::from(rng.random::<f64>() >= 0.5)];
                    for j in 0..2 {
                        xi[j] = t[j] + scale * rng.sample::<f64, _>(StandardNormal);
                    }
                }
                Task::Slcp => {
                    let (m, c) = slcp_mean_cov(t);
                    // Cholesky factor of the 2x2 covariance.
                    let l00 = c[0].sqrt();
                    let l10 = c[1] / l00;
                    let l11 = (c[2] - l10 * l10).max(0.0).sqrt();
                    for k in 0..SLCP_N {
                        let z0: f64 = rng.sample(StandardNormal);
                        let z1: f64 = rng.sample(StandardNormal);
                        xi[2 * k] = m[0] + l00 * z0;
                        xi[2 * k + 1] = m[1] + l10 * z0 + l11 * z1;
                    }
                }
            }
        }
        x
    }

    /// `log p(x | theta)` where it is analytic: `gaussian_linear`
    /// (`sum_j log N(x_j; theta_j, 0.1)`), `gaussian_mixture`
    /// (`log[0.5 N(x; theta, I) + 0.5 N(x; theta, 0.01 I)]`) and `slcp`
    /// (`sum_k log N(x_k; m, S)`); `None` for `two_moons` (its likelihood
    /// is a density on a curve, not usable as a likelihood).
    ///
    /// Panics if `theta` or `x` have the wrong length.
    pub fn log_likelihood(&self, theta: ArrayView1<f64>, x: ArrayView1<f64>) -> Option<f64> {
        assert_eq!(
            theta.len(),
            self.dim_theta(),
            "{}: theta length",
            self.name()
        );
        assert_eq!(x.len(), self.dim_x(), "{}: x length", self.name());
        match self {
            Task::TwoMoons => None,
            Task::GaussianLinear => {
                let q: f64 = x.iter().zip(theta).map(|(a, b)| (a - b) * (a - b)).sum();
                Some(
                    -0.5 * q / GL_NOISE_VAR
                        - GL_DIM as f64 * (LN_SQRT_2PI + 0.5 * GL_NOISE_VAR.ln()),
                )
            }
            Task::GaussianMixture => {
                let q = (x[0] - theta[0]).powi(2) + (x[1] - theta[1]).powi(2);
                // log N(x; theta, s^2 I_2) = -q/(2 s^2) - 2 ln s - ln 2 pi.
                let l: Vec<f64> = GM_SCALES
                    .iter()
                    .map(|s| 0.5f64.ln() - 0.5 * q / (s * s) - 2.0 * s.ln() - (2.0 * PI).ln())
                    .collect();
                let mx = l[0].max(l[1]);
                Some(mx + ((l[0] - mx).exp() + (l[1] - mx).exp()).ln())
            }
            Task::Slcp => {
                let (m, c) = slcp_mean_cov(theta);
                let det = c[0] * c[2] - c[1] * c[1];
                let (i00, i01, i11) = (c[2] / det, -c[1] / det, c[0] / det);
                let mut total = 0.0;
                for k in 0..SLCP_N {
                    let d0 = x[2 * k] - m[0];
                    let d1 = x[2 * k + 1] - m[1];
                    let q = d0 * d0 * i00 + 2.0 * d0 * d1 * i01 + d1 * d1 * i11;
                    total += -0.5 * q - 0.5 * det.ln() - (2.0 * PI).ln();
                }
                Some(total)
            }
        }
    }

    /// `n` exact draws from the posterior `p(theta | x_o)` where sbibm has
    /// an exact sampler (all tasks but `slcp`, which returns `None`).
    pub fn sample_reference_posterior<R: Rng + ?Sized>(
        &self,
        x_o: ArrayView1<f64>,
        n: usize,
        rng: &mut R,
    ) -> Option<Array2<f64>> {
        assert_eq!(x_o.len(), self.dim_x(), "{}: x_o length", self.name());
        let mut out = Array2::zeros((n, self.dim_theta()));
        match self {
            Task::Slcp => return None,
            Task::GaussianLinear => {
                let sd = (1.0 / (1.0 / GL_PRIOR_VAR + 1.0 / GL_NOISE_VAR)).sqrt();
                let w = (sd * sd) / GL_NOISE_VAR;
                for mut row in out.outer_iter_mut() {
                    for j in 0..GL_DIM {
                        row[j] = w * x_o[j] + sd * rng.sample::<f64, _>(StandardNormal);
                    }
                }
            }
            Task::GaussianMixture => {
                let mut i = 0;
                while i < n {
                    let scale = GM_SCALES[usize::from(rng.random::<f64>() >= 0.5)];
                    let t0 = x_o[0] + scale * rng.sample::<f64, _>(StandardNormal);
                    let t1 = x_o[1] + scale * rng.sample::<f64, _>(StandardNormal);
                    if t0.abs() <= GM_BOUND && t1.abs() <= GM_BOUND {
                        out[[i, 0]] = t0;
                        out[[i, 1]] = t1;
                        i += 1;
                    }
                }
            }
            Task::TwoMoons => {
                let mut i = 0;
                while i < n {
                    let a = rng.random_range(-FRAC_PI_2..FRAC_PI_2);
                    let r = TM_R_LOC + TM_R_SCALE * rng.sample::<f64, _>(StandardNormal);
                    let mut q0 = r * a.cos() + TM_OFFSET - x_o[0];
                    let q1 = x_o[1] - r * a.sin();
                    if rng.random::<f64>() < 0.5 {
                        q0 = -q0;
                    }
                    let t0 = FRAC_1_SQRT_2 * (q0 - q1);
                    let t1 = FRAC_1_SQRT_2 * (q0 + q1);
                    if (-1.0..=1.0).contains(&t0) && (-1.0..=1.0).contains(&t1) {
                        out[[i, 0]] = t0;
                        out[[i, 1]] = t1;
                        i += 1;
                    }
                }
            }
        }
        Some(out)
    }
}

/// Rotation by `-pi/4`: `z0 = (t1 + t2)/sqrt 2`, `z1 = (t2 - t1)/sqrt 2`.
fn two_moons_rotate(t0: f64, t1: f64) -> (f64, f64) {
    ((t0 + t1) * FRAC_1_SQRT_2, (t1 - t0) * FRAC_1_SQRT_2)
}

/// SLCP mean `(t1, t2)` and covariance `[S00, S01, S11]`.
fn slcp_mean_cov(t: ArrayView1<f64>) -> ([f64; 2], [f64; 3]) {
    let s1 = t[2] * t[2];
    let s2 = t[3] * t[3];
    let rho = t[4].tanh();
    (
        [t[0], t[1]],
        [s1 * s1 + 1e-6, rho * s1 * s2, s2 * s2 + 1e-6],
    )
}

/// Observation, true parameters and reference posterior draws of one
/// sbibm observation.
#[derive(Debug, Clone)]
pub struct TaskReference {
    /// `x_o`, `[dim_x]`.
    pub observation: Array1<f64>,
    /// The parameters `x_o` was simulated from, `[dim_theta]`.
    pub true_parameters: Array1<f64>,
    /// 10,000 reference posterior draws, `[10000, dim_theta]`.
    pub posterior_samples: Array2<f64>,
}

/// Read a 2-D `.npy` array stored as float32 or float64.
pub fn read_npy_f64(path: &Path) -> Result<Array2<f64>, InferError> {
    let err = |msg: String| InferError::Npz {
        path: path.display().to_string(),
        msg,
    };
    if !path.exists() {
        return Err(err("file not found".into()));
    }
    match ndarray_npy::read_npy::<_, Array2<f32>>(path) {
        Ok(a) => Ok(a.mapv(f64::from)),
        Err(_) => ndarray_npy::read_npy::<_, Array2<f64>>(path)
            .map_err(|e| err(format!("expected a 2-D float32/float64 array: {e}"))),
    }
}

/// Load observation `obs` (1 to 5: the observations with reference
/// posterior samples) of `task` from `root` (the `shared/reference/sbi`
/// folder: `<task>/observations.npy`, `true_parameters.npy`,
/// `reference_posterior_samples_obs<obs>.npy`).
pub fn load_reference(root: &Path, task: Task, obs: usize) -> Result<TaskReference, InferError> {
    if !(1..=5).contains(&obs) {
        return Err(InferError::Settings(format!(
            "observation {obs}: reference posterior samples exist for observations 1 to 5"
        )));
    }
    let dir = root.join(task.name());
    let xs = read_npy_f64(&dir.join("observations.npy"))?;
    let ts = read_npy_f64(&dir.join("true_parameters.npy"))?;
    let post = read_npy_f64(&dir.join(format!("reference_posterior_samples_obs{obs}.npy")))?;
    let check = |a: &Array2<f64>, cols: usize, what: &str| {
        if a.ncols() != cols || a.nrows() == 0 {
            Err(InferError::Dim(format!(
                "{}/{what}: shape {:?}, expected {cols} columns",
                dir.display(),
                a.shape()
            )))
        } else {
            Ok(())
        }
    };
    check(&xs, task.dim_x(), "observations.npy")?;
    check(&ts, task.dim_theta(), "true_parameters.npy")?;
    check(&post, task.dim_theta(), "reference posterior samples")?;
    if xs.nrows() < obs || ts.nrows() < obs {
        return Err(InferError::Dim(format!(
            "{}: fewer than {obs} observations",
            dir.display()
        )));
    }
    Ok(TaskReference {
        observation: xs.slice(s![obs - 1, ..]).to_owned(),
        true_parameters: ts.slice(s![obs - 1, ..]).to_owned(),
        posterior_samples: post,
    })
}
