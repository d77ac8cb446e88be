//! Validation of the lensing operators, Wiener filter and simulations.

use cosmodiff_field::grf2::{white_noise, Grf2};
use cosmodiff_field::linalg::{cholesky_psd, cholesky_solve};
use cosmodiff_field::tomo2::FieldKind;
use cosmodiff_field::{ClMatrixTable, ClTable, Grid2, C64};
use cosmodiff_lensing::catalog::{bin_catalog, parse_catalog_csv, AngleUnit};
use cosmodiff_lensing::metrics::{one_point_pdf, peak_counts, pearson, residual_cl, rmse};
use cosmodiff_lensing::noise::{add_shape_noise, pixel_noise_std};
use cosmodiff_lensing::wiener::pixel_std;
use cosmodiff_lensing::*;
use rand::SeedableRng;

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
fn zero_mean(mut v: Vec<f64>) -> Vec<f64> {
    let m = v.iter().sum::<f64>() / v.len() as f64;
    v.iter_mut().for_each(|x| *x -= m);
    v
}
fn maxabs(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

fn table() -> ClTable {
    let ell: Vec<f64> = (0..200).map(|i| 10.0 * 1.04f64.powi(i)).collect();
    let cl = ell
        .iter()
        .map(|l| 1e-9 * (l / 1000.0f64).powf(-1.2) * (-(l / 8000.0f64).powi(2)).exp())
        .collect();
    ClTable::new(ell, cl).unwrap()
}

#[test]
fn shear_operator_dot_product() {
    for n in [15usize, 16] {
        let op = ShearOp::new(Grid2::new(n, 2.0).unwrap());
        let np = n * n;
        let (ke, kb) = (white_noise(np, 1), white_noise(np, 2));
        let (g1, g2) = (white_noise(np, 3), white_noise(np, 4));
        let (p1, p2) = op.forward(&ke, Some(&kb)).unwrap();
        let (a1, a2) = op.adjoint(&g1, &g2).unwrap();
        let l = dot(&p1, &g1) + dot(&p2, &g2);
        let r = dot(&ke, &a1) + dot(&kb, &a2);
        assert!(
            (l - r).abs() <= 1e-12 * l.abs().max(r.abs()),
            "n={n}: {l} vs {r}"
        );
        // E-only operator and its adjoint.
        let (p1, p2) = op.forward(&ke, None).unwrap();
        let ae = op.adjoint_e(&g1, &g2).unwrap();
        let (l, r) = (dot(&p1, &g1) + dot(&p2, &g2), dot(&ke, &ae));
        assert!(
            (l - r).abs() <= 1e-12 * l.abs().max(r.abs()),
            "E-only n={n}: {l} vs {r}"
        );
    }
}

#[test]
fn shear_adjoint_finite_difference() {
    // VJP of L(kappa) = <c, P kappa> is P^T c; check against central differences.
    let n = 16;
    let op = ShearOp::new(Grid2::new(n, 2.0).unwrap());
    let np = n * n;
    let (c1, c2) = (white_noise(np, 5), white_noise(np, 6));
    let k0 = white_noise(np, 7);
    let v = white_noise(np, 8);
    let loss = |e: f64| {
        let k: Vec<f64> = k0.iter().zip(&v).map(|(a, b)| a + e * b).collect();
        let (g1, g2) = op.forward(&k, None).unwrap();
        dot(&g1, &c1) + dot(&g2, &c2)
    };
    let h = 1e-3;
    let fd = (loss(h) - loss(-h)) / (2.0 * h);
    let an = dot(&op.adjoint_e(&c1, &c2).unwrap(), &v);
    assert!((fd - an).abs() < 1e-10 * an.abs().max(1.0), "{fd} {an}");
}

#[test]
fn kaiser_squires_inverts_p_on_odd_and_even_grids() {
    for n in [15usize, 16, 17, 32] {
        let op = ShearOp::new(Grid2::new(n, 1.0).unwrap());
        let np = n * n;
        let ke = zero_mean(white_noise(np, 10 + n as u64));
        let kb = zero_mean(white_noise(np, 20 + n as u64));
        let (g1, g2) = op.forward(&ke, Some(&kb)).unwrap();
        let (re, rb) = op.kaiser_squires(&g1, &g2).unwrap();
        let err = re
            .iter()
            .zip(&ke)
            .chain(rb.iter().zip(&kb))
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(err < 1e-12 * maxabs(&ke), "n={n}: KS(P k) - k = {err:e}");
        // Pure E field: no B leakage, and the shear is exactly real.
        let (g1, g2) = op.forward(&ke, None).unwrap();
        let (_, rb) = op.kaiser_squires(&g1, &g2).unwrap();
        assert!(
            maxabs(&rb) < 1e-12 * maxabs(&ke),
            "n={n} B leak {}",
            maxabs(&rb)
        );
        // gamma_1 = IFFT(D1 kappa_hat) alone has no imaginary part (Hermitian kernel).
        let mut b: Vec<C64> = ke.iter().map(|&x| C64::new(x, 0.0)).collect();
        op.fft().forward_inplace(&mut b).unwrap();
        for (v, p) in b.iter_mut().zip(op.kernel()) {
            *v *= p.im; // D2 alone
        }
        op.fft().inverse_inplace(&mut b).unwrap();
        let im = b.iter().fold(0.0f64, |m, c| m.max(c.im.abs()));
        assert!(im < 1e-13 * maxabs(&ke), "n={n}: D2 not Hermitian ({im:e})");
    }
    // a NaN shear is an error, not a map of NaN
    let op = ShearOp::new(Grid2::new(8, 1.0).unwrap());
    let mut g1 = vec![0.0; 64];
    g1[9] = f64::NAN;
    let e = op.kaiser_squires(&g1, &[0.0; 64]).unwrap_err().to_string();
    assert!(e.contains("pixel 9"), "{e}");
}

#[test]
fn naive_nyquist_kernel_is_not_hermitian_on_even_grids() {
    // Documents why the treatment is needed: the naive D2 = 2 lx ly / l^2 with
    // numpy frequencies breaks k -> -k symmetry on the Nyquist lines.
    let n = 16;
    let g = Grid2::new(n, 1.0).unwrap();
    let d2 = |idx: usize| {
        let (lx, ly) = (g.freq_index(idx % n) as f64, g.freq_index(idx / n) as f64);
        if lx == 0.0 && ly == 0.0 {
            0.0
        } else {
            2.0 * lx * ly / (lx * lx + ly * ly)
        }
    };
    let idx = 3 * n + n / 2; // (iy = 3, ix = Nyquist)
    assert!((d2(idx) - d2(g.neg_index(idx))).abs() > 0.1);
}

/// Dense matrix of a linear map R^m -> R^k given column by column.
fn dense(m: usize, f: impl Fn(&[f64]) -> Vec<f64>) -> Vec<Vec<f64>> {
    (0..m)
        .map(|j| {
            let mut e = vec![0.0; m];
            e[j] = 1.0;
            f(&e)
        })
        .collect()
}

struct DenseWiener {
    mean: Vec<f64>,
    var: Vec<f64>,
}

/// Dense reference: kappa = S^{1/2} (I + S^{1/2} P^T N^-1 P S^{1/2})^{-1} S^{1/2} P^T N^-1 d.
fn dense_wiener(w: &Wiener, g1: &[f64], g2: &[f64]) -> DenseWiener {
    let np = w.grid().npix();
    let sh = dense(np, |x| w.sqrt_prior(x).unwrap()); // columns
    let pcols = dense(np, |x| {
        let (a, b) = w.op().forward(x, None).unwrap();
        [a, b].concat()
    });
    let ninv = [w.inverse_variance(), w.inverse_variance()].concat();
    // B = P S^{1/2} (2np x np), column j = P * sh[j]
    let bcols: Vec<Vec<f64>> = (0..np)
        .map(|j| {
            (0..2 * np)
                .map(|r| (0..np).map(|k| pcols[k][r] * sh[j][k]).sum())
                .collect()
        })
        .collect();
    let mut a = vec![0.0; np * np];
    for i in 0..np {
        for j in 0..np {
            a[i * np + j] = (0..2 * np)
                .map(|r| bcols[i][r] * ninv[r] * bcols[j][r])
                .sum::<f64>()
                + if i == j { 1.0 } else { 0.0 };
        }
    }
    let l = cholesky_psd(&a, np, 1e-14).unwrap();
    let d = [g1, g2].concat();
    let rhs: Vec<f64> = (0..np)
        .map(|i| (0..2 * np).map(|r| bcols[i][r] * ninv[r] * d[r]).sum())
        .collect();
    let xi = cholesky_solve(&l, np, &rhs);
    let mean = (0..np)
        .map(|p| (0..np).map(|j| sh[j][p] * xi[j]).sum())
        .collect();
    // Posterior covariance diag: Sh A^-1 Sh; column j of A^-1 Sh = solve(Sh[:, j]).
    let mut var = vec![0.0; np];
    for j in 0..np {
        let col: Vec<f64> = (0..np).map(|p| sh[p][j]).collect(); // row j of Sh = column j (symmetric)
        let z = cholesky_solve(&l, np, &col);
        var[j] = (0..np).map(|k| sh[k][j] * z[k]).sum();
    }
    DenseWiener { mean, var }
}

/// 16x16 (or n) masked map with inhomogeneous noise.
fn masked_problem(n: usize, seed: u64) -> (Wiener, Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
    weighted_problem(n, seed, 1.0)
}

/// [`masked_problem`] with the mask value `weight` (an inverse-variance
/// weight) instead of 1 in every seventh observed pixel.
fn weighted_problem(
    n: usize,
    seed: u64,
    weight: f64,
) -> (Wiener, Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
    let grid = Grid2::new(n, 2.0).unwrap();
    let t = table();
    let truth = Grf2::from_cl(grid, &t).unwrap().sample(seed);
    let op = ShearOp::new(grid);
    let (g1, g2) = op.forward(&truth, None).unwrap();
    let base = pixel_noise_std(&grid, 0.26, 30.0).unwrap();
    let noise: Vec<f64> = (0..n * n)
        .map(|i| base * (1.0 + 0.8 * ((i % n) as f64 / n as f64)))
        .collect();
    let mask: Vec<f64> = (0..n * n)
        .map(|i| {
            let (y, x) = (i / n, i % n);
            if (x >= n / 4 && x < n / 2 && y >= n / 3 && y < 2 * n / 3) || (x + y) % 11 == 0 {
                0.0
            } else if (x * y) % 7 == 3 {
                weight
            } else {
                1.0
            }
        })
        .collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed + 1);
    let (e1, e2) = add_shape_noise(&g1, &g2, &noise, &mut rng).unwrap();
    let w = Wiener::from_cl(grid, &t, &noise, Some(&mask)).unwrap();
    (w, e1, e2, truth, mask)
}

