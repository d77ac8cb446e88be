//! One-dimensional priors and their bijections to unconstrained space.
//!
//! Samplers and optimisers work on `y in R^n`; each constrained parameter
//! is `x = T(y)` with a smooth bijection `T` onto the prior's support:
//!
//! | support      | `x = T(y)`                      | `log |dx/dy|`                         |
//! |--------------|---------------------------------|---------------------------------------|
//! | `R`          | `y`                             | `0`                                   |
//! | `(a, inf)`   | `a + e^y`                       | `y`                                   |
//! | `(-inf, b)`  | `b - e^y`                       | `y`                                   |
//! | `(a, b)`     | `a + (b - a) sigma(y)`          | `ln(b-a) + ln sigma(y) + ln sigma(-y)`|
//!
//! with `sigma(y) = 1/(1+e^{-y})` (the Stan reference manual, "Constraint
//! transforms"). The density of `y` is `p_y(y) = p_x(T(y)) |dT/dy|`, so
//! [`Prior::log_density_unconstrained`] adds the log-Jacobian.

use crate::error::InferError;
use crate::special::{log_norm_cdf, norm_cdf, sigmoid, softplus, LN_SQRT_2PI};
use serde::{Deserialize, Serialize};

fn neg_inf() -> f64 {
    f64::NEG_INFINITY
}
fn pos_inf() -> f64 {
    f64::INFINITY
}
fn is_neg_inf(v: &f64) -> bool {
    *v == f64::NEG_INFINITY
}
fn is_pos_inf(v: &f64) -> bool {
    *v == f64::INFINITY
}

/// A prior on one parameter. Serialised with a `prior` tag, e.g.
/// `{"prior": "uniform", "low": 0.1, "high": 0.5}` or, in TOML,
/// `prior = "normal", mean = 0.96, sd = 0.01`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "prior", rename_all = "snake_case", deny_unknown_fields)]
pub enum Prior {
    /// Uniform on `[low, high]`: `p(x) = 1/(high - low)`.
    Uniform { low: f64, high: f64 },
    /// Normal `N(mean, sd^2)` on the real line.
    Normal { mean: f64, sd: f64 },
    /// `N(mean, sd^2)` restricted to `[low, high]` (either bound may be
    /// infinite), normalised by `Phi((high-mean)/sd) - Phi((low-mean)/sd)`.
    TruncatedNormal {
        mean: f64,
        sd: f64,
        #[serde(default = "neg_inf", skip_serializing_if = "is_neg_inf")]
        low: f64,
        #[serde(default = "pos_inf", skip_serializing_if = "is_pos_inf")]
        high: f64,
    },
    /// Log-normal: `ln x ~ N(mu, sigma^2)`, `x > 0`.
    LogNormal { mu: f64, sigma: f64 },
}

/// Smooth bijection from `R` onto a prior's support.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bijection {
    /// `x = y`.
    Identity,
    /// `x = a + e^y`.
    Lower(f64),
    /// `x = b - e^y`.
    Upper(f64),
    /// `x = a + (b-a) sigma(y)`.
    Interval(f64, f64),
}

impl Bijection {
    /// `x = T(y)`.
    pub fn forward(&self, y: f64) -> f64 {
        match *self {
            Bijection::Identity => y,
            Bijection::Lower(a) => a + y.exp(),
            Bijection::Upper(b) => b - y.exp(),
            Bijection::Interval(a, b) => {
                let x = a + (b - a) * sigmoid(y);
                x.clamp(a, b)
            }
        }
    }

    /// `y = T^{-1}(x)`; fails outside the open support.
    pub fn inverse(&self, x: f64) -> Result<f64, InferError> {
        let bad = || {
            InferError::Prior(format!(
                "value {x} is outside the support of the bijection {self:?}"
            ))
        };
        match *self {
            Bijection::Identity => Ok(x),
            Bijection::Lower(a) if x > a => Ok((x - a).ln()),
            Bijection::Upper(b) if x < b => Ok((b - x).ln()),
            Bijection::Interval(a, b) if x > a && x < b => Ok((x - a).ln() - (b - x).ln()),
            _ => Err(bad()),
        }
    }

