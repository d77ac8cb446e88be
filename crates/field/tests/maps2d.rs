//! Validation of the 2-D random fields, adjoints and C_ell estimators.

use cosmodiff_field::cl2::{cl_auto, cl_cross, EllBins};
use cosmodiff_field::grf2::{white_noise, Grf2, LogNormal2};
use cosmodiff_field::tomo2::{FieldKind, TomoField};
use cosmodiff_field::{ClMatrixTable, ClTable, Fft2, Grid2};
use rand::SeedableRng;

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn table(amp: f64) -> ClTable {
    let ell: Vec<f64> = (0..200).map(|i| 10.0 * 1.04f64.powi(i)).collect();
    let cl = ell
        .iter()
        .map(|l| amp * (l / 1000.0f64).powf(-1.2) * (-(l / 6000.0f64).powi(2)).exp())
        .collect();
    ClTable::new(ell, cl).unwrap()
}

/// Expected binned C_ell of the pixelised field: the bin average of C(|ell_k|).
fn expected_binned(grid: &Grid2, t: &ClTable, bins: &EllBins) -> Vec<f64> {
    let fake: Vec<f64> = vec![0.0; grid.npix()];
    let est = cl_auto(grid, &Fft2::new(grid.n), &fake, bins, None).unwrap();
    let mut sum = vec![0.0; bins.nbins()];
    for (k, l) in grid.ell_abs().into_iter().enumerate() {
        if k == 0 {
            continue;
        }
        if let Some(i) = (0..bins.nbins()).find(|&i| l >= bins.edges[i] && l < bins.edges[i + 1]) {
            sum[i] += t.eval(l);
        }
    }
    sum.iter()
        .zip(&est.n_modes)
        .map(|(s, &m)| s / m.max(1) as f64)
        .collect()
}

#[test]
fn grf_operator_dot_product_and_self_adjoint() {
    for n in [15usize, 16] {
        let grid = Grid2::new(n, 2.0).unwrap();
        let g = Grf2::from_cl(grid, &table(1e-9)).unwrap();
        let x = white_noise(grid.npix(), 1);
        let y = white_noise(grid.npix(), 2);
        let ax = g.map_from_white(&x).unwrap();
        let aty = g.vjp_white(&y).unwrap();
        let (l, r) = (dot(&ax, &y), dot(&x, &aty));
        assert!(
            (l - r).abs() <= 1e-12 * l.abs().max(r.abs()),
            "n={n} {l} {r}"
        );
        // Finite-difference check of the VJP: d/de <y, f(x + e v)> = <A^T y, v>.
        let v = white_noise(grid.npix(), 9);
        let f = |e: f64| {
            dot(
                &g.map_from_white(&x.iter().zip(&v).map(|(a, b)| a + e * b).collect::<Vec<_>>())
                    .unwrap(),
                &y,
            )
        };
        let fd = (f(1e-3) - f(-1e-3)) / 2e-3;
        let an = dot(&aty, &v);
        assert!(
            (fd - an).abs() < 1e-9 * an.abs().max(1e-12),
            "n={n} fd {fd} vjp {an}"
        );
        // Gaussian smoothing is self-adjoint too.
        let fft = Fft2::new(n);
        let sx = cosmodiff_field::cl2::smooth_gaussian(&grid, &fft, &x, 3.0).unwrap();
        let sy = cosmodiff_field::cl2::smooth_gaussian(&grid, &fft, &y, 3.0).unwrap();
        let (l, r) = (dot(&sx, &y), dot(&x, &sy));
        assert!(
            (l - r).abs() <= 1e-12 * l.abs().max(r.abs()),
            "smoothing n={n} {l} {r}"
        );
    }
}

#[test]
fn grf_vjp_table_finite_difference() {
    let grid = Grid2::new(16, 2.0).unwrap();
    let t = table(1e-9);
    let g = Grf2::from_cl(grid, &t).unwrap();
    let w = white_noise(grid.npix(), 3);
    let cot = white_noise(grid.npix(), 4);
    let grad = g.vjp_table(&w, &cot).unwrap();
    let mut checked = 0;
    for i in (0..t.cl().len()).step_by(7) {
        if grad[i] == 0.0 {
            continue;
        }
        let h = 1e-4 * t.cl()[i];
        let f = |d: f64| {
            let mut c = t.cl().to_vec();
            c[i] += d;
            let tt = ClTable::new(t.ell().to_vec(), c).unwrap();
            dot(
                &Grf2::from_cl(grid, &tt)
                    .unwrap()
                    .map_from_white(&w)
                    .unwrap(),
                &cot,
            )
        };
        let fd = (f(h) - f(-h)) / (2.0 * h);
        assert!(
            (fd - grad[i]).abs() <= 1e-6 * grad[i].abs().max(1e-3 * fd.abs()),
            "i={i} fd={fd} vjp={}",
            grad[i]
        );
        checked += 1;
    }
    assert!(checked > 5);
}

