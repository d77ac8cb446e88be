//! Gaussian and log-normal random fields in 3-D periodic boxes, using the
//! real FFT plans of [`crate::fft3::Fft3`] (layout and normalisation there:
//! unnormalised forward, `1/n^3` inverse, half-complex last axis).
//!
//! A box has `n^3` cells and side `L` (Mpc/h); wavenumbers are
//! `k = 2 pi m / L` (h/Mpc) for integer frequencies `m`; `P(k)` is in
//! (Mpc/h)^3. With `V_c = (L/n)^3` the cell volume and `w` unit white noise,
//!
//! `delta = IFFT[ sqrt(P(|k|) / V_c) FFT(w) ]`
//!
//! has `<|FFT(delta)_k|^2> = n^3 P(k) / V_c`, i.e. `P(k)` in the convention
//! of [`crate::pk3`] (`delta_k = FFT[delta] V / n^3`, `P = |delta_k|^2 / V`).
//! The `k = 0` mode has zero power. The filter is real and even, so the map
//! `w -> delta` is self-adjoint (VJP = same filter).
//!
//! Log-normal boxes use the same construction as the 2-D maps
//! ([`crate::grf2`], Xavier et al. 2016; Coles & Jones 1991): the target
//! correlation on the periodic grid `xi = IFFT[P/V_c]` is mapped to
//! `xi_g = ln(1 + (xi + c)/s^2)` (with the mean-mode constant `c`, see
//! [`crate::grf2::lognormal_gaussian_power`]) and `P_g = V_c FFT[xi_g]`, negative
//! modes clipped; `delta = s (exp(g - sigma_g^2/2) - 1)`. For a density field
//! the usual choice is `s = 1`.

use crate::error::{check_finite, check_len, FieldError, Result};
use crate::fft3::{freq, Fft3};
use crate::grf2::{log_correlation, white_noise};
use crate::spectrum::ClTable;
use rayon::prelude::*;
use realfft::num_complex::Complex;

/// A periodic cube: `n` cells per side, side `box_size` in Mpc/h.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Box3 {
    pub n: usize,
    pub box_size: f64,
}

impl Box3 {
    pub fn new(n: usize, box_size: f64) -> Result<Self> {
        if !(2..=4096).contains(&n) {
            return Err(FieldError::Grid(format!(
                "box needs 2..4096 cells per side, got {n}"
            )));
        }
        if !(box_size.is_finite() && box_size > 0.0) {
            return Err(FieldError::Grid(format!(
                "box size must be positive and finite, got {box_size}"
            )));
        }
        Ok(Self { n, box_size })
    }
    pub fn ncell(&self) -> usize {
        self.n.pow(3)
    }
    pub fn cell_volume(&self) -> f64 {
        (self.box_size / self.n as f64).powi(3)
    }
    /// `|k|` of every half-complex mode (`[n, n, n/2+1]` C order).
    pub fn k_abs(&self) -> Vec<f64> {
        let (n, nh) = (self.n, self.n / 2 + 1);
        let kf = 2.0 * std::f64::consts::PI / self.box_size;
        let mut out = vec![0.0; n * n * nh];
        for ix in 0..n {
            for iy in 0..n {
                for iz in 0..nh {
                    let (a, b, c) = (freq(ix, n) as f64, freq(iy, n) as f64, iz as f64);
                    out[(ix * n + iy) * nh + iz] = kf * (a * a + b * b + c * c).sqrt();
                }
            }
        }
        out
    }
    /// Number of full-FFT modes each half-complex mode stands for (1 or 2).
    pub fn hermitian_weight(&self) -> Vec<f64> {
        let (n, nh) = (self.n, self.n / 2 + 1);
        (0..n * n * nh)
            .map(|i| {
                let iz = i % nh;
                if iz == 0 || (n % 2 == 0 && iz == n / 2) {
                    1.0
                } else {
                    2.0
                }
            })
            .collect()
    }
}

