//! Power spectrum and cross-correlation of 3-D periodic fields, nbodykit
//! `FFTPower` style, reproducing the shared reference estimator
//! (`shared/reference/pm/pkutil.py`, `compare.py`) exactly:
//!
//! - the input (density, e.g. CIC counts) is turned into
//!   `delta = field / mean(field) - 1` unless it already is an overdensity;
//! - `delta_k = FFT[delta] * V / N_cell` (numpy convention, float64),
//!   `P(k) = |delta_k|^2 / V`, cross `P_12 = Re(delta1_k conj(delta2_k)) / V`;
//! - every mode of the full complex FFT is counted (the half-complex storage
//!   counts the `0 < iz < n/2` modes twice: Hermitian weights);
//! - the DC mode is excluded; bins `[e_i, e_{i+1})` with
//!   `e = arange(0, k_Nyq + dk/2, dk)`, `dk = 2 pi / L`; modes with
//!   `|k| >= e_last` are dropped; `k` of a bin is the mean `|k|` of its modes;
//!   empty bins are omitted; no shot-noise subtraction;
//! - optional mass-assignment compensation of `delta_k`: `Cic` divides by
//!   `prod_a sinc^2(w_a / 2)`, `CicJing` by `prod_a sqrt(1 - 2/3 sin^2(w_a/2))`
//!   (Jing 2005), with `w_a = 2 pi fftfreq` in `[-pi, pi)`.
//!
//! `r(k) = P_12 / sqrt(P_11 P_22)`.

use crate::fft3::{freq, Fft3};
use realfft::num_complex::Complex;
use std::f64::consts::PI;

/// Mass-assignment window compensation applied to `delta_k`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compensation {
    /// Divide by the exact CIC window `prod sinc^2(w/2)` (nbodykit `CompensateCIC`).
    Cic,
    /// Divide by `prod sqrt(1 - 2/3 sin^2(w/2))` (nbodykit `CompensateCICShotnoise`).
    CicJing,
}

/// Estimator options.
#[derive(Debug, Clone, Copy, Default)]
pub struct PkOptions {
    pub compensate: Option<Compensation>,
    /// The input is already an overdensity (no `field/mean - 1`).
    pub is_delta: bool,
}

/// Binned power spectrum.
#[derive(Debug, Clone, Default)]
pub struct PowerSpectrum {
    /// Mean |k| of the modes in each bin [h/Mpc].
    pub k: Vec<f64>,
    /// Power [(Mpc/h)^3].
    pub p: Vec<f64>,
    /// Number of modes (k and -k both counted).
    pub n_modes: Vec<f64>,
    pub edge_lo: Vec<f64>,
    pub edge_hi: Vec<f64>,
}

/// Cross-correlation of two fields.
#[derive(Debug, Clone, Default)]
pub struct CrossCorrelation {
    pub k: Vec<f64>,
    pub p1: Vec<f64>,
    pub p2: Vec<f64>,
    pub px: Vec<f64>,
    pub r: Vec<f64>,
    pub n_modes: Vec<f64>,
}

/// Errors of the estimators.
#[derive(Debug, thiserror::Error)]
pub enum PkError {
    #[error("pk3: field of length {len} is not a cube of side {n}")]
    Shape { len: usize, n: usize },
    #[error("pk3: mean of the field is zero; cannot form field/mean - 1")]
    ZeroMean,
    #[error("pk3: box size must be positive and finite, got {0}")]
    Box(f64),
}

