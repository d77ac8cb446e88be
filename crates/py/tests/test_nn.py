"""The network-based entry points: mass maps with the learned score prior
(`massmap_diffusion`) and simulation-based inference (`sbi_train`,
`SbiModel`). Each is cross-checked against the Rust CLI (same library
calls, same seed -> the same numbers) and against a problem with a known
answer."""

import subprocess

import numpy as np
import pytest

import cosmodiff as cd


def lognormal_shear(npix=64, seed=1):
    """A 64x64, 2-arcmin log-normal lensing simulation (the shipped prior's size)."""
    src = cd.WeakLensing(cd.smail_nz(2.0, 1.5, 0.64), sigma_e=0.26, gals_per_arcmin2=30.0)
    return cd.simulate_lensing(cd.Cosmology(), src, npix=npix, pixel_arcmin=2.0, seed=seed)


def test_diffusion_prior_info_describes_the_shipped_model():
    info = cd.diffusion_prior_info()
    assert info["npix"] == 64 and info["pixel_arcmin"] == 2.0 and info["hybrid"]


def test_massmap_diffusion_matches_cli_and_beats_noise(cli, tmp_path):
    sim = lognormal_shear()
    e1, e2, sd = sim["e1"][0], sim["e2"][0], sim["noise_std"][0]
    out = cd.massmap_diffusion(e1, e2, sd, samples=4, steps=20, seed=3)
    assert out["samples"].shape == (4, 64, 64)
    assert out["kappa_mean"].shape == out["kappa_std"].shape == (64, 64)
    assert out["antithetic"] and np.all(out["kappa_std"] > 0) and out["acceptance"] is None
    # the same run through `cosmodiff massmap --method diffusion`
    inp, res = tmp_path / "in.npz", tmp_path / "out.npz"
    np.savez(inp, e1=e1, e2=e2, noise_std=sd, pixel_arcmin=2.0)
    r = subprocess.run(
        [str(cli), "-q", "massmap", "--method", "diffusion", "--input", str(inp), "--out", str(res),
         "--samples", "4", "--steps", "20", "--seed", "3"],
        capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stderr
    ref = np.load(res)
    # one implementation (cosmodiff_pipeline::massmap::reconstruct) behind both
    for k in ("kappa_mean", "kappa_std", "samples"):
        np.testing.assert_array_equal(out[k], ref[k], err_msg=k)
    # the posterior mean is closer to the truth than the Kaiser-Squires map
    truth = sim["kappa"][0] - sim["kappa"][0].mean()
    ks, _ = cd.kaiser_squires(e1, e2, pixel_arcmin=2.0)
    assert cd.rmse(out["kappa_mean"] - out["kappa_mean"].mean(), truth) < 0.8 * cd.rmse(ks - ks.mean(), truth)


def test_massmap_diffusion_rejects_bad_input():
    small = np.zeros((16, 16))
    with pytest.raises(cd.CosmodiffError, match="64x64"):
        cd.massmap_diffusion(small, small, 0.02)
    m = np.zeros((64, 64))
    with pytest.raises(cd.CosmodiffError, match="samples"):
        cd.massmap_diffusion(m, m, 0.02, samples=1)
    with pytest.raises(cd.CosmodiffError, match="sampler"):
        cd.massmap_diffusion(m, m, 0.02, sampler="langevin")
    with pytest.raises(cd.CosmodiffError, match="pixel_arcmin"):
        cd.massmap_diffusion(m, m, 0.02, pixel_arcmin=1.0)
    with pytest.raises(cd.CosmodiffError, match="no observed pixels"):
        cd.massmap_diffusion(m, m, 0.02, mask=np.zeros((64, 64)), steps=2)
    with pytest.raises(cd.CosmodiffError, match="noise_std"):
        cd.massmap_diffusion(m, m, np.zeros((32, 32)))
    with pytest.raises(cd.CosmodiffError, match="GiB"):
        cd.massmap_diffusion(m, m, 0.02, samples=10**9, steps=2)
    for bad in (-1, 2.5, True):
        with pytest.raises(cd.CosmodiffError, match="seed"):
            cd.massmap_diffusion(m, m, 0.02, seed=bad)


def gaussian_linear(n, seed):
    """theta ~ U(-1, 1)^2, x = theta + N(0, 0.1^2): for an x_obs well inside
    the box the posterior is N(x_obs, 0.1^2) per dimension."""
    rng = np.random.default_rng(seed)
    theta = rng.uniform(-1.0, 1.0, size=(n, 2))
    return theta, theta + 0.1 * rng.standard_normal((n, 2))


def test_sbi_npe_recovers_a_known_posterior_and_matches_cli(cli, tmp_path):
    theta, x = gaussian_linear(2000, 0)
    model = cd.sbi_train(theta, x, "npe", prior=[(-1.0, 1.0), (-1.0, 1.0)], max_epochs=200, seed=1)
    assert (model.method, model.dim_theta, model.dim_x) == ("npe", 2, 2)
    rep = model.report
    assert 1 <= rep["epochs"] <= 200 and len(rep["train_loss"]) == rep["epochs"]
    x_obs = np.array([0.2, -0.3])
    s = model.sample(x_obs, 4000, seed=5)
    assert s.shape == (4000, 2)
    # posterior N(x_obs, 0.1^2): mean to 0.02, sd to 20% (it stops early, ~90 epochs)
    np.testing.assert_allclose(s.mean(axis=0), x_obs, atol=0.02)
    np.testing.assert_allclose(s.std(axis=0), 0.1, rtol=0.2)
    # save -> load -> the same draws; `cosmodiff sbi sample` reads the directory
    d = tmp_path / "model"
    model.save(d)
    again = cd.sbi_load(d).sample(x_obs, 4000, seed=5)
    np.testing.assert_array_equal(again, s)
    np.save(tmp_path / "xo.npy", x_obs)
    r = subprocess.run(
        [str(cli), "-q", "sbi", "sample", "--model", str(d), "--x-obs", str(tmp_path / "xo.npy"),
         "--num-samples", "4000", "--seed", "5", "--out", str(tmp_path / "s.npy")],
        capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stderr
    np.testing.assert_allclose(np.load(tmp_path / "s.npy"), s, rtol=1e-9, atol=1e-12)
    assert np.isneginf(model.prior_log_prob(np.array([[2.0, 0.0]]))[0])
    # any array-like, in any memory order, means the same rows
    t = np.array([[0.2, 0.5], [0.3, 1.2], [0.55, 0.45]])
    want = model.prior_log_prob(t)
    assert np.isneginf(want[1]) and np.isfinite(want[0]) and np.isfinite(want[2])
    for same in (np.asfortranarray(t), t.tolist(), t.astype(np.float32), np.repeat(t, 2, axis=0)[::2]):
        np.testing.assert_array_equal(model.prior_log_prob(same), want)
    np.testing.assert_array_equal(model.sample(list(x_obs), 10, seed=5), model.sample(x_obs, 10, seed=5))
    # an observation of dim_x values in another shape (a CNN model's map) is one observation
    np.testing.assert_array_equal(model.sample(x_obs.reshape(2, 1), 10, seed=5), model.sample(x_obs, 10, seed=5))
    with pytest.raises(cd.CosmodiffError, match="seed"):
        model.sample(x_obs, 10, seed=-1)
    # complex input would lose its imaginary part with only a numpy warning
    with pytest.raises(cd.CosmodiffError, match="theta: complex values"):
        model.prior_log_prob(t + 0j)
    with pytest.raises(cd.CosmodiffError, match="empty"):
        model.save("")


def test_sbi_rejects_bad_input():
    theta, x = gaussian_linear(100, 0)
    with pytest.raises(cd.CosmodiffError, match="unknown method"):
        cd.sbi_train(theta, x, "abc")
    with pytest.raises(cd.CosmodiffError, match="simulations"):
        cd.sbi_train(theta, x[:50], "npe")
    with pytest.raises(cd.CosmodiffError, match="x: complex values"):
        cd.sbi_train(theta, x * (1 + 1j), "npe")
    with pytest.raises(cd.CosmodiffError, match="embedding"):
        cd.sbi_train(theta, x, "npe", summary_dim=2)
    with pytest.raises(cd.CosmodiffError, match="max epochs must be at least 1"):
        cd.sbi_train(theta, x, "npe", max_epochs=0)
    with pytest.raises(cd.CosmodiffError, match="bins applies to spline flows"):
        cd.sbi_train(theta, x, "nle", bins=4)
    bad = x.copy()
    bad[7, 1] = np.nan
    with pytest.raises(cd.CosmodiffError, match="row 7"):
        cd.sbi_train(theta, bad, "npe")
    with pytest.raises(cd.CosmodiffError):
        cd.sbi_load("/nonexistent/model")
    with pytest.raises(cd.CosmodiffError, match="expected a model directory, got None"):
        cd.sbi_load(None)
    with pytest.raises(cd.CosmodiffError, match="one \\(low, high\\) pair"):
        cd.sbi_train(theta, x, "npe", prior=[0.1, 0.6])


def test_map_inputs_are_checked():
    m = np.zeros((16, 16))
    # metrics skip masked pixels (NaN there is fine) and refuse unmasked NaN
    assert cd.rmse([[1.0, np.nan]], [[2.0, 3.0]], mask=[[1, 0]]) == 1.0
    with pytest.raises(cd.CosmodiffError, match="pixel 1"):
        cd.rmse([[1.0, np.nan]], [[2.0, 3.0]])
    with pytest.raises(cd.CosmodiffError, match="1 to 100000 bins"):
        cd.measure_cl(np.ones((32, 32)), pixel_arcmin=2.0, n_bins=10**9)
    with pytest.raises(cd.CosmodiffError, match="1 GiB"):
        cd.wiener(m, m, 0.3, 2.0, [10.0, 1e4], [1e-9, 1e-9], samples=10**9)
    with pytest.raises(cd.CosmodiffError, match="below 2\\*\\*64"):
        cd.wiener(m, m, 0.3, 2.0, [10.0, 1e4], [1e-9, 1e-9], seed=2**64)
    with pytest.raises(cd.CosmodiffError, match="e1: complex values"):
        cd.kaiser_squires(m + 1j * m, m, pixel_arcmin=2.0)
    nan = m.copy()
    nan[2, 3] = np.nan
    with pytest.raises(cd.CosmodiffError, match="non-finite value at pixel 35"):
        cd.kaiser_squires(nan, m, pixel_arcmin=2.0)
    with pytest.raises(cd.CosmodiffError, match="no source bins"):
        cd.kaiser_squires(np.zeros((0, 16, 16)), np.zeros((0, 16, 16)))
    src = cd.WeakLensing(cd.smail_nz(2.0, 1.5, 0.64))
    with pytest.raises(cd.CosmodiffError, match="lognormal_shifts applies"):
        cd.simulate_lensing(cd.Cosmology(), src, npix=16, kind="gaussian", lognormal_shifts=[0.1])
