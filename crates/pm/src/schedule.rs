//! Time stepping: stages, FastPM kick/drift factors and the 2LPT coefficients.
//!
//! Momentum `p = a^3 E dx/da` (FastPM/JaxPM; `x` in mesh cells), so
//! `dx/da = p / (a^3 E)` and `dp/da = 1.5 Omega_m F / (a^2 E)` with the unit
//! force `F = -grad phi`, `laplacian phi = delta`.
//!
//! Kick-drift-kick from `a_i` to `a_{i+1}` with half-step point `a_h`
//! (`sqrt(a_i a_{i+1})` geometric or `(a_i + a_{i+1})/2` arithmetic):
//!
//! ```text
//! p += K1 F(x_i),  x += Dr p,  p += K2 F(x_{i+1})
//! K1 = 1.5 Om [G_f(a_h) - G_f(a_i)]     / [a_i^2 E(a_i) g_f(a_i)]
//! Dr =        [D1(a_{i+1}) - D1(a_i)]   /  G_f(a_h)
//! K2 = 1.5 Om [G_f(a_{i+1}) - G_f(a_h)] / [a_{i+1}^2 E(a_{i+1}) g_f(a_{i+1})]
//! ```
//!
//! (Feng et al. 2016, eqs. 19-22: the factors integrate the linear-theory
//! trajectory exactly, so linear modes grow correctly at any step size.
//! With `g_f = 1.5 Om D1/(a^2 E)` the kick is `Delta G_f / D1(a_c)` times F.)
//! The "standard" factors `int da/(a^3 E)` and `int da/(a^2 E)` are also
//! available for comparison.
//!
//! 2LPT at `a_0` (Scoccimarro 1998, positive-`D2` convention of [`Growth`]):
//! `x = q + cx1 s1 + cx2 s2`, `p = cp1 s1 + cp2 s2` with
//! `cx1 = D1`, `cx2 = 3/7 D2`, `cp1 = a^2 E f1 D1`, `cp2 = a^2 E f2 (3/7) D2`.

use crate::growth::Growth;
use crate::PmError;

/// Spacing of the stages between `a_start` and `a_end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spacing {
    Linear,
    Log,
}

/// Where the drift's momentum is evaluated inside a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HalfStep {
    Geometric,
    Arithmetic,
}

/// Kick and drift factors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Factors {
    /// FastPM (exact linear growth).
    FastPm,
    /// Plain integrals of the equations of motion (midpoint-free).
    Standard,
}

/// Stepping settings.
#[derive(Debug, Clone)]
pub struct StepConfig {
    pub a_start: f64,
    pub a_end: f64,
    pub n_steps: usize,
    pub spacing: Spacing,
    pub half_step: HalfStep,
    pub factors: Factors,
    /// 1 or 2.
    pub lpt_order: usize,
}

impl Default for StepConfig {
    fn default() -> Self {
        Self {
            a_start: 0.1,
            a_end: 1.0,
            n_steps: 10,
            spacing: Spacing::Linear,
            half_step: HalfStep::Geometric,
            factors: Factors::FastPm,
            lpt_order: 2,
        }
    }
}

/// All the scalars of a run that depend on cosmology. Every field is a
/// differentiable coefficient: the adjoint returns the loss's derivative with
/// respect to each of them ([`Schedule::dot`] contracts such cotangents with
/// `d(schedule)/d(theta)`).
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// Stages `a_0 < ... < a_n` (fixed, not differentiated).
    pub stages: Vec<f64>,
    /// Kick before the drift (includes `1.5 Omega_m`).
    pub kick1: Vec<f64>,
    pub drift: Vec<f64>,
    /// Kick after the drift (includes `1.5 Omega_m`).
    pub kick2: Vec<f64>,
    /// LPT coefficients `[cx1, cx2, cp1, cp2]`.
    pub lpt: [f64; 4],
}

