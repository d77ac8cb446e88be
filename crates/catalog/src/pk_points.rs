//! Power spectrum of a (weighted) point set in a periodic box.
//!
//! - CIC assignment ([`cosmodiff_field::cic`]) of the weights on a mesh of
//!   side `n`, `delta = rho / mean - 1`;
//! - interlacing (Hockney & Eastwood 1988; Sefusatti et al. 2016, MNRAS
//!   460, 3624): a second mesh painted with the points shifted by half a cell,
//!   `D_k = [X1_k + X2_k exp(i k . s)] / 2` with `s = (h/2, h/2, h/2)`, which
//!   cancels the odd aliasing images;
//! - compensation: `D_k / W(k)`, `W = prod_a sinc^2(pi m_a / n)` (the CIC window);
//! - `P(k) = |D_k|^2 (V / n^3)^2 / V`, binned as [`cosmodiff_field::pk3`]
//!   (bins of width `2 pi / L` from 0, `k` the mean |k| of a bin's modes);
//! - shot noise `P_shot = V sum w^2 / (sum w)^2` (`V / N` for unit weights),
//!   subtracted.
//!
//! [`pk_points_vjp`] is the vector-Jacobian product in the weights (CIC
//! readout of the inverse transforms of the cotangent-weighted modes).

use crate::{check_positions, input, Result};
use cosmodiff_field::cic;
use cosmodiff_field::fft3::{freq, Fft3};
use cosmodiff_field::pk3::bin_modes;
use realfft::num_complex::Complex;
use std::f64::consts::PI;

/// P(k) estimator options.
#[derive(Debug, Clone, Copy)]
pub struct PkPointsSettings {
    /// Mesh cells per side (even, >= 4). Default 128.
    pub n_mesh: usize,
    /// Interlace two meshes shifted by half a cell. Default true.
    pub interlacing: bool,
    /// Divide by the CIC window. Default true.
    pub compensate: bool,
}

impl Default for PkPointsSettings {
    fn default() -> Self {
        Self {
            n_mesh: 128,
            interlacing: true,
            compensate: true,
        }
    }
}

/// Binned P(k) of points.
#[derive(Debug, Clone, Default)]
pub struct PkPoints {
    /// Mean |k| of each bin's modes [h/Mpc].
    pub k: Vec<f64>,
    /// Power, shot noise subtracted [(Mpc/h)^3].
    pub pk: Vec<f64>,
    /// Modes per bin (k and -k both counted).
    pub n_modes: Vec<f64>,
    /// Shot noise subtracted [(Mpc/h)^3].
    pub shot_noise: f64,
}

struct Modes {
    /// `Y_k = D_k * mean` before normalisation: interlaced, compensated
    /// transform of the painted weights (half-complex).
    y: Vec<Complex<f64>>,
    /// Phase `exp(i k . s)` of each mode (1 without interlacing).
    phase: Vec<Complex<f64>>,
    /// `1 / W(k)` per mode.
    inv_window: Vec<f64>,
    /// Positions in cell units (and shifted by half a cell).
    cell: Vec<[f32; 3]>,
    shifted: Vec<[f32; 3]>,
    total: f64,
    sum_w2: f64,
}

