"""Cosmology, background, P(k), C_ell, covariance and Fisher, cross-checked
against the shared CCL reference data and against finite differences."""

import numpy as np
import pytest

import cosmodiff as cd

REF_COSMO = {
    "fid": {},
    "lowOm": {"Omega_c": 0.22, "sigma8": 0.75},
    "w0wa": {"w0": -0.9, "wa": 0.1},
}


def wl2():
    return [cd.WeakLensing(cd.smail_nz(1.0, 2.0, 1.0)), cd.WeakLensing(cd.smail_nz(1.0, 2.0, 0.5))]


def test_defaults_are_planck15():
    c = cd.Cosmology()
    assert c == cd.Cosmology.planck15()
    assert (c.Omega_c, c.Omega_b, c.h, c.n_s, c.sigma8) == (0.2589, 0.0486, 0.6774, 0.9667, 0.8159)
    assert (c.Omega_k, c.w0, c.wa) == (0.0, -1.0, 0.0)
    assert c.Omega_m == pytest.approx(0.3075)
    p18 = cd.Cosmology.planck18()
    assert p18.h == 0.6766 and p18 != c
    assert c.replace(sigma8=0.7).sigma8 == 0.7
    assert c.to_dict()["Omega_c"] == 0.2589
    assert "sigma8=0.8159" in repr(c)


def test_invalid_parameters_raise_valueerror():
    with pytest.raises(ValueError, match=r"sigma8 = -0.1: must be in \(0, 3\]"):
        cd.Cosmology(sigma8=-0.1)
    with pytest.raises(cd.CosmodiffError, match="h"):
        cd.Cosmology(h=2.0)
    with pytest.raises(ValueError, match="unknown cosmological parameter"):
        cd.Cosmology().replace(Omega_x=0.1)
    with pytest.raises(ValueError, match="scale factors"):
        cd.comoving_distance(cd.Cosmology(), [0.5, 1.5])
    with pytest.raises(ValueError, match="transfer"):
        cd.pk_linear(cd.Cosmology(), [0.1], [0.0], transfer="camb")
    # valid-looking but not representable: an error, not an all-NaN array
    with pytest.raises(cd.CosmodiffError, match="not finite"):
        cd.pk_nonlinear(cd.Cosmology(sigma8=1e-200), [0.1, 1.0], [0.0])
    with pytest.raises(ValueError, match="smail"):
        cd.smail_nz(1.0, -2.0, 1.0)
    with pytest.raises(ValueError, match="sigma_e"):
        cd.WeakLensing(cd.smail_nz(1, 2, 1), sigma_e=-1)
    with pytest.raises(ValueError, match="ell"):
        cd.angular_cl(cd.Cosmology(), wl2(), [1.0, 10.0])
    with pytest.raises(ValueError, match="f_sky"):
        cd.fisher(cd.Cosmology(), wl2(), [10.0, 100.0], 2.0)


def test_vectorised_background_shapes():
    c = cd.Cosmology()
    assert isinstance(cd.comoving_distance(c, 0.5), float)
    a = np.linspace(0.1, 1.0, 12).reshape(3, 4)
    for f in (cd.comoving_distance, cd.angular_diameter_distance, cd.luminosity_distance, cd.hubble, cd.growth_factor, cd.growth_rate):
        assert f(c, a).shape == (3, 4)
    assert cd.comoving_distance(c, 1.0) == 0.0
    assert cd.growth_factor(c, 1.0) == pytest.approx(1.0, abs=1e-12)
    assert cd.hubble(c, 1.0) == pytest.approx(67.74, rel=1e-12)
    chi = cd.comoving_distance(c, a)
    np.testing.assert_allclose(cd.luminosity_distance(c, a), chi / a, rtol=1e-14)


