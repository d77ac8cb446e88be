"""NUTS and MAP from the C_ell likelihood (short runs)."""

import numpy as np
import pytest

import cosmodiff as cd


def setup():
    c = cd.Cosmology()
    ts = [cd.WeakLensing(cd.smail_nz(1, 2, 0.5), 0.26, 15.0), cd.WeakLensing(cd.smail_nz(1, 2, 1.0), 0.26, 15.0)]
    ell = np.geomspace(100, 2000, 4)
    return c, ts, ell


def test_short_nuts_run_is_deterministic():
    c, ts, ell = setup()
    params = [("Omega_c", {"prior": "uniform", "low": 0.1, "high": 0.6}), ("sigma8", ("uniform", 0.4, 1.3))]
    kw = dict(data_cl=None, params=params, chains=2, warmup=40, draws=20, seed=5, max_depth=5)
    s = cd.sample_cl(c, ts, ell, 0.1, **kw)
    assert s["draws"].shape == (2, 20, 2) and s["names"] == ["Omega_c", "sigma8"]
    assert s["diverging"].shape == (2, 20) and s["diverging"].dtype == bool
    summ = s["summary"]
    assert [p["name"] for p in summ["params"]] == ["Omega_c", "sigma8"]
    for key in ("mean", "sd", "q05", "q50", "q95", "r_hat", "ess_bulk", "ess_tail"):
        assert key in summ["params"][0]
    assert np.all((s["draws"][..., 0] > 0.1) & (s["draws"][..., 0] < 0.6))
    again = cd.sample_cl(c, ts, ell, 0.1, **kw)
    np.testing.assert_array_equal(again["draws"], s["draws"])


def test_map_and_prior_errors():
    c, ts, ell = setup()
    m = cd.find_map_cl(c, ts, ell, 0.1, params={"Omega_c": ("normal", 0.26, 0.05), "sigma8": ("uniform", 0.4, 1.3)})
    assert m["names"] == ["Omega_c", "sigma8"] and m["converged"]
    np.testing.assert_allclose(m["x"], [c.Omega_c, c.sigma8], rtol=2e-3)
    with pytest.raises(ValueError, match="prior of sigma8"):
        cd.sample_cl(c, ts, ell, 0.1, params=[("Omega_c", ("uniform", 0.1, 0.6)), ("sigma8", {"prior": "uniform", "low": 1.0, "high": 0.5})], draws=10)
    with pytest.raises(ValueError, match="unknown cosmological parameter"):
        cd.sample_cl(c, ts, ell, 0.1, params=[("Omega_x", ("uniform", 0.1, 0.6))], draws=10)
    with pytest.raises(ValueError, match="draws"):
        cd.sample_cl(c, ts, ell, 0.1, draws=5)
    # data far outside the prior: the optimiser stops on a bound, which is no mode
    with pytest.raises(cd.CosmodiffError, match="lies on its prior boundary"):
        cd.find_map_cl(c, ts, ell, 0.1, data_cl=np.full((3, 4), 1.0))
    # names without priors (as fisher takes them), NaN in a prior, a run too big for memory
    with pytest.raises(cd.CosmodiffError, match=r"params\[0\] = 'sigma8': expected a \(name, prior\) pair"):
        cd.sample_cl(c, ts, ell, 0.1, params=["sigma8"], draws=10)
    with pytest.raises(cd.CosmodiffError, match="prior of sigma8: NaN or infinite"):
        cd.sample_cl(c, ts, ell, 0.1, params={"sigma8": {"prior": "uniform", "low": float("nan"), "high": 1.0}}, draws=10)
    with pytest.raises(cd.CosmodiffError, match="chains = 4611686018427387904: at most 4096"):
        cd.sample_cl(c, ts, ell, 0.1, chains=2**62, warmup=1, draws=10)
    with pytest.raises(cd.CosmodiffError, match="1 GiB"):
        cd.sample_cl(c, ts, ell, 0.1, chains=4, warmup=1, draws=10**9)
