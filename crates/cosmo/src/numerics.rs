//! Small numerical building blocks, generic over dual numbers:
//! Gauss-Legendre rules and cubic Hermite tables on uniform grids.

use crate::Scalar;

/// Gauss-Legendre nodes and weights on [-1, 1] (Newton iteration on P_n,
/// Golub-Welsch-free; exact to machine precision for n <= 200).
pub fn gauss_legendre(n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut x = vec![0.0; n];
    let mut w = vec![0.0; n];
    let m = n.div_ceil(2);
    for i in 0..m {
        // Tricomi initial guess.
        let mut z = (std::f64::consts::PI * (i as f64 + 0.75) / (n as f64 + 0.5)).cos();
        let mut pp = 0.0;
        for _ in 0..100 {
            let (mut p1, mut p2) = (1.0, 0.0);
            for j in 0..n {
                let p3 = p2;
                p2 = p1;
                p1 = ((2 * j + 1) as f64 * z * p2 - j as f64 * p3) / (j + 1) as f64;
            }
            pp = n as f64 * (z * p1 - p2) / (z * z - 1.0);
            let dz = p1 / pp;
            z -= dz;
            if dz.abs() < 1e-15 {
                break;
            }
        }
        x[i] = -z;
        x[n - 1 - i] = z;
        w[i] = 2.0 / ((1.0 - z * z) * pp * pp);
        w[n - 1 - i] = w[i];
    }
    (x, w)
}

/// Composite Gauss-Legendre rule on [a, b]: `panels` equal panels of `order` points.
pub fn composite_gl(a: f64, b: f64, panels: usize, order: usize) -> (Vec<f64>, Vec<f64>) {
    let (x0, w0) = gauss_legendre(order);
    let h = (b - a) / panels as f64;
    let mut x = Vec::with_capacity(panels * order);
    let mut w = Vec::with_capacity(panels * order);
    for p in 0..panels {
        let lo = a + p as f64 * h;
        for (xi, wi) in x0.iter().zip(&w0) {
            x.push(lo + 0.5 * h * (xi + 1.0));
            w.push(0.5 * h * wi);
        }
    }
    (x, w)
}

/// A function tabulated on a uniform grid with its exact derivative,
/// interpolated by cubic Hermite polynomials (error O(h^4) f''''/384).
#[derive(Debug, Clone)]
pub struct HermiteTable<T> {
    pub x0: f64,
    pub dx: f64,
    pub y: Vec<T>,
    pub dy: Vec<T>,
}

impl<T: Scalar> HermiteTable<T> {
    pub fn new(x0: f64, dx: f64, y: Vec<T>, dy: Vec<T>) -> Self {
        assert_eq!(y.len(), dy.len());
        Self { x0, dx, y, dy }
    }

    pub fn x_max(&self) -> f64 {
        self.x0 + self.dx * (self.y.len() - 1) as f64
    }

    fn locate(&self, x: f64) -> (usize, f64) {
        let n = self.y.len();
        let u = ((x - self.x0) / self.dx).clamp(0.0, (n - 1) as f64);
        let i = (u.floor() as usize).min(n - 2);
        (i, u - i as f64)
    }

    /// Value and derivative at a plain abscissa.
    pub fn eval(&self, x: f64) -> (T, T) {
        let (i, t) = self.locate(x);
        self.eval_at(i, t)
    }

    fn eval_at(&self, i: usize, t: f64) -> (T, T) {
        let h = self.dx;
        let (t2, t3) = (t * t, t * t * t);
        let h00 = 2.0 * t3 - 3.0 * t2 + 1.0;
        let h10 = t3 - 2.0 * t2 + t;
        let h01 = -2.0 * t3 + 3.0 * t2;
        let h11 = t3 - t2;
        let v = self.y[i] * h00
            + self.dy[i] * (h10 * h)
            + self.y[i + 1] * h01
            + self.dy[i + 1] * (h11 * h);
        let d00 = 6.0 * t2 - 6.0 * t;
        let d10 = 3.0 * t2 - 4.0 * t + 1.0;
        let d01 = -6.0 * t2 + 6.0 * t;
        let d11 = 3.0 * t2 - 2.0 * t;
        let d = (self.y[i] * d00 + self.y[i + 1] * d01) * (1.0 / h)
            + self.dy[i] * d10
            + self.dy[i + 1] * d11;
        (v, d)
    }

