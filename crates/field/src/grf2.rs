//! Gaussian and log-normal random fields on 2-D flat-sky maps.
//!
//! # Gaussian field from white noise
//! With `w` unit-variance white noise per pixel and `A = dx^2` the pixel
//! solid angle, the map
//!
//! `f = Re IFFT[ sqrt(C(|ell_k|) / A) * FFT(w) ]`
//!
//! has `<|FFT(f)_k|^2> = n^2 C(ell_k) / A`, i.e. the flat-sky spectrum
//! `<f(ell) f*(ell')> = (2 pi)^2 delta(ell - ell') C_ell` with
//! `f(ell) ~ A FFT(f)`. Its pixel covariance is exactly
//! `xi(r) = IFFT[C / A](r)` on the periodic grid. The map is linear in `w`
//! and self-adjoint (`A^T = A`), so the VJP with respect to the white noise
//! is the same filter ([`Grf2::vjp_white`]); the VJP with respect to the
//! per-mode power and to the table values is [`Grf2::vjp_power`] /
//! [`Grf2::vjp_table`].
//!
//! # Log-normal field
//! Following the log-normal mocks of Xavier, Abdalla & Joachimi (2016,
//! MNRAS 459, 3693), `kappa = s (exp(g - sigma_g^2/2) - 1)` with shift `s`
//! has zero mean and correlation `xi_k = s^2 (exp(xi_g) - 1)`. We invert
//! this *on the periodic pixel grid*: `xi_k(r) = IFFT[C/A]` (the exact
//! covariance of the pixelised target field), `xi_g = ln(1 + xi_k / s^2)`,
//! `C_g = A Re FFT[xi_g]`, with the mean-mode adjustment described at
//! [`lognormal_gaussian_power`]. Any negative `C_g` modes (the target is not
//! exactly log-normal-realisable) are clipped to zero and counted in
//! [`LogNormal2::clipped`]. Without clipping the pixelised log-normal map has
//! exactly the requested spectrum and one-point variance `xi_k(0)`.

use crate::error::{check_finite, check_len, FieldError, Result};
use crate::fft2::{Fft2, C64};
use crate::grid2::Grid2;
use crate::spectrum::ClTable;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

/// Unit-variance white noise of length `len` from a seed.
pub fn white_noise(len: usize, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..len).map(|_| StandardNormal.sample(&mut rng)).collect()
}

/// Fill with white noise from an existing generator.
pub fn white_noise_rng<R: rand::Rng + ?Sized>(len: usize, rng: &mut R) -> Vec<f64> {
    (0..len).map(|_| StandardNormal.sample(rng)).collect()
}

/// Check that a per-mode array is even under `k -> -k` (needed for real maps).
pub fn check_even(grid: &Grid2, p: &[f64], what: &str) -> Result<()> {
    let scale = p
        .iter()
        .fold(0.0f64, |m, v| m.max(v.abs()))
        .max(f64::MIN_POSITIVE);
    for (i, &v) in p.iter().enumerate() {
        let j = grid.neg_index(i);
        if (v - p[j]).abs() > 1e-10 * scale {
            return Err(FieldError::Value {
                what: what.into(),
                msg: format!("not symmetric under k -> -k at mode {i}"),
            });
        }
    }
    Ok(())
}

/// Gaussian random field generator with a cached FFT plan and amplitudes.
#[derive(Debug, Clone)]
pub struct Grf2 {
    grid: Grid2,
    fft: Fft2,
    power: Vec<f64>,
    amp: Vec<f64>,
    table: Option<ClTable>,
}

