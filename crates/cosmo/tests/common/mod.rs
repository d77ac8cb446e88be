#![allow(dead_code)]
use cosmodiff_cosmo::Cosmology;
use ndarray::{ArrayD, IxDyn};
use ndarray_npy::NpzReader;
use std::path::PathBuf;

/// `../shared/reference/cosmology` beside the repository. The crate folder is
/// read at run time (cargo sets `CARGO_MANIFEST_DIR` for tests), so a test
/// binary reused from another checkout of the same target directory still
/// looks in its own checkout.
pub fn refdir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .join("../../../shared/reference/cosmology")
}

pub fn load(file: &str, key: &str) -> ArrayD<f64> {
    let p = refdir().join(file);
    let f = std::fs::File::open(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let mut z = NpzReader::new(f).unwrap();
    z.by_name::<ndarray::OwnedRepr<f64>, IxDyn>(key)
        .or_else(|_| z.by_name(&format!("{key}.npy")))
        .unwrap()
}

pub fn cosmo(tag: &str) -> Cosmology {
    let mut c = Cosmology::planck15();
    match tag {
        "fid" => {}
        "lowOm" => {
            c.omega_c = 0.22;
            c.sigma8 = 0.75;
        }
        "w0wa" => {
            c.w0 = -0.9;
            c.wa = 0.1;
        }
        _ => panic!("unknown tag"),
    }
    c
}

pub const TAGS: [&str; 3] = ["fid", "lowOm", "w0wa"];

pub fn max_rel(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| ((x - y) / y).abs())
        .fold(0.0, f64::max)
}

pub fn load_i64(file: &str, key: &str) -> ArrayD<i64> {
    let p = refdir().join(file);
    let f = std::fs::File::open(&p).unwrap();
    let mut z = NpzReader::new(f).unwrap();
    z.by_name::<ndarray::OwnedRepr<i64>, IxDyn>(key)
        .or_else(|_| z.by_name(&format!("{key}.npy")))
        .unwrap()
}
