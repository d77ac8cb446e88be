//! Special functions needed by priors and diagnostics: the complementary
//! error function (`libm`), the standard normal CDF and its inverse
//! (`statrs`'s inverse error function), and a stable softplus / log-sigmoid.

use std::f64::consts::SQRT_2;

/// `ln(sqrt(2 pi))`.
pub const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

/// Complementary error function `erfc(x) = 2/sqrt(pi) int_x^inf exp(-t^2) dt`
/// (`libm`, the port of musl's: under 1 ulp over the real line; `statrs`'s
/// `erfc` was tried and is off by 1e-10 relative at x = 0.5).
pub fn erfc(x: f64) -> f64 {
    libm::erfc(x)
}

/// Error function `erf(x) = 1 - erfc(x)` (`libm`).
pub fn erf(x: f64) -> f64 {
    libm::erf(x)
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

/// Inverse standard normal CDF `Phi^{-1}(p) = -sqrt(2) erfc^{-1}(2 p)`
/// (`statrs`'s inverse error function, Boost's rational approximations:
/// close to machine precision, also deep in the tails). NaN outside [0, 1].
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
    -SQRT_2 * statrs::function::erf::erfc_inv(2.0 * p)
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
        // scipy.stats.norm.ppf, deep in the tails
        for (p, want) in [(1e-10, -6.361340902404056), (1e-300, -37.0470962993612)] {
            let got = norm_ppf(p);
            assert!(
                ((got - want) / want).abs() < 1e-12,
                "ppf({p}) = {got}, want {want}"
            );
        }
    }
}
