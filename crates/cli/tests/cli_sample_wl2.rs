//! Issue 5 validation through the CLI: for the `wl2` tracers of the shared
//! cosmology reference with f_sky = 0.25 and fiducial data, the NUTS
//! posterior of (Omega_c, sigma8) under wide uniform priors has its mean
//! within 0.1 sd of the fiducial values and its covariance within 10% of the
//! inverse Fisher matrix (computed by `cosmodiff cosmology` with exact
//! derivatives). 20 log-spaced ells keep the test fast; the seed is fixed.
use ndarray::{ArrayD, IxDyn};
use ndarray_npy::NpzReader;

mod common;
use common::bin;

const TRACERS: &str = r#"
[cosmology]
preset = "planck15"
[[tracer]]
kind = "weak_lensing"
nz = { kind = "smail", a = 1.0, b = 2.0, z0 = 1.0 }
sigma_e = 0.26
gals_per_arcmin2 = 10.0
[[tracer]]
kind = "weak_lensing"
nz = { kind = "smail", a = 1.0, b = 2.0, z0 = 0.5 }
sigma_e = 0.26
gals_per_arcmin2 = 10.0
[cl]
ell = ELL
f_sky = 0.25
"#;

#[test]
fn wl2_posterior_matches_fisher() {
    let dir = tempfile::tempdir().unwrap();
    let ell: Vec<String> = (0..20)
        .map(|i| format!("{:.10}", 10f64.powf(1.0 + 2.5 * i as f64 / 19.0)))
        .collect();
    let base = TRACERS.replace("ELL", &format!("[{}]", ell.join(", ")));
    // Fisher from `cosmodiff cosmology`.
    let fcfg = dir.path().join("f.toml");
    std::fs::write(
        &fcfg,
        format!("{base}[fisher]\nparams = [\"Omega_c\", \"sigma8\"]\n"),
    )
    .unwrap();
    let fout = dir.path().join("f.npz");
    assert!(bin()
        .args(["-q", "cosmology", "--config"])
        .arg(&fcfg)
        .arg("--out")
        .arg(&fout)
        .status()
        .unwrap()
        .success());
    let mut z = NpzReader::new(std::fs::File::open(&fout).unwrap()).unwrap();
    let f: ArrayD<f64> = z
        .by_name::<ndarray::OwnedRepr<f64>, IxDyn>("fisher")
        .or_else(|_| z.by_name("fisher.npy"))
        .unwrap();
    let det = f[[0, 0]] * f[[1, 1]] - f[[0, 1]] * f[[1, 0]];
    let inv = [
        [f[[1, 1]] / det, -f[[0, 1]] / det],
        [-f[[1, 0]] / det, f[[0, 0]] / det],
    ];
    // NUTS through `cosmodiff sample`.
    let scfg = dir.path().join("s.toml");
    std::fs::write(
        &scfg,
        format!(
            "{base}[data]\nfiducial = true\n[[param]]\nname = \"Omega_c\"\nprior = \"uniform\"\nlow = 0.1\nhigh = 0.6\n[[param]]\nname = \"sigma8\"\nprior = \"uniform\"\nlow = 0.4\nhigh = 1.3\n[sampler]\nchains = 2\nwarmup = 300\ndraws = 600\nseed = 1\n"
        ),
    )
    .unwrap();
    let out = dir.path().join("chains");
    let o = bin()
        .args(["-q", "sample", "--config"])
        .arg(&scfg)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut z = NpzReader::new(std::fs::File::open(out.join("draws.npz")).unwrap()).unwrap();
    let d: ArrayD<f64> = z
        .by_name::<ndarray::OwnedRepr<f64>, IxDyn>("draws")
        .or_else(|_| z.by_name("draws.npy"))
        .unwrap();
    let s = d.shape().to_vec();
    assert_eq!(s[2], 2);
    let n = (s[0] * s[1]) as f64;
    let flat: Vec<[f64; 2]> = d
        .as_slice()
        .unwrap()
        .chunks(2)
        .map(|c| [c[0], c[1]])
        .collect();
    let mean = [
        flat.iter().map(|x| x[0]).sum::<f64>() / n,
        flat.iter().map(|x| x[1]).sum::<f64>() / n,
    ];
    let mut cov = [[0.0; 2]; 2];
    for x in &flat {
        for a in 0..2 {
            for b in 0..2 {
                cov[a][b] += (x[a] - mean[a]) * (x[b] - mean[b]) / (n - 1.0);
            }
        }
    }
    let fid = [0.2589, 0.8159];
    for a in 0..2 {
        let sd = cov[a][a].sqrt();
        let off = (mean[a] - fid[a]) / sd;
        println!(
            "param {a}: mean {:.5} (fid {}), {off:+.3} sd; var ratio to inverse Fisher {:.3}",
            mean[a],
            fid[a],
            cov[a][a] / inv[a][a]
        );
        assert!(
            off.abs() < 0.1,
            "mean of parameter {a} is {off} sd from the fiducial"
        );
        assert!(
            (cov[a][a] / inv[a][a] - 1.0).abs() < 0.1,
            "variance ratio {}",
            cov[a][a] / inv[a][a]
        );
    }
    let r_post = cov[0][1] / (cov[0][0] * cov[1][1]).sqrt();
    let r_fish = inv[0][1] / (inv[0][0] * inv[1][1]).sqrt();
    println!("correlation: posterior {r_post:.4}, Fisher {r_fish:.4}");
    assert!((r_post - r_fish).abs() < 0.01);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["divergences"].as_u64(), Some(0));
    for p in summary["params"].as_array().unwrap() {
        assert!(p["r_hat"].as_f64().unwrap() < 1.01);
    }

    // A data file with a negative auto-spectrum or NaN is refused up front.
    for (value, needle) in [(-1e-9, "negative"), (f64::NAN, "not finite")] {
        let bad = dir.path().join("bad.npz");
        let mut w = ndarray_npy::NpzWriter::new(std::fs::File::create(&bad).unwrap());
        let cl = ndarray::Array2::<f64>::from_elem((3, 20), value);
        w.add_array("cl", &cl).unwrap();
        w.finish().unwrap();
        let cfg = std::fs::read_to_string(&scfg)
            .unwrap()
            .replace("fiducial = true", "file = \"bad.npz\"");
        let bcfg = dir.path().join("bad.toml");
        std::fs::write(&bcfg, cfg).unwrap();
        common::fails(
            bin()
                .args(["-q", "sample", "--config"])
                .arg(&bcfg)
                .arg("--out")
                .arg(dir.path().join("bad_chains")),
            needle,
        );
    }
}
