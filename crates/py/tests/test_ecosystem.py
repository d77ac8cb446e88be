"""cosmodiff's results in the tools cosmologists already use: ArviZ, getdist,
and the command line from Python (`python -m cosmodiff`)."""

import subprocess
import sys

import numpy as np
import pytest

import cosmodiff as cd


def chains():
    c = cd.Cosmology()
    ts = [cd.WeakLensing(cd.smail_nz(1, 2, 0.5), 0.26, 15.0), cd.WeakLensing(cd.smail_nz(1, 2, 1.0), 0.26, 15.0)]
    ell = np.geomspace(100, 2000, 4)
    return cd.sample_cl(c, ts, ell, 0.1, chains=4, warmup=100, draws=200, seed=2, max_depth=6)


def test_to_arviz_summary_matches_our_rhat_and_ess():
    az = pytest.importorskip("arviz")
    s = chains()
    idata = s.to_arviz()
    assert set(idata.posterior.data_vars) == {"Omega_c", "sigma8"}
    assert idata.posterior["sigma8"].shape == (4, 200)
    assert int(idata.sample_stats["diverging"].sum()) == s["summary"]["divergences"]
    table = az.summary(idata, round_to="none")
    for p in s["summary"]["params"]:
        row = table.loc[p["name"]]
        for ours, theirs in (("r_hat", "r_hat"), ("ess_bulk", "ess_bulk"), ("ess_tail", "ess_tail"), ("mean", "mean")):
            assert abs(row[theirs] - p[ours]) <= 1e-6 * max(1.0, abs(p[ours])), (p["name"], ours, row[theirs], p[ours])


def test_to_getdist_keeps_chains_and_latex_labels():
    pytest.importorskip("getdist")
    s = chains()
    g = s.to_getdist()
    assert [p.name for p in g.paramNames.names] == ["Omega_c", "sigma8"]
    assert [p.label for p in g.paramNames.names] == [r"\Omega_c", r"\sigma_8"]
    np.testing.assert_allclose(g.getMeans(), s["draws"].reshape(-1, 2).mean(axis=0), rtol=1e-12)
    assert list(g.chain_offsets) == [0, 200, 400, 600, 800]  # one getdist chain per sampler chain


def test_python_m_cosmodiff_runs_the_command_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "cosmodiff", "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("cosmodiff "), r.stdout + r.stderr
    cfg = tmp_path / "c.toml"
    cfg.write_text('[[tracer]]\nkind = "weak_lensing"\nnz = { kind = "smail", a = 1.0, b = 2.0, z0 = 1.0 }\n[cl]\nell = [100.0, 300.0]\n')
    out = tmp_path / "c.npz"
    r = subprocess.run([sys.executable, "-m", "cosmodiff", "-q", "cosmology", "--config", str(cfg), "--out", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert np.load(out)["cl"].shape == (1, 2)
    bad = subprocess.run([sys.executable, "-m", "cosmodiff", "cosmology", "--config", str(tmp_path / "none.toml"), "--out", str(out)],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "none.toml" in bad.stderr


def conjugate(factor, seed, sims=200, draws=100):
    """theta ~ N(0, I_2), x ~ N(theta, I_2): exact posterior N(x/2, I/2);
    ``factor`` scales the posterior sd (1: calibrated)."""
    rng = np.random.default_rng(seed)
    theta = rng.standard_normal((sims, 2))
    x = theta + rng.standard_normal((sims, 2))
    samples = x[:, None, :] / 2 + factor * np.sqrt(0.5) * rng.standard_normal((sims, draws, 2))
    return samples, theta


def test_calibration_metrics_on_user_samples():
    s, t = conjugate(1.0, 1)
    good = cd.tarp(s, t, seed=0)
    assert good["ks_pvalue"] > 0.01 and abs(good["atc"]) < 0.05 and good["ecp"].shape == good["alpha"].shape
    assert cd.sbc(s, t)["passes_1pct"]
    s_over, t_over = conjugate(0.5, 2)
    assert cd.tarp(s_over, t_over)["atc"] < -0.03
    assert not cd.sbc(s_over, t_over)["passes_1pct"]
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((1000, 2)), rng.standard_normal((1000, 2))
    assert abs(cd.c2st(a, b) - 0.5) < 0.05
    assert cd.c2st(a, b + 3.0) > 0.95
    with pytest.raises(cd.CosmodiffError, match="samples"):
        cd.tarp(s[0], t)
    with pytest.raises(cd.CosmodiffError, match="NaN"):
        cd.c2st(a, np.full((10, 2), np.nan))