    /// Value at a dual abscissa (the derivative of the interpolant carries
    /// the abscissa's own derivatives).
    pub fn eval_dual(&self, x: T) -> T {
        let (i, _) = self.locate(x.re());
        let t = (x - self.x0 - self.dx * i as f64) * (1.0 / self.dx);
        let h = self.dx;
        let t2 = t * t;
        let t3 = t2 * t;
        let h00 = t3 * 2.0 - t2 * 3.0 + 1.0;
        let h10 = t3 - t2 * 2.0 + t;
        let h01 = t3 * (-2.0) + t2 * 3.0;
        let h11 = t3 - t2;
        self.y[i] * h00 + self.dy[i] * h10 * h + self.y[i + 1] * h01 + self.dy[i + 1] * h11 * h
    }
}

/// Natural cubic spline on a uniform grid, generic over the value type
/// (coefficients are linear in the values, so dual values carry exact
/// derivatives of the interpolant).
#[derive(Debug, Clone)]
pub struct UniformSpline<T> {
    pub x0: f64,
    pub dx: f64,
    pub y: Vec<T>,
    /// Second derivatives at the nodes.
    pub m: Vec<T>,
}

impl<T: Scalar> UniformSpline<T> {
    pub fn new(x0: f64, dx: f64, y: Vec<T>) -> Self {
        let n = y.len();
        assert!(n >= 3);
        // Solve the tridiagonal system for natural end conditions (m_0 = m_{n-1} = 0):
        // m_{i-1} + 4 m_i + m_{i+1} = 6 (y_{i-1} - 2 y_i + y_{i+1}) / dx^2.
        let mut m = vec![T::zero(); n];
        let mut c = vec![0.0; n];
        let mut d = vec![T::zero(); n];
        for i in 1..n - 1 {
            let rhs = (y[i - 1] - y[i] * 2.0 + y[i + 1]) * (6.0 / (dx * dx));
            let denom = 4.0 - if i > 1 { c[i - 1] } else { 0.0 };
            c[i] = 1.0 / denom;
            d[i] = (rhs - if i > 1 { d[i - 1] } else { T::zero() }) * (1.0 / denom);
        }
        for i in (1..n - 1).rev() {
            m[i] = d[i]
                - if i + 1 < n - 1 {
                    m[i + 1] * c[i]
                } else {
                    T::zero()
                };
        }
        Self { x0, dx, y, m }
    }

    pub fn eval(&self, x: T) -> T {
        let n = self.y.len();
        let u = ((x.re() - self.x0) / self.dx).clamp(0.0, (n - 1) as f64);
        let i = (u.floor() as usize).min(n - 2);
        let h = self.dx;
        let t = (x - self.x0 - h * i as f64) * (1.0 / h); // in [0,1]
        let s = -t + 1.0;
        // Standard cubic spline form.
        self.y[i] * s
            + self.y[i + 1] * t
            + (self.m[i] * (s * s * s - s) + self.m[i + 1] * (t * t * t - t)) * (h * h / 6.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gl_integrates_polynomials_exactly() {
        let (x, w) = gauss_legendre(8);
        let s: f64 = x.iter().zip(&w).map(|(x, w)| w * x.powi(14)).sum();
        assert!((s - 2.0 / 15.0).abs() < 1e-14);
        let (x, w) = composite_gl(0.0, std::f64::consts::PI, 4, 10);
        let s: f64 = x.iter().zip(&w).map(|(x, w)| w * x.sin()).sum();
        assert!((s - 2.0).abs() < 1e-14);
    }

    #[test]
    fn hermite_and_spline_accuracy() {
        let n = 200;
        let dx = 4.0 / (n - 1) as f64;
        let xs: Vec<f64> = (0..n).map(|i| i as f64 * dx).collect();
        let t = HermiteTable::new(
            0.0,
            dx,
            xs.iter().map(|x| x.sin()).collect(),
            xs.iter().map(|x| x.cos()).collect(),
        );
        let s = UniformSpline::new(0.0, dx, xs.iter().map(|x| x.sin()).collect::<Vec<f64>>());
        for &x in &[0.013, 1.2345, 3.999] {
            let (v, d) = t.eval(x);
            assert!((v - x.sin()).abs() < 1e-9, "{v}");
            assert!((d - x.cos()).abs() < 1e-7);
            assert!((t.eval_dual(x) - x.sin()).abs() < 1e-9);
            // natural end conditions cost accuracy only near the ends
            if x > 0.5 && x < 3.5 {
                assert!((s.eval(x) - x.sin()).abs() < 1e-7);
            }
        }
    }
}
