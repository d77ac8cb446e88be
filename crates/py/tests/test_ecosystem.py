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
    assert len(g.chains) == 4


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
