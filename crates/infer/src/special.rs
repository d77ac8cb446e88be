//! Special functions needed by priors and diagnostics: the complementary
//! error function, the standard normal CDF and its inverse, and a stable
//! softplus / log-sigmoid.

use std::f64::consts::{PI, SQRT_2};

/// `ln(sqrt(2 pi))`.
pub const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

/// Complementary error function `erfc(x) = 2/sqrt(pi) int_x^inf exp(-t^2) dt`.
///
/// For `|x| < 2.5` the everywhere-positive series
/// `erf(x) = 2/sqrt(pi) exp(-x^2) sum_n 2^n x^(2n+1) / (1 3 5 ... (2n+1))`
/// (Abramowitz & Stegun 7.1.6) is summed; for `x >= 2.5` the continued
/// fraction of A&S 7.1.14 is evaluated with the modified Lentz algorithm.
/// Relative accuracy is ~1e-13 or better over the whole real line.
pub fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    if x > 27.3 {
        // erfc(27.3) < 1e-325: underflows to zero (also covers +inf).
        return 0.0;
    }
    if x < 2.5 {
        1.0 - erf_series(x)
    } else {
        erfc_cf(x)
    }
}

/// Error function.
pub fn erf(x: f64) -> f64 {
    if x.abs() < 2.5 {
        if x < 0.0 {
            -erf_series(-x)
        } else {
            erf_series(x)
        }
    } else {
        1.0 - erfc(x)
    }
}

fn erf_series(x: f64) -> f64 {
    let x2 = x * x;
    let mut term = x;
    let mut sum = x;
    if x == 0.0 {
        return 0.0;
    }
    for n in 1..200 {
        term *= 2.0 * x2 / (2.0 * n as f64 + 1.0);
        sum += term;
        if term <= 1e-17 * sum {
            break;
        }
    }
    2.0 / PI.sqrt() * (-x2).exp() * sum
}

/// `erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + ...)))))`.
fn erfc_cf(x: f64) -> f64 {
    let tiny = 1e-300;
    // f = b0 + a1/(b1 + a2/(b2 + ...)) with b_i = x, a_i = i/2.
    let mut f = x;
    let mut c = x;
    let mut d = 0.0;
    for i in 1..500 {
        let a = i as f64 * 0.5;
        d = x + a * d;
        if d.abs() < tiny {
            d = tiny;
        }
        c = x + a / c;
        if c.abs() < tiny {
            c = tiny;
        }
        d = 1.0 / d;
        let delta = c * d;
        f *= delta;
        if (delta - 1.0).abs() < 1e-16 {
            break;
        }
    }
    (-x * x).exp() / PI.sqrt() / f
}

/// Standard normal CDF `Phi(x) = erfc(-x/sqrt 2)/2`.
pub fn norm_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / SQRT_2)
}

/// `ln Phi(x)`, accurate far in the lower tail.
pub fn log_norm_cdf(x: f64) -> f64 {
    if x == f64::NEG_INFINITY {
        f64::NEG_INFINITY
    } else if x > -30.0 {
        norm_cdf(x).ln()
    } else {
        // Asymptotic Mills-ratio expansion.
        let x2 = x * x;
        -0.5 * x2 - LN_SQRT_2PI - (-x).ln() + (1.0 - 1.0 / x2 + 3.0 / (x2 * x2)).ln()
    }
}

/// Inverse standard normal CDF `Phi^{-1}(p)`.
///
/// Acklam's rational approximation (relative error 1.15e-9) refined by one
/// Halley step on `Phi(x) - p`, giving close to machine precision.
pub fn norm_ppf(p: f64) -> f64 {
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    const A: [f64; 6] = [
        -3.969683028665376e+01,
        2.209460984245205e+02,
        -2.759285104469687e+02,
        1.383577518672690e+02,
        -3.066479806614716e+01,
        2.506628277459239e+00,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e+01,
        1.615858368580409e+02,
        -1.556989798598866e+02,
        6.680131188771972e+01,
        -1.328068155288572e+01,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-03,
        -3.223964580411365e-01,
        -2.400758277161838e+00,
        -2.549732539343734e+00,
        4.374664141464968e+00,
        2.938163982698783e+00,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-03,
        3.224671290700398e-01,
        2.445134137142996e+00,
        3.754408661907416e+00,
    ];
    let p_low = 0.02425;
    let x = if p < p_low {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - p_low {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    // Halley refinement.
    let e = if x < 0.0 {
        norm_cdf(x) - p
    } else {
        (1.0 - p) - norm_cdf(-x)
    };
    let u = e * (2.0 * PI).sqrt() * (0.5 * x * x).exp();
    x - u / (1.0 + 0.5 * x * u)
}

/// `softplus(z) = ln(1 + e^z)`, stable for all z.
pub fn softplus(z: f64) -> f64 {
    z.max(0.0) + (-z.abs()).exp().ln_1p()
}

/// Logistic sigmoid `1/(1+e^{-z})`.
pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erfc_reference_values() {
        // Reference values (A&S tables / mpmath).
        let cases = [
            (0.0, 1.0),
            (0.5, 0.4795001221869535),
            (1.0, 0.15729920705028513),
            (2.0, 0.004677734981047266),
            (2.5, 0.0004069520174449590),
            (3.0, 2.209049699858544e-05),
            (5.0, 1.5374597944280349e-12),
            (-1.0, 1.8427007929497148),
        ];
        for (x, want) in cases {
            let got = erfc(x);
            assert!(
                ((got - want) / want).abs() < 1e-12,
                "erfc({x}) = {got}, want {want}"
            );
        }
        assert_eq!(erfc(f64::INFINITY), 0.0);
        assert_eq!(erfc(f64::NEG_INFINITY), 2.0);
        assert_eq!(norm_cdf(f64::NEG_INFINITY), 0.0);
    }

    #[test]
    fn ppf_inverts_cdf() {
        for &x in &[-8.0, -3.0, -1.5, -0.3, 0.0, 0.7, 2.0, 4.0] {
            let p = norm_cdf(x);
            let back = norm_ppf(p);
            assert!(
                (back - x).abs() < 1e-9 * (1.0 + x.abs()),
                "x={x} back={back}"
            );
        }
        assert!((norm_ppf(0.975) - 1.959963984540054).abs() < 1e-12);
    }
}
