//! `cosmodiff pm run` with `[steps] snapshots`: the outputs of the issue
//! (density.npy, positions.npy, pk.txt, pk.png) plus snapshot.npz with the
//! states at exactly the requested scale factors.
use std::path::Path;

mod common;
use common::{bin, fails, read};

const CFG: &str = r#"
[box]
n_mesh = 32
n_particles = 16
box_size = 128.0
[ic]
seed = 5
a_start = 0.1
[steps]
n = 3
snapshots = [1.0, 0.25, 0.4]
"#;

#[test]
fn pm_run_writes_snapshots_at_requested_a() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("pm.toml");
    std::fs::write(&cfg, CFG).unwrap();
    let out = dir.path().join("out");
    let st = bin()
        .args(["pm", "run", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    for f in [
        "density.npy",
        "positions.npy",
        "pk.txt",
        "pk.png",
        "snapshot.npz",
    ] {
        assert!(out.join(f).exists(), "{f}");
    }
    let d: ndarray::Array3<f32> = ndarray_npy::read_npy(out.join("density.npy")).unwrap();
    assert_eq!(d.shape(), &[32, 32, 32]);
    let x: ndarray::Array4<f32> = ndarray_npy::read_npy(out.join("positions.npy")).unwrap();
    assert_eq!(x.shape(), &[16, 16, 16, 3]);
    let z = out.join("snapshot.npz");
    let a = read(&z, "snapshot_a");
    assert_eq!(a.as_slice().unwrap(), &[0.25, 0.4, 1.0]);
    let sp = read(&z, "snapshot_positions");
    assert_eq!(sp.shape(), &[3, 16, 16, 16, 3]);
    assert_eq!(read(&z, "snapshot_momenta").shape(), &[3, 16, 16, 16, 3]);
    let sd = read(&z, "snapshot_density");
    assert_eq!(sd.shape(), &[3, 32, 32, 32]);
    // the a = 1 snapshot is the final state written to positions.npy/density.npy
    let last: Vec<f64> = sp.as_slice().unwrap()[2 * 16 * 16 * 16 * 3..].to_vec();
    for (u, v) in last.iter().zip(x.iter()) {
        assert!((u - *v as f64).abs() < 1e-6);
    }
    let dl: Vec<f64> = sd.as_slice().unwrap()[2 * 32 * 32 * 32..].to_vec();
    for (u, v) in dl.iter().zip(d.iter()) {
        assert!((u - *v as f64).abs() < 1e-6);
    }
    // every snapshot conserves mass; displacements grow with a
    for s in 0..3 {
        let m: f64 = sd.as_slice().unwrap()[s * 32768..(s + 1) * 32768]
            .iter()
            .sum();
        assert!((m - 4096.0).abs() < 1e-2, "{m}");
    }
    let q = read(&z, "positions");
    assert_eq!(q.shape(), &[16, 16, 16, 3]);
    let rms = |s: usize| -> f64 {
        let p = &sp.as_slice().unwrap()[s * 12288..(s + 1) * 12288];
        let mut acc = 0.0;
        for (i, v) in p.iter().enumerate() {
            let lat = i / 3;
            let idx = [lat / 256, (lat / 16) % 16, lat % 16][i % 3] as f64 * 2.0;
            acc += (v - idx).powi(2);
        }
        (acc / p.len() as f64).sqrt()
    };
    assert!(
        rms(0) < rms(1) && rms(1) < rms(2),
        "{} {} {}",
        rms(0),
        rms(1),
        rms(2)
    );

    // a snapshot outside [a_start, a_end] or listed twice is a one-line error (exit 2)
    for (snaps, needle) in [
        ("[0.05]", "snapshot a = 0.05"),
        ("[0.5, 1.0, 0.5]", "a = 0.5 is listed twice"),
    ] {
        std::fs::write(&cfg, CFG.replace("[1.0, 0.25, 0.4]", snaps)).unwrap();
        fails(
            bin()
                .args(["pm", "run", "--config"])
                .arg(&cfg)
                .arg("--out")
                .arg(dir.path().join("bad")),
            needle,
        );
    }
}

fn run_cfg(dir: &Path, name: &str, cfg: &str) -> std::path::PathBuf {
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(&p, cfg).unwrap();
    let out = dir.join(name);
    let st = bin()
        .args(["pm", "run", "--config"])
        .arg(&p)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    out
}

fn grad_json(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("grad_cosmology.json")).unwrap())
        .unwrap()
}

fn num(v: &serde_json::Value, k: &str) -> f64 {
    v[k].as_f64().unwrap_or_else(|| panic!("{k}: {v}"))
}