impl Grf2 {
    /// From a `C_ell` table (see [`ClTable::on_grid`] for the interpolation).
    pub fn from_cl(grid: Grid2, table: &ClTable) -> Result<Self> {
        let mut g = Self::from_mode_power(grid, table.on_grid(&grid))?;
        g.table = Some(table.clone());
        Ok(g)
    }
    /// From `C(ell_k)` given for every mode (row-major, even in `k`, >= 0).
    pub fn from_mode_power(grid: Grid2, power: Vec<f64>) -> Result<Self> {
        Self::from_mode_power_opt(grid, power, false)
    }
    /// As [`Grf2::from_mode_power`]; `keep_mean` keeps the power of the
    /// `k = 0` mode (used for the Gaussian field under a log-normal map).
    pub fn from_mode_power_opt(grid: Grid2, mut power: Vec<f64>, keep_mean: bool) -> Result<Self> {
        check_len("mode power", grid.npix(), power.len())?;
        check_finite("mode power", &power)?;
        if let Some(i) = power.iter().position(|&p| p < 0.0) {
            return Err(FieldError::Value {
                what: "mode power".into(),
                msg: format!("negative at mode {i}"),
            });
        }
        check_even(&grid, &power, "mode power")?;
        if !keep_mean {
            power[0] = 0.0;
        }
        let a = grid.pixel_area_sr();
        let amp = power.iter().map(|&p| (p / a).sqrt()).collect();
        Ok(Self {
            grid,
            fft: Fft2::new(grid.n),
            power,
            amp,
            table: None,
        })
    }
    pub fn grid(&self) -> &Grid2 {
        &self.grid
    }
    pub fn fft(&self) -> &Fft2 {
        &self.fft
    }
    /// Per-mode `C(ell_k)` (k = 0 forced to zero).
    pub fn mode_power(&self) -> &[f64] {
        &self.power
    }
    /// Expected pixel variance `sum_k C_k / A / n^2`.
    pub fn pixel_variance(&self) -> f64 {
        let a = self.grid.pixel_area_sr();
        self.power.iter().sum::<f64>() / a / self.grid.npix() as f64
    }
    /// `f = Re IFFT[sqrt(C/A) FFT(w)]`.
    pub fn map_from_white(&self, w: &[f64]) -> Result<Vec<f64>> {
        check_len("white noise", self.grid.npix(), w.len())?;
        self.fft.filter_real(w, &self.amp)
    }
    /// A realisation from a seed.
    pub fn sample(&self, seed: u64) -> Vec<f64> {
        let w = white_noise(self.grid.npix(), seed);
        self.map_from_white(&w).expect("length is consistent")
    }
    /// VJP with respect to the white noise (the operator is self-adjoint).
    pub fn vjp_white(&self, cot: &[f64]) -> Result<Vec<f64>> {
        check_len("cotangent", self.grid.npix(), cot.len())?;
        self.fft.filter_real(cot, &self.amp)
    }
    /// VJP with respect to the per-mode power `C_k`:
    /// `dL/dC_k = Re[W_k conj(G_k)] / n^2 / (2 A a_k)` with `a_k = sqrt(C_k/A)`,
    /// `W = FFT(w)`, `G = FFT(cotangent)`. Modes with zero power return 0
    /// (the square root is not differentiable there).
    pub fn vjp_power(&self, w: &[f64], cot: &[f64]) -> Result<Vec<f64>> {
        check_len("white noise", self.grid.npix(), w.len())?;
        check_len("cotangent", self.grid.npix(), cot.len())?;
        let ww = self.fft.forward_real(w)?;
        let gg = self.fft.forward_real(cot)?;
        let n2 = self.grid.npix() as f64;
        let a = self.grid.pixel_area_sr();
        Ok((0..ww.len())
            .into_par_iter()
            .map(|k| {
                if self.amp[k] > 0.0 {
                    (ww[k] * gg[k].conj()).re / n2 / (2.0 * a * self.amp[k])
                } else {
                    0.0
                }
            })
            .collect())
    }
    /// VJP with respect to the `C_ell` values of the table the field was built from.
    pub fn vjp_table(&self, w: &[f64], cot: &[f64]) -> Result<Vec<f64>> {
        let t = self.table.as_ref().ok_or_else(|| FieldError::Value {
            what: "vjp_table".into(),
            msg: "field was not built from a table".into(),
        })?;
        let dp = self.vjp_power(w, cot)?;
        let mut out = vec![0.0; t.cl().len()];
        for (k, l) in self.grid.ell_abs().into_iter().enumerate() {
            if k == 0 {
                continue;
            }
            if let Some((i, a, b)) = t.weights(l) {
                out[i] += a * dp[k];
                out[i + 1] += b * dp[k];
            }
        }
        Ok(out)
    }
}