fn delta_k<T: Copy + Into<f64>>(
    field: &[T],
    n: usize,
    box_size: f64,
    opt: &PkOptions,
    fft: &Fft3<f64>,
) -> Result<Vec<Complex<f64>>, PkError> {
    if field.len() != n * n * n {
        return Err(PkError::Shape {
            len: field.len(),
            n,
        });
    }
    if !(box_size > 0.0 && box_size.is_finite()) {
        return Err(PkError::Box(box_size));
    }
    let mut d: Vec<f64> = field.iter().map(|v| (*v).into()).collect();
    if !opt.is_delta {
        let mean = d.iter().sum::<f64>() / d.len() as f64;
        if mean == 0.0 {
            return Err(PkError::ZeroMean);
        }
        for v in d.iter_mut() {
            *v = *v / mean - 1.0;
        }
    }
    let mut k = fft.forward(&d);
    let cell = (box_size / n as f64).powi(3);
    let nh = n / 2 + 1;
    let win = |i: i64| -> f64 {
        let w = 2.0 * PI * i as f64 / n as f64;
        match opt.compensate {
            None => 1.0,
            Some(Compensation::Cic) => {
                let x = w / 2.0;
                let s = if x == 0.0 { 1.0 } else { x.sin() / x };
                s * s
            }
            Some(Compensation::CicJing) => (1.0 - 2.0 / 3.0 * (w / 2.0).sin().powi(2)).sqrt(),
        }
    };
    for ix in 0..n {
        let wx = win(freq(ix, n));
        for iy in 0..n {
            let wy = win(freq(iy, n));
            for iz in 0..nh {
                // numpy fftfreq on the full axis: index n/2 is -n/2 (same window).
                let wz = win(freq(iz, n));
                let v = &mut k[(ix * n + iy) * nh + iz];
                *v *= cell / (wx * wy * wz);
            }
        }
    }
    Ok(k)
}

/// Bin edges `arange(0, k_Nyq + dk/2, dk)`, `dk = 2 pi / L`, computed as
/// numpy does (`start + i * step`).
fn bin_edges(n: usize, box_size: f64) -> (f64, Vec<f64>) {
    let dk = 2.0 * PI / box_size;
    let knyq = PI * n as f64 / box_size;
    let nedge = ((knyq + dk / 2.0) / dk).ceil() as usize;
    (dk, (0..nedge).map(|i| i as f64 * dk).collect())
}

/// Bin of a mode of modulus `kk > 0` (`np.digitize`: the number of edges
/// `<= kk`, minus one), `None` beyond the last edge.
fn bin_index(kk: f64, dk: f64, edges: &[f64]) -> Option<usize> {
    let mut b = ((kk / dk).floor() as usize).min(edges.len());
    while b < edges.len() && edges[b] <= kk {
        b += 1;
    }
    while b > 0 && edges[b - 1] > kk {
        b -= 1;
    }
    // b = count of edges <= kk; bin index b-1 valid if 1 <= b <= nb
    if b == 0 || b >= edges.len() {
        None
    } else {
        Some(b - 1)
    }
}

/// Weight of a half-complex mode: the `0 < iz < n/2` modes stand for two
/// modes of the full spectrum (`k` and `-k`).
fn hermitian_weight(iz: usize, n: usize) -> f64 {
    if iz == 0 || (n.is_multiple_of(2) && iz == n / 2) {
        1.0
    } else {
        2.0
    }
}

/// Bin a per-mode quantity `q(k)` (already divided by V) nbodykit-style.
fn bin(q: &[f64], n: usize, box_size: f64) -> PowerSpectrum {
    let nh = n / 2 + 1;
    let (dk, edges) = bin_edges(n, box_size);
    let nb = edges.len().saturating_sub(1);
    let (mut cnt, mut ks, mut ps) = (vec![0.0f64; nb], vec![0.0f64; nb], vec![0.0f64; nb]);
    // k components as numpy: 2*pi * (i * (1/(n*d))) with d = L/n.
    let val = 1.0 / (n as f64 * (box_size / n as f64));
    let kc = |i: usize| 2.0 * PI * (freq(i, n) as f64 * val);
    for ix in 0..n {
        let kx = kc(ix);
        for iy in 0..n {
            let ky = kc(iy);
            for iz in 0..nh {
                let kz = kc(iz);
                let kk = (kx * kx + ky * ky + kz * kz).sqrt();
                if kk <= 0.0 {
                    continue;
                }
                let Some(i) = bin_index(kk, dk, &edges) else {
                    continue;
                };
                let w = hermitian_weight(iz, n);
                cnt[i] += w;
                ks[i] += w * kk;
                ps[i] += w * q[(ix * n + iy) * nh + iz];
            }
        }
    }
    let mut out = PowerSpectrum::default();
    for i in 0..nb {
        if cnt[i] > 0.0 {
            out.k.push(ks[i] / cnt[i]);
            out.p.push(ps[i] / cnt[i]);
            out.n_modes.push(cnt[i]);
            out.edge_lo.push(edges[i]);
            out.edge_hi.push(edges[i + 1]);
        }
    }
    out
}