fn modes(
    pos: &[[f64; 3]],
    weights: Option<&[f64]>,
    box_size: f64,
    s: &PkPointsSettings,
    fft: &Fft3<f64>,
) -> Result<Modes> {
    check_positions(pos, box_size)?;
    let n = s.n_mesh;
    if n < 4 || !n.is_multiple_of(2) {
        return input(format!("n mesh must be even and >= 4, got {n}"));
    }
    if pos.is_empty() {
        return input("the catalogue is empty");
    }
    if let Some(w) = weights {
        if w.len() != pos.len() {
            return input(format!("{} weights for {} points", w.len(), pos.len()));
        }
        if let Some(i) = w.iter().position(|x| !x.is_finite()) {
            return input(format!("weight {i} is not finite"));
        }
    }
    let total: f64 = weights.map_or(pos.len() as f64, |w| w.iter().sum());
    if !(total > 0.0) {
        return input(format!(
            "the weights sum to {total}: P(k) needs a positive total"
        ));
    }
    let sum_w2: f64 = weights.map_or(pos.len() as f64, |w| w.iter().map(|x| x * x).sum());
    let scale = n as f64 / box_size;
    let cell: Vec<[f32; 3]> = pos
        .iter()
        .map(|p| {
            [
                (p[0] * scale) as f32,
                (p[1] * scale) as f32,
                (p[2] * scale) as f32,
            ]
        })
        .collect();
    let shifted: Vec<[f32; 3]> = pos
        .iter()
        .map(|p| {
            [
                (p[0] * scale + 0.5) as f32,
                (p[1] * scale + 0.5) as f32,
                (p[2] * scale + 0.5) as f32,
            ]
        })
        .collect();
    let w32: Option<Vec<f32>> = weights.map(|w| w.iter().map(|x| *x as f32).collect());
    let paint = |p: &[[f32; 3]]| -> Vec<Complex<f64>> {
        let mut mesh = vec![0.0f32; n * n * n];
        cic::paint(n, p, w32.as_deref(), &mut mesh);
        let m64: Vec<f64> = mesh.iter().map(|v| *v as f64).collect();
        fft.forward(&m64)
    };
    let x1 = paint(&cell);
    let nh = n / 2 + 1;
    let mut phase = vec![Complex::new(1.0, 0.0); x1.len()];
    let mut inv_window = vec![1.0f64; x1.len()];
    let sinc2 = |m: i64| {
        let x = PI * m as f64 / n as f64;
        if m == 0 {
            1.0
        } else {
            (x.sin() / x).powi(2)
        }
    };
    for ix in 0..n {
        for iy in 0..n {
            for iz in 0..nh {
                let (mx, my, mz) = (freq(ix, n), freq(iy, n), freq(iz, n));
                let i = (ix * n + iy) * nh + iz;
                if s.interlacing {
                    // k . s with s = half a cell on each axis: pi (mx + my + mz) / n
                    let a = PI * (mx + my + mz) as f64 / n as f64;
                    phase[i] = Complex::new(a.cos(), a.sin());
                }
                if s.compensate {
                    inv_window[i] = 1.0 / (sinc2(mx) * sinc2(my) * sinc2(mz));
                }
            }
        }
    }
    let y: Vec<Complex<f64>> = if s.interlacing {
        let x2 = paint(&shifted);
        x1.iter()
            .zip(&x2)
            .zip(&phase)
            .zip(&inv_window)
            .map(|(((a, b), p), w)| (a + b * p) * (0.5 * w))
            .collect()
    } else {
        x1.iter().zip(&inv_window).map(|(a, w)| a * w).collect()
    };
    Ok(Modes {
        y,
        phase,
        inv_window,
        cell,
        shifted,
        total,
        sum_w2,
    })
}

/// P(k) of the points `pos` [Mpc/h, in `[0, L)`] with optional weights.
pub fn pk_points(
    pos: &[[f64; 3]],
    weights: Option<&[f64]>,
    box_size: f64,
    settings: &PkPointsSettings,
) -> Result<PkPoints> {
    let n = settings.n_mesh;
    let fft = Fft3::<f64>::new(n);
    let m = modes(pos, weights, box_size, settings, &fft)?;
    // delta_k = Y / mean (the DC mode is dropped by the binning)
    let ncell = (n * n * n) as f64;
    let mean = m.total / ncell;
    let v = box_size.powi(3);
    let c = (v / ncell).powi(2) / v / (mean * mean);
    let q: Vec<f64> = m.y.iter().map(|y| y.norm_sqr() * c).collect();
    let b = bin_modes(&q, n, box_size);
    let shot = v * m.sum_w2 / (m.total * m.total);
    Ok(PkPoints {
        k: b.k,
        pk: b.p.iter().map(|p| p - shot).collect(),
        n_modes: b.n_modes,
        shot_noise: shot,
    })
}

