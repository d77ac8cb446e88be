//! Small statistical helpers for the calibration tests: the Kolmogorov
//! distribution and the chi-square survival function.

/// `ln Gamma(x)` for `x > 0` (Lanczos approximation, g = 7, 9 terms;
/// relative error ~1e-15).
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Gamma(x) Gamma(1 - x) = pi / sin(pi x).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, &c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Regularised upper incomplete gamma function `Q(a, x) = Gamma(a, x) /
/// Gamma(a)`: series for `x < a + 1`, Lentz continued fraction otherwise
/// (Numerical Recipes, 3rd ed., section 6.2).
pub fn gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let lnpre = a * x.ln() - x - ln_gamma(a);
    if x < a + 1.0 {
        // P(a, x) = e^{-x} x^a / Gamma(a + 1) sum_n x^n / ((a+1)...(a+n)).
        let (mut ap, mut sum, mut del) = (a, 1.0 / a, 1.0 / a);
        for _ in 0..10_000 {
            ap += 1.0;
            del *= x / ap;
            sum += del;
            if del.abs() < sum.abs() * 1e-16 {
                break;
            }
        }
        (1.0 - sum * lnpre.exp()).max(0.0)
    } else {
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..10_000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let del = d * c;
            h *= del;
            if (del - 1.0).abs() < 1e-16 {
                break;
            }
        }
        (lnpre.exp() * h).clamp(0.0, 1.0)
    }
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