#[test]
fn cg_wiener_equals_dense_solution_16x16_masked() {
    let (w, e1, e2, _, _) = masked_problem(16, 3);
    let cg = w.cg(&e1, &e2, 1e-13, 2000).unwrap();
    let dn = dense_wiener(&w, &e1, &e2);
    let err = cg
        .kappa
        .iter()
        .zip(&dn.mean)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(
        err < 1e-8 * maxabs(&dn.mean).max(1e-300),
        "max err {err:e} (scale {:e})",
        maxabs(&dn.mean)
    );
    assert!(err < 1e-8, "absolute {err:e}");
    // Independent dense form on the observed pixels only:
    // kappa = S P_o^T (P_o S P_o^T + N_o)^-1 d_o.
    let np = 256;
    let scols = dense(np, |x| w.sqrt_prior(&w.sqrt_prior(x).unwrap()).unwrap()); // S, columns
    let pcols = dense(np, |x| {
        let (a, b) = w.op().forward(x, None).unwrap();
        [a, b].concat()
    });
    let iv = [w.inverse_variance(), w.inverse_variance()].concat();
    let obs: Vec<usize> = (0..2 * np).filter(|&r| iv[r] > 0.0).collect();
    let no = obs.len();
    // PS = P S (2np x np): (PS)[r][j] = sum_k P[r][k] S[k][j]
    let ps: Vec<Vec<f64>> = obs
        .iter()
        .map(|&r| {
            (0..np)
                .map(|j| (0..np).map(|k| pcols[k][r] * scols[j][k]).sum())
                .collect()
        })
        .collect();
    let mut m = vec![0.0; no * no];
    for (a, &ra) in obs.iter().enumerate() {
        for (b, &rb) in obs.iter().enumerate() {
            m[a * no + b] = (0..np).map(|k| ps[a][k] * pcols[k][rb]).sum::<f64>()
                + if a == b { 1.0 / iv[ra] } else { 0.0 };
        }
    }
    let l = cholesky_psd(&m, no, 1e-14).unwrap();
    let d = [e1.clone(), e2.clone()].concat();
    let y = cholesky_solve(&l, no, &obs.iter().map(|&r| d[r]).collect::<Vec<_>>());
    let k2: Vec<f64> = (0..np)
        .map(|j| (0..no).map(|a| ps[a][j] * y[a]).sum())
        .collect();
    let err2 = cg
        .kappa
        .iter()
        .zip(&k2)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(
        err2 < 1e-8 * maxabs(&k2),
        "standard-form dense: max err {err2:e} (scale {:e})",
        maxabs(&k2)
    );
    // System operator is symmetric (dot-product test).
    let (x, y) = (white_noise(256, 1), white_noise(256, 2));
    let (l, r) = (
        dot(&w.apply_system(&x).unwrap(), &y),
        dot(&x, &w.apply_system(&y).unwrap()),
    );
    assert!((l - r).abs() < 1e-12 * l.abs());
    // sqrt-prior operator dot-product test.
    let (l, r) = (
        dot(&w.sqrt_prior(&x).unwrap(), &y),
        dot(&x, &w.sqrt_prior(&y).unwrap()),
    );
    assert!((l - r).abs() < 1e-12 * l.abs().max(r.abs()));
}