#[test]
fn lognormal_vjp_white_finite_difference_and_dot() {
    let grid = Grid2::new(16, 2.0).unwrap();
    let ln = LogNormal2::from_cl(grid, &table(1e-9), 0.05).unwrap();
    let w = white_noise(grid.npix(), 5);
    let cot = white_noise(grid.npix(), 6);
    let v = white_noise(grid.npix(), 7);
    let grad = ln.vjp_white(&w, &cot).unwrap();
    let f = |e: f64| {
        let ww: Vec<f64> = w.iter().zip(&v).map(|(a, b)| a + e * b).collect();
        dot(&ln.map_from_white(&ww).unwrap(), &cot)
    };
    let h = 1e-5;
    let fd = (f(h) - f(-h)) / (2.0 * h);
    let an = dot(&grad, &v);
    assert!((fd - an).abs() < 1e-7 * an.abs(), "fd {fd} vjp {an}");
}

fn check_mean_cl(maps: impl Fn(u64) -> Vec<f64>, grid: &Grid2, t: &ClTable, nsim: usize) {
    let fft = Fft2::new(grid.n);
    let bins = EllBins::linear(0.5 * grid.ell_fundamental(), grid.ell_nyquist(), 8).unwrap();
    let expect = expected_binned(grid, t, &bins);
    let nb = bins.nbins();
    let (mut s1, mut s2) = (vec![0.0; nb], vec![0.0; nb]);
    for i in 0..nsim {
        let m = maps(1000 + i as u64);
        let c = cl_auto(grid, &fft, &m, &bins, None).unwrap();
        for b in 0..nb {
            s1[b] += c.cl[b];
            s2[b] += c.cl[b] * c.cl[b];
        }
    }
    for b in 0..nb {
        let mean = s1[b] / nsim as f64;
        let var = s2[b] / nsim as f64 - mean * mean;
        let se = (var / nsim as f64).sqrt();
        assert!(
            (mean - expect[b]).abs() < 3.0 * se,
            "bin {b}: mean {mean:.4e} expect {:.4e} se {se:.3e}",
            expect[b]
        );
    }
}

#[test]
fn gaussian_mean_cl_of_200_maps_within_3_sigma() {
    let grid = Grid2::new(32, 2.0).unwrap();
    let t = table(1e-9);
    let g = Grf2::from_cl(grid, &t).unwrap();
    check_mean_cl(|s| g.sample(s), &grid, &t, 200);
}

#[test]
fn lognormal_mean_cl_and_variance_of_200_maps() {
    let grid = Grid2::new(32, 2.0).unwrap();
    let t = table(1e-9);
    let ln = LogNormal2::from_cl(grid, &t, 0.03).unwrap();
    assert_eq!(ln.clipped(), 0);
    check_mean_cl(|s| ln.sample(s), &grid, &t, 200);
    // One-point variance: the model variance equals the target xi(0) exactly,
    // and the sample variance of 200 maps agrees within 3 standard errors.
    let target = Grf2::from_cl(grid, &t).unwrap().pixel_variance();
    assert!(ln.mean_variance() < 0.01 * target);
    assert!(
        (ln.variance() - ln.mean_variance() - target).abs() < 1e-10 * target,
        "{} {}",
        ln.variance(),
        target
    );
    let vs: Vec<f64> = (0..200)
        .map(|s| {
            let m = ln.sample(5000 + s);
            let mu = m.iter().sum::<f64>() / m.len() as f64;
            m.iter().map(|x| (x - mu).powi(2)).sum::<f64>() / m.len() as f64
        })
        .collect();
    let mean = vs.iter().sum::<f64>() / 200.0;
    let sd = (vs.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 199.0).sqrt();
    assert!(
        (mean - target).abs() < 3.0 * sd / (200f64).sqrt(),
        "var {mean} target {target}"
    );
    // Skewness is positive (log-normal).
    let m = ln.sample(9);
    let sk: f64 = m.iter().map(|x| x.powi(3)).sum::<f64>() / m.len() as f64;
    assert!(sk > 0.0);
}

