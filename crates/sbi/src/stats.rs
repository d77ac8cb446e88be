//! Small statistical helpers for the calibration tests: the Kolmogorov
//! distribution (by hand: `statrs` has no Kolmogorov distribution) and the
//! chi-square survival function (`statrs`'s incomplete gamma).

/// `ln Gamma(x)` for `x > 0` (`statrs`, Lanczos approximation).
pub fn ln_gamma(x: f64) -> f64 {
    statrs::function::gamma::ln_gamma(x)
}

/// Regularised upper incomplete gamma function `Q(a, x) = Gamma(a, x) /
/// Gamma(a)` (`statrs::function::gamma::gamma_ur`); 1 for `x <= 0`.
pub fn gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    statrs::function::gamma::gamma_ur(a, x)
}

/// `P(chi^2_k > x)`, the survival function of the chi-square distribution
/// with `k` degrees of freedom: `Q(k/2, x/2)`.
pub fn chi2_sf(x: f64, k: f64) -> f64 {
    gamma_q(0.5 * k, 0.5 * x)
}

/// Kolmogorov survival function `Q_KS(l) = 2 sum_{j>=1} (-1)^{j-1} e^{-2 j^2 l^2}`.
pub fn kolmogorov_sf(l: f64) -> f64 {
    if l < 0.2 {
        return 1.0;
    }
    let mut sum = 0.0;
    for j in 1..=100 {
        let j = j as f64;
        let term = (-2.0 * j * j * l * l).exp();
        sum += if j as usize % 2 == 1 { term } else { -term };
        if term < 1e-16 {
            break;
        }
    }
    (2.0 * sum).clamp(0.0, 1.0)
}

/// Asymptotic p-value of a one-sample Kolmogorov-Smirnov statistic `D`
/// from `n` points, with Stephens' (1970) small-sample correction:
/// `Q_KS((sqrt n + 0.12 + 0.11 / sqrt n) D)`.
pub fn ks_pvalue(d: f64, n: usize) -> f64 {
    let sn = (n as f64).sqrt();
    kolmogorov_sf((sn + 0.12 + 0.11 / sn) * d)
}

/// Exact one-sample KS statistic `sup_u |F_n(u) - u|` of values in
/// `[0, 1]` against the continuous uniform distribution.
pub fn ks_uniform_statistic(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len() as f64;
    v.iter()
        .enumerate()
        .map(|(i, &u)| ((i as f64 + 1.0) / n - u).max(u - i as f64 / n))
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // ln Gamma(5) = ln 24; ln Gamma(0.5) = ln sqrt(pi).
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-13);
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-13);
        // chi2 with 2 dof: sf = e^{-x/2}.
        for x in [0.1, 1.0, 5.0, 30.0] {
            assert!((chi2_sf(x, 2.0) - (-x / 2.0f64).exp()).abs() < 1e-12);
        }
        // scipy.stats.chi2.sf(20.0, 10) = 0.02925268807696...
        assert!((chi2_sf(20.0, 10.0) - 0.029_252_688_076_961).abs() < 1e-10);
        // scipy.special.kolmogorov(1.0) = 0.26999967167735456
        assert!((kolmogorov_sf(1.0) - 0.269_999_671_677_354_6).abs() < 1e-12);
    }
}
