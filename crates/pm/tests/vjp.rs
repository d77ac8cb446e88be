//! Building-block VJPs against finite differences: PM force and LPT.

use cosmodiff_pm::*;

fn gauss(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed;
    let mut u = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 11) as f64 + 0.5) / ((1u64 << 53) as f64)
    };
    (0..n)
        .map(|_| (-2.0 * u().ln()).sqrt() * (2.0 * std::f64::consts::PI * u()).cos())
        .collect()
}

#[test]
fn force_vjp_matches_finite_differences() {
    for (np, nm, kernel) in [
        (8, 8, GradientKernel::Exact),
        (8, 16, GradientKernel::Fd4),
        (8, 8, GradientKernel::Fd4),
    ] {
        let fs = ForceSolver::new(nm, np, kernel, false);
        let n = np * np * np;
        let h = (nm / np) as f32;
        let r = gauss(3 * n, 1);
        let pos: Vec<[f32; 3]> = (0..n)
            .map(|p| {
                let (i, j, k) = (p / (np * np), (p / np) % np, p % np);
                // displaced, with fractional parts in [0.2, 0.8]: the FD steps
                // below never cross a cell face (CIC kinks)
                let fr = |x: f32| x.floor() + 0.2 + 0.6 * (x - x.floor());
                [
                    fr(i as f32 * h + 0.7 * r[3 * p] as f32),
                    fr(j as f32 * h + 0.7 * r[3 * p + 1] as f32),
                    fr(k as f32 * h + 0.7 * r[3 * p + 2] as f32),
                ]
            })
            .collect();
        let fb = gauss(3 * n, 2);
        let fbar: Vec<[f32; 3]> = fb
            .chunks(3)
            .map(|c| [c[0] as f32, c[1] as f32, c[2] as f32])
            .collect();
        let disp = fs.lattice.displacements(&pos);
        let (_, mut meshes) = fs.forces(&disp);
        let xbar = fs.forces_vjp(&disp, &mut meshes, &fbar);
        let v: Vec<f64> = gauss(3 * n, 3).iter().map(|x| x.clamp(-4.0, 4.0)).collect();
        let ad: f64 = xbar
            .iter()
            .flatten()
            .zip(&v)
            .map(|(a, b)| *a as f64 * b)
            .sum();
        let l = |eps: f64| -> f64 {
            let p: Vec<[f32; 3]> = disp
                .iter()
                .enumerate()
                .map(|(i, x)| std::array::from_fn(|c| x[c] + (eps * v[3 * i + c]) as f32))
                .collect();
            let (f, _) = fs.forces(&p);
            f.iter()
                .flatten()
                .zip(fbar.iter().flatten())
                .map(|(a, b)| *a as f64 * *b as f64)
                .sum()
        };
        // small step: CIC forces are piecewise smooth (kinks at cell faces)
        let e = 3e-3;
        let fd = (l(e) - l(-e)) / (2.0 * e);
        eprintln!("force VJP np={np} nm={nm} {kernel:?}: ad {ad:.6e} fd {fd:.6e}");
        assert!((ad - fd).abs() < 1e-3 * fd.abs(), "{ad} {fd}");
    }
}