/// Bin a per-mode quantity `q` (half-complex layout of [`Fft3`], one value
/// per stored mode, already in (Mpc/h)^3) exactly as [`power_spectrum`] bins
/// `|delta_k|^2 / V`: for estimators that build their own modes (e.g. the
/// P(k) of points with interlacing and shot noise in `cosmodiff-catalog`).
pub fn bin_modes(q: &[f64], n: usize, box_size: f64) -> PowerSpectrum {
    bin(q, n, box_size)
}

/// The bins [`power_spectrum`] returns for a cube of side `n` in a box of
/// side `box_size` [Mpc/h] (`k`, `n_modes`, edges; `p` all zero), without a
/// field: they depend on the mesh alone.
pub fn k_bins(n: usize, box_size: f64) -> PowerSpectrum {
    bin(&vec![0.0; n * n * (n / 2 + 1)], n, box_size)
}

/// Auto power spectrum of a cube of side `n` in a box of side `box_size` [Mpc/h].
pub fn power_spectrum<T: Copy + Into<f64>>(
    field: &[T],
    n: usize,
    box_size: f64,
    opt: &PkOptions,
) -> Result<PowerSpectrum, PkError> {
    let fft = Fft3::<f64>::new(n);
    let d = delta_k(field, n, box_size, opt, &fft)?;
    let v = box_size.powi(3);
    let q: Vec<f64> = d.iter().map(|c| c.norm_sqr() / v).collect();
    Ok(bin(&q, n, box_size))
}