@pytest.mark.parametrize("tag", list(REF_COSMO))
def test_background_matches_ccl(refdir, tag):
    r = np.load(refdir / f"background_{tag}.npz")
    c = cd.Cosmology(**REF_COSMO[tag])
    a = r["a"]
    sel = a <= 0.99
    rel = lambda x, y: np.max(np.abs(x / y - 1))  # noqa: E731
    # Reference distances are in Mpc: ours are Mpc/h.
    assert rel(cd.comoving_distance(c, a[sel]) / c.h, r["ccl_matched_chi_Mpc"][sel]) < 2e-5
    assert rel(cd.angular_diameter_distance(c, a[sel]) / c.h, r["ccl_matched_dA_Mpc"][sel]) < 2e-5
    assert rel(cd.hubble(c, a), r["ccl_matched_H_kms_Mpc"]) < 2e-5
    assert rel(cd.growth_factor(c, a), r["ccl_matched_D"]) < 5e-6
    assert rel(cd.growth_rate(c, a), r["ccl_matched_f"]) < 5e-6


def test_power_matches_ccl(refdir):
    r = np.load(refdir / "pk_fid.npz")
    c = cd.Cosmology()
    k, z = r["k_h_Mpc"], r["z"]
    sel = (k >= 1e-3) & (k <= 10.0)
    zs = z <= 3
    lin = cd.pk_linear(c, k, z)
    nl = cd.pk_nonlinear(c, k, z)
    assert lin.shape == (len(z), len(k))
    assert np.max(np.abs(lin / r["ccl_matched_plin_ehwiggle"] - 1)[np.ix_(zs, sel)]) < 1e-3
    assert np.max(np.abs(nl / r["ccl_matched_pnl_halofit_ehwiggle"] - 1)[np.ix_(zs, sel)]) < 3e-3
    bbks = cd.pk_linear(c, k, z, transfer="bbks")
    assert np.max(np.abs(bbks / r["ccl_matched_plin_bbks"] - 1)[np.ix_(zs, sel)]) < 1e-3


def test_cl_wl2_matches_ccl(refdir):
    r = np.load(refdir / "cls_fid.npz")
    ell = r["ell"]
    cl = cd.angular_cl(cd.Cosmology(), wl2(), ell)
    assert cl.shape == (3, len(ell))
    np.testing.assert_array_equal(cd.tracer_pairs(2), r["pairs__wl2"])
    assert np.max(np.abs(cl / r["ccl_matched__wl2"] - 1)) < 2e-3


def test_number_counts_and_noise():
    c = cd.Cosmology()
    ell = np.geomspace(20, 2000, 8)
    ts = [cd.WeakLensing(cd.smail_nz(1, 2, 1.0), sigma_e=0.3, gals_per_arcmin2=5), cd.NumberCounts(cd.gaussian_nz(0.5, 0.1), bias=1.5)]
    cl = cd.angular_cl(c, ts, ell)
    assert cl.shape == (3, 8) and np.all(cl[0] > 0) and np.all(cl[2] > 0)
    n = cd.noise_cl(ts, ell)
    arcmin2_per_sr = (180 * 60 / np.pi) ** 2
    np.testing.assert_allclose(n[0], 0.3**2 / (5 * arcmin2_per_sr), rtol=1e-14)
    np.testing.assert_allclose(n[1], 0.0)
    np.testing.assert_allclose(n[2], 1 / (10 * arcmin2_per_sr), rtol=1e-14)
    # bias enters squared in the auto spectrum
    cl1 = cd.angular_cl(c, [cd.NumberCounts(cd.gaussian_nz(0.5, 0.1), bias=1.0)], ell)
    np.testing.assert_allclose(cl[2], 2.25 * cl1[0], rtol=1e-12)
    # tabulated n(z) equal to the Smail one gives (nearly) the same spectrum
    z = np.linspace(0, 5, 2001)
    tab = cd.tabulated_nz(z, cd.smail_nz(1, 2, 1.0)(z))
    assert tab(1.0) == pytest.approx(cd.smail_nz(1, 2, 1.0)(1.0), rel=1e-4)
    cl_tab = cd.angular_cl(c, [cd.WeakLensing(tab)], ell)
    np.testing.assert_allclose(cl_tab[0], cd.angular_cl(c, [cd.WeakLensing(cd.smail_nz(1, 2, 1.0))], ell)[0], rtol=1e-3)
    assert cd.angular_cl(c, [cd.WeakLensing(cd.delta_nz(1.0))], ell).shape == (1, 8)