/// `[gradient]`: the adjoint gradients written by `pm run` (white noise,
/// sigma8, Omega_m; MSE and P(k) losses) against central finite differences
/// of the loss reported by perturbed runs (16^3 particles and mesh).
#[test]
fn pm_run_gradient_matches_finite_differences() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let n = 16usize;
    // white noise (float64) and a uniform target density
    let mut s = 11u64;
    let mut u = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let w: Vec<f64> = (0..n * n * n)
        .map(|_| {
            let (a, b) = (u().max(1e-300), u());
            (-2.0 * a.ln()).sqrt() * (2.0 * std::f64::consts::PI * b).cos()
        })
        .collect();
    let write_w = |name: &str, w: &[f64]| {
        let a = ndarray::Array3::from_shape_vec((n, n, n), w.to_vec()).unwrap();
        ndarray_npy::write_npy(d.join(name), &a).unwrap();
    };
    write_w("w.npy", &w);
    ndarray_npy::write_npy(d.join("ones.npy"), &ndarray::Array3::<f32>::ones((n, n, n))).unwrap();
    let cfg = |cosmo: &str, wfile: &str, grad: &str| {
        format!(
            "[cosmology]\n{cosmo}\n[box]\nn_mesh = 16\nn_particles = 16\nbox_size = 64.0\n\
             [ic]\nwhite_noise = \"{wfile}\"\na_start = 0.1\n[steps]\nn = 3\n[gradient]\n{grad}\n"
        )
    };
    let mse = "loss = \"mse\"\ntarget = \"ones.npy\"";
    let base = run_cfg(d, "base", &cfg("sigma8 = 0.8", "w.npy", mse));
    let gw: ndarray::Array3<f64> =
        ndarray_npy::read_npy(base.join("grad_white_noise.npy")).unwrap();
    assert_eq!(gw.shape(), &[16, 16, 16]);
    let js = grad_json(&base);
    let l0 = num(&js, "loss");
    // the loss is the documented one: mean (rho - 1)^2 of density.npy
    let rho: ndarray::Array3<f32> = ndarray_npy::read_npy(base.join("density.npy")).unwrap();
    let lm: f64 = rho.iter().map(|r| (*r as f64 - 1.0).powi(2)).sum::<f64>() / 4096.0;
    assert!((lm - l0).abs() < 1e-6 * l0, "{lm} {l0}");
    assert_eq!(js["ic"], "white_noise");
    let rel = |fd: f64, ad: f64| (fd - ad).abs() / ad.abs().max(1e-300);

    // white noise, along the gradient
    let gn: f64 = gw.iter().map(|v| v * v).sum::<f64>().sqrt();
    let eps = 3e-3;
    for (name, sgn) in [("wp.npy", 1.0), ("wm.npy", -1.0)] {
        let wv: Vec<f64> = w
            .iter()
            .zip(gw.iter())
            .map(|(a, g)| a + sgn * eps * g / gn)
            .collect();
        write_w(name, &wv);
    }
    let lp = num(
        &grad_json(&run_cfg(d, "wp", &cfg("sigma8 = 0.8", "wp.npy", mse))),
        "loss",
    );
    let lmn = num(
        &grad_json(&run_cfg(d, "wm", &cfg("sigma8 = 0.8", "wm.npy", mse))),
        "loss",
    );
    let fd = (lp - lmn) / (2.0 * eps);
    eprintln!(
        "white noise: fd {fd:.6e} adjoint {gn:.6e} rel {:.2e}",
        rel(fd, gn)
    );
    assert!(rel(fd, gn) < 1e-2, "white noise: fd {fd} adjoint {gn}");

    // sigma8 and Omega_m (through Omega_c; Planck 2015 Omega_c = 0.2589)
    let h8 = 0.01;
    let l8p = num(
        &grad_json(&run_cfg(d, "s8p", &cfg("sigma8 = 0.81", "w.npy", mse))),
        "loss",
    );
    let l8m = num(
        &grad_json(&run_cfg(d, "s8m", &cfg("sigma8 = 0.79", "w.npy", mse))),
        "loss",
    );
    let (fd8, ad8) = ((l8p - l8m) / (2.0 * h8), num(&js, "dloss_dsigma8"));
    eprintln!(
        "sigma8: fd {fd8:.6e} adjoint {ad8:.6e} rel {:.2e}",
        rel(fd8, ad8)
    );
    assert!(rel(fd8, ad8) < 1e-2, "sigma8: fd {fd8} adjoint {ad8}");
    let hm = 0.005;
    let c = |oc: f64| format!("sigma8 = 0.8\nOmega_c = {oc}");
    let lop = num(
        &grad_json(&run_cfg(d, "omp", &cfg(&c(0.2589 + hm), "w.npy", mse))),
        "loss",
    );
    let lom = num(
        &grad_json(&run_cfg(d, "omm", &cfg(&c(0.2589 - hm), "w.npy", mse))),
        "loss",
    );
    let l0c = num(
        &grad_json(&run_cfg(d, "om0", &cfg(&c(0.2589), "w.npy", mse))),
        "dloss_dOmega_m",
    );
    let fdm = (lop - lom) / (2.0 * hm);
    eprintln!(
        "Omega_m: fd {fdm:.6e} adjoint {l0c:.6e} rel {:.2e}",
        rel(fdm, l0c)
    );
    assert!(rel(fdm, l0c) < 2e-2, "Omega_m: fd {fdm} adjoint {l0c}");

    // P(k) loss (log form) against the P_raw column of another run's pk.txt
    let other = std::fs::read_to_string(d.join("s8p/pk.txt")).unwrap();
    std::fs::write(d.join("target_pk.txt"), other).unwrap();
    let pkl = "loss = \"pk\"\ntarget = \"target_pk.txt\"\ntarget_column = 5";
    let pb = run_cfg(d, "pk0", &cfg("sigma8 = 0.8", "w.npy", pkl));
    let gp: ndarray::Array3<f64> = ndarray_npy::read_npy(pb.join("grad_white_noise.npy")).unwrap();
    let gpn: f64 = gp.iter().map(|v| v * v).sum::<f64>().sqrt();
    let lpk = num(&grad_json(&pb), "loss");
    assert!(lpk > 0.0);
    for (name, sgn) in [("pp.npy", 1.0), ("pm.npy", -1.0)] {
        let wv: Vec<f64> = w
            .iter()
            .zip(gp.iter())
            .map(|(a, g)| a + sgn * eps * g / gpn)
            .collect();
        write_w(name, &wv);
    }
    let lpp = num(
        &grad_json(&run_cfg(d, "pkp", &cfg("sigma8 = 0.8", "pp.npy", pkl))),
        "loss",
    );
    let lpm = num(
        &grad_json(&run_cfg(d, "pkm", &cfg("sigma8 = 0.8", "pm.npy", pkl))),
        "loss",
    );
    let fdp = (lpp - lpm) / (2.0 * eps);
    eprintln!(
        "P(k) loss: fd {fdp:.6e} adjoint {gpn:.6e} rel {:.2e}",
        rel(fdp, gpn)
    );
    assert!(rel(fdp, gpn) < 1e-2, "pk: fd {fdp} adjoint {gpn}");

    // [ic] linear_field: the gradient w.r.t. the linear field, no sigma8
    let lin = "[box]\nn_mesh = 16\nn_particles = 16\nbox_size = 64.0\n[ic]\nlinear_field = \"w.npy\"\n\
               [steps]\nn = 2\n[gradient]\nloss = \"pk\"\npk_form = \"chi2\"\ntarget = \"target_pk.txt\"\n\
               target_column = 5\nk_max = 0.3\n";
    let lo = run_cfg(d, "lin", lin);
    assert!(lo.join("grad_linear_field.npy").exists() && !lo.join("grad_white_noise.npy").exists());
    let jl = grad_json(&lo);
    assert!(
        jl["dloss_dsigma8"].is_null() && jl["ic"] == "linear_field",
        "{jl}"
    );
    assert_eq!(num(&jl, "dloss_dOmega_m_linear_power"), 0.0);

    // errors are one line, exit 2
    std::fs::write(d.join("ragged_pk.txt"), "0.1 100\n0.2 80 1\n").unwrap();
    for (bad, msg) in [
        ("loss = \"bogus\"\ntarget = \"ones.npy\"", "loss = \"bogus\""),
        ("loss = \"mse\"", "target"),
        ("loss = \"mse\"\ntarget = \"ones.npy\"\npk_form = \"log\"", "pk_form"),
        ("loss = \"pk\"\ntarget = \"target_pk.txt\"\nk_min = 5.0\nk_max = 6.0\ntarget_column = 5", "no P(k) bin"),
        ("loss = \"pk\"\ntarget = \"ragged_pk.txt\"", "3 columns where earlier rows have 2"),
    ] {
        let p = d.join("bad.toml");
        std::fs::write(&p, cfg("sigma8 = 0.8", "w.npy", bad)).unwrap();
        fails(
            bin()
                .args(["pm", "run", "--config"])
                .arg(&p)
                .arg("--out")
                .arg(d.join("bad")),
            msg,
        );
    }
    // all are refused before the simulation runs
    assert!(!d.join("bad/density.npy").exists());
}