/// Vector-Jacobian product of [`power_spectrum`]: for the cotangent `pbar`
/// (one value per bin of `power_spectrum(field, n, box_size, opt)`, i.e.
/// `dL/dP_b`), returns `dL/dfield_j = sum_b pbar_b dP_b/dfield_j` (float64,
/// one value per cell).
///
/// With `D_m = c_m X_m`, `X = FFT(delta)` (unnormalised), `c_m = (V/N)/W_m`
/// (`W_m` the compensation window), `P_b = sum_{m in b} |D_m|^2 / (V N_b)`
/// over the full spectrum, so
/// `dL/ddelta_j = 2 Re sum_m a_m X_m e^{i k_m j} = 2 N IFFT(a X)_j` with
/// `a_m = pbar_b c_m^2 / (V N_b)` (symmetric in `m -> -m`, so the inverse
/// of the half-complex product is real). Unless `opt.is_delta`,
/// `delta = f / mean(f) - 1` adds the mean's dependence:
/// `dL/df_j = g_j / mu - sum_i g_i f_i / (mu^2 N)`.
pub fn power_spectrum_vjp<T: Copy + Into<f64>>(
    field: &[T],
    n: usize,
    box_size: f64,
    opt: &PkOptions,
    pbar: &[f64],
) -> Result<Vec<f64>, PkError> {
    let fft = Fft3::<f64>::new(n);
    let mut x = delta_k(field, n, box_size, opt, &fft)?; // c_m X_m
    let nh = n / 2 + 1;
    let v = box_size.powi(3);
    let cell = v / (n * n * n) as f64;
    let (dk, edges) = bin_edges(n, box_size);
    let nb = edges.len().saturating_sub(1);
    // k components exactly as in `bin` (same bin assignment)
    let val = 1.0 / (n as f64 * (box_size / n as f64));
    let kc = |i: usize| 2.0 * PI * (freq(i, n) as f64 * val);
    let modulus = |ix: usize, iy: usize, iz: usize| {
        let (kx, ky, kz) = (kc(ix), kc(iy), kc(iz));
        (kx * kx + ky * ky + kz * kz).sqrt()
    };
    // mode counts of every bin, and the position of each non-empty bin in
    // the returned spectrum
    let mut cnt = vec![0.0f64; nb];
    for ix in 0..n {
        for iy in 0..n {
            for iz in 0..nh {
                let kk = modulus(ix, iy, iz);
                if kk > 0.0 {
                    if let Some(b) = bin_index(kk, dk, &edges) {
                        cnt[b] += hermitian_weight(iz, n);
                    }
                }
            }
        }
    }
    let mut slot = vec![usize::MAX; nb];
    let mut ne = 0;
    for b in 0..nb {
        if cnt[b] > 0.0 {
            slot[b] = ne;
            ne += 1;
        }
    }
    if pbar.len() != ne {
        return Err(PkError::Shape {
            len: pbar.len(),
            n: ne,
        });
    }
    // x holds c X, so a X = pbar c (c X) / (V N_b)
    let win = window(n, opt.compensate);
    for ix in 0..n {
        for iy in 0..n {
            for iz in 0..nh {
                let kk = modulus(ix, iy, iz);
                let i = (ix * n + iy) * nh + iz;
                let b = if kk > 0.0 {
                    bin_index(kk, dk, &edges)
                } else {
                    None
                };
                x[i] = match b {
                    Some(b) => {
                        let c = cell / (win[ix] * win[iy] * win[iz]);
                        x[i] * (pbar[slot[b]] * c / (v * cnt[b]))
                    }
                    None => Complex::new(0.0, 0.0),
                };
            }
        }
    }
    let n3 = (n * n * n) as f64;
    let mut g = vec![0.0f64; n * n * n];
    fft.inverse_inplace(&mut x, &mut g);
    for v in g.iter_mut() {
        *v *= 2.0 * n3;
    }
    if !opt.is_delta {
        let f: Vec<f64> = field.iter().map(|v| (*v).into()).collect();
        let mu = f.iter().sum::<f64>() / n3;
        let gf: f64 = g.iter().zip(&f).map(|(a, b)| a * b).sum::<f64>() / (mu * mu * n3);
        for v in g.iter_mut() {
            *v = *v / mu - gf;
        }
    }
    Ok(g)
}

/// Compensation window per axis index (numpy `fftfreq` order).
fn window(n: usize, comp: Option<Compensation>) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let w = 2.0 * PI * freq(i, n) as f64 / n as f64;
            match comp {
                None => 1.0,
                Some(Compensation::Cic) => {
                    let x = w / 2.0;
                    let s = if x == 0.0 { 1.0 } else { x.sin() / x };
                    s * s
                }
                Some(Compensation::CicJing) => (1.0 - 2.0 / 3.0 * (w / 2.0).sin().powi(2)).sqrt(),
            }
        })
        .collect()
}