/// The correlation of the Gaussian field behind a log-normal one:
/// `xi_g = ln(1 + (xi + c) / ss)` for the log-normal correlation `xi` (one
/// value per pixel or cell, `xi[0]` at zero lag) and shift product `ss`,
/// with the smallest `c >= 0` that makes `sum xi_g = 0` (a zero Gaussian
/// mean mode; see [`lognormal_gaussian_power`]). Returns `(xi_g, c)`; errors
/// if `1 + xi / ss <= 0` somewhere (the shift is too small for the field).
pub(crate) fn log_correlation(
    xi: &[f64],
    ss: f64,
    bins: (usize, usize),
) -> Result<(Vec<f64>, f64)> {
    let min = xi
        .iter()
        .map(|&x| 1.0 + x / ss)
        .fold(f64::INFINITY, f64::min);
    if !(min > 0.0) {
        return Err(FieldError::LogNormalShift {
            i: bins.0,
            j: bins.1,
            min,
        });
    }
    // Newton on the concave increasing f(c) = sum ln(1 + (xi + c)/ss) from
    // c = 0 (f(0) <= 0) converges monotonically from the left.
    let mut c = 0.0;
    for _ in 0..100 {
        // Fixed chunks summed in order: deterministic for any thread count.
        let parts: Vec<(f64, f64)> = xi
            .par_chunks(4096)
            .map(|ch| {
                ch.iter().fold((0.0, 0.0), |(f, df), &x| {
                    (f + (1.0 + (x + c) / ss).ln(), df + 1.0 / (ss + x + c))
                })
            })
            .collect();
        let (f, df) = parts.iter().fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
        if f >= 0.0 {
            break;
        }
        let step = -f / df;
        c += step;
        if step <= 1e-15 * (c.abs() + xi[0].abs()) {
            break;
        }
    }
    Ok((
        xi.par_iter().map(|&x| (1.0 + (x + c) / ss).ln()).collect(),
        c,
    ))
}

/// Gaussian-field power `C_g` (per mode) whose exponential with shifts
/// `s_i, s_j` has the pixelised cross power `target` (per mode, sr units) at
/// every `k != 0`. Returns `(C_g, c)` where `c >= 0` is the variance given to
/// the `k = 0` mode of the log-normal field (see below).
///
/// On a periodic grid the target has zero power at `k = 0`, so
/// `sum_r xi_k(r) = 0`, and by concavity `sum_r ln(1 + xi_k/s^2) < 0`: the
/// Gaussian `k = 0` power would be negative. We therefore add the smallest
/// constant `c` to `xi_k` (i.e. give the *mean* of the log-normal map a
/// variance `c`, which is unobservable on a periodic patch) such that
/// `sum_r ln(1 + (xi_k(r) + c)/(s_i s_j)) = 0`; the Gaussian field then has
/// zero mean mode and the log-normal map has exactly the target power at all
/// `k != 0`. Errors if `1 + xi/(s_i s_j) <= 0` somewhere.
pub fn lognormal_gaussian_power(
    grid: &Grid2,
    fft: &Fft2,
    target: &[f64],
    si: f64,
    sj: f64,
    bins: (usize, usize),
) -> Result<(Vec<f64>, f64)> {
    check_len("target power", grid.npix(), target.len())?;
    let a = grid.pixel_area_sr();
    let b: Vec<C64> = target.iter().map(|&p| C64::new(p / a, 0.0)).collect();
    let xi = fft.inverse_real(b)?;
    let (xg, c) = log_correlation(&xi, si * sj, bins)?;
    let cg = fft.forward_real(&xg)?;
    let mut out: Vec<f64> = cg.iter().map(|v| v.re * a).collect();
    out[0] = 0.0;
    Ok((out, c))
}

/// Single log-normal field `kappa = s (exp(g - sigma_g^2/2) - 1)`.
#[derive(Debug, Clone)]
pub struct LogNormal2 {
    gauss: Grf2,
    shift: f64,
    sigma2_g: f64,
    clipped: usize,
    mean_var: f64,
    /// Target per-mode power (k = 0 zeroed), for the spectrum VJP.
    target: Vec<f64>,
    /// Modes whose Gaussian power was positive before clipping.
    cg_pos: Vec<bool>,
    table: Option<ClTable>,
}

