//! Halo and galaxy catalogues through the CLI, with the interfaces of the
//! halo-catalogue issue exactly as written: `pm run` with `[halos]`,
//! `halos fof`, `hod populate`, `stats xi | pk | knn`, `simulate halos`
//! (resumable), and one-line errors that name the argument with nothing
//! written.
use ndarray::{ArrayD, IxDyn};
use ndarray_npy::NpzReader;
use std::path::Path;

mod common;
use common::{bin, fails, interrupt_then_resume, read, run};

const PM: &str = r#"
[box]
n_mesh = 64
n_particles = 32
box_size = 64.0
[ic]
seed = 2
[steps]
n = 6
[halos]
linking_length = 0.2
min_particles = 10
"#;

fn keys(p: &Path) -> Vec<String> {
    let mut z = NpzReader::new(std::fs::File::open(p).unwrap()).unwrap();
    let mut k: Vec<String> = z
        .names()
        .unwrap()
        .into_iter()
        .map(|n| n.trim_end_matches(".npy").to_string())
        .collect();
    k.sort();
    k
}

fn read_i64(p: &Path, k: &str) -> ArrayD<i64> {
    let mut z = NpzReader::new(std::fs::File::open(p).unwrap()).unwrap();
    z.by_name::<ndarray::OwnedRepr<i64>, IxDyn>(k)
        .or_else(|_| z.by_name(&format!("{k}.npy")))
        .unwrap()
}

fn read_bool(p: &Path, k: &str) -> ArrayD<bool> {
    let mut z = NpzReader::new(std::fs::File::open(p).unwrap()).unwrap();
    z.by_name::<ndarray::OwnedRepr<bool>, IxDyn>(k)
        .or_else(|_| z.by_name(&format!("{k}.npy")))
        .unwrap()
}

#[test]
fn pm_halos_fof_hod_and_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("pm.toml"), PM).unwrap();
    run(bin()
        .args(["pm", "run", "--config"])
        .arg(d.join("pm.toml"))
        .arg("--out")
        .arg(d.join("run")));
    let h = d.join("run/halos.npz");
    assert_eq!(keys(&h), ["mass", "n_particles", "position", "velocity"]);
    let mass = read(&h, "mass");
    let n = mass.len();
    assert!(n > 5, "{n} halos");
    assert!(
        mass.iter().zip(mass.iter().skip(1)).all(|(a, b)| a >= b),
        "sorted by mass"
    );
    let pos = read(&h, "position");
    assert_eq!(pos.shape(), [n, 3]);
    assert!(pos.iter().all(|x| (0.0..64.0).contains(x)));
    let np = read_i64(&h, "n_particles");
    // mass = members x Omega_m rho_crit L^3 / N (Planck 2015 Omega_m = 0.3075)
    let mp = 0.3075 * 2.775_366_27e11 * 64f64.powi(3) / 32f64.powi(3);
    assert!(
        (mass[0] / np[0] as f64 / mp - 1.0).abs() < 1e-3,
        "{} {}",
        mass[0],
        np[0]
    );
    assert!(np.iter().all(|c| *c >= 10));

    // the same halos from the positions file pm run writes (its own layout)
    let h2 = d.join("fof.npz");
    run(bin()
        .args(["halos", "fof", "--positions"])
        .arg(d.join("run/positions.npy"))
        .args([
            "--box-size",
            "64",
            "--omega-m",
            "0.3075",
            "--min-particles",
            "10",
            "--out",
        ])
        .arg(&h2));
    assert_eq!(keys(&h2), ["mass", "n_particles", "position"]);
    assert_eq!(read_i64(&h2, "n_particles"), np);
    let p2 = read(&h2, "position");
    let dmax = pos
        .iter()
        .zip(p2.iter())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(dmax < 1e-9, "{dmax}");

    // exact HOD: weights 1; relaxed: weights in [0, 1]
    let g = d.join("gal.npz");
    run(bin()
        .args(["hod", "populate", "--halos"])
        .arg(&h)
        .args([
            "--box-size",
            "64",
            "--log-mmin",
            "12.5",
            "--sigma-logm",
            "0.3",
            "--log-m0",
            "12.5",
            "--log-m1",
            "13.3",
            "--alpha",
            "1.0",
            "--seed",
            "3",
            "--out",
        ])
        .arg(&g));
    assert_eq!(keys(&g), ["is_central", "position", "weight"]);
    let w = read(&g, "weight");
    assert!(w.iter().all(|x| *x == 1.0));
    let c = read_bool(&g, "is_central");
    assert_eq!(c.len(), w.len());
    assert!(
        c.iter().any(|x| *x) && c.iter().any(|x| !*x),
        "centrals and satellites"
    );
    let gr = d.join("galr.npz");
    run(bin()
        .args(["hod", "populate", "--halos"])
        .arg(&h)
        .args(["--box-size", "64", "--relaxed-temperature", "0.1", "--out"])
        .arg(&gr));
    let wr = read(&gr, "weight");
    assert!(wr.iter().all(|x| (0.0..=1.0).contains(x)));
    assert!(wr.iter().any(|x| *x > 0.0 && *x < 1.0));

    // statistics
    let xi = d.join("xi.npz");
    run(bin()
        .args(["stats", "xi", "--catalog"])
        .arg(&h)
        .args(["--box-size", "64", "--r-edges", "1,2,5,10,20,32", "--out"])
        .arg(&xi));
    for k in ["r", "xi", "pair_counts"] {
        assert_eq!(read(&xi, k).len(), 5, "{k}");
    }
    let pc = read(&xi, "pair_counts");
    assert!(
        pc.iter().all(|x| x.fract() == 0.0),
        "integer pair counts {pc:?}"
    );
    let pk = d.join("pk.npz");
    run(bin()
        .args(["stats", "pk", "--catalog"])
        .arg(&g)
        .args(["--box-size", "64", "--n-mesh", "32", "--out"])
        .arg(&pk));
    assert_eq!(keys(&pk), ["k", "n_modes", "pk", "shot_noise"]);
    let sn = read(&pk, "shot_noise");
    assert!((sn[[]] - 64f64.powi(3) / w.len() as f64).abs() < 1e-9 * sn[[]]);
    let knn = d.join("knn.npz");
    run(bin()
        .args(["stats", "knn", "--catalog"])
        .arg(&h)
        .args([
            "--box-size",
            "64",
            "--k",
            "1,5,9",
            "--n-query",
            "2000",
            "--out",
        ])
        .arg(&knn));
    assert_eq!(read_i64(&knn, "k").as_slice().unwrap(), &[1, 5, 9]);
    let cdf = read(&knn, "cdf");
    let nr = read(&knn, "r").len();
    assert_eq!(cdf.shape(), [3, nr]);
    // CDF_k increases with r and decreases with k
    for i in 0..3 {
        for j in 1..nr {
            assert!(cdf[[i, j]] >= cdf[[i, j - 1]]);
        }
    }
    assert!((0..nr).all(|j| cdf[[0, j]] >= cdf[[1, j]] && cdf[[1, j]] >= cdf[[2, j]]));
}