/// Cross power `Re(d1 conj d2)/V`, the two auto spectra and `r(k)`.
pub fn cross_correlation<T: Copy + Into<f64>, U: Copy + Into<f64>>(
    f1: &[T],
    f2: &[U],
    n: usize,
    box_size: f64,
    opt: &PkOptions,
) -> Result<CrossCorrelation, PkError> {
    let fft = Fft3::<f64>::new(n);
    let d1 = delta_k(f1, n, box_size, opt, &fft)?;
    let d2 = delta_k(f2, n, box_size, opt, &fft)?;
    let v = box_size.powi(3);
    let q1: Vec<f64> = d1.iter().map(|c| c.norm_sqr() / v).collect();
    let q2: Vec<f64> = d2.iter().map(|c| c.norm_sqr() / v).collect();
    let qx: Vec<f64> = d1
        .iter()
        .zip(&d2)
        .map(|(a, b)| (a * b.conj()).re / v)
        .collect();
    let (a, b, c) = (
        bin(&q1, n, box_size),
        bin(&q2, n, box_size),
        bin(&qx, n, box_size),
    );
    let r =
        c.p.iter()
            .zip(a.p.iter().zip(&b.p))
            .map(|(x, (p, q))| x / (p * q).sqrt())
            .collect();
    Ok(CrossCorrelation {
        k: a.k,
        p1: a.p,
        p2: b.p,
        px: c.p,
        r,
        n_modes: a.n_modes,
    })
}

/// Score of a test field against a reference, as `compare.py` reports it.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub cc: CrossCorrelation,
    /// `k_max = kmax_frac * k_Nyq`.
    pub kmax: f64,
    /// `max |P_test/P_ref - 1|` over bins with `k < k_max`.
    pub max_abs_dp: f64,
    /// `min r(k)` over bins with `k < k_max`.
    pub min_r: f64,
}

/// `compare.py REF TEST --box L --kmax-frac f` (no compensation).
pub fn compare<T: Copy + Into<f64>, U: Copy + Into<f64>>(
    reference: &[T],
    test: &[U],
    n: usize,
    box_size: f64,
    kmax_frac: f64,
) -> Result<Comparison, PkError> {
    let cc = cross_correlation(reference, test, n, box_size, &PkOptions::default())?;
    let kmax = kmax_frac * PI * n as f64 / box_size;
    let (mut mdp, mut mr) = (0.0f64, f64::INFINITY);
    for i in 0..cc.k.len() {
        if cc.k[i] < kmax {
            mdp = mdp.max((cc.p2[i] / cc.p1[i] - 1.0).abs());
            mr = mr.min(cc.r[i]);
        }
    }
    Ok(Comparison {
        cc,
        kmax,
        max_abs_dp: mdp,
        min_r: mr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A single plane wave: all its power in one bin, normalisation
    /// `P = |delta_k|^2 / V` with `delta_k = A/2 * V` for each of +-k.
    #[test]
    fn plane_wave_normalisation() {
        let n = 16;
        let l = 100.0;
        let amp = 0.3;
        let mut f = vec![0.0f64; n * n * n];
        for ix in 0..n {
            for iy in 0..n {
                for iz in 0..n {
                    f[(ix * n + iy) * n + iz] = amp * (2.0 * PI * 3.0 * iy as f64 / n as f64).cos();
                }
            }
        }
        let ps = power_spectrum(
            &f,
            n,
            l,
            &PkOptions {
                is_delta: true,
                ..Default::default()
            },
        )
        .unwrap();
        let v: f64 = l * l * l;
        let want = (amp / 2.0 * v).powi(2) / v;
        // exactly one bin holds the power of the two modes +-k
        let nonzero: Vec<usize> = (0..ps.k.len())
            .filter(|&i| ps.p[i].abs() > 1e-12 * want)
            .collect();
        assert_eq!(nonzero.len(), 1);
        let i = nonzero[0];
        let tot = ps.p[i] * ps.n_modes[i];
        assert!((tot - 2.0 * want).abs() < 1e-9 * want, "{tot} {want}");
        let kf = 2.0 * PI / l;
        assert!(
            ps.edge_lo[i] <= 3.0 * kf * (1.0 + 1e-12) && 3.0 * kf < ps.edge_hi[i] * (1.0 + 1e-12)
        );
        // total mode count = n^3 - 1 minus the corner modes beyond k_Nyq
        let nm: f64 = ps.n_modes.iter().sum();
        assert!(nm < (n * n * n) as f64 && nm > 0.5 * (n * n * n) as f64);
        // the field-free bins are the field's
        let kb = k_bins(n, l);
        assert_eq!(
            (&kb.k, &kb.n_modes, &kb.edge_lo),
            (&ps.k, &ps.n_modes, &ps.edge_lo)
        );
        assert!(kb.p.iter().all(|p| *p == 0.0));
    }

    /// Against the reference `pk_fastpm10_a1.txt` computed by pkutil.py.
    #[test]
    fn matches_pkutil_reference_file() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/reference/pm/n64/jaxpm"
        );
        let Ok(txt) = std::fs::read_to_string(format!("{dir}/pk_fastpm10_a1.txt")) else {
            eprintln!("reference data absent; skipped");
            return;
        };
        let arr: ndarray::Array3<f32> =
            ndarray_npy::read_npy(format!("{dir}/fastpm10_density_cic_a1.npy")).unwrap();
        let f: Vec<f32> = arr.iter().copied().collect();
        let ps = power_spectrum(&f, 64, 256.0, &PkOptions::default()).unwrap();
        let psc = power_spectrum(
            &f,
            64,
            256.0,
            &PkOptions {
                compensate: Some(Compensation::Cic),
                ..Default::default()
            },
        )
        .unwrap();
        let rows: Vec<Vec<f64>> = txt
            .lines()
            .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
            .map(|l| l.split_whitespace().map(|x| x.parse().unwrap()).collect())
            .collect();
        assert_eq!(rows.len(), ps.k.len(), "bin count");
        for (i, r) in rows.iter().enumerate() {
            assert!(
                (r[0] - ps.k[i]).abs() < 1e-6 * ps.k[i],
                "k bin {i}: {} {}",
                r[0],
                ps.k[i]
            );
            // cols: k_mean k_lo k_hi Nmodes P_raw P_cic_sinc2 P_cic_jing
            assert_eq!(r[3], ps.n_modes[i], "N bin {i}");
            assert!(
                (r[4] - ps.p[i]).abs() < 1e-6 * ps.p[i],
                "P bin {i}: {} {}",
                r[4],
                ps.p[i]
            );
            assert!(
                (r[5] - psc.p[i]).abs() < 1e-6 * psc.p[i],
                "Pcic bin {i}: {} {}",
                r[5],
                psc.p[i]
            );
        }
    }
}