impl LogNormal2 {
    /// Target spectrum `table`, shift `s > 0`.
    pub fn from_cl(grid: Grid2, table: &ClTable, shift: f64) -> Result<Self> {
        let mut s = Self::from_mode_power(grid, table.on_grid(&grid), shift)?;
        s.table = Some(table.clone());
        Ok(s)
    }
    pub fn from_mode_power(grid: Grid2, mut target: Vec<f64>, shift: f64) -> Result<Self> {
        if !(shift.is_finite() && shift > 0.0) {
            return Err(FieldError::Value {
                what: "log-normal shift".into(),
                msg: format!("must be positive, got {shift}"),
            });
        }
        check_len("mode power", grid.npix(), target.len())?;
        check_finite("mode power", &target)?;
        target[0] = 0.0;
        let fft = Fft2::new(grid.n);
        let (mut cg, mean_var) =
            lognormal_gaussian_power(&grid, &fft, &target, shift, shift, (0, 0))?;
        let mut clipped = 0;
        let cg_pos: Vec<bool> = cg.iter().map(|&c| c > 0.0).collect();
        let tol = 1e-12 * cg.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for c in cg.iter_mut() {
            if *c < -tol {
                clipped += 1;
            }
            if *c < 0.0 {
                *c = 0.0;
            }
        }
        // Symmetrise against roundoff so the Gaussian field is exactly real.
        let sym: Vec<f64> = (0..cg.len())
            .map(|k| 0.5 * (cg[k] + cg[grid.neg_index(k)]))
            .collect();
        let gauss = Grf2::from_mode_power(grid, sym)?;
        let sigma2_g = gauss.pixel_variance();
        Ok(Self {
            gauss,
            shift,
            sigma2_g,
            clipped,
            mean_var,
            target,
            cg_pos,
            table: None,
        })
    }
    /// The underlying Gaussian field.
    pub fn gaussian(&self) -> &Grf2 {
        &self.gauss
    }
    pub fn shift(&self) -> f64 {
        self.shift
    }
    /// Variance of the Gaussian field `sigma_g^2`.
    pub fn sigma2_g(&self) -> f64 {
        self.sigma2_g
    }
    /// Number of Gaussian modes with negative power clipped to zero.
    pub fn clipped(&self) -> usize {
        self.clipped
    }
    /// Variance `c` of the map mean (the `k = 0` mode), see [`lognormal_gaussian_power`].
    pub fn mean_variance(&self) -> f64 {
        self.mean_var
    }
    /// Expected one-point variance about zero, `s^2 (exp(sigma_g^2) - 1)`;
    /// equals the target `xi(0)` plus [`LogNormal2::mean_variance`] (the
    /// expected variance about each map's own mean is the target `xi(0)`).
    pub fn variance(&self) -> f64 {
        self.shift.powi(2) * self.sigma2_g.exp_m1()
    }
    pub fn map_from_white(&self, w: &[f64]) -> Result<Vec<f64>> {
        let g = self.gauss.map_from_white(w)?;
        let (s, h) = (self.shift, 0.5 * self.sigma2_g);
        Ok(g.into_iter().map(|x| s * (x - h).exp_m1()).collect())
    }
    pub fn sample(&self, seed: u64) -> Vec<f64> {
        let w = white_noise(self.gauss.grid().npix(), seed);
        self.map_from_white(&w).expect("length is consistent")
    }
    /// VJP with respect to the target per-mode power `C_k` (sr units), through
    /// the whole construction: `C -> xi = IFFT[C/A] -> (c, xi_g = ln(1 + (xi +
    /// c)/s^2)) -> C_g = A FFT[xi_g] -> (clip, symmetrise) -> g -> kappa`,
    /// including the implicit dependence of the mean-mode constant `c`
    /// (`dc/dxi_r = -u_r / sum u`, `u = 1/(s^2 + xi + c)`) and of
    /// `sigma_g^2`. Clipped modes and `k = 0` carry no gradient.
    pub fn vjp_power(&self, w: &[f64], cot: &[f64]) -> Result<Vec<f64>> {
        let grid = *self.gauss.grid();
        let fft = self.gauss.fft();
        let (np, a) = (grid.npix(), grid.pixel_area_sr());
        check_len("white noise", np, w.len())?;
        check_len("cotangent", np, cot.len())?;
        let g = self.gauss.map_from_white(w)?;
        let (s, h) = (self.shift, 0.5 * self.sigma2_g);
        let gbar: Vec<f64> = g
            .iter()
            .zip(cot)
            .map(|(x, c)| c * s * (x - h).exp())
            .collect();
        let s2bar = -0.5 * gbar.iter().sum::<f64>();
        // d/d(sym power): through the amplitudes and through sigma_g^2.
        let mut symbar = self.gauss.vjp_power(w, &gbar)?;
        for v in symbar.iter_mut() {
            *v += s2bar / (a * np as f64);
        }
        symbar[0] = 0.0;
        // Symmetrisation and clipping.
        let cgbar: Vec<C64> = (0..np)
            .map(|k| {
                C64::new(
                    if k != 0 && self.cg_pos[k] {
                        0.5 * (symbar[k] + symbar[grid.neg_index(k)])
                    } else {
                        0.0
                    },
                    0.0,
                )
            })
            .collect();
        // C_g = A Re FFT[xi_g]  =>  xi_g_bar(r) = A Re sum_k cgbar_k e^{-i k r}.
        let mut buf = cgbar;
        fft.forward_inplace(&mut buf)?;
        let xgbar: Vec<f64> = buf.iter().map(|v| a * v.re).collect();
        // xi from the target, and u = 1/(s^2 + xi + c).
        let xi = fft.inverse_real(self.target.iter().map(|&p| C64::new(p / a, 0.0)).collect())?;
        let ss = s * s;
        let c = self.mean_var;
        let u: Vec<f64> = xi.iter().map(|&x| 1.0 / (ss + x + c)).collect();
        let mut xibar: Vec<f64> = xgbar.iter().zip(&u).map(|(b, u)| b * u).collect();
        if c > 0.0 {
            let cbar: f64 = xibar.iter().sum();
            let su: f64 = u.iter().sum();
            for (xb, u) in xibar.iter_mut().zip(&u) {
                *xb -= cbar * u / su;
            }
        }
        // xi = Re IFFT[C/A]  =>  C_bar_k = Re FFT[xi_bar]_k / (A n^2).
        let pb = fft.forward_real(&xibar)?;
        let mut out: Vec<f64> = pb.iter().map(|v| v.re / (a * np as f64)).collect();
        out[0] = 0.0;
        Ok(out)
    }
    /// VJP with respect to the `C_ell` table values the field was built from.
    pub fn vjp_table(&self, w: &[f64], cot: &[f64]) -> Result<Vec<f64>> {
        let t = self.table.as_ref().ok_or_else(|| FieldError::Value {
            what: "vjp_table".into(),
            msg: "field was not built from a table".into(),
        })?;
        let dp = self.vjp_power(w, cot)?;
        let mut out = vec![0.0; t.cl().len()];
        for (k, l) in self.gauss.grid().ell_abs().into_iter().enumerate() {
            if k == 0 {
                continue;
            }
            if let Some((i, a, b)) = t.weights(l) {
                out[i] += a * dp[k];
                out[i + 1] += b * dp[k];
            }
        }
        Ok(out)
    }
    /// VJP with respect to the white noise:
    /// `w_bar = A^T [ cot * s exp(g - sigma_g^2/2) ]`.
    pub fn vjp_white(&self, w: &[f64], cot: &[f64]) -> Result<Vec<f64>> {
        check_len("cotangent", self.gauss.grid().npix(), cot.len())?;
        let g = self.gauss.map_from_white(w)?;
        let (s, h) = (self.shift, 0.5 * self.sigma2_g);
        let gb: Vec<f64> = g
            .iter()
            .zip(cot)
            .map(|(x, c)| c * s * (x - h).exp())
            .collect();
        self.gauss.vjp_white(&gb)
    }
}
