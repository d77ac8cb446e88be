"""Simulation, Kaiser-Squires, Wiener filter, C_ell estimator and metrics."""

import numpy as np
import pytest

import cosmodiff as cd


@pytest.fixture(scope="module")
def sim():
    src = [cd.WeakLensing(cd.smail_nz(1, 2, 0.5), 0.26, 30.0), cd.WeakLensing(cd.smail_nz(1, 2, 1.0), 0.26, 30.0)]
    return cd.simulate_lensing(cd.Cosmology(), src, npix=64, pixel_arcmin=4.0, kind="lognormal", seed=3)


def test_simulation_outputs(sim):
    for k in ("kappa", "gamma1", "gamma2", "e1", "e2", "noise_std"):
        assert sim[k].shape == (2, 64, 64) and sim[k].dtype == np.float64
    assert sim["cl_theory"].shape == (3, len(sim["ell"]))
    assert np.all(sim["lognormal_shifts"] > 0)
    # deterministic for a seed, different for another
    src = [cd.WeakLensing(cd.smail_nz(1, 2, 0.5), 0.26, 30.0), cd.WeakLensing(cd.smail_nz(1, 2, 1.0), 0.26, 30.0)]
    again = cd.simulate_lensing(cd.Cosmology(), src, npix=64, pixel_arcmin=4.0, seed=3)
    np.testing.assert_array_equal(again["e1"], sim["e1"])
    other = cd.simulate_lensing(cd.Cosmology(), src, npix=64, pixel_arcmin=4.0, seed=4)
    assert not np.array_equal(other["kappa"], sim["kappa"])
    # shape noise per pixel: sigma_e / sqrt(n A_pix)
    np.testing.assert_allclose(sim["noise_std"], 0.26 / np.sqrt(30.0 * 16.0), rtol=1e-12)
    g = cd.simulate_lensing(cd.Cosmology(), [cd.smail_nz(1, 2, 1.0)], npix=16, kind="gaussian")
    assert g["kappa"].shape == (1, 16, 16) and g["lognormal_shifts"].size == 0


def test_simulation_errors():
    # one bare Nz is one source bin; a scalar shift applies to every bin
    one = cd.simulate_lensing(cd.Cosmology(), cd.smail_nz(1, 2, 1.0), npix=16, lognormal_shifts=0.02)
    assert one["kappa"].shape == (1, 16, 16) and one["lognormal_shifts"][0] == 0.02
    with pytest.raises(ValueError, match="npix"):
        cd.simulate_lensing(cd.Cosmology(), [cd.smail_nz(1, 2, 1.0)], npix=4)
    with pytest.raises(ValueError, match="kind"):
        cd.simulate_lensing(cd.Cosmology(), [cd.smail_nz(1, 2, 1.0)], npix=16, kind="poisson")
    with pytest.raises(ValueError, match="WeakLensing"):
        cd.simulate_lensing(cd.Cosmology(), [cd.NumberCounts(cd.smail_nz(1, 2, 1.0))], npix=16)


def test_kaiser_squires_inverts_noiseless_shear(sim):
    ke, kb = cd.kaiser_squires(sim["gamma1"][1], sim["gamma2"][1], 4.0)
    truth = sim["kappa"][1] - sim["kappa"][1].mean()
    np.testing.assert_allclose(ke, truth, atol=1e-12)
    assert np.max(np.abs(kb)) < 1e-12
    # stacks of bins are handled bin by bin
    ke3, kb3 = cd.kaiser_squires(sim["gamma1"], sim["gamma2"], 4.0)
    assert ke3.shape == (2, 64, 64)
    np.testing.assert_array_equal(ke3[1], ke)
    ks, _ = cd.kaiser_squires(sim["e1"][1], sim["e2"][1], 4.0, smoothing_arcmin=4.0)
    raw, _ = cd.kaiser_squires(sim["e1"][1], sim["e2"][1], 4.0)
    assert cd.rmse(ks, sim["kappa"][1]) < cd.rmse(raw, sim["kappa"][1])
    with pytest.raises(ValueError, match="square"):
        cd.kaiser_squires(np.zeros((4, 5)), np.zeros((4, 5)))


def test_wiener_beats_kaiser_squires(sim):
    b = 1
    pair = 2  # (1, 1)
    w = cd.wiener(sim["e1"][b], sim["e2"][b], sim["noise_std"][b], 4.0, sim["ell"], sim["cl_theory"][pair], samples=4, seed=1)
    assert w["kappa"].shape == (64, 64) and w["samples"].shape == (4, 64, 64)
    assert np.all(w["kappa_std"] > 0) and w["residual"] < 1e-6
    raw, _ = cd.kaiser_squires(sim["e1"][b], sim["e2"][b], 4.0)
    truth = sim["kappa"][b]
    assert cd.pearson(w["kappa"], truth) > cd.pearson(raw, truth)
    assert cd.rmse(w["kappa"], truth) < cd.rmse(raw, truth)
    # scalar noise and a mask with NaN in masked pixels
    mask = np.ones((64, 64))
    mask[10:20, :] = 0
    e1 = sim["e1"][b].copy()
    e1[mask == 0] = np.nan
    wm = cd.wiener(e1, sim["e2"][b], float(sim["noise_std"][b, 0, 0]), 4.0, sim["ell"], sim["cl_theory"][pair], mask=mask, b_mode=False)
    assert np.all(np.isfinite(wm["kappa"])) and "kappa_b" not in wm and "kappa_std" not in wm


def test_measure_cl_and_metrics(sim):
    ke, _ = cd.kaiser_squires(sim["gamma1"][1], sim["gamma2"][1], 4.0)
    est = cd.measure_cl(ke, pixel_arcmin=4.0, n_bins=5)
    assert est["cl"].shape == (5,) and est["edges"].shape == (6,) and np.all(est["n_modes"] > 0)
    cross = cd.measure_cl(ke, ke, pixel_arcmin=4.0, edges=est["edges"])
    np.testing.assert_array_equal(cross["cl"], est["cl"])
    # the lognormal map's spectrum follows theory within cosmic variance
    th = np.interp(est["ell"], sim["ell"], sim["cl_theory"][2])
    assert np.all(np.abs(est["cl"] / th - 1) < 5 * np.sqrt(2 / est["n_modes"]) + 0.1)
    a = np.arange(16.0).reshape(4, 4)
    assert cd.rmse(a, a + 2) == pytest.approx(2.0)
    assert cd.pearson(a, 3 * a + 1) == pytest.approx(1.0)
    assert cd.rmse(a, a + 2, mask=(a > 5).astype(float)) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="shapes"):
        cd.rmse(a, np.zeros(3))


def test_demo_example_runs(tmp_path):
    """examples/demo.py end to end at tiny sizes (the full run is the documented example)."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[3] / "examples" / "demo.py"
    if not script.is_file():
        pytest.skip(f"{script} not found")
    r = subprocess.run([sys.executable, str(script), "--smoke", "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    d = np.load(tmp_path / "demo_py.npz")
    assert d["kappa_wiener"].shape == (32, 32) and d["posterior_draws"].shape == (1, 10, 2)
    assert "[5/5]" in r.stdout