def test_fisher_matches_ccl_finite_differences(refdir):
    r = np.load(refdir / "fisher_wl2bin_ccl_finitediff.npz")
    ell, f_sky = r["ell"], float(r["f_sky"])
    c = cd.Cosmology()
    ts = wl2()
    F = cd.fisher(c, ts, ell, f_sky, params=["Omega_c", "sigma8"])
    np.testing.assert_allclose(F, r["fisher"], rtol=1e-2)
    Fh = cd.fisher(c, ts, ell, f_sky, method="hessian")
    np.testing.assert_allclose(Fh, F, rtol=1e-8)
    # covariance convention: Knox with noise, same as the reference
    total = cd.angular_cl(c, ts, ell) + cd.noise_cl(ts, ell)
    cov = cd.gaussian_covariance(total, 2, ell, f_sky)
    np.testing.assert_allclose(np.diag(cov), np.diag(r["cov"]), rtol=2e-3)
    # derivatives against CCL central differences
    dcl = cd.cl_gradient(c, ts, ell, ["Omega_c", "sigma8"])
    assert dcl.shape == (2, 3, len(ell))
    for i in range(2):  # (dC/dOmega_c crosses zero: absolute floor there)
        np.testing.assert_allclose(dcl[i], r["dcl_dparams"][i], rtol=1e-2, atol=1e-3 * np.abs(dcl[i]).max())


def test_exact_derivatives_match_finite_differences():
    c = cd.Cosmology()
    ts = wl2()
    ell = np.geomspace(30, 2000, 6)
    dcl = cd.cl_gradient(c, ts, ell, ["Omega_c", "w0", "h"])
    for i, (p, v) in enumerate([("Omega_c", c.Omega_c), ("w0", c.w0), ("h", c.h)]):
        h = 1e-4 * max(abs(v), 1.0)
        up = cd.angular_cl(c.replace(**{p: v + h}), ts, ell)
        dn = cd.angular_cl(c.replace(**{p: v - h}), ts, ell)
        np.testing.assert_allclose(dcl[i], (up - dn) / (2 * h), rtol=1e-5, atol=1e-6 * np.abs(dcl[i]).max())


def test_likelihood_object():
    c = cd.Cosmology()
    ell = np.geomspace(30, 2000, 6)
    like = cd.ClLikelihood(c, wl2(), ell, 0.1, params=["Omega_c", "sigma8"])
    assert like.names == ["Omega_c", "sigma8"]
    np.testing.assert_array_equal(like.fiducial, [c.Omega_c, c.sigma8])
    assert like.data.shape == (3, 6) and like.covariance.shape == (18, 18)
    v, g = like.value_and_grad([c.Omega_c, c.sigma8])
    assert v == pytest.approx(0.0, abs=1e-9) and np.allclose(g, 0.0, atol=1e-6 * np.abs(like.fisher()).max())
    v2, g2 = like.value_and_grad([0.27, 0.8])
    assert v2 < 0 and v2 == pytest.approx(like.log_likelihood([0.27, 0.8]), rel=1e-12)
    np.testing.assert_allclose(-like.hessian([c.Omega_c, c.sigma8]), like.fisher(), rtol=1e-8)
    assert like.jacobian([0.27, 0.8]).shape == (2, 18)
    with pytest.raises(ValueError, match="expected 2 parameters"):
        like.log_likelihood([0.3])
    with pytest.raises(ValueError, match="data"):
        cd.ClLikelihood(c, wl2(), ell, 0.1, data=np.zeros((2, 6)))
    # the forms the module-level functions accept: one tracer, ell as a list
    # of ints, one parameter name, a scalar value
    one = cd.ClLikelihood(c, wl2()[0], [30, 100, 300, 1000], 0.1, params="sigma8")
    assert one.names == ["sigma8"] and one.data.shape == (1, 4)
    assert one.log_likelihood(c.sigma8) == pytest.approx(0.0, abs=1e-9)
    assert one.log_likelihood(0.7) == one.log_likelihood([0.7]) < 0
    with pytest.raises(cd.CosmodiffError, match="tracers: expected a tracer"):
        cd.ClLikelihood(c, "wl", ell, 0.1)