/// Also with fractional mask values (inverse-variance weights), which both
/// solvers must read the same way.
#[test]
fn messenger_agrees_with_cg() {
    for weight in [1.0, 0.3] {
        messenger_agrees_with_cg_for(weight);
    }
}

fn messenger_agrees_with_cg_for(weight: f64) {
    let (w, e1, e2, _, _) = weighted_problem(32, 5, weight);
    let cg = w.cg(&e1, &e2, 1e-12, 5000).unwrap();
    let m = w
        .messenger(
            &e1,
            &e2,
            &MessengerOpts {
                tol: 1e-9,
                ..Default::default()
            },
        )
        .unwrap();
    let rms_cg = (dot(&cg.kappa, &cg.kappa) / cg.kappa.len() as f64).sqrt();
    let d = rmse(&m.kappa, &cg.kappa, None).unwrap();
    eprintln!(
        "weight {weight}: messenger {} iterations, rms diff / rms = {:.2e}; CG {} iterations",
        m.iterations,
        d / rms_cg,
        cg.iterations
    );
    assert!(
        d / rms_cg < 1e-4,
        "relative rms difference {:.3e}",
        d / rms_cg
    );
}

#[test]
fn wiener_sample_variance_matches_posterior() {
    let (w, e1, e2, _, _) = masked_problem(16, 7);
    let cg = w.cg(&e1, &e2, 1e-12, 2000).unwrap();
    let dn = dense_wiener(&w, &e1, &e2);
    let ns = 600;
    let s = w.samples(&cg.kappa, ns, 42, 1e-10).unwrap();
    let sd = pixel_std(&s).unwrap();
    let ratio: f64 = sd.iter().zip(&dn.var).map(|(s, v)| s * s / v).sum::<f64>() / sd.len() as f64;
    eprintln!("sample variance / posterior variance (mean over pixels) = {ratio:.4}");
    assert!((ratio - 1.0).abs() < 0.05, "ratio {ratio}");
    // The sample mean is the Wiener map within sampling error.
    let post_sd: f64 = (dn.var.iter().sum::<f64>() / dn.var.len() as f64).sqrt();
    let mean: Vec<f64> = (0..256)
        .map(|i| s.iter().map(|x| x[i]).sum::<f64>() / ns as f64)
        .collect();
    assert!(rmse(&mean, &cg.kappa, None).unwrap() < 5.0 * post_sd / (ns as f64).sqrt());
}