    /// `dx/dy`.
    pub fn dx_dy(&self, y: f64) -> f64 {
        match *self {
            Bijection::Identity => 1.0,
            Bijection::Lower(_) => y.exp(),
            Bijection::Upper(_) => -y.exp(),
            Bijection::Interval(a, b) => (b - a) * sigmoid(y) * sigmoid(-y),
        }
    }

    /// `log |dx/dy|`.
    pub fn log_abs_jacobian(&self, y: f64) -> f64 {
        match *self {
            Bijection::Identity => 0.0,
            Bijection::Lower(_) | Bijection::Upper(_) => y,
            Bijection::Interval(a, b) => (b - a).ln() - softplus(-y) - softplus(y),
        }
    }

    /// `d log |dx/dy| / dy`.
    pub fn dlog_abs_jacobian(&self, y: f64) -> f64 {
        match *self {
            Bijection::Identity => 0.0,
            Bijection::Lower(_) | Bijection::Upper(_) => 1.0,
            Bijection::Interval(_, _) => 1.0 - 2.0 * sigmoid(y),
        }
    }
}

impl Prior {
    /// Check the parameters (finite, positive scales, `low < high`).
    pub fn validate(&self) -> Result<(), InferError> {
        // (is valid, what is required, the values given) in the TOML's words
        let (ok, need, got) = match *self {
            Prior::Uniform { low, high } => (
                low.is_finite() && high.is_finite() && low < high,
                "uniform prior needs finite low < high",
                format!("low = {low}, high = {high}"),
            ),
            Prior::Normal { mean, sd } => (
                mean.is_finite() && sd.is_finite() && sd > 0.0,
                "normal prior needs a finite mean and sd > 0",
                format!("mean = {mean}, sd = {sd}"),
            ),
            Prior::TruncatedNormal {
                mean,
                sd,
                low,
                high,
            } => (
                mean.is_finite()
                    && sd.is_finite()
                    && sd > 0.0
                    && low < high
                    && !low.is_nan()
                    && !high.is_nan(),
                "truncated_normal prior needs a finite mean, sd > 0 and low < high",
                format!("mean = {mean}, sd = {sd}, low = {low}, high = {high}"),
            ),
            Prior::LogNormal { mu, sigma } => (
                mu.is_finite() && sigma.is_finite() && sigma > 0.0,
                "log_normal prior needs a finite mu and sigma > 0",
                format!("mu = {mu}, sigma = {sigma}"),
            ),
        };
        if ok {
            Ok(())
        } else {
            Err(InferError::Prior(format!("{need} (got {got})")))
        }
    }

    /// Closed support `[lo, hi]` (bounds may be infinite).
    pub fn support(&self) -> (f64, f64) {
        match *self {
            Prior::Uniform { low, high } => (low, high),
            Prior::Normal { .. } => (f64::NEG_INFINITY, f64::INFINITY),
            Prior::TruncatedNormal { low, high, .. } => (low, high),
            Prior::LogNormal { .. } => (0.0, f64::INFINITY),
        }
    }

    /// The bijection `R -> support`.
    pub fn bijection(&self) -> Bijection {
        let (lo, hi) = self.support();
        match (lo.is_finite(), hi.is_finite()) {
            (false, false) => Bijection::Identity,
            (true, false) => Bijection::Lower(lo),
            (false, true) => Bijection::Upper(hi),
            (true, true) => Bijection::Interval(lo, hi),
        }
    }

