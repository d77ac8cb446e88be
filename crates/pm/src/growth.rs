//! Background expansion and growth functions needed by the FastPM scheme.
//!
//! The particle-mesh code does not depend on a cosmology library: it needs
//! only the [`Growth`] trait (implemented here from a table, analytically
//! for Einstein-de Sitter, and by integrating the growth ODEs of flat LCDM;
//! the `cosmodiff-cosmo` crate can implement it too).
//!
//! Conventions (those of JaxPM/FastPM): `E(a) = H(a)/H0`; `D1(a=1) = 1`;
//! `f = dln D/dln a`; the second-order growth `D2` is **positive** and
//! enters the displacement as `x = q + D1 s1 + (3/7) D2 s2` (so `D2 ~ D1^2`
//! at early times; the JaxPM table normalises `D2(a=1) = 1`). FastPM's
//! momentum growth (Feng et al. 2016, eqs. 14-18):
//!
//! `G_f(a) = a^3 E(a) dD1/da`,  `g_f(a) = dG_f/da = 1.5 Omega_m D1 / (a^2 E)`,
//!
//! the last equality being the linear growth equation.

/// What the FastPM integrator needs from a cosmology.
pub trait Growth: Sync {
    /// Present-day matter density `Omega_m` (multiplies the Poisson source).
    fn omega_m(&self) -> f64;
    /// `E(a) = H(a)/H0`.
    fn e(&self, a: f64) -> f64;
    /// Linear growth factor, `D1(1) = 1`.
    fn d1(&self, a: f64) -> f64;
    /// `f1 = dln D1 / dln a`.
    fn f1(&self, a: f64) -> f64;
    /// Second-order growth factor (positive; displacement `(3/7) D2 s2`).
    fn d2(&self, a: f64) -> f64;
    /// `f2 = dln D2 / dln a`.
    fn f2(&self, a: f64) -> f64;
    /// `dD1/da = f1 D1 / a`.
    fn dd1_da(&self, a: f64) -> f64 {
        self.f1(a) * self.d1(a) / a
    }
    /// FastPM `G_f = a^3 E dD1/da`.
    fn gf(&self, a: f64) -> f64 {
        a * a * a * self.e(a) * self.dd1_da(a)
    }
    /// FastPM `g_f = dG_f/da = 1.5 Omega_m D1/(a^2 E)`.
    fn gf_da(&self, a: f64) -> f64 {
        1.5 * self.omega_m() * self.d1(a) / (a * a * self.e(a))
    }
    /// Range of scale factors where the functions are valid.
    fn a_range(&self) -> (f64, f64) {
        (0.0, f64::INFINITY)
    }
}

/// Einstein-de Sitter (`Omega_m = 1`): `D1 = a`, `D2 = a^2`, `E = a^-3/2`.
#[derive(Debug, Clone, Copy, Default)]
pub struct EdsGrowth;

impl Growth for EdsGrowth {
    fn omega_m(&self) -> f64 {
        1.0
    }
    fn e(&self, a: f64) -> f64 {
        a.powf(-1.5)
    }
    fn d1(&self, a: f64) -> f64 {
        a
    }
    fn f1(&self, _a: f64) -> f64 {
        1.0
    }
    fn d2(&self, a: f64) -> f64 {
        a * a
    }
    fn f2(&self, _a: f64) -> f64 {
        2.0
    }
}

/// Local cubic (4-point Lagrange) interpolation on a sorted, non-uniform grid;
/// clamps outside the grid.
fn lagrange4(x: &[f64], y: &[f64], t: f64) -> f64 {
    let n = x.len();
    if n == 1 {
        return y[0];
    }
    if t <= x[0] {
        return y[0];
    }
    if t >= x[n - 1] {
        return y[n - 1];
    }
    let j = x.partition_point(|v| *v <= t).saturating_sub(1).min(n - 2);
    if n < 4 {
        let w = (t - x[j]) / (x[j + 1] - x[j]);
        return y[j] * (1.0 - w) + y[j + 1] * w;
    }
    let s = j.saturating_sub(1).min(n - 4);
    let mut out = 0.0;
    for i in s..s + 4 {
        let mut l = 1.0;
        for m in s..s + 4 {
            if m != i {
                l *= (t - x[m]) / (x[i] - x[m]);
            }
        }
        out += l * y[i];
    }
    out
}

/// Errors building a growth table.
#[derive(Debug, thiserror::Error)]
pub enum GrowthError {
    #[error("growth table {path}: {msg}")]
    Table { path: String, msg: String },
}

/// Growth functions tabulated in `a`, interpolated by local cubics in `ln a`.
///
/// Columns of the shared `growth_table_jaxcosmo_planck15.txt`:
/// `a D1 f1 D2 f2 E G_f dG_f/da dD1/da`. `G_f` and `dG_f/da` are used as
/// tabulated (exact linear growth is then exact with respect to the table).
#[derive(Debug, Clone)]
pub struct TableGrowth {
    omega_m: f64,
    ln_a: Vec<f64>,
    cols: [Vec<f64>; 8],
}