#[test]
fn wiener_rmse_below_best_smoothed_kaiser_squires() {
    // Realistic noise: n_gal = 30 / arcmin^2, sigma_e = 0.26, 2 arcmin pixels.
    let n = 64;
    let grid = Grid2::new(n, 2.0).unwrap();
    let t = table();
    let op = ShearOp::new(grid);
    let sigma = pixel_noise_std(&grid, 0.26, 30.0).unwrap();
    let noise = vec![sigma; n * n];
    let w = Wiener::from_cl(grid, &t, &noise, None).unwrap();
    let scales = [0.0, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 6.0];
    let mut ks = vec![0.0; scales.len()];
    let mut wf = 0.0;
    let nsim = 4;
    for s in 0..nsim {
        let truth = Grf2::from_cl(grid, &t).unwrap().sample(100 + s);
        let (g1, g2) = op.forward(&truth, None).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(200 + s);
        let (e1, e2) = add_shape_noise(&g1, &g2, &noise, &mut rng).unwrap();
        for (i, &sc) in scales.iter().enumerate() {
            let (ke, _) = op.kaiser_squires_smoothed(&e1, &e2, sc).unwrap();
            ks[i] += rmse(&ke, &truth, None).unwrap() / nsim as f64;
        }
        wf += rmse(&w.cg(&e1, &e2, 1e-8, 1000).unwrap().kappa, &truth, None).unwrap() / nsim as f64;
    }
    let (ib, best) =
        ks.iter().enumerate().fold(
            (0, f64::INFINITY),
            |a, (i, &v)| if v < a.1 { (i, v) } else { a },
        );
    eprintln!(
        "RMSE: KS by smoothing {:?} -> {:?}; best KS {best:.5} at {} arcmin; Wiener {wf:.5}",
        scales, ks, scales[ib]
    );
    assert!(wf < best);
}

