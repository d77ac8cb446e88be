//! `cosmodiff pm run` with `[steps] snapshots`: the outputs of the issue
//! (density.npy, positions.npy, pk.txt, pk.png) plus snapshot.npz with the
//! states at exactly the requested scale factors.
use ndarray::{ArrayD, IxDyn};
use ndarray_npy::NpzReader;
use std::path::Path;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cosmodiff"))
}

fn read(p: &Path, k: &str) -> ArrayD<f64> {
    let mut z = NpzReader::new(std::fs::File::open(p).unwrap()).unwrap();
    z.by_name::<ndarray::OwnedRepr<f64>, IxDyn>(k)
        .or_else(|_| z.by_name(&format!("{k}.npy")))
        .unwrap()
}

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

    // a snapshot outside [a_start, a_end] is a one-line error (exit 2)
    std::fs::write(&cfg, CFG.replace("[1.0, 0.25, 0.4]", "[0.05]")).unwrap();
    let st = bin()
        .args(["pm", "run", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(dir.path().join("bad"))
        .output()
        .unwrap();
    assert_eq!(st.status.code(), Some(2));
    let err = String::from_utf8_lossy(&st.stderr);
    assert!(err.contains("snapshot a = 0.05"), "{err}");
}
