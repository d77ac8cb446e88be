"""The Python package against the Rust CLI: the same library calls must give
the same numbers (to 1e-12) for `cosmodiff cosmology` and
`cosmodiff simulate lensing`."""

import subprocess

import numpy as np
import pytest

import cosmodiff as cd

COSMOLOGY_TOML = """
[cosmology]
Omega_c = 0.25
sigma8 = 0.8
w0 = -0.95
wa = 0.05
[options]
transfer = "eisenstein_hu"
nonlinear = "halofit"
[background]
a = [0.2, 0.35, 0.5, 0.75, 0.9, 1.0]
[power]
k = [0.001, 0.01, 0.1, 0.5, 1.0, 5.0]
z = [0.0, 0.5, 2.0]
[[tracer]]
kind = "weak_lensing"
nz = { kind = "smail", a = 1.0, b = 2.0, z0 = 1.0 }
sigma_e = 0.3
gals_per_arcmin2 = 8.0
ia_amplitude = 0.5
[[tracer]]
kind = "number_counts"
nz = { kind = "gaussian", z0 = 0.5, sigma = 0.1, zmax = 2.0 }
bias = 1.4
gals_per_arcmin2 = 4.0
[cl]
ell = [20.0, 50.0, 120.0, 300.0, 800.0, 2000.0]
f_sky = 0.1
[fisher]
params = ["Omega_c", "sigma8"]
"""

SIMULATE_TOML = """
[cosmology]
sigma8 = 0.78
[map]
npix = 32
pixel_arcmin = 3.0
[[source]]
nz = { kind = "smail", a = 1.0, b = 2.0, z0 = 0.5 }
sigma_e = 0.26
gals_per_arcmin2 = 15.0
[[source]]
nz = { kind = "smail", a = 1.0, b = 2.0, z0 = 1.0 }
sigma_e = 0.3
gals_per_arcmin2 = 10.0
[field]
kind = "lognormal"
seed = 7
"""


def run_cli(cli, tmp_path, name, toml, *cmd):
    cfg = tmp_path / f"{name}.toml"
    cfg.write_text(toml)
    out = tmp_path / f"{name}.npz"
    r = subprocess.run([str(cli), *cmd, "--config", str(cfg), "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return np.load(out)


def close(ours, theirs):
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0)


def test_cosmology_command_matches(cli, tmp_path):
    ref = run_cli(cli, tmp_path, "cosmo", COSMOLOGY_TOML, "cosmology")
    c = cd.Cosmology(Omega_c=0.25, sigma8=0.8, w0=-0.95, wa=0.05)
    a = ref["a"]
    close(cd.comoving_distance(c, a), ref["comoving_distance"])
    close(cd.angular_diameter_distance(c, a), ref["angular_diameter_distance"])
    close(cd.luminosity_distance(c, a), ref["luminosity_distance"])
    close(cd.hubble(c, a), ref["hubble"])
    close(cd.growth_factor(c, a), ref["growth_factor"])
    close(cd.growth_rate(c, a), ref["growth_rate"])
    close(cd.pk_linear(c, ref["k"], ref["z"]), ref["pk_linear"])
    close(cd.pk_nonlinear(c, ref["k"], ref["z"]), ref["pk_nonlinear"])
    ts = [
        cd.WeakLensing(cd.smail_nz(1.0, 2.0, 1.0), sigma_e=0.3, gals_per_arcmin2=8.0, ia_amplitude=0.5),
        cd.NumberCounts(cd.gaussian_nz(0.5, 0.1, zmax=2.0), bias=1.4, gals_per_arcmin2=4.0),
    ]
    ell = ref["ell"]
    cl = cd.angular_cl(c, ts, ell)
    close(cl, ref["cl"])
    noise = cd.noise_cl(ts, ell)
    close(noise, ref["cl_noise"])
    close(cd.tracer_pairs(2), ref["cl_pairs"])
    close(cd.gaussian_covariance(cl + noise, 2, ell, 0.1), ref["cl_covariance"])
    close(cd.fisher(c, ts, ell, 0.1, params=["Omega_c", "sigma8"]), ref["fisher"])


def test_simulate_command_matches(cli, tmp_path):
    ref = run_cli(cli, tmp_path, "sim", SIMULATE_TOML, "simulate", "lensing")
    sim = cd.simulate_lensing(
        cd.Cosmology(sigma8=0.78),
        [(cd.smail_nz(1.0, 2.0, 0.5), 0.26, 15.0), (cd.smail_nz(1.0, 2.0, 1.0), 0.3, 10.0)],
        npix=32,
        pixel_arcmin=3.0,
        kind="lognormal",
        seed=7,
    )
    for k in ("kappa", "gamma1", "gamma2", "e1", "e2", "noise_std", "ell", "cl_theory"):
        close(sim[k], ref[k])
    assert float(ref["pixel_arcmin"]) == sim["pixel_arcmin"] == 3.0


def test_compressed_npz_inputs_are_read(cli, tmp_path):
    """A shear file saved with np.savez_compressed gives the same maps."""
    ref = run_cli(cli, tmp_path, "sim", SIMULATE_TOML, "simulate", "lensing")
    np.savez(tmp_path / "plain.npz", **ref)
    np.savez_compressed(tmp_path / "packed.npz", **ref)
    maps = {}
    for name in ("plain", "packed"):
        out = tmp_path / f"kappa_{name}.npz"
        r = subprocess.run(
            [str(cli), "-q", "massmap", "--method", "ks", "--input", str(tmp_path / f"{name}.npz"), "--out", str(out)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 0, r.stderr
        maps[name] = np.load(out)["kappa_e"]
    np.testing.assert_array_equal(maps["plain"], maps["packed"])


def test_bin_shear_matches_cli(cli, tmp_path):
    """bin_shear on columns in memory gives the CLI's maps from the same catalogue."""
    rng = np.random.default_rng(3)
    n = 5000
    cols = {
        "ra": 30.0 + rng.uniform(-0.3, 0.3, n),
        "dec": -40.0 + rng.uniform(-0.2, 0.2, n),
        "e1": rng.normal(0.02, 0.26, n),
        "e2": rng.normal(0.0, 0.26, n),
        "w": rng.uniform(0.5, 1.5, n),
    }
    path = tmp_path / "cat.csv"
    with open(path, "w") as f:
        f.write("ra,dec,e1,e2,w\n")
        for row in zip(*cols.values()):
            f.write(",".join(repr(float(v)) for v in row) + "\n")
    out = tmp_path / "maps.npz"
    r = subprocess.run(
        [str(cli), "-q", "bin-shear", "--catalog", str(path), "--npix", "16", "--pixel-arcmin", "2", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    ref = np.load(out)
    ours = cd.bin_shear(cols, npix=16, pixel_arcmin=2.0)
    for k in ("e1", "e2", "noise_std", "mask", "sigma_e", "origin_arcmin", "center_deg"):
        np.testing.assert_array_equal(ours[k], ref[k], err_msg=k)
    np.testing.assert_array_equal(ours["counts"], ref["counts"])
    assert cd.bin_shear(str(path), npix=16, pixel_arcmin=2.0)["e1"].shape == (16, 16)
    with pytest.raises(cd.CosmodiffError, match="no position columns"):
        cd.bin_shear({"e1": [0.1], "e2": [0.0]}, npix=4, pixel_arcmin=1.0)