#[test]
fn noise_and_simulation() {
    let grid = Grid2::new(32, 2.0).unwrap();
    let s = pixel_noise_std(&grid, 0.26, 30.0).unwrap();
    assert!((s - 0.26 / (120.0f64).sqrt()).abs() < 1e-15);
    assert!(pixel_noise_std(&grid, 0.26, 0.0).is_err());
    let t = table();
    let cls = ClMatrixTable::new(
        t.ell().to_vec(),
        vec![
            t.cl().to_vec(),
            t.cl().iter().map(|c| 1.2 * c).collect(),
            t.cl().iter().map(|c| 1.5 * c).collect(),
        ],
    )
    .unwrap();
    let src = [
        SourceBin {
            sigma_e: 0.26,
            gals_per_arcmin2: 10.0,
        },
        SourceBin {
            sigma_e: 0.3,
            gals_per_arcmin2: 5.0,
        },
    ];
    for kind in [
        FieldKind::Gaussian,
        FieldKind::LogNormal {
            shifts: vec![0.02, 0.03],
        },
    ] {
        let sim = simulate_tomographic(grid, &cls, &src, &kind, 1).unwrap();
        assert_eq!(sim.kappa.shape(), &[2, 32, 32]);
        for b in 0..2 {
            let want = pixel_noise_std(&grid, src[b].sigma_e, src[b].gals_per_arcmin2).unwrap();
            assert_eq!(sim.noise_std[[b, 3, 4]], want);
            let d: Vec<f64> = (0..32 * 32)
                .map(|i| sim.e1[[b, i / 32, i % 32]] - sim.gamma1[[b, i / 32, i % 32]])
                .collect();
            let sd = (dot(&d, &d) / d.len() as f64).sqrt();
            assert!((sd / want - 1.0).abs() < 0.1);
            // KS of the noiseless shear returns kappa minus its mean.
            let op = ShearOp::new(grid);
            let g1: Vec<f64> = sim
                .gamma1
                .index_axis(ndarray::Axis(0), b)
                .iter()
                .copied()
                .collect();
            let g2: Vec<f64> = sim
                .gamma2
                .index_axis(ndarray::Axis(0), b)
                .iter()
                .copied()
                .collect();
            let k: Vec<f64> = sim
                .kappa
                .index_axis(ndarray::Axis(0), b)
                .iter()
                .copied()
                .collect();
            let (ke, _) = op.kaiser_squires(&g1, &g2).unwrap();
            assert!(rmse(&ke, &zero_mean(k.clone()), None).unwrap() < 1e-12);
        }
        // Bins are correlated (r = 1.2/sqrt(1.5) ~ 0.98).
        let a: Vec<f64> = sim
            .kappa
            .index_axis(ndarray::Axis(0), 0)
            .iter()
            .copied()
            .collect();
        let b: Vec<f64> = sim
            .kappa
            .index_axis(ndarray::Axis(0), 1)
            .iter()
            .copied()
            .collect();
        assert!(pearson(&a, &b, None).unwrap() > 0.9);
        // Same seed, same maps.
        let again = simulate_tomographic(grid, &cls, &src, &kind, 1).unwrap();
        assert_eq!(again.e2, sim.e2);
    }
    assert!(simulate_tomographic(grid, &cls, &src[..1], &FieldKind::Gaussian, 1).is_err());
}