#[test]
fn lpt_vjp_matches_finite_differences() {
    for kernel in [GradientKernel::Exact, GradientKernel::Fd4] {
        let n = 8;
        let s = lpt::LptSolver::new(n, kernel);
        let d: Vec<f64> = gauss(n * n * n, 4);
        let f = s.fields(&d, 2);
        let c1: [Vec<f64>; 3] = std::array::from_fn(|a| gauss(n * n * n, 10 + a as u64));
        let c2: [Vec<f64>; 3] = std::array::from_fn(|a| gauss(n * n * n, 20 + a as u64));
        let db = s.fields_vjp(&f, &c1, Some(&c2));
        let v = gauss(n * n * n, 5);
        let ad: f64 = db.iter().zip(&v).map(|(a, b)| a * b).sum();
        let l = |e: f64| -> f64 {
            let dd: Vec<f64> = d.iter().zip(&v).map(|(a, b)| a + e * b).collect();
            let f = s.fields(&dd, 2);
            (0..3)
                .map(|a| {
                    f.s1[a].iter().zip(&c1[a]).map(|(x, y)| x * y).sum::<f64>()
                        + f.s2[a].iter().zip(&c2[a]).map(|(x, y)| x * y).sum::<f64>()
                })
                .sum()
        };
        let fd = (l(1e-4) - l(-1e-4)) / 2e-4;
        eprintln!("LPT VJP {kernel:?}: ad {ad:.8e} fd {fd:.8e}");
        assert!((ad - fd).abs() < 1e-7 * fd.abs().max(1.0));
    }
}

/// The forward-only LPT path (fused delta2, no phi kept) gives the same
/// fields as the full one.
#[test]
fn lpt_forward_fields_equal_full_fields() {
    for kernel in [GradientKernel::Exact, GradientKernel::Fd4] {
        let n = 8;
        let s = lpt::LptSolver::new(n, kernel);
        let d: Vec<f64> = gauss(n * n * n, 6);
        let (a, b) = (s.fields(&d, 2), s.fields_forward(&d, 2));
        for c in 0..3 {
            for (x, y) in a.s1[c].iter().zip(&b.s1[c]) {
                assert!((x - y).abs() < 1e-12);
            }
            for (x, y) in a.s2[c].iter().zip(&b.s2[c]) {
                assert!((x - y).abs() < 1e-12);
            }
        }
    }
}

/// The fused force + VJP of the adjoint's backward pass equals the separate
/// `forces_into` and `forces_vjp_into(.., scale, add = true)` to the bit
/// (both kernels, deconvolution, finer mesh, particles across the box edge).
#[test]
fn fused_force_and_vjp_equal_separate_calls_bitwise() {
    for (np, nm, kernel, dec) in [
        (8, 8, GradientKernel::Exact, false),
        (8, 16, GradientKernel::Fd4, false),
        (6, 12, GradientKernel::Fd4, true),
        (8, 8, GradientKernel::Exact, true),
    ] {
        let fs = ForceSolver::new(nm, np, kernel, dec);
        let n = np * np * np;
        let r = gauss(3 * n, 7);
        let disp: Vec<[f32; 3]> = r
            .chunks(3)
            .map(|c| [3.0 * c[0] as f32, 3.0 * c[1] as f32, 3.0 * c[2] as f32])
            .collect();
        let fb = gauss(3 * n, 8);
        let fbar: Vec<[f32; 3]> = fb
            .chunks(3)
            .map(|c| [c[0] as f32, c[1] as f32, c[2] as f32])
            .collect();
        let s0: Vec<[f32; 3]> = gauss(3 * n, 9)
            .chunks(3)
            .map(|c| [c[0] as f32, c[1] as f32, c[2] as f32])
            .collect();
        let scale = 0.37f32;
        // separate
        let mut f1 = vec![[0.0f32; 3]; n];
        let mut m1 = force::ForceMeshes::new(nm);
        fs.forces_into(&disp, &mut f1, &mut m1);
        let mut sb1 = s0.clone();
        fs.forces_vjp_into(&disp, &mut m1, &fbar, &mut sb1, scale, true);
        // fused
        let mut f2 = vec![[0.0f32; 3]; n];
        let mut m2 = force::ForceMeshes::new(nm);
        let mut sb2 = s0.clone();
        fs.forces_and_vjp_into(&disp, &mut f2, &mut m2, &fbar, &mut sb2, scale);
        assert_eq!(f1, f2, "forces np={np} nm={nm} {kernel:?}");
        assert_eq!(sb1, sb2, "VJP np={np} nm={nm} {kernel:?}");
        for a in 0..3 {
            assert_eq!(m1.component(a), m2.component(a));
        }
    }
}
