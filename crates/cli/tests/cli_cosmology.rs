//! `cosmodiff cosmology` end to end: the issue's example config, values
//! against the shared CCL reference, and one-line errors with exit code 2.
use std::path::PathBuf;

mod common;
use common::{bin, fails, read};

fn reference() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference/cosmology")
}

const EXAMPLE: &str = r#"
[cosmology]
Omega_c = 0.2589
Omega_b = 0.0486
h = 0.6774
n_s = 0.9667
sigma8 = 0.8159
Omega_k = 0.0
w0 = -1.0
wa = 0.0
[options]
transfer = "eisenstein_hu"
nonlinear = "halofit"
[background]
a = [0.1, 0.5, 1.0]
[power]
k = [0.01, 0.1, 1.0]
z = [0.0, 1.0]
[[tracer]]
kind = "weak_lensing"
nz = { kind = "smail", a = 1.0, b = 2.0, z0 = 1.0 }
ia_amplitude = 0.0
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
[fisher]
params = ["Omega_c", "sigma8"]
"#;

#[test]
fn example_config_matches_reference() {
    let dir = tempfile::tempdir().unwrap();
    let ell = read(&reference().join("cls_fid.npz"), "ell");
    let ell_s = format!(
        "[{}]",
        ell.iter()
            .map(|v| format!("{v:.17e}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, EXAMPLE.replace("ELL", &ell_s)).unwrap();
    let out = dir.path().join("o.npz");
    let st = bin()
        .args(["cosmology", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    // -q: only errors on the terminal (no "wrote ..." line).
    let o = bin()
        .args(["-q", "cosmology", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(dir.path().join("q.npz"))
        .output()
        .unwrap();
    assert!(o.status.success() && o.stderr.is_empty() && o.stdout.is_empty());
    assert_eq!(read(&out, "pk_linear").shape(), &[2, 3]);
    assert_eq!(read(&out, "cl_covariance").shape(), &[150, 150]);
    assert_eq!(read(&out, "cl_pairs").shape(), &[3, 2]);
    // C_ell against CCL matched (wl2) at 2e-3; Fisher within 1%.
    let cl = read(&out, "cl");
    let r = read(&reference().join("cls_fid.npz"), "ccl_matched__wl2");
    for p in 0..3 {
        for l in 0..50 {
            assert!((cl[[p, l]] / r[[p, l]] - 1.0).abs() < 2e-3);
        }
    }
    let f = read(&out, "fisher");
    let fr = read(
        &reference().join("fisher_wl2bin_ccl_finitediff.npz"),
        "fisher",
    );
    for i in 0..2 {
        for j in 0..2 {
            assert!((f[[i, j]] / fr[[i, j]] - 1.0).abs() < 1e-2);
        }
    }
    // Background in Mpc/h vs CCL (Mpc) at a = 0.5.
    let chi = read(&out, "comoving_distance");
    assert!(chi[2].abs() < 1e-9 && chi[1] > 2000.0 && chi[1] < 2600.0);
}

fn expect_error(cfg_text: &str, needle: &str) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, cfg_text).unwrap();
    fails(
        bin()
            .args(["cosmology", "--config"])
            .arg(&cfg)
            .arg("--out")
            .arg(dir.path().join("o.npz")),
        needle,
    );
}

#[test]
fn bad_inputs_give_one_line_errors() {
    expect_error("[cosmology]\nsigma8 = -0.8\n", "sigma8");
    expect_error("[cosmology]\nsigma9 = 0.8\n", "sigma9");
    expect_error("[cosmology]\nh = 3.0\n", "h = 3");
    expect_error("[power]\nk = [0.1]\nz = [-1.0]\n", "[power] z");
    // valid-looking parameters whose spectra are not representable: an
    // error naming the parameters, no all-NaN file (the reliability issue)
    expect_error(
        "[cosmology]\nsigma8 = 1e-200\n[power]\nk = [0.1, 1.0]\nz = [0.0]\n",
        "is not finite",
    );
    expect_error("[[tracer]]\nkind = \"weak_lensing\"\nnz = { kind = \"histogram\", file = \"missing.txt\" }\n[cl]\nell = [10.0]\n", "missing.txt");
    expect_error("[fisher]\nparams = [\"Omega_x\"]\n[cl]\nell=[10.0]\nf_sky=0.1\n[[tracer]]\nkind=\"weak_lensing\"\nnz={kind=\"delta\", z0=1.0}\n", "Omega_x");
    expect_error("[fisher]\nparams = [\"sigma8\", \"sigma8\"]\n[cl]\nell=[10.0]\nf_sky=0.1\n[[tracer]]\nkind=\"weak_lensing\"\nnz={kind=\"delta\", z0=1.0}\n", "listed twice");
    expect_error("[cl]\nell=[10.0]\n[[tracer]]\nkind=\"weak_lensing\"\nnz={kind=\"smail\", a=1.0, b=2.0, z0=1.0, shift=-5.0}\n", "below z = 0");
    // keys of another n(z) kind, and a Gaussian n(z) centred below z = 0
    let wl = |nz: &str| format!("[cl]\nell=[10.0]\n[[tracer]]\nkind=\"weak_lensing\"\nnz={nz}\n");
    expect_error(
        &wl("{kind=\"smail\", a=1.0, b=2.0, z0=1.0, sigma=0.5}"),
        "kind = \"smail\" does not take key 'sigma'",
    );
    expect_error(
        &wl("{kind=\"delta\", z0=1.0, file=\"x.txt\"}"),
        "does not take key 'file'",
    );
    expect_error(
        &wl("{kind=\"lorentz\", a=1.0}"),
        "kind = \"lorentz\": expected",
    );
    expect_error(
        &wl("{kind=\"gaussian\", z0=-1.0, sigma=0.1}"),
        "0 < z0 < zmax",
    );
    // tracers that nothing uses
    expect_error(
        "[background]\na = [1.0]\n[[tracer]]\nkind=\"weak_lensing\"\nnz={kind=\"delta\", z0=1.0}\n",
        "add [cl]",
    );
    // multipoles for the Knox covariance
    expect_error("[cl]\nell=[10.0, 10.0]\nf_sky=0.1\n[[tracer]]\nkind=\"weak_lensing\"\nnz={kind=\"delta\", z0=1.0}\n", "strictly increasing");
    fails(
        bin().args([
            "cosmology",
            "--config",
            "/nonexistent/c.toml",
            "--out",
            "/tmp/x.npz",
        ]),
        "",
    );
}

#[test]
fn usage_errors_are_one_line_and_negative_values_parse() {
    // A negative value reaches our own check instead of clap's "unexpected argument".
    fails(
        bin().args([
            "massmap",
            "--method",
            "ks",
            "--input",
            "in.npz",
            "--out",
            "out.npz",
            "--smoothing-arcmin",
            "-1",
        ]),
        "--smoothing-arcmin must be >= 0",
    );
    fails(
        bin().args(["massmap", "--method", "ks", "--bogus"]),
        "unexpected argument '--bogus'",
    );
    fails(
        bin().args(["sbi", "train", "--method", "npe"]),
        "required arguments were not provided: --theta",
    );
    // An empty config computes nothing; a non-.npz output name is refused.
    expect_error("", "nothing to compute");
    fails(
        bin().args(["cosmology", "--config", "c.toml", "--out", "c.fits"]),
        "name it *.npz",
    );
}