/// Vector-Jacobian product of [`pk_points`] in the weights: `dL/dw_i` for
/// the cotangent `pk_bar_b = dL/dP_b` (unit weights when `weights` is `None`).
///
/// With `P_b = sum_{m in b} A_m |Y_m|^2 / mean^2 - P_shot` over the full
/// spectrum (`A_m = (V/N)^2 / (V N_b)`), `Y = (X1 + phi X2) / (2 W)` and
/// `X1_m = sum_i w_i sum_c W_cic(x_i - c) e^{-i k c}`:
/// `dL/dw_i = F1(x_i) + F2(x_i + s) - 2 L_1 / sum w - dP_shot/dw_i sum_b pk_bar_b`,
/// where `F1 = N IFFT[G Y / W]`, `F2 = N IFFT[G Y conj(phi) / W]` (real: the
/// integrands are Hermitian), `G_m = pk_bar_b A_m / mean^2`, and
/// `L_1 = sum_m G_m |Y_m|^2`.
pub fn pk_points_vjp(
    pos: &[[f64; 3]],
    weights: Option<&[f64]>,
    box_size: f64,
    settings: &PkPointsSettings,
    pk_bar: &[f64],
) -> Result<Vec<f64>> {
    let n = settings.n_mesh;
    let fft = Fft3::<f64>::new(n);
    let m = modes(pos, weights, box_size, settings, &fft)?;
    let ncell = (n * n * n) as f64;
    let mean = m.total / ncell;
    let v = box_size.powi(3);
    let bins = cosmodiff_field::pk3::k_bins(n, box_size);
    if pk_bar.len() != bins.k.len() {
        return input(format!(
            "{} cotangents for {} bins",
            pk_bar.len(),
            bins.k.len()
        ));
    }
    // per-mode G = pk_bar_b (V/N)^2 / (V N_b) / mean^2, by the same binning:
    // bin_modes of an indicator gives the bin of each mode.
    let nh = n / 2 + 1;
    // k components exactly as pk3 computes them (same bin assignment)
    let val = 1.0 / (n as f64 * (box_size / n as f64));
    let kc = |i: usize| 2.0 * PI * (freq(i, n) as f64 * val);
    let c = (v / ncell).powi(2) / v / (mean * mean);
    let mut g = vec![0.0f64; m.y.len()];
    for ix in 0..n {
        for iy in 0..n {
            for iz in 0..nh {
                let kk = (kc(ix).powi(2) + kc(iy).powi(2) + kc(iz).powi(2)).sqrt();
                if kk <= 0.0 {
                    continue;
                }
                // the bin whose [lo, hi) holds kk (as pk3 assigns it)
                let b = bins.edge_lo.partition_point(|e| *e <= kk);
                if b > 0 && kk < bins.edge_hi[b - 1] {
                    g[(ix * n + iy) * nh + iz] = pk_bar[b - 1] * c / bins.n_modes[b - 1];
                }
            }
        }
    }
    // L1 over the full spectrum (Hermitian weights), and F1, F2
    let mut l1 = 0.0;
    for ix in 0..n {
        for iy in 0..n {
            for iz in 0..nh {
                let i = (ix * n + iy) * nh + iz;
                let hw = if iz == 0 || iz == n / 2 { 1.0 } else { 2.0 };
                l1 += hw * g[i] * m.y[i].norm_sqr();
            }
        }
    }
    let half = if settings.interlacing { 0.5 } else { 1.0 };
    let mut f1k: Vec<Complex<f64>> = (0..m.y.len())
        .map(|i| m.y[i] * (g[i] * m.inv_window[i] * half * ncell))
        .collect();
    let mut f1 = vec![0.0f64; n * n * n];
    fft.inverse_inplace(&mut f1k, &mut f1);
    let read = |f: &[f64], p: &[[f32; 3]]| -> Vec<f32> {
        let f32m: Vec<f32> = f.iter().map(|x| *x as f32).collect();
        cic::readout(n, &f32m, p)
    };
    let r1 = read(&f1, &m.cell);
    let r2 = if settings.interlacing {
        let mut f2k: Vec<Complex<f64>> = (0..m.y.len())
            .map(|i| m.y[i] * m.phase[i].conj() * (g[i] * m.inv_window[i] * half * ncell))
            .collect();
        let mut f2 = vec![0.0f64; n * n * n];
        fft.inverse_inplace(&mut f2k, &mut f2);
        read(&f2, &m.shifted)
    } else {
        vec![0.0f32; pos.len()]
    };
    // shot noise: P_shot = V S2 / W^2, dP_shot/dw_i = V (2 w_i / W^2 - 2 S2 / W^3)
    let gsum: f64 = pk_bar.iter().sum();
    let (wt, s2) = (m.total, m.sum_w2);
    Ok((0..pos.len())
        .map(|i| {
            let wi = weights.map_or(1.0, |w| w[i]);
            let dshot = v * (2.0 * wi / (wt * wt) - 2.0 * s2 / (wt * wt * wt));
            2.0 * (r1[i] + r2[i]) as f64 - 2.0 * l1 / wt - gsum * dshot
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cosmodiff_field::grf3::{Box3, LogNormal3};
    use cosmodiff_field::spectrum::ClTable;
    use rand::SeedableRng;
    use rand_distr::{Distribution, Poisson, StandardUniform};

    /// Points Poisson-sampled from a log-normal field of known P(k): the
    /// measured P(k) (shot noise subtracted) matches the field's own P(k),
    /// chi^2 over the bins below k_Nyq/2 with the variance of the Poisson
    /// sampling alone (p > 1e-3).
    #[test]
    fn pk_of_poisson_sampled_lognormal_field() {
        let (n, l) = (64usize, 500.0);
        let bx = Box3::new(n, l).unwrap();
        let ks: Vec<f64> = (0..200).map(|i| 1e-3 * 1.05f64.powi(i)).collect();
        let pk: Vec<f64> = ks
            .iter()
            .map(|k| 2e4 * (k / 0.02) / (1.0 + (k / 0.02).powf(2.5)))
            .collect();
        let table = ClTable::new(ks, pk).unwrap();
        let ln = LogNormal3::from_pk(bx, &table, 1.0).unwrap();
        let delta = ln.sample(7);
        // What the points trace: the field (normalised by its sample mean)
        // smoothed by the one-cell top hat of the uniform placement inside
        // a cell, prod_a sinc^2(pi m_a / n) per mode.
        let mean = 1.0 + delta.iter().sum::<f64>() / delta.len() as f64;
        let d: Vec<f64> = delta.iter().map(|x| (1.0 + x) / mean - 1.0).collect();
        let fft = Fft3::<f64>::new(n);
        let xk = fft.forward(&d);
        let nh = n / 2 + 1;
        let v = l.powi(3);
        let cellv = v / (n * n * n) as f64;
        let sinc2 = |m: i64| {
            let x = PI * m as f64 / n as f64;
            if m == 0 {
                1.0
            } else {
                (x.sin() / x).powi(2)
            }
        };
        let mut q = vec![0.0; xk.len()];
        for ix in 0..n {
            for iy in 0..n {
                for iz in 0..nh {
                    let i = (ix * n + iy) * nh + iz;
                    q[i] = xk[i].norm_sqr() * cellv * cellv / v
                        * sinc2(freq(ix, n))
                        * sinc2(freq(iy, n))
                        * sinc2(freq(iz, n));
                }
            }
        }
        let truth = bin_modes(&q, n, l);
        // Poisson points, uniform inside each cell
        let nbar_cell = 2.0;
        let cellsz = l / n as f64;
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut pos = Vec::new();
        for ix in 0..n {
            for iy in 0..n {
                for iz in 0..n {
                    let lam = nbar_cell * (1.0 + delta[(ix * n + iy) * n + iz]).max(0.0);
                    let k = if lam > 0.0 {
                        Poisson::new(lam).unwrap().sample(&mut rng) as usize
                    } else {
                        0
                    };
                    for _ in 0..k {
                        let u: [f64; 3] = [
                            StandardUniform.sample(&mut rng),
                            StandardUniform.sample(&mut rng),
                            StandardUniform.sample(&mut rng),
                        ];
                        pos.push([
                            (ix as f64 + u[0]) * cellsz,
                            (iy as f64 + u[1]) * cellsz,
                            (iz as f64 + u[2]) * cellsz,
                        ]);
                    }
                }
            }
        }
        let s = PkPointsSettings {
            n_mesh: n,
            ..Default::default()
        };
        let p = pk_points(&pos, None, l, &s).unwrap();
        // uniform placement within a cell smooths the field by the cell
        // window (a top hat of one cell): compare to truth * W_TH(cell)^2,
        // the exact expectation for this construction.
        let mut chi2 = 0.0;
        let mut nb = 0;
        for b in 0..p.k.len() {
            if p.k[b] > 0.5 * PI * n as f64 / l {
                break;
            }
            assert!((p.k[b] - truth.k[b]).abs() < 1e-12);
            let expect = truth.p[b];
            // the field realisation is fixed: only the Poisson sampling
            // scatters, Var = 2 (2 P P_shot + P_shot^2) / N_modes (the cosmic
            // variance term 2 P^2 / N_modes is absent)
            let ps = p.shot_noise;
            let var = 2.0 * (2.0 * expect * ps + ps * ps) / p.n_modes[b];
            chi2 += (p.pk[b] - expect).powi(2) / var;
            nb += 1;
        }
        let pval = statrs::function::gamma::gamma_ur(nb as f64 / 2.0, chi2 / 2.0);
        eprintln!(
            "{} points, chi2 {chi2:.1} over {nb} bins, p {pval:.3}",
            pos.len()
        );
        assert!(pval > 1e-3, "chi2 {chi2} / {nb}");
    }

    #[test]
    fn shot_noise_of_uniform_points() {
        let l = 100.0;
        let pos: Vec<[f64; 3]> = crate::uniform_points(50_000, l, 1);
        let p = pk_points(
            &pos,
            None,
            l,
            &PkPointsSettings {
                n_mesh: 32,
                ..Default::default()
            },
        )
        .unwrap();
        assert!((p.shot_noise - l.powi(3) / 5e4).abs() < 1e-9);
        // shot-noise subtracted power of Poisson points ~ 0 within errors
        let mut chi2 = 0.0;
        for b in 0..p.k.len() {
            chi2 += p.pk[b].powi(2) / (p.shot_noise.powi(2) / p.n_modes[b]);
        }
        let pval = statrs::function::gamma::gamma_ur(p.k.len() as f64 / 2.0, chi2 / 2.0);
        eprintln!("chi2 {chi2:.1} / {} bins, p {pval:.3}", p.k.len());
        assert!(pval > 1e-3);
    }

    #[test]
    fn vjp_matches_finite_differences() {
        let l = 50.0;
        let pos: Vec<[f64; 3]> = crate::uniform_points(400, l, 2);
        let w: Vec<f64> = (0..pos.len()).map(|i| 0.5 + (i % 3) as f64 * 0.4).collect();
        for interlacing in [false, true] {
            let s = PkPointsSettings {
                n_mesh: 8,
                interlacing,
                compensate: true,
            };
            let p0 = pk_points(&pos, Some(&w), l, &s).unwrap();
            let g: Vec<f64> = (0..p0.k.len()).map(|b| 1.0 + 0.3 * b as f64).collect();
            let grad = pk_points_vjp(&pos, Some(&w), l, &s, &g).unwrap();
            let f = |w: &[f64]| -> f64 {
                let p = pk_points(&pos, Some(w), l, &s).unwrap();
                p.pk.iter().zip(&g).map(|(a, b)| a * b).sum()
            };
            let scale = grad.iter().fold(0.0f64, |a, b| a.max(b.abs()));
            for i in [0, 5, 123, 399] {
                let h = 1e-2;
                let mut wp = w.clone();
                wp[i] += h;
                let mut wm = w.clone();
                wm[i] -= h;
                let fd = (f(&wp) - f(&wm)) / (2.0 * h);
                assert!(
                    (fd - grad[i]).abs() < 2e-3 * scale,
                    "interlacing {interlacing} w{i}: vjp {} fd {fd} (scale {scale})",
                    grad[i]
                );
            }
        }
    }
}