#[test]
fn bad_input_is_one_line_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pts = |name: &str, rows: Vec<[f64; 3]>| {
        let flat: Vec<f64> = rows.iter().flatten().copied().collect();
        let a = ndarray::Array2::from_shape_vec((rows.len(), 3), flat).unwrap();
        ndarray_npy::write_npy(d.join(name), &a).unwrap();
    };
    let good: Vec<[f64; 3]> = (0..100)
        .map(|i| [(i % 10) as f64 + 0.5, (i / 10) as f64 + 0.5, 5.0])
        .collect();
    pts("good.npy", good.clone());
    let mut outside = good.clone();
    outside[7][1] = 10.5;
    pts("outside.npy", outside);
    let mut nan = good.clone();
    nan[3][2] = f64::NAN;
    pts("nan.npy", nan);
    let out = d.join("o.npz");
    let fof = |file: &str, extra: &[&str]| {
        let mut c = bin();
        c.args(["halos", "fof", "--positions"])
            .arg(d.join(file))
            .args(["--box-size", "10", "--omega-m", "0.3", "--out"])
            .arg(&out)
            .args(extra);
        c
    };
    fails(&mut fof("outside.npy", &[]), "outside the box");
    fails(&mut fof("nan.npy", &[]), "non-finite");
    fails(
        &mut fof("good.npy", &["--linking-length", "0"]),
        "--linking-length",
    );
    fails(
        &mut fof("good.npy", &["--linking-length", "1"]),
        "--linking-length",
    );
    let mut c = bin();
    c.args(["halos", "fof", "--positions"])
        .arg(d.join("good.npy"))
        .args(["--box-size", "-1", "--omega-m", "0.3", "--out"])
        .arg(&out);
    fails(&mut c, "--box-size");
    assert!(!out.exists());

    // a catalogue, then the statistics and the HOD on bad arguments
    let cat = d.join("cat.npz");
    let mut c = bin();
    c.args(["halos", "fof", "--positions"])
        .arg(d.join("good.npy"))
        .args([
            "--box-size",
            "10",
            "--omega-m",
            "0.3",
            "--linking-length",
            "0.9",
            "--min-particles",
            "1",
            "--out",
        ])
        .arg(&cat);
    run(&mut c);
    let xi = |edges: &str| {
        let mut c = bin();
        c.args(["stats", "xi", "--catalog"])
            .arg(&cat)
            .args(["--box-size", "10", "--r-edges", edges, "--out"])
            .arg(&out);
        c
    };
    fails(&mut xi("1,3,2"), "--r-edges");
    fails(&mut xi("1,2,6"), "L/2");
    let mut z = NpzWriterHelper::default();
    z.add("position", ndarray::Array2::<f64>::zeros((0, 3)).into_dyn());
    z.write(&d.join("empty.npz"));
    let mut c = bin();
    c.args(["stats", "pk", "--catalog"])
        .arg(d.join("empty.npz"))
        .args(["--box-size", "10", "--out"])
        .arg(&out);
    fails(&mut c, "empty");
    for (flag, v) in [
        ("--sigma-logm", "0"),
        ("--alpha", "-1"),
        ("--log-m1", "25"),
        ("--relaxed-temperature", "0"),
    ] {
        let mut c = bin();
        c.args(["hod", "populate", "--halos"])
            .arg(&cat)
            .args(["--box-size", "10", flag, v, "--out"])
            .arg(&out);
        fails(&mut c, flag);
    }
    assert!(!out.exists(), "nothing written by failed commands");
    let left: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[derive(Default)]