    /// One draw. Truncated normals: rejection from the parent normal, and
    /// for a far tail uniform proposals on a finite interval accepted with
    /// the density ratio.
    pub fn sample<R: rand::Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        use rand::RngExt;
        use rand_distr::{Distribution, StandardNormal};
        let z = |rng: &mut R| -> f64 { StandardNormal.sample(rng) };
        match *self {
            Prior::Uniform { low, high } => low + (high - low) * rng.random::<f64>(),
            Prior::Normal { mean, sd } => mean + sd * z(rng),
            Prior::LogNormal { mu, sigma } => (mu + sigma * z(rng)).exp(),
            Prior::TruncatedNormal {
                mean,
                sd,
                low,
                high,
            } => {
                // Rejection from the parent normal; for a far tail, uniform
                // proposals on a finite interval weighted by the density.
                for _ in 0..10_000 {
                    let x = mean + sd * z(rng);
                    if x >= low && x <= high {
                        return x;
                    }
                }
                let (lo, hi) = (low.max(mean - 40.0 * sd), high.min(mean + 40.0 * sd));
                loop {
                    let x = lo + (hi - lo) * rng.random::<f64>();
                    let peak = if (lo..=hi).contains(&mean) {
                        mean
                    } else if mean < lo {
                        lo
                    } else {
                        hi
                    };
                    let acc =
                        (-0.5 * (((x - mean) / sd).powi(2) - ((peak - mean) / sd).powi(2))).exp();
                    if rng.random::<f64>() < acc {
                        return x;
                    }
                }
            }
        }
    }

    /// Whether `x` lies in the (closed) support.
    pub fn contains(&self, x: f64) -> bool {
        let (lo, hi) = self.support();
        match self {
            Prior::LogNormal { .. } => x > 0.0 && x.is_finite(),
            _ => x >= lo && x <= hi && !x.is_nan(),
        }
    }

    /// Normalised `log p(x)`; `-inf` outside the support.
    pub fn log_pdf(&self, x: f64) -> f64 {
        if !self.contains(x) {
            return f64::NEG_INFINITY;
        }
        match *self {
            Prior::Uniform { low, high } => -(high - low).ln(),
            Prior::Normal { mean, sd } => {
                let z = (x - mean) / sd;
                -0.5 * z * z - sd.ln() - LN_SQRT_2PI
            }
            Prior::TruncatedNormal {
                mean,
                sd,
                low,
                high,
            } => {
                let z = (x - mean) / sd;
                -0.5 * z * z - sd.ln() - LN_SQRT_2PI - log_normaliser(mean, sd, low, high)
            }
            Prior::LogNormal { mu, sigma } => {
                let lx = x.ln();
                let z = (lx - mu) / sigma;
                -0.5 * z * z - lx - sigma.ln() - LN_SQRT_2PI
            }
        }
    }

    /// `d log p / dx` inside the support.
    pub fn dlog_pdf(&self, x: f64) -> f64 {
        match *self {
            Prior::Uniform { .. } => 0.0,
            Prior::Normal { mean, sd } | Prior::TruncatedNormal { mean, sd, .. } => {
                -(x - mean) / (sd * sd)
            }
            Prior::LogNormal { mu, sigma } => -(1.0 + (x.ln() - mu) / (sigma * sigma)) / x,
        }
    }

    /// `d^2 log p / dx^2` inside the support.
    pub fn d2log_pdf(&self, x: f64) -> f64 {
        match *self {
            Prior::Uniform { .. } => 0.0,
            Prior::Normal { sd, .. } | Prior::TruncatedNormal { sd, .. } => -1.0 / (sd * sd),
            Prior::LogNormal { mu, sigma } => {
                let s2 = sigma * sigma;
                (1.0 + (x.ln() - mu) / s2 - 1.0 / s2) / (x * x)
            }
        }
    }

    /// `log p_x(T(y)) [+ log |dT/dy|]` and its derivative with respect to
    /// `y`. With `jacobian = true` this is the log density of the
    /// unconstrained variable `y` (what samplers need); with `false` it is
    /// the constrained log density evaluated at `T(y)` (what MAP needs).
    pub fn log_density_unconstrained(&self, y: f64, jacobian: bool) -> (f64, f64) {
        if let Prior::LogNormal { mu, sigma } = *self {
            // Closed form in y = ln x: avoids exp underflow for very negative y.
            let s2 = sigma * sigma;
            let v = -0.5 * (y - mu) * (y - mu) / s2 - sigma.ln() - LN_SQRT_2PI;
            let d = -(y - mu) / s2;
            return if jacobian { (v, d) } else { (v - y, d - 1.0) };
        }
        let t = self.bijection();
        let x = t.forward(y);
        let mut v = self.log_pdf(x);
        let mut d = self.dlog_pdf(x) * t.dx_dy(y);
        if jacobian {
            v += t.log_abs_jacobian(y);
            d += t.dlog_abs_jacobian(y);
        }
        (v, d)
    }

    /// A human-readable one-line description.
    pub fn describe(&self) -> String {
        match *self {
            Prior::Uniform { low, high } => format!("U({low}, {high})"),
            Prior::Normal { mean, sd } => format!("N({mean}, {sd}^2)"),
            Prior::TruncatedNormal {
                mean,
                sd,
                low,
                high,
            } => format!("N({mean}, {sd}^2) on [{low}, {high}]"),
            Prior::LogNormal { mu, sigma } => format!("LogN({mu}, {sigma}^2)"),
        }
    }
}