#[test]
fn catalogue_binning() {
    let mut text = String::from("# test\nx,y,e1,e2,w\n");
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let ng = 20000;
    for _ in 0..ng {
        use rand::RngExt;
        let x: f64 = rng.random::<f64>() * 0.5; // degrees
        let y: f64 = rng.random::<f64>() * 0.5;
        let n1: f64 = rand_distr::Distribution::sample(&rand_distr::StandardNormal, &mut rng);
        let n2: f64 = rand_distr::Distribution::sample(&rand_distr::StandardNormal, &mut rng);
        text.push_str(&format!(
            "{x},{y},{},{},1.0\n",
            0.05 + 0.26 * n1,
            -0.02 + 0.26 * n2
        ));
    }
    let cat = parse_catalog_csv(&text, AngleUnit::Deg, "mem").unwrap();
    let grid = Grid2::new(10, 3.0).unwrap(); // 30 arcmin = 0.5 deg
    let b = bin_catalog(&cat, &grid, (0.0, 0.0), Some(0.26)).unwrap();
    assert_eq!(b.outside, 0);
    assert_eq!(b.counts.iter().sum::<usize>(), ng);
    let m1 = b.g1.iter().sum::<f64>() / 100.0;
    assert!((m1 - 0.05).abs() < 0.01, "{m1}");
    let p = 55;
    assert!((b.noise_std[p] - 0.26 / (b.counts[p] as f64).sqrt()).abs() < 1e-12);
    // Estimated sigma_e includes the tiny shear: close to 0.26.
    let b2 = bin_catalog(&cat, &grid, (0.0, 0.0), None).unwrap();
    assert!((b2.sigma_e - 0.26).abs() < 0.01);
    // The same catalogue as a FITS binary table.
    let fits = cosmodiff_field::fits::table_to_bytes(
        "CAT",
        &[
            ("x", &cat.x_arcmin),
            ("y", &cat.y_arcmin),
            ("e1", &cat.e1),
            ("e2", &cat.e2),
        ],
    )
    .unwrap();
    let p = std::env::temp_dir().join("cosmodiff_cat_test.fits");
    std::fs::write(&p, fits).unwrap();
    let cf = cosmodiff_lensing::catalog::read_catalog(&p, AngleUnit::Arcmin).unwrap();
    assert_eq!(bin_catalog(&cf, &grid, (0.0, 0.0), Some(0.26)).unwrap(), b);
    assert!(cosmodiff_lensing::catalog::read_catalog(
        &std::env::temp_dir().join("x.dat"),
        AngleUnit::Arcmin
    )
    .is_err());
    // Errors name the line and column.
    let e = parse_catalog_csv("x,y,e1,e2\n1,2,3\n", AngleUnit::Arcmin, "c.csv")
        .unwrap_err()
        .to_string();
    assert!(e.contains("c.csv") && e.contains("line 2"), "{e}");
    let e = parse_catalog_csv("x,y,e1\n1,2,3\n", AngleUnit::Arcmin, "c.csv")
        .unwrap_err()
        .to_string();
    assert!(e.contains("'e2'"), "{e}");
    let e = parse_catalog_csv("x,y,e1,e2\n1,2,abc,3\n", AngleUnit::Arcmin, "c.csv")
        .unwrap_err()
        .to_string();
    assert!(e.contains("'e1'"), "{e}");
}