fn simpson(f: impl Fn(f64) -> f64, a: f64, b: f64) -> f64 {
    let n = 64;
    let h = (b - a) / n as f64;
    let mut s = f(a) + f(b);
    for i in 1..n {
        s += f(a + i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
    }
    s * h / 3.0
}

impl Schedule {
    /// Stages from the settings (no cosmology needed).
    pub fn stages(cfg: &StepConfig) -> Result<Vec<f64>, PmError> {
        if !(cfg.a_start > 0.0 && cfg.a_end > cfg.a_start && cfg.a_end.is_finite()) {
            return Err(PmError::Config(format!(
                "need 0 < a_start < a_end, got a_start = {}, a_end = {}",
                cfg.a_start, cfg.a_end
            )));
        }
        if cfg.n_steps == 0 {
            return Err(PmError::Config("steps.n must be at least 1".into()));
        }
        let n = cfg.n_steps;
        Ok((0..=n)
            .map(|i| {
                let t = i as f64 / n as f64;
                if i == n {
                    cfg.a_end
                } else {
                    match cfg.spacing {
                        Spacing::Linear => cfg.a_start + t * (cfg.a_end - cfg.a_start),
                        Spacing::Log => {
                            (cfg.a_start.ln() + t * (cfg.a_end.ln() - cfg.a_start.ln())).exp()
                        }
                    }
                }
            })
            .collect())
    }

    /// Factors for a cosmology.
    pub fn new(g: &dyn Growth, cfg: &StepConfig) -> Result<Self, PmError> {
        let stages = Self::stages(cfg)?;
        if !(1..=2).contains(&cfg.lpt_order) {
            return Err(PmError::Config(format!(
                "ic.lpt_order must be 1 or 2, got {}",
                cfg.lpt_order
            )));
        }
        let (lo, hi) = g.a_range();
        if stages[0] < lo || stages[stages.len() - 1] > hi {
            return Err(PmError::Config(format!(
                "scale factors [{}, {}] outside the growth functions' range [{lo}, {hi}]",
                stages[0],
                stages[stages.len() - 1]
            )));
        }
        let (mut kick1, mut drift, mut kick2) = (vec![], vec![], vec![]);
        for w in stages.windows(2) {
            let [k1, dr, k2] = Self::step_factors(g, cfg.half_step, cfg.factors, w[0], w[1]);
            kick1.push(k1);
            drift.push(dr);
            kick2.push(k2);
        }
        let a = stages[0];
        let (d1, d2) = (g.d1(a), if cfg.lpt_order == 2 { g.d2(a) } else { 0.0 });
        let ae = a * a * g.e(a);
        let lpt = [
            d1,
            3.0 / 7.0 * d2,
            ae * g.f1(a) * d1,
            ae * g.f2(a) * 3.0 / 7.0 * d2,
        ];
        Ok(Self {
            stages,
            kick1,
            drift,
            kick2,
            lpt,
        })
    }

    /// `[K1, Dr, K2]` of one kick-drift-kick step from `a0` to `a1`.
    pub fn step_factors(
        g: &dyn Growth,
        half_step: HalfStep,
        factors: Factors,
        a0: f64,
        a1: f64,
    ) -> [f64; 3] {
        let om15 = 1.5 * g.omega_m();
        let ah = match half_step {
            HalfStep::Geometric => (a0 * a1).sqrt(),
            HalfStep::Arithmetic => 0.5 * (a0 + a1),
        };
        match factors {
            Factors::FastPm => [
                om15 * (g.gf(ah) - g.gf(a0)) / (a0 * a0 * g.e(a0) * g.gf_da(a0)),
                (g.d1(a1) - g.d1(a0)) / g.gf(ah),
                om15 * (g.gf(a1) - g.gf(ah)) / (a1 * a1 * g.e(a1) * g.gf_da(a1)),
            ],
            Factors::Standard => [
                om15 * simpson(|a| 1.0 / (a * a * g.e(a)), a0, ah),
                simpson(|a| 1.0 / (a * a * a * g.e(a)), a0, a1),
                om15 * simpson(|a| 1.0 / (a * a * g.e(a)), ah, a1),
            ],
        }
    }

    /// Number of steps.
    pub fn n_steps(&self) -> usize {
        self.drift.len()
    }

    /// `(self - other) / h` coefficient-wise (a finite-difference derivative
    /// of the schedule with respect to a parameter; `stages` kept).
    pub fn diff(&self, other: &Schedule, h: f64) -> Schedule {
        let d = |x: &[f64], y: &[f64]| {
            x.iter()
                .zip(y)
                .map(|(a, b)| (a - b) / h)
                .collect::<Vec<_>>()
        };
        Schedule {
            stages: self.stages.clone(),
            kick1: d(&self.kick1, &other.kick1),
            drift: d(&self.drift, &other.drift),
            kick2: d(&self.kick2, &other.kick2),
            lpt: std::array::from_fn(|i| (self.lpt[i] - other.lpt[i]) / h),
        }
    }

    /// Contract two schedules coefficient-wise (cotangent . tangent).
    pub fn dot(&self, other: &Schedule) -> f64 {
        let d = |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(a, b)| a * b).sum::<f64>();
        d(&self.kick1, &other.kick1)
            + d(&self.drift, &other.drift)
            + d(&self.kick2, &other.kick2)
            + d(&self.lpt, &other.lpt)
    }

    /// A schedule of zeros with the same shape (cotangent accumulator).
    pub fn zeros_like(&self) -> Schedule {
        Schedule {
            stages: self.stages.clone(),
            kick1: vec![0.0; self.kick1.len()],
            drift: vec![0.0; self.drift.len()],
            kick2: vec![0.0; self.kick2.len()],
            lpt: [0.0; 4],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::growth::TableGrowth;

    /// Our factors from the shared growth table against JaxPM's own (meta.json).
    #[test]
    fn factors_match_jaxpm_meta() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/reference/pm");
        let Ok(g) = TableGrowth::from_file(
            0.3075,
            std::path::Path::new(&format!("{dir}/growth_table_jaxcosmo_planck15.txt")),
        ) else {
            return;
        };
        let s = Schedule::new(&g, &StepConfig::default()).unwrap();
        // first and last entries of meta.json["fastpm"]["10"]
        let want_k1 = [0.23453651368618011, 0.04949955642223358];
        let want_dr = [3.1583826541900635, 0.10170844197273254];
        let want_k2 = [0.19938524067401886, 0.04708591848611832];
        let kick_scale = 1.0; // meta kicks exclude 1.5 Om
        let om15 = 1.5 * 0.3075;
        for (j, i) in [0usize, 9].iter().enumerate() {
            assert!(
                (s.kick1[*i] / om15 * kick_scale / want_k1[j] - 1.0).abs() < 2e-3,
                "k1 {i}: {}",
                s.kick1[*i] / om15
            );
            assert!(
                (s.drift[*i] / want_dr[j] - 1.0).abs() < 2e-3,
                "dr {i}: {}",
                s.drift[*i]
            );
            assert!(
                (s.kick2[*i] / om15 / want_k2[j] - 1.0).abs() < 2e-3,
                "k2 {i}: {}",
                s.kick2[*i] / om15
            );
        }
    }
}