/// `ln(Phi(beta) - Phi(alpha))` for the truncated normal, computed on the
/// side of the mean where the difference is not a cancellation of two
/// numbers close to one.
fn log_normaliser(mean: f64, sd: f64, low: f64, high: f64) -> f64 {
    let a = (low - mean) / sd;
    let b = (high - mean) / sd;
    if a > 0.0 {
        // Both in the upper tail: Phi(-a) - Phi(-b).
        let (la, lb) = (log_norm_cdf(-a), log_norm_cdf(-b));
        la + (-(lb - la).exp()).ln_1p()
    } else if b < 0.0 {
        let (lb, la) = (log_norm_cdf(b), log_norm_cdf(a));
        lb + (-(la - lb).exp()).ln_1p()
    } else {
        (1.0 - norm_cdf(a) - norm_cdf(-b)).ln()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn priors() -> Vec<Prior> {
        vec![
            Prior::Uniform {
                low: 0.1,
                high: 0.5,
            },
            Prior::Normal {
                mean: 0.96,
                sd: 0.02,
            },
            Prior::TruncatedNormal {
                mean: 0.8,
                sd: 0.3,
                low: 0.5,
                high: 1.2,
            },
            Prior::TruncatedNormal {
                mean: 0.0,
                sd: 1.0,
                low: 0.0,
                high: f64::INFINITY,
            },
            Prior::TruncatedNormal {
                mean: 0.0,
                sd: 1.0,
                low: f64::NEG_INFINITY,
                high: 2.0,
            },
            Prior::LogNormal {
                mu: -1.0,
                sigma: 0.5,
            },
        ]
    }

    #[test]
    fn round_trip() {
        for p in priors() {
            p.validate().unwrap();
            let t = p.bijection();
            for &y in &[-6.0, -2.5, -0.3, 0.0, 0.4, 1.7, 5.0] {
                let x = t.forward(y);
                assert!(p.contains(x), "{p:?} y={y} x={x}");
                let y2 = t.inverse(x).unwrap();
                assert!(
                    (y2 - y).abs() < 1e-8 * (1.0 + y.abs()),
                    "{p:?}: y={y} -> x={x} -> {y2}"
                );
            }
        }
    }

    #[test]
    fn log_jacobian_matches_numerical_derivative() {
        for p in priors() {
            let t = p.bijection();
            for &y in &[-3.0, -0.7, 0.0, 0.9, 2.5] {
                let h = 1e-6;
                let num = (t.forward(y + h) - t.forward(y - h)) / (2.0 * h);
                assert!(
                    (t.dx_dy(y) - num).abs() < 1e-6 * num.abs().max(1e-3),
                    "{p:?} dx/dy"
                );
                assert!(
                    (t.log_abs_jacobian(y) - num.abs().ln()).abs() < 1e-6,
                    "{p:?} y={y} logJ"
                );
                let dnum = (t.log_abs_jacobian(y + h) - t.log_abs_jacobian(y - h)) / (2.0 * h);
                assert!((t.dlog_abs_jacobian(y) - dnum).abs() < 1e-6, "{p:?} dlogJ");
                for jac in [true, false] {
                    let (_, d) = p.log_density_unconstrained(y, jac);
                    let dn = (p.log_density_unconstrained(y + h, jac).0
                        - p.log_density_unconstrained(y - h, jac).0)
                        / (2.0 * h);
                    assert!(
                        (d - dn).abs() < 1e-5 * (1.0 + dn.abs()),
                        "{p:?} y={y} jac={jac}: {d} vs {dn}"
                    );
                }
            }
        }
    }

    #[test]
    fn densities_normalised_and_derivatives() {
        for p in priors() {
            // Integrate p_y(y) = p_x(T(y)) |T'(y)| over R: must be 1.
            let n = 40000;
            let (a, b) = (-40.0, 40.0);
            let h = (b - a) / n as f64;
            let total: f64 = (0..n)
                .map(|i| {
                    let y = a + (i as f64 + 0.5) * h;
                    p.log_density_unconstrained(y, true).0.exp() * h
                })
                .sum();
            assert!((total - 1.0).abs() < 1e-6, "{p:?}: integral {total}");
            let (lo, hi) = p.support();
            let x = if lo.is_finite() && hi.is_finite() {
                0.37 * lo + 0.63 * hi
            } else if lo.is_finite() {
                lo + 0.7
            } else if hi.is_finite() {
                hi - 0.7
            } else {
                0.93
            };
            let hh = 1e-6;
            let d = (p.log_pdf(x + hh) - p.log_pdf(x - hh)) / (2.0 * hh);
            assert!(
                (p.dlog_pdf(x) - d).abs() < 1e-5 * (1.0 + d.abs()),
                "{p:?} dlogp"
            );
            let d2 = (p.dlog_pdf(x + hh) - p.dlog_pdf(x - hh)) / (2.0 * hh);
            assert!(
                (p.d2log_pdf(x) - d2).abs() < 1e-4 * (1.0 + d2.abs()),
                "{p:?} d2logp"
            );
        }
        assert_eq!(
            Prior::Uniform {
                low: 0.0,
                high: 1.0
            }
            .log_pdf(1.5),
            f64::NEG_INFINITY
        );
        assert!(Prior::Uniform {
            low: 1.0,
            high: 0.0
        }
        .validate()
        .is_err());
    }

    #[test]
    fn serde_tagged() {
        let p: Prior = serde_json::from_str(r#"{"prior":"uniform","low":0.1,"high":0.5}"#).unwrap();
        assert_eq!(
            p,
            Prior::Uniform {
                low: 0.1,
                high: 0.5
            }
        );
        let q: Prior =
            serde_json::from_str(r#"{"prior":"truncated_normal","mean":0,"sd":1,"low":0}"#)
                .unwrap();
        assert_eq!(q.support(), (0.0, f64::INFINITY));
        let s = serde_json::to_string(&q).unwrap();
        assert_eq!(serde_json::from_str::<Prior>(&s).unwrap(), q);
    }

    /// Invalid numbers are named in the config's words, not Rust's.
    #[test]
    fn invalid_parameters_are_named() {
        let e = Prior::Uniform {
            low: 0.5,
            high: 0.1,
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "prior: uniform prior needs finite low < high (got low = 0.5, high = 0.1)"
        );
    }

    /// Keys of another kind (`low` on a normal prior: the user meant a
    /// truncated one) are refused, also when the prior is flattened into a
    /// named parameter block as in the `[[param]]` configs.
    #[test]
    fn keys_of_another_kind_are_refused() {
        let e =
            serde_json::from_str::<Prior>(r#"{"prior":"normal","mean":0.25,"sd":0.05,"low":0.26}"#)
                .unwrap_err()
                .to_string();
        assert!(e.contains("low"), "{e}");
        #[derive(Debug, Deserialize)]
        struct Named {
            #[allow(dead_code)]
            name: String,
            #[serde(flatten)]
            prior: Prior,
        }
        let ok: Named =
            serde_json::from_str(r#"{"name":"x","prior":"uniform","low":0.1,"high":0.5}"#).unwrap();
        assert_eq!(ok.prior.support(), (0.1, 0.5));
        let e = serde_json::from_str::<Named>(
            r#"{"name":"x","prior":"uniform","low":0.1,"high":0.5,"mean":0.3}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("mean"), "{e}");
    }
}