/// 3-D Gaussian random field with cached plans and amplitudes.
pub struct Grf3 {
    bx: Box3,
    fft: Fft3<f64>,
    amp: Vec<f64>,
    table: Option<ClTable>,
}

impl std::fmt::Debug for Grf3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Grf3 {{ n: {}, box_size: {} }}",
            self.bx.n, self.bx.box_size
        )
    }
}

impl Grf3 {
    /// From a `P(k)` table (k in h/Mpc, P in (Mpc/h)^3; linear interpolation,
    /// zero outside the table).
    pub fn from_pk(bx: Box3, pk: &ClTable) -> Result<Self> {
        let p: Vec<f64> = bx.k_abs().into_iter().map(|k| pk.eval(k)).collect();
        if p.iter().any(|&v| v < 0.0) {
            return Err(FieldError::Value {
                what: "P(k)".into(),
                msg: "negative power".into(),
            });
        }
        let mut g = Self::from_mode_power(bx, p)?;
        g.table = Some(pk.clone());
        Ok(g)
    }
    /// From the power of every half-complex mode (`[n, n, n/2+1]`, >= 0).
    pub fn from_mode_power(bx: Box3, mut p: Vec<f64>) -> Result<Self> {
        let fft = Fft3::<f64>::new(bx.n);
        check_len("mode power", fft.len_complex(), p.len())?;
        check_finite("mode power", &p)?;
        if let Some(i) = p.iter().position(|&v| v < 0.0) {
            return Err(FieldError::Value {
                what: "mode power".into(),
                msg: format!("negative at mode {i}"),
            });
        }
        p[0] = 0.0;
        let vc = bx.cell_volume();
        let amp = p.iter().map(|v| (v / vc).sqrt()).collect();
        Ok(Self {
            bx,
            fft,
            amp,
            table: None,
        })
    }
    pub fn box3(&self) -> &Box3 {
        &self.bx
    }
    /// Expected cell variance `sum_k P_k / V_c / n^3` (full-FFT sum).
    pub fn cell_variance(&self) -> f64 {
        let w = self.bx.hermitian_weight();
        self.amp.iter().zip(&w).map(|(a, w)| a * a * w).sum::<f64>() / self.bx.ncell() as f64
    }
    /// `delta = IFFT[sqrt(P/V_c) FFT(w)]`.
    pub fn field_from_white(&self, w: &[f64]) -> Result<Vec<f64>> {
        check_len("white noise", self.bx.ncell(), w.len())?;
        let mut k = self.fft.forward(w);
        k.par_iter_mut()
            .zip(self.amp.par_iter())
            .for_each(|(v, a)| *v *= *a);
        Ok(self.fft.inverse(&k))
    }
    pub fn sample(&self, seed: u64) -> Vec<f64> {
        self.field_from_white(&white_noise(self.bx.ncell(), seed))
            .expect("length is consistent")
    }
    /// VJP with respect to the white noise (self-adjoint filter).
    pub fn vjp_white(&self, cot: &[f64]) -> Result<Vec<f64>> {
        self.field_from_white(cot)
    }
    /// VJP with respect to the table values the field was built from:
    /// `dL/dP_k = h_k Re[W_k conj(G_k)] / n^3 / (2 V_c a_k)` summed with the
    /// Hermitian weights `h_k` and scattered by the interpolation weights.
    pub fn vjp_table(&self, w: &[f64], cot: &[f64]) -> Result<Vec<f64>> {
        let t = self.table.as_ref().ok_or_else(|| FieldError::Value {
            what: "vjp_table".into(),
            msg: "field was not built from a table".into(),
        })?;
        check_len("white noise", self.bx.ncell(), w.len())?;
        check_len("cotangent", self.bx.ncell(), cot.len())?;
        let ww = self.fft.forward(w);
        let gg = self.fft.forward(cot);
        let (n3, vc) = (self.bx.ncell() as f64, self.bx.cell_volume());
        let hw = self.bx.hermitian_weight();
        let mut out = vec![0.0; t.cl().len()];
        for (k, kk) in self.bx.k_abs().into_iter().enumerate() {
            if k == 0 || self.amp[k] == 0.0 {
                continue;
            }
            let d = hw[k] * (ww[k] * gg[k].conj()).re / n3 / (2.0 * vc * self.amp[k]);
            if let Some((i, a, b)) = t.weights(kk) {
                out[i] += a * d;
                out[i + 1] += b * d;
            }
        }
        Ok(out)
    }
}