impl TableGrowth {
    /// From rows `[a, D1, f1, D2, f2, E, G_f, dG_f/da, dD1/da]`, increasing `a`.
    pub fn from_rows(omega_m: f64, rows: &[[f64; 9]]) -> Result<Self, GrowthError> {
        let err = |m: &str| GrowthError::Table {
            path: "<rows>".into(),
            msg: m.into(),
        };
        if rows.len() < 2 {
            return Err(err("need at least 2 rows"));
        }
        if rows.windows(2).any(|w| !(w[1][0] > w[0][0])) || rows[0][0] <= 0.0 {
            return Err(err("a must be positive and strictly increasing"));
        }
        let ln_a = rows.iter().map(|r| r[0].ln()).collect();
        let cols = std::array::from_fn(|c| rows.iter().map(|r| r[c + 1]).collect());
        Ok(Self {
            omega_m,
            ln_a,
            cols,
        })
    }
    /// Read the whitespace-separated text table (`#` comments).
    pub fn from_file(omega_m: f64, path: &std::path::Path) -> Result<Self, GrowthError> {
        let p = path.display().to_string();
        let txt = std::fs::read_to_string(path).map_err(|e| GrowthError::Table {
            path: p.clone(),
            msg: e.to_string(),
        })?;
        let mut rows = vec![];
        for (i, l) in txt.lines().enumerate() {
            let l = l.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let v: Result<Vec<f64>, _> = l.split_whitespace().map(str::parse).collect();
            match v {
                Ok(v) if v.len() == 9 => rows.push(std::array::from_fn(|c| v[c])),
                _ => {
                    return Err(GrowthError::Table {
                        path: p,
                        msg: format!("line {}: expected 9 numbers", i + 1),
                    })
                }
            }
        }
        Self::from_rows(omega_m, &rows).map_err(|e| match e {
            GrowthError::Table { msg, .. } => GrowthError::Table { path: p, msg },
        })
    }
    fn at(&self, c: usize, a: f64) -> f64 {
        lagrange4(&self.ln_a, &self.cols[c], a.ln())
    }
}

impl Growth for TableGrowth {
    fn omega_m(&self) -> f64 {
        self.omega_m
    }
    fn e(&self, a: f64) -> f64 {
        self.at(4, a)
    }
    fn d1(&self, a: f64) -> f64 {
        self.at(0, a)
    }
    fn f1(&self, a: f64) -> f64 {
        self.at(1, a)
    }
    fn d2(&self, a: f64) -> f64 {
        self.at(2, a)
    }
    fn f2(&self, a: f64) -> f64 {
        self.at(3, a)
    }
    fn gf(&self, a: f64) -> f64 {
        self.at(5, a)
    }
    fn gf_da(&self, a: f64) -> f64 {
        self.at(6, a)
    }
    fn dd1_da(&self, a: f64) -> f64 {
        self.at(7, a)
    }
    fn a_range(&self) -> (f64, f64) {
        // a tolerance of 1e-6 relative for float32-rounded table ends
        (
            self.ln_a[0].exp() * (1.0 - 1e-6),
            self.ln_a[self.ln_a.len() - 1].exp() * (1.0 + 1e-6),
        )
    }
}

/// Flat LCDM (`w = -1`, no radiation) growth from the growth ODEs in `ln a`,
/// integrated with RK4 from `a = 1e-3` (matter-dominated initial conditions
/// `D1 = a`, `D2_std = -3/7 a^2`) and interpolated by local cubics:
///
/// `D'' + (2 + dlnE/dlna) D' = 1.5 Omega_m(a) D`,
/// `D2'' + (2 + dlnE/dlna) D2' = 1.5 Omega_m(a) (D2 - D1^2)`  (standard sign),
///
/// with `' = d/dln a`, `Omega_m(a) = Omega_m a^-3 / E^2`; `D1` is normalised
/// to 1 at `a = 1` and the positive convention `D2 = -(7/3) D2_std` is
/// returned (so `D2 -> D1^2` early). Used to test the `Omega_m` gradient
/// (smooth in `Omega_m`, accurate to ~1e-9).
#[derive(Debug, Clone)]
pub struct LcdmGrowth {
    omega_m: f64,
    ln_a: Vec<f64>,
    d1: Vec<f64>,
    f1: Vec<f64>,
    d2: Vec<f64>,
    f2: Vec<f64>,
}