/// Output folders never mix runs: a rerun of the same command is fine, an
/// edited config is another run (refused, nothing touched), `--overwrite`
/// replaces the folder and drops the stale files of the earlier run.
#[test]
fn a_reused_out_folder_never_mixes_runs() {
    use common::run;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("pm.toml");
    let grad = "[halos]\nmin_particles = 5\n";
    let plain = CFG.replace("snapshots = [1.0, 0.25, 0.4]\n", "");
    std::fs::write(&cfg, format!("{plain}{grad}")).unwrap();
    let out = dir.path().join("out");
    let pm = |extra: &[&str]| {
        let mut c = bin();
        c.args(["-q", "pm", "run", "--config"])
            .arg(&cfg)
            .arg("--out")
            .arg(&out)
            .args(extra);
        c
    };
    run(&mut pm(&[]));
    let listing = |p: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let first = listing(&out);
    assert!(first.contains(&"halos.npz".to_string()), "{first:?}");
    assert!(first.contains(&"cosmodiff-run.json".to_string()));
    run(&mut pm(&[])); // the same run again
    std::fs::write(&cfg, &plain).unwrap();
    let before = std::fs::read(out.join("density.npy")).unwrap();
    fails(&mut pm(&[]), "pass --overwrite");
    assert_eq!(listing(&out), first, "a refused run touched the folder");
    assert_eq!(std::fs::read(out.join("density.npy")).unwrap(), before);
    run(&mut pm(&["--overwrite"]));
    let second = listing(&out);
    assert!(
        !second.contains(&"halos.npz".to_string()),
        "stale: {second:?}"
    );
    assert_eq!(listing(dir.path()), ["out", "pm.toml"], "left aside");
    // a folder cosmodiff did not write is never cleared
    let mine = dir.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("notes.txt"), "keep").unwrap();
    fails(
        bin()
            .args(["pm", "run", "--overwrite", "--config"])
            .arg(&cfg)
            .arg("--out")
            .arg(&mine),
        "not written by cosmodiff",
    );
    assert_eq!(listing(&mine), ["notes.txt"]);
}