/// 3-D log-normal field `delta = s (exp(g - sigma_g^2/2) - 1)`.
#[derive(Debug)]
pub struct LogNormal3 {
    gauss: Grf3,
    shift: f64,
    sigma2_g: f64,
    clipped: usize,
    mean_var: f64,
}

impl LogNormal3 {
    pub fn from_pk(bx: Box3, pk: &ClTable, shift: f64) -> Result<Self> {
        if !(shift.is_finite() && shift > 0.0) {
            return Err(FieldError::Value {
                what: "log-normal shift".into(),
                msg: format!("must be positive, got {shift}"),
            });
        }
        let fft = Fft3::<f64>::new(bx.n);
        let vc = bx.cell_volume();
        let mut p: Vec<Complex<f64>> = bx
            .k_abs()
            .into_iter()
            .map(|k| Complex::new(pk.eval(k) / vc, 0.0))
            .collect();
        p[0] = Complex::new(0.0, 0.0);
        let xi = fft.inverse(&p);
        let (xg, c) = log_correlation(&xi, shift * shift, (0, 0))?;
        let pg = fft.forward(&xg);
        let scale = pg.iter().fold(0.0f64, |m, v| m.max(v.re.abs()));
        let mut clipped = 0;
        let mut power: Vec<f64> = pg
            .iter()
            .map(|v| {
                if v.re < -1e-12 * scale {
                    clipped += 1;
                }
                v.re.max(0.0) * vc
            })
            .collect();
        power[0] = 0.0;
        let gauss = Grf3::from_mode_power(bx, power)?;
        let sigma2_g = gauss.cell_variance();
        Ok(Self {
            gauss,
            shift,
            sigma2_g,
            clipped,
            mean_var: c,
        })
    }
    pub fn gaussian(&self) -> &Grf3 {
        &self.gauss
    }
    pub fn clipped(&self) -> usize {
        self.clipped
    }
    /// Variance of the box mean (`k = 0` mode), see [`crate::grf2::lognormal_gaussian_power`].
    pub fn mean_variance(&self) -> f64 {
        self.mean_var
    }
    /// Expected one-point variance about zero `s^2 (exp(sigma_g^2) - 1)`.
    pub fn variance(&self) -> f64 {
        self.shift.powi(2) * self.sigma2_g.exp_m1()
    }
    pub fn field_from_white(&self, w: &[f64]) -> Result<Vec<f64>> {
        let g = self.gauss.field_from_white(w)?;
        let (s, h) = (self.shift, 0.5 * self.sigma2_g);
        Ok(g.into_par_iter().map(|x| s * (x - h).exp_m1()).collect())
    }
    pub fn sample(&self, seed: u64) -> Vec<f64> {
        self.field_from_white(&white_noise(self.gauss.bx.ncell(), seed))
            .expect("length is consistent")
    }
    /// VJP with respect to the white noise.
    pub fn vjp_white(&self, w: &[f64], cot: &[f64]) -> Result<Vec<f64>> {
        check_len("cotangent", self.gauss.bx.ncell(), cot.len())?;
        let g = self.gauss.field_from_white(w)?;
        let (s, h) = (self.shift, 0.5 * self.sigma2_g);
        let gb: Vec<f64> = g
            .iter()
            .zip(cot)
            .map(|(x, c)| c * s * (x - h).exp())
            .collect();
        self.gauss.vjp_white(&gb)
    }
}
