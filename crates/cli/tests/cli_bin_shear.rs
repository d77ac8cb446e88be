//! `cosmodiff bin-shear`: a sky catalogue (RA/Dec) and a flat one binned
//! into the maps `massmap` reads, and one-line errors.

use ndarray::ArrayD;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

mod common;
use common::{bin, fails, read, run};

/// 20000 galaxies in a 1-degree square around (RA, Dec) = (150, 2), with
/// shear (0.04, -0.02) and shape noise 0.26; `sky`: ra/dec columns,
/// otherwise x/y in degrees from the corner.
fn catalogue(sky: bool) -> String {
    let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(9);
    let u = rand_distr::Uniform::new(-0.5, 0.5).unwrap();
    let n = Normal::new(0.0, 0.26).unwrap();
    let mut text = if sky {
        "ra,dec,e1,e2,w\n"
    } else {
        "x,y,e1,e2,w\n"
    }
    .to_string();
    for _ in 0..20000 {
        let (a, b) = (u.sample(&mut rng), u.sample(&mut rng));
        let (e1, e2) = (0.04 + n.sample(&mut rng), -0.02 + n.sample(&mut rng));
        let (p, q) = if sky {
            (150.0 + a / 2f64.to_radians().cos(), 2.0 + b)
        } else {
            (a + 0.5, b + 0.5)
        };
        text.push_str(&format!("{p},{q},{e1},{e2},1.0\n"));
    }
    text
}

#[test]
fn sky_and_flat_catalogues_bin_into_massmap_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("sky.csv"), catalogue(true)).unwrap();
    std::fs::write(d.join("flat.csv"), catalogue(false)).unwrap();
    run(bin()
        .current_dir(d)
        .args(["bin-shear", "--catalog", "sky.csv", "--npix", "22"])
        .args(["--pixel-arcmin", "3", "--out", "sky.npz"]));
    let z = d.join("sky.npz");
    let (e1, e2, mask, counts) = (
        read(&z, "e1"),
        read(&z, "e2"),
        read(&z, "mask"),
        ndarray_npy::NpzReader::new(std::fs::File::open(&z).unwrap())
            .unwrap()
            .by_name::<ndarray::OwnedRepr<i64>, ndarray::IxDyn>("counts.npy")
            .unwrap(),
    );
    assert_eq!(e1.shape(), &[22, 22]);
    // a 66-arcmin map around a 60-arcmin field: every galaxy on it, the
    // inner 20x20 pixels observed
    assert_eq!(counts.iter().sum::<i64>(), 20000, "every galaxy on the map");
    for (i, &m) in mask.iter().enumerate() {
        let (r, c) = (i / 22, i % 22);
        assert_eq!(m > 0.0, counts[[r, c]] > 0);
        if (2..20).contains(&r) && (2..20).contains(&c) {
            assert_eq!(m, 1.0, "pixel ({r}, {c})");
        }
    }
    let mean = |a: &ArrayD<f64>| {
        let w: Vec<f64> = counts.iter().map(|&c| c as f64).collect();
        a.iter().zip(&w).map(|(v, w)| v * w).sum::<f64>() / 20000.0
    };
    assert!((mean(&e1) - 0.04).abs() < 0.01 && (mean(&e2) + 0.02).abs() < 0.01);
    let c = read(&z, "center_deg");
    assert!(
        (c[0] - 150.0).abs() < 0.02 && (c[1] - 2.0).abs() < 0.02,
        "{c}"
    );
    assert_eq!(read(&z, "pixel_arcmin").iter().next(), Some(&3.0));
    // pixel noise: sigma_e / sqrt(N) for unit weights
    let (noise, sig) = (read(&z, "noise_std"), read(&z, "sigma_e")[0]);
    assert!((sig - 0.26).abs() < 0.01, "{sig}");
    assert!((noise[[3, 4]] - sig / (counts[[3, 4]] as f64).sqrt()).abs() < 1e-12);
    // the output is a massmap input
    run(bin().current_dir(d).args([
        "massmap", "--method", "ks", "--input", "sky.npz", "--out", "k.npz",
    ]));
    assert_eq!(read(&d.join("k.npz"), "kappa_e").shape(), &[22, 22]);
    // flat x, y in degrees, two bins, a map larger than the catalogue
    run(bin()
        .current_dir(d)
        .args([
            "bin-shear",
            "--catalog",
            "flat.csv",
            "--catalog",
            "flat.csv",
        ])
        .args([
            "--unit",
            "deg",
            "--npix",
            "30",
            "--pixel-arcmin",
            "3",
            "--out",
            "flat.npz",
        ]));
    let m = read(&d.join("flat.npz"), "mask");
    assert_eq!(m.shape(), &[2, 30, 30]);
    assert_eq!(m.iter().filter(|&&v| v > 0.0).count(), 2 * 400);
    let o = read(&d.join("flat.npz"), "origin_arcmin");
    assert!(
        (o[0] + 15.0).abs() < 0.1 && (o[1] + 15.0).abs() < 0.1,
        "{o}"
    );

    for (args, needle) in [
        (vec!["--catalog", "sky.csv", "--npix", "0"], "--npix 0"),
        (
            vec![
                "--catalog",
                "sky.csv",
                "--npix",
                "8",
                "--pixel-arcmin",
                "-1",
            ],
            "--pixel-arcmin -1",
        ),
        (
            vec!["--catalog", "flat.csv", "--npix", "8", "--center", "10,0"],
            "flat-sky",
        ),
        (
            vec!["--catalog", "sky.csv", "--npix", "8", "--center", "10,95"],
            "Dec 95",
        ),
        (
            vec!["--catalog", "sky.csv", "--npix", "8", "--center", "10"],
            "two numbers",
        ),
        (
            vec!["--catalog", "sky.csv", "--npix", "8", "--unit", "rad"],
            "--unit rad",
        ),
        (
            vec![
                "--catalog",
                "sky.csv",
                "--catalog",
                "flat.csv",
                "--npix",
                "8",
            ],
            "mixes flat-sky",
        ),
        (vec!["--catalog", "none.csv", "--npix", "8"], "none.csv"),
    ] {
        let mut c = bin();
        c.current_dir(d).arg("bin-shear").args(&args);
        if !args.contains(&"--pixel-arcmin") {
            c.args(["--pixel-arcmin", "3"]);
        }
        fails(c.args(["--out", "bad.npz"]), needle);
        assert!(!d.join("bad.npz").exists());
    }
    fails(
        bin().current_dir(d).args([
            "bin-shear",
            "--catalog",
            "sky.csv",
            "--npix",
            "8",
            "--pixel-arcmin",
            "3",
            "--out",
            "sky.csv",
        ]),
        "npz",
    );
}
