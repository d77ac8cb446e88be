"""The sbi_lens simulator and the lensing-cosmology workflows from Python."""

import json

import numpy as np
import pytest

import cosmodiff
from conftest import REFERENCE

M128 = REFERENCE / "sbi_lens" / "m_data__128N_5ms_30gpa_0.2se.npy"


def test_kappa_shapes_and_log_likelihood_gradient():
    rng = np.random.default_rng(1)
    z = rng.standard_normal((1, 128, 128))
    k = cosmodiff.sbi_lens_kappa("sbi-lens-128", [0.3, 0.8], z)
    assert k.shape == (128, 128, 1)
    assert 0.005 < k.std() < 0.03
    data = k + 0.0156 * rng.standard_normal(k.shape)
    theta = [0.31, 0.79]
    v, gt, gz = cosmodiff.sbi_lens_log_likelihood("sbi-lens-128", data, theta, z)
    assert np.isfinite(v) and gt.shape == (2,) and gz.shape == (1, 128, 128)
    h = 1e-5
    for i in range(2):
        p = list(theta)
        m = list(theta)
        p[i] += h
        m[i] -= h
        fd = (
            cosmodiff.sbi_lens_log_likelihood("sbi-lens-128", data, p, z)[0]
            - cosmodiff.sbi_lens_log_likelihood("sbi-lens-128", data, m, z)[0]
        ) / (2 * h)
        assert abs(fd - gt[i]) < 1e-4 * max(1.0, abs(fd)), (i, fd, gt[i])
    # One latent pixel by finite differences.
    zp = z.copy()
    zp[0, 3, 7] += 1e-6
    zm = z.copy()
    zm[0, 3, 7] -= 1e-6
    fd = (
        cosmodiff.sbi_lens_log_likelihood("sbi-lens-128", data, theta, zp)[0]
        - cosmodiff.sbi_lens_log_likelihood("sbi-lens-128", data, theta, zm)[0]
    ) / 2e-6
    assert abs(fd - gz[0, 3, 7]) < 1e-4 * max(1.0, abs(fd))


def test_bad_input_raises_one_line():
    z = np.zeros((1, 64, 64))
    with pytest.raises(cosmodiff.CosmodiffError, match="expected \\[n_bins, npix, npix\\]"):
        cosmodiff.sbi_lens_kappa("sbi-lens-128", [0.3, 0.8], z)
    with pytest.raises(cosmodiff.CosmodiffError, match="unknown set-up"):
        cosmodiff.sbi_lens_kappa("des-y3", [0.3, 0.8], z)


@pytest.mark.skipif(not M128.exists(), reason="needs ../shared/reference/sbi_lens")
def test_cl_posterior(tmp_path):
    r = cosmodiff.lensing_cosmology_infer(
        "sbi-lens-128", "cl", str(M128), str(tmp_path / "cl"), draws=100, warmup=100
    )
    assert r["samples"].shape == (200, 2)
    assert r["names"] == ["Omega_c", "sigma8"]
    s = json.loads((tmp_path / "cl" / "summary.json").read_text())
    assert s["fom"]["Omega_c,sigma8"] == pytest.approx(r["summary"]["fom"]["Omega_c,sigma8"])


def test_learned_summary_posterior(tmp_path):
    # A one-epoch MSE compressor on 40 pooled simulations: the interface,
    # not the quality (crates/pipeline/tests/implicit_128.rs checks that).
    r = cosmodiff.lensing_cosmology_infer(
        "sbi-lens-128", "mse", str(M128), str(tmp_path / "mse"),
        n_sims=40, epochs=1, tarp=5, draws=300, pool=4,
    )
    assert r["samples"].shape == (300, 2)
    s = r["summary"]
    assert s["n_simulations"] == 40 and s["pool"] == 4
    assert "tarp_mean_deviation" in s
    assert (tmp_path / "mse" / "compressor" / "compressor.json").exists()