/// Runs that cannot fit are refused at once, with the estimate, before any
/// output exists; documented limits on the work.
#[test]
fn runs_too_big_for_memory_are_refused_before_starting() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("big.toml");
    let out = dir.path().join("out");
    std::fs::write(&cfg, "[box]\nn_mesh = 2048\nn_particles = 1024\n").unwrap();
    let t = std::time::Instant::now();
    let e = fails(
        bin()
            .args(["pm", "run", "--config"])
            .arg(&cfg)
            .arg("--out")
            .arg(&out),
        "needs about",
    );
    assert!(t.elapsed().as_secs_f64() < 5.0, "took {:?}", t.elapsed());
    assert!(e.contains("n_mesh = 2048") && e.contains("GiB"), "{e}");
    assert!(!out.exists());
    // --max-memory is the limit when given
    std::fs::write(
        &cfg,
        "[box]\nn_mesh = 64\nn_particles = 32\n[design]\nn = 2\nOmega_m = [0.2, 0.4]\nsigma8 = [0.7, 0.9]\n",
    )
    .unwrap();
    let e = fails(
        bin()
            .args([
                "--max-memory",
                "20M",
                "simulate",
                "halos",
                "--workers",
                "2",
                "--config",
            ])
            .arg(&cfg)
            .arg("--out")
            .arg(&out),
        "more than --max-memory 20.0 MiB",
    );
    assert!(e.contains("--workers 2"), "{e}");
    assert!(!out.exists());
    fails(
        bin()
            .args(["--max-memory", "lots", "pm", "run", "--config"])
            .arg(&cfg)
            .arg("--out")
            .arg(&out),
        "--max-memory \"lots\"",
    );
    let sim = dir.path().join("sim.toml");
    std::fs::write(
        &sim,
        "[map]\nnpix = 8192\npixel_arcmin = 1.0\n[[source]]\nnz = { kind = \"smail\", a = 1.0, b = 2.0, z0 = 1.0 }\n",
    )
    .unwrap();
    fails(
        bin()
            .args(["--max-memory", "8G", "simulate", "lensing", "--config"])
            .arg(&sim)
            .arg("--out")
            .arg(dir.path().join("s.npz")),
        "8192x8192 maps in 1 bin needs about 16.3 GiB",
    );
    std::fs::write(
        &cfg,
        "[box]\nn_mesh = 16\nn_particles = 8\n[steps]\nn = 100000\n",
    )
    .unwrap();
    fails(
        bin()
            .args(["pm", "run", "--config"])
            .arg(&cfg)
            .arg("--out")
            .arg(&out),
        "at most 10000 steps",
    );
    assert!(!out.exists());
}