#[cfg(test)]
mod vjp_tests {
    use super::*;

    fn lcg(s: &mut u64) -> f64 {
        *s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (*s >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Positive random "counts" on an `n^3` grid (odd sizes included).
    fn field(n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed;
        (0..n * n * n).map(|_| 0.2 + 2.0 * lcg(&mut s)).collect()
    }

    fn opts() -> [PkOptions; 4] {
        [
            PkOptions::default(),
            PkOptions {
                compensate: Some(Compensation::Cic),
                is_delta: false,
            },
            PkOptions {
                compensate: None,
                is_delta: true,
            },
            PkOptions {
                compensate: Some(Compensation::CicJing),
                is_delta: true,
            },
        ]
    }

    /// Analytic JVP `dP_b[v]` (tangent `v` of the field), independent of the
    /// VJP code path: `dP_b = sum_m 2 Re(D_m conj(dD_m)) / (V N_b)` with
    /// `dD = delta_k` of the tangent of `delta`.
    fn jvp(f: &[f64], v: &[f64], n: usize, l: f64, opt: &PkOptions) -> Vec<f64> {
        let fft = Fft3::<f64>::new(n);
        let d = delta_k(f, n, l, opt, &fft).unwrap();
        // tangent of delta: v/mu - f sum(v)/(mu^2 N) (or v itself)
        let dv: Vec<f64> = if opt.is_delta {
            v.to_vec()
        } else {
            let n3 = f.len() as f64;
            let mu = f.iter().sum::<f64>() / n3;
            let sv = v.iter().sum::<f64>() / n3;
            f.iter()
                .zip(v)
                .map(|(f, v)| v / mu - f * sv / (mu * mu))
                .collect()
        };
        let dd = delta_k(
            &dv,
            n,
            l,
            &PkOptions {
                is_delta: true,
                ..*opt
            },
            &fft,
        )
        .unwrap();
        let vol = l.powi(3);
        let q: Vec<f64> = d
            .iter()
            .zip(&dd)
            .map(|(a, b)| 2.0 * (a * b.conj()).re / vol)
            .collect();
        bin(&q, n, l).p
    }

    /// `<VJP(pbar), v> = <pbar, JVP(v)>` to rounding, for every option and
    /// even and odd sizes.
    #[test]
    fn vjp_dot_product_test() {
        for n in [8usize, 9, 12] {
            let l = 50.0;
            for (o, opt) in opts().iter().enumerate() {
                let f = field(n, 1 + n as u64);
                let mut s = 77 + o as u64;
                let v: Vec<f64> = (0..f.len()).map(|_| lcg(&mut s) - 0.5).collect();
                let ps = power_spectrum(&f, n, l, opt).unwrap();
                let pbar: Vec<f64> = (0..ps.p.len()).map(|_| lcg(&mut s) - 0.5).collect();
                let g = power_spectrum_vjp(&f, n, l, opt, &pbar).unwrap();
                let lhs: f64 = g.iter().zip(&v).map(|(a, b)| a * b).sum();
                let jv = jvp(&f, &v, n, l, opt);
                let rhs: f64 = pbar.iter().zip(&jv).map(|(a, b)| a * b).sum();
                assert!(
                    (lhs - rhs).abs() <= 1e-10 * lhs.abs().max(rhs.abs()),
                    "n {n} opt {o}: {lhs} {rhs}"
                );
            }
        }
    }

    /// Against central finite differences of a log-P loss (P is quadratic
    /// in delta; the mean normalisation makes it rational in the field).
    #[test]
    fn vjp_matches_finite_differences() {
        let (n, l) = (10usize, 80.0);
        for opt in opts() {
            let f = field(n, 5);
            let target: Vec<f64> = power_spectrum(&f, n, l, &opt)
                .unwrap()
                .p
                .iter()
                .map(|p| 1.3 * p)
                .collect();
            let loss = |f: &[f64]| -> f64 {
                let p = power_spectrum(f, n, l, &opt).unwrap().p;
                p.iter()
                    .zip(&target)
                    .map(|(p, t)| (p.ln() - t.ln()).powi(2))
                    .sum()
            };
            let p = power_spectrum(&f, n, l, &opt).unwrap().p;
            let pbar: Vec<f64> = p
                .iter()
                .zip(&target)
                .map(|(p, t)| 2.0 * (p.ln() - t.ln()) / p)
                .collect();
            let g = power_spectrum_vjp(&f, n, l, &opt, &pbar).unwrap();
            let mut s = 3;
            for _ in 0..3 {
                let v: Vec<f64> = (0..f.len()).map(|_| lcg(&mut s) - 0.5).collect();
                let h = 1e-5;
                let fp: Vec<f64> = f.iter().zip(&v).map(|(a, b)| a + h * b).collect();
                let fm: Vec<f64> = f.iter().zip(&v).map(|(a, b)| a - h * b).collect();
                let fd = (loss(&fp) - loss(&fm)) / (2.0 * h);
                let ad: f64 = g.iter().zip(&v).map(|(a, b)| a * b).sum();
                assert!(
                    (fd - ad).abs() < 1e-6 * ad.abs().max(1e-3),
                    "{opt:?}: fd {fd} adjoint {ad}"
                );
            }
        }
        // wrong cotangent length is an error
        let f = field(n, 5);
        assert!(power_spectrum_vjp(&f, n, l, &PkOptions::default(), &[1.0]).is_err());
    }
}