def test_probe_regressions():
    """Inputs a robustness probe found mishandled: each now gives the right
    answer or a CosmodiffError instead of a panic, an abort or a wrong value."""
    c = cd.Cosmology()
    ell = np.geomspace(30, 2000, 6)
    with pytest.raises(cd.CosmodiffError, match="got None"):
        cd.comoving_distance(c, None)
    with pytest.raises(cd.CosmodiffError, match="tracers: expected a tracer or a list of tracers, got NoneType"):
        cd.angular_cl(c, None, [100.0])
    with pytest.raises(cd.CosmodiffError, match="sources: expected"):
        cd.simulate_lensing(c, None, npix=16)
    with pytest.raises(cd.CosmodiffError, match="z: expected redshifts, got None"):
        cd.smail_nz(2, 1.5, 0.5)(None)
    np.testing.assert_array_equal(cd.smail_nz(2, 1.5, 0.5)([[0.5, 1.0]]).shape, (1, 2))
    # a single name is one parameter, not its letters
    np.testing.assert_array_equal(cd.cl_gradient(c, wl2(), ell, "sigma8"), cd.cl_gradient(c, wl2(), ell, ["sigma8"]))
    f = cd.fisher(c, wl2(), ell, 0.1, params="sigma8")
    assert f.shape == (1, 1) and f[0, 0] > 0
    # covariance: shapes are checked before anything is allocated
    with pytest.raises(cd.CosmodiffError, match="empty"):
        cd.gaussian_covariance(np.ones((1, 0)), 1, np.array([]), 0.5)
    with pytest.raises(cd.CosmodiffError, match="n_tracers = 70000"):
        cd.gaussian_covariance(np.ones((1, 3)), 70000, np.array([10.0, 20, 30]), 0.5)
    with pytest.raises(cd.CosmodiffError, match="NaN or inf"):
        cd.gaussian_covariance(np.array([[1.0, np.nan, 1.0]]), 1, np.array([10.0, 20, 30]), 0.5)
    with pytest.raises(cd.CosmodiffError, match="at most 10000"):
        cd.tracer_pairs(10**6)
    # Smail n(z) far beyond its core is normalised: C_ell does not depend on zmax
    near = cd.angular_cl(c, cd.WeakLensing(cd.smail_nz(2, 1.5, 0.5, zmax=5)), [100.0])
    far = cd.angular_cl(c, cd.WeakLensing(cd.smail_nz(2, 1.5, 0.5, zmax=100)), [100.0])
    np.testing.assert_allclose(far, near, rtol=1e-3)


def test_pickle_roundtrip():
    import pickle

    c = cd.Cosmology(Omega_c=0.3, w0=-0.9)
    assert pickle.loads(pickle.dumps(c)) == c
    ell = np.geomspace(20, 2000, 5)
    z = np.linspace(0.0, 3.0, 31)
    nzs = [
        cd.smail_nz(1, 2, 0.8, shift=0.02),
        cd.gaussian_nz(0.7, 0.1, zmax=2.0),
        cd.delta_nz(1.0),
        cd.tabulated_nz(z, np.exp(-((z - 1) ** 2))),
        cd.histogram_nz([0.2, 0.5, 0.9], [1.0, 2.0]),
    ]
    for nz in nzs:
        back = pickle.loads(pickle.dumps(nz))
        assert repr(back) == repr(nz)
        np.testing.assert_array_equal(back(z), nz(z))
    ts = [cd.WeakLensing(nzs[0], 0.3, 7.0, ia_amplitude=0.4, m_bias=0.01), cd.NumberCounts(nzs[1], bias=1.3, gals_per_arcmin2=3.0)]
    back = pickle.loads(pickle.dumps(ts))
    assert [type(t) for t in back] == [cd.WeakLensing, cd.NumberCounts]
    assert [repr(t) for t in back] == [repr(t) for t in ts]
    np.testing.assert_array_equal(cd.angular_cl(c, back, ell), cd.angular_cl(c, ts, ell))