fn tomo_table() -> ClMatrixTable {
    let t = table(1e-9);
    let ell = t.ell().to_vec();
    let c = t.cl();
    // Three bins: C_ij = a_i a_j r^{|i-j|} C with correlation 0.8 per step.
    let a = [0.6, 1.0, 1.4];
    let mut rows = vec![];
    for i in 0..3 {
        for j in i..3 {
            rows.push(
                c.iter()
                    .map(|x| a[i] * a[j] * 0.8f64.powi((j - i) as i32) * x)
                    .collect(),
            );
        }
    }
    ClMatrixTable::new(ell, rows).unwrap()
}

#[test]
fn tomographic_cross_spectra_match() {
    let grid = Grid2::new(32, 2.0).unwrap();
    let fft = Fft2::new(grid.n);
    let cls = tomo_table();
    for kind in [
        FieldKind::Gaussian,
        FieldKind::LogNormal {
            shifts: vec![0.03, 0.04, 0.05],
        },
    ] {
        let tf = TomoField::new(grid, &cls, kind.clone()).unwrap();
        assert!(
            tf.clipped_fraction() < 1e-4,
            "{kind:?} clipped {} ({:.2e})",
            tf.clipped(),
            tf.clipped_fraction()
        );
        eprintln!(
            "{kind:?}: clipped {} modes, fraction {:.2e}",
            tf.clipped(),
            tf.clipped_fraction()
        );
        let bins = EllBins::linear(0.5 * grid.ell_fundamental(), grid.ell_nyquist(), 6).unwrap();
        let nsim = 200;
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let pairs = [(0usize, 0usize), (0, 1), (0, 2), (1, 2), (2, 2)];
        let mut acc = vec![vec![(0.0, 0.0); bins.nbins()]; pairs.len()];
        for _ in 0..nsim {
            let m = tf.sample(&mut rng);
            for (p, &(i, j)) in pairs.iter().enumerate() {
                let c = cl_cross(&grid, &fft, &m[i], &m[j], &bins, None).unwrap();
                for b in 0..bins.nbins() {
                    acc[p][b].0 += c.cl[b];
                    acc[p][b].1 += c.cl[b] * c.cl[b];
                }
            }
        }
        for (p, &(i, j)) in pairs.iter().enumerate() {
            let expect = expected_binned(&grid, cls.pair(i, j), &bins);
            for b in 0..bins.nbins() {
                let mean = acc[p][b].0 / nsim as f64;
                let se = ((acc[p][b].1 / nsim as f64 - mean * mean) / nsim as f64).sqrt();
                assert!(
                    (mean - expect[b]).abs() < 3.5 * se,
                    "{kind:?} ({i},{j}) bin {b}: {mean:.4e} vs {:.4e} se {se:.2e}",
                    expect[b]
                );
            }
        }
    }
}

#[test]
fn tomographic_rejects_indefinite_and_bad_shift() {
    let t = table(1e-9);
    let ell = t.ell().to_vec();
    let c = t.cl().to_vec();
    let bad = ClMatrixTable::new(
        ell.clone(),
        vec![c.clone(), c.iter().map(|x| 2.0 * x).collect(), c.clone()],
    )
    .unwrap();
    let grid = Grid2::new(16, 2.0).unwrap();
    let e = TomoField::new(grid, &bad, FieldKind::Gaussian).unwrap_err();
    assert!(
        matches!(e, cosmodiff_field::FieldError::NotPositiveDefinite { .. }),
        "{e}"
    );
    let ok = tomo_table();
    assert!(TomoField::new(
        grid,
        &ok,
        FieldKind::LogNormal {
            shifts: vec![0.03, -1.0, 0.05]
        }
    )
    .is_err());
    assert!(TomoField::new(grid, &ok, FieldKind::LogNormal { shifts: vec![0.03] }).is_err());
    // A shift far too small for the variance fails with a typed error, not a panic.
    let big = ClMatrixTable::new(ell, vec![c.iter().map(|x| 1e3 * x).collect()]).unwrap();
    assert!(TomoField::new(grid, &big, FieldKind::LogNormal { shifts: vec![1e-4] }).is_err());
}