#[test]
fn metrics_basics() {
    let a = [1.0, 2.0, 3.0, 4.0];
    let b = [1.0, 2.0, 3.0, 8.0];
    assert_eq!(rmse(&a, &b, Some(&[1.0, 1.0, 1.0, 0.0])).unwrap(), 0.0);
    assert_eq!(rmse(&a, &b, None).unwrap(), 2.0);
    assert!((pearson(&a, &a, None).unwrap() - 1.0).abs() < 1e-15);
    // masked pixels may hold NaN; an unmasked NaN is an error, not a NaN
    let c = [1.0, 2.0, 3.0, f64::NAN];
    let mask = [1.0, 1.0, 1.0, 0.0];
    assert_eq!(rmse(&c, &b, Some(&mask)).unwrap(), 0.0);
    assert!((pearson(&c, &a, Some(&mask)).unwrap() - 1.0).abs() < 1e-15);
    let e = rmse(&c, &b, None).unwrap_err().to_string();
    assert!(e.contains("map a") && e.contains("pixel 3"), "{e}");
    assert!(pearson(&a, &c, None)
        .unwrap_err()
        .to_string()
        .contains("map b"));
    let n = 8;
    let mut m = vec![0.0; n * n];
    m[3 * n + 3] = 1.0;
    m[6 * n + 1] = 0.5;
    assert_eq!(
        peak_counts(&m, n, &[0.1, 0.75, 2.0], None).unwrap(),
        vec![1, 1]
    );
    let pdf = one_point_pdf(&a, &[0.0, 2.0, 4.0, 6.0], None).unwrap();
    let total: f64 = pdf.iter().map(|p| p * 2.0).sum();
    assert!((total - 1.0).abs() < 1e-15);
    assert!(rmse(&a, &b[..3], None).is_err());
}

/// The residual of a map and a copy with white noise of std `sigma` added
/// has the flat spectrum `C = sigma^2 A_pix` (the signal cancels exactly),
/// within the Gaussian error of every bin; with a mask, the f_sky
/// correction keeps it unbiased.
#[test]
fn residual_cl_of_added_white_noise_is_flat() {
    let (n, sigma) = (64, 0.01);
    let grid = Grid2::new(n, 2.0).unwrap();
    let signal = Grf2::from_cl(grid, &table()).unwrap().sample(3);
    let noise = white_noise(n * n, 4);
    let a: Vec<f64> = signal
        .iter()
        .zip(&noise)
        .map(|(s, w)| s + sigma * w)
        .collect();
    let bins = cosmodiff_field::cl2::EllBins::default_for(&grid, 8).unwrap();
    let want = sigma * sigma * grid.pixel_area_sr();
    let mask: Vec<f64> = (0..n * n)
        .map(|i| if i % n < 3 * n / 4 { 1.0 } else { 0.0 })
        .collect();
    for m in [None, Some(mask.as_slice())] {
        let r = residual_cl(&grid, &a, &signal, &bins, m).unwrap();
        let err = r.gaussian_error();
        assert_eq!(r.cl.len(), 8);
        for b in 0..8 {
            let z = (r.cl[b] - want) / (want * err[b] / r.cl[b]);
            assert!(
                z.abs() < 4.0,
                "bin {b}: {} vs {want} ({z:.1} sigma)",
                r.cl[b]
            );
        }
    }
    // the same map twice: zero residual
    let z = residual_cl(&grid, &a, &a, &bins, None).unwrap();
    assert!(z.cl.iter().all(|c| *c == 0.0));
    assert!(residual_cl(&grid, &a, &a[1..], &bins, None).is_err());
}

#[test]
fn wiener_rejects_bad_input() {
    let grid = Grid2::new(8, 2.0).unwrap();
    let t = table();
    assert!(Wiener::from_cl(grid, &t, &vec![0.0; 64], None).is_err());
    assert!(Wiener::from_cl(grid, &t, &vec![0.1; 63], None).is_err());
    assert!(Wiener::from_cl(grid, &t, &vec![0.1; 64], Some(&vec![0.0; 64])).is_err());
    let w = Wiener::from_cl(grid, &t, &vec![0.1; 64], None).unwrap();
    let mut g = vec![0.0; 64];
    g[3] = f64::NAN;
    assert!(w.cg(&g, &vec![0.0; 64], 1e-8, 100).is_err());
    // an all-zero prior spectrum would return kappa = 0 whatever the data
    let zero = ClTable::new(vec![10.0, 1e4], vec![0.0, 0.0]).unwrap();
    let e = Wiener::from_cl(grid, &zero, &vec![0.1; 64], None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("zero for every mode"), "{e}");
}