struct NpzWriterHelper {
    arrays: Vec<(String, ArrayD<f64>)>,
}

impl NpzWriterHelper {
    fn add(&mut self, k: &str, a: ArrayD<f64>) {
        self.arrays.push((k.into(), a));
    }
    fn write(&self, p: &Path) {
        let mut w = ndarray_npy::NpzWriter::new(std::fs::File::create(p).unwrap());
        for (k, a) in &self.arrays {
            w.add_array(k.as_str(), a).unwrap();
        }
        w.finish().unwrap();
    }
}

#[test]
fn campaign_writes_params_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = d.join("campaign.toml");
    std::fs::write(
        &cfg,
        r#"
[cosmology]
Omega_b = 0.05
[box]
n_mesh = 16
n_particles = 16
box_size = 64.0
[ic]
seed = 10
[steps]
n = 3
[halos]
min_particles = 5
[design]
kind = "latin_hypercube"
n = 3
seed = 1
Omega_m = [0.2, 0.4]
sigma8 = [0.7, 0.9]
"#,
    )
    .unwrap();
    let out = d.join("camp");
    let go = || {
        let mut c = bin();
        c.args(["simulate", "halos", "--config"])
            .arg(&cfg)
            .arg("--out")
            .arg(&out);
        c
    };
    run(&mut go());
    let csv = std::fs::read_to_string(out.join("params.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "index,seed,Omega_m,sigma8,Omega_c");
    assert_eq!(lines.len(), 4);
    for (i, l) in lines[1..].iter().enumerate() {
        let v: Vec<f64> = l.split(',').map(|x| x.parse().unwrap()).collect();
        assert_eq!(v[0] as usize, i);
        assert_eq!(v[1] as u64, 10 + i as u64);
        assert!((0.2..0.4).contains(&v[2]) && (0.7..0.9).contains(&v[3]));
        assert!((v[4] - (v[2] - 0.05)).abs() < 1e-12);
    }
    let files: Vec<Vec<u8>> = (0..3)
        .map(|i| std::fs::read(out.join(format!("halos_{i:05}.npz"))).unwrap())
        .collect();
    // an interrupted campaign: one catalogue missing, one temporary leftover
    std::fs::remove_file(out.join("halos_00001.npz")).unwrap();
    std::fs::write(out.join(".halos_00001.npz.partial-1-0.npz"), b"trunc").unwrap();
    let t0 = std::fs::metadata(out.join("halos_00000.npz"))
        .unwrap()
        .modified()
        .unwrap();
    let log = run(&mut go());
    assert!(log.contains("resuming"), "{log}");
    for i in 0..3 {
        assert_eq!(
            std::fs::read(out.join(format!("halos_{i:05}.npz"))).unwrap(),
            files[i],
            "catalogue {i} (same seed, same halos)"
        );
    }
    let t1 = std::fs::metadata(out.join("halos_00000.npz"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(t0, t1, "a finished simulation is not redone");
    // another design in the same folder is refused
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("n = 3\nseed = 1", "n = 4\nseed = 1");
    std::fs::write(&cfg, text).unwrap();
    fails(&mut go(), "another campaign");
}

/// Ctrl-C (SIGINT) during a campaign: the running simulation finishes, the
/// command stops with exit code 2 saying how to resume, and rerunning it
/// completes the campaign with the same boxes as an uninterrupted run.
#[test]
fn an_interrupted_campaign_resumes_to_the_same_boxes() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        "[box]\nn_particles = 32\nn_mesh = 64\nbox_size = 128.0\n[steps]\nn = 12\n\
         [density]\nn_grid = 16\n\
         [design]\nn = 10\nOmega_m = [0.2, 0.4]\nsigma8 = [0.7, 0.9]\n",
    )
    .unwrap();
    let campaign = |out: &std::path::Path| {
        let mut c = bin();
        c.args(["simulate", "density", "--config"])
            .arg(&cfg)
            .arg("--out")
            .arg(out);
        c
    };
    let whole = dir.path().join("whole");
    run(&mut campaign(&whole));
    let cut = dir.path().join("cut");
    // interrupted once the first box is on disk
    interrupt_then_resume(
        campaign,
        &cut,
        "density_00000.npy",
        "fields.npz",
        "rerun the same command to resume",
    );
    let field = |p: &Path| -> ArrayD<f32> {
        let mut z = NpzReader::new(std::fs::File::open(p.join("fields.npz")).unwrap()).unwrap();
        z.by_name::<ndarray::OwnedRepr<f32>, IxDyn>("field.npy")
            .or_else(|_| z.by_name("field"))
            .unwrap()
    };
    assert_eq!(field(&whole), field(&cut));
}