#[test]
fn masked_white_noise_spectrum_is_unbiased() {
    // For white noise the f_sky-corrected pseudo-C_ell is unbiased.
    let grid = Grid2::new(32, 2.0).unwrap();
    let fft = Fft2::new(32);
    let mask: Vec<f64> = (0..grid.npix())
        .map(|i| if (i % 32) < 20 { 1.0 } else { 0.0 })
        .collect();
    let bins = EllBins::linear(0.5 * grid.ell_fundamental(), grid.ell_nyquist(), 4).unwrap();
    let mut m = [0.0; 4];
    for s in 0..50 {
        let w = white_noise(grid.npix(), s);
        let c = cl_auto(&grid, &fft, &w, &bins, Some(&mask)).unwrap();
        for b in 0..4 {
            m[b] += c.cl[b] / 50.0;
        }
    }
    let expect = grid.pixel_area_sr();
    for b in 0..4 {
        assert!(
            (m[b] / expect - 1.0).abs() < 0.05,
            "bin {b} {}",
            m[b] / expect
        );
    }
    // Masked pixels may hold NaN (same spectrum); unmasked NaN and mask
    // values outside [0, 1] are refused.
    let w = white_noise(grid.npix(), 7);
    let mut holes = w.clone();
    holes[25] = f64::NAN;
    let c = cl_auto(&grid, &fft, &w, &bins, Some(&mask)).unwrap();
    assert_eq!(cl_auto(&grid, &fft, &holes, &bins, Some(&mask)).unwrap(), c);
    holes[3] = f64::NAN;
    let e = cl_auto(&grid, &fft, &holes, &bins, Some(&mask)).unwrap_err();
    assert!(e.to_string().contains("index 3"), "{e}");
    let mut heavy = mask.clone();
    heavy[0] = 5.0;
    let e = cl_auto(&grid, &fft, &w, &bins, Some(&heavy)).unwrap_err();
    assert!(e.to_string().contains("[0, 1]"), "{e}");
}

#[test]
fn tomographic_vjp_white() {
    let grid = Grid2::new(16, 2.0).unwrap();
    let cls = tomo_table();
    let np = grid.npix();
    let w: Vec<Vec<f64>> = (0..3).map(|i| white_noise(np, 40 + i)).collect();
    let c: Vec<Vec<f64>> = (0..3).map(|i| white_noise(np, 50 + i)).collect();
    let v: Vec<Vec<f64>> = (0..3).map(|i| white_noise(np, 60 + i)).collect();
    let dotm =
        |a: &[Vec<f64>], b: &[Vec<f64>]| a.iter().zip(b).map(|(x, y)| dot(x, y)).sum::<f64>();
    // Gaussian: linear, dot-product test.
    let tf = TomoField::new(grid, &cls, FieldKind::Gaussian).unwrap();
    let (l, r) = (
        dotm(&tf.maps_from_white(&w).unwrap(), &c),
        dotm(&w, &tf.vjp_white(&w, &c).unwrap()),
    );
    assert!((l - r).abs() < 1e-12 * l.abs().max(r.abs()), "{l} {r}");
    // Log-normal: finite differences.
    let tf = TomoField::new(
        grid,
        &cls,
        FieldKind::LogNormal {
            shifts: vec![0.03, 0.04, 0.05],
        },
    )
    .unwrap();
    let an = dotm(&tf.vjp_white(&w, &c).unwrap(), &v);
    let f = |e: f64| {
        let ww: Vec<Vec<f64>> = w
            .iter()
            .zip(&v)
            .map(|(a, b)| a.iter().zip(b).map(|(x, y)| x + e * y).collect())
            .collect();
        dotm(&tf.maps_from_white(&ww).unwrap(), &c)
    };
    let fd = (f(1e-5) - f(-1e-5)) / 2e-5;
    assert!((fd - an).abs() < 1e-7 * an.abs(), "{fd} {an}");
}

#[test]
fn lognormal_vjp_table_finite_difference() {
    for n in [15usize, 16] {
        let grid = Grid2::new(n, 2.0).unwrap();
        let t = table(1e-9);
        let shift = 0.03;
        let ln = LogNormal2::from_cl(grid, &t, shift).unwrap();
        assert_eq!(ln.clipped(), 0);
        let w = white_noise(grid.npix(), 21);
        let cot = white_noise(grid.npix(), 22);
        let grad = ln.vjp_table(&w, &cot).unwrap();
        let mut checked = 0;
        for i in (0..t.cl().len()).step_by(9) {
            if grad[i] == 0.0 {
                continue;
            }
            let h = 1e-4 * t.cl()[i];
            let f = |d: f64| {
                let mut c = t.cl().to_vec();
                c[i] += d;
                let tt = ClTable::new(t.ell().to_vec(), c).unwrap();
                dot(
                    &LogNormal2::from_cl(grid, &tt, shift)
                        .unwrap()
                        .map_from_white(&w)
                        .unwrap(),
                    &cot,
                )
            };
            let fd = (f(h) - f(-h)) / (2.0 * h);
            let scale = grad.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            assert!(
                (fd - grad[i]).abs() < 1e-6 * grad[i].abs().max(1e-3 * scale),
                "n={n} i={i}: fd {fd:e} vjp {:e}",
                grad[i]
            );
            checked += 1;
        }
        assert!(checked > 5);
    }
}