impl LcdmGrowth {
    pub fn new(omega_m: f64) -> Self {
        let (y0, y1, nstep) = ((1e-3f64).ln(), 0.0f64, 4000usize);
        let h = (y1 - y0) / nstep as f64;
        let om = omega_m;
        let rhs = |y: f64, s: [f64; 4]| -> [f64; 4] {
            let a = y.exp();
            let e2 = om / (a * a * a) + (1.0 - om);
            let oma = om / (a * a * a) / e2;
            let dlne = -1.5 * oma;
            let damp = 2.0 + dlne;
            [
                s[1],
                -damp * s[1] + 1.5 * oma * s[0],
                s[3],
                -damp * s[3] + 1.5 * oma * (s[2] - s[0] * s[0]),
            ]
        };
        let a0 = y0.exp();
        let mut s = [a0, a0, -3.0 / 7.0 * a0 * a0, -6.0 / 7.0 * a0 * a0];
        let mut out = vec![(y0, s)];
        let mut y = y0;
        for _ in 0..nstep {
            let k1 = rhs(y, s);
            let add = |s: [f64; 4], k: [f64; 4], c: f64| {
                std::array::from_fn::<f64, 4, _>(|i| s[i] + c * k[i])
            };
            let k2 = rhs(y + h / 2.0, add(s, k1, h / 2.0));
            let k3 = rhs(y + h / 2.0, add(s, k2, h / 2.0));
            let k4 = rhs(y + h, add(s, k3, h));
            s = std::array::from_fn(|i| {
                s[i] + h / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i])
            });
            y += h;
            out.push((y, s));
        }
        let n1 = s[0];
        let mut g = Self {
            omega_m,
            ln_a: vec![],
            d1: vec![],
            f1: vec![],
            d2: vec![],
            f2: vec![],
        };
        for (y, s) in out {
            g.ln_a.push(y);
            g.d1.push(s[0] / n1);
            g.f1.push(s[1] / s[0]);
            g.d2.push(-7.0 / 3.0 * s[2] / (n1 * n1));
            g.f2.push(s[3] / s[2]);
        }
        g
    }
}

impl Growth for LcdmGrowth {
    fn omega_m(&self) -> f64 {
        self.omega_m
    }
    fn e(&self, a: f64) -> f64 {
        (self.omega_m / (a * a * a) + 1.0 - self.omega_m).sqrt()
    }
    fn d1(&self, a: f64) -> f64 {
        lagrange4(&self.ln_a, &self.d1, a.ln())
    }
    fn f1(&self, a: f64) -> f64 {
        lagrange4(&self.ln_a, &self.f1, a.ln())
    }
    fn d2(&self, a: f64) -> f64 {
        lagrange4(&self.ln_a, &self.d2, a.ln())
    }
    fn f2(&self, a: f64) -> f64 {
        lagrange4(&self.ln_a, &self.f2, a.ln())
    }
    fn a_range(&self) -> (f64, f64) {
        (1e-3, 1.0 + 1e-9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lcdm_matches_jaxcosmo_table() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/reference/pm/growth_table_jaxcosmo_planck15.txt"
        );
        let Ok(t) = TableGrowth::from_file(0.3075, std::path::Path::new(path)) else {
            eprintln!("reference absent; skipped");
            return;
        };
        let l = LcdmGrowth::new(0.3075);
        for &a in &[0.1, 0.137, 0.3, 0.55, 0.8, 1.0] {
            assert!((t.d1(a) / l.d1(a) - 1.0).abs() < 2e-3, "D1 {a}");
            assert!((t.f1(a) / l.f1(a) - 1.0).abs() < 2e-3, "f1 {a}");
            assert!((t.gf_da(a) / l.gf_da(a) - 1.0).abs() < 3e-3, "gf {a}");
            // table D2 is normalised to 1 at a=1; compare shapes
            assert!(
                (t.d2(a) / t.d2(1.0) / (l.d2(a) / l.d2(1.0)) - 1.0).abs() < 3e-3,
                "D2 {a}"
            );
        }
        // EdS limit
        let e = LcdmGrowth::new(1.0);
        for &a in &[0.1, 0.5, 1.0] {
            assert!(
                (e.d1(a) - a).abs() < 1e-9 && (e.d2(a) - a * a).abs() < 1e-8,
                "{a}"
            );
            assert!((e.gf_da(a) - EdsGrowth.gf_da(a)).abs() < 1e-8);
        }
    }

    #[test]
    fn table_interpolation_is_cubic_accurate() {
        // tabulate EdS on a coarse grid and interpolate
        let rows: Vec<[f64; 9]> = (0..91)
            .map(|i| {
                let a = 0.1 + 0.01 * i as f64;
                let g = EdsGrowth;
                [
                    a,
                    g.d1(a),
                    g.f1(a),
                    g.d2(a),
                    g.f2(a),
                    g.e(a),
                    g.gf(a),
                    g.gf_da(a),
                    g.dd1_da(a),
                ]
            })
            .collect();
        let t = TableGrowth::from_rows(1.0, &rows).unwrap();
        for &a in &[0.1, 0.1378, 0.555, 0.999] {
            assert!(
                (t.e(a) / EdsGrowth.e(a) - 1.0).abs() < 2e-5,
                "{a} {}",
                t.e(a) / EdsGrowth.e(a) - 1.0
            );
            assert!((t.gf(a) / EdsGrowth.gf(a) - 1.0).abs() < 2e-5);
        }
    }
}
