#!/usr/bin/env python3
"""Reference halo mass functions (Tinker 2008 200m, Sheth & Tormen 1999) from CCL.

Usage:
    /work/venv-ccl/bin/python bench/halos/make_hmf_reference.py OUT.npz

Cosmology: the 'fid' cosmology in CCL's `matched` configuration of
/work/shared/reference/README.md (Neff=0, Omega_g=0, T_CMB=2.726, m_nu=0,
transfer_function='eisenstein_hu' (with BAO), matter_power_spectrum='linear',
sigma8-normalised), i.e. the same physics as the `ccl_matched_*` keys there.

Writes OUT.npz (uncompressed, float64, C order, no strings, no pickles):
    log10_mass_h          [91]     log10 M [Msun/h], numpy.linspace(11, 15.5, 91)
                                   (M_h = logspace(11, 15.5, 91); CCL gets M = M_h / h [Msun])
    a                     [2]      scale factors (1, 0.5)
    z                     [2]      redshifts (0, 1)
    params                [5]      Omega_c, Omega_b, h, n_s, sigma8  (w0 = -1, wa = 0)
    sigma_M               [2, 91]  ccl.sigmaM(cosmo, M, a)  (CCL's bicubic (log10 M, a) spline)
    radius_mpc_h          [91]     Lagrangian top-hat radius R = (3 M / (4 pi rho_m0))^(1/3) [Mpc/h]
    dndlnM_tinker08_200m  [2, 91]  dn/dlnM [(Mpc/h)^-3], MassFuncTinker08(mass_def=MassDef200m)
    dndlnM_sheth_tormen   [2, 91]  dn/dlnM [(Mpc/h)^-3], MassFuncSheth99(mass_def=MassDefFof)
  extras, for diagnosing disagreements:
    dlninvsigma_dlnM      [2, 91]  -dln sigma/dln M as CCL uses it in the HMF (derivative of its spline)
    f_tinker08_200m       [2, 91]  multiplicity f(sigma) of Tinker08 (dimensionless)
    f_sheth_tormen        [2, 91]  multiplicity f(sigma) of Sheth99 (dimensionless)
    sigma_M_quad          [2, 91]  independent check: sigma from Simpson quadrature of CCL's own
                                   P_lin(k, a) over ln k in [K_MIN, K_MAX] = [5e-5, 1e3] /Mpc
    dlninvsigma_dlnM_quad [2, 91]  same quadrature for -dln sigma/dln M (analytic dW/dR)
    rho_m_h               [1]      comoving mean matter density [(Msun/h) / (Mpc/h)^3]
                                   = RHO_CRITICAL * Omega_m
and OUT.json (same stem) with versions, configuration and the conventions CCL uses.

Conversions: CCL's MassFunc.__call__ returns dn/dlog10 M in comoving Mpc^-3 for M in Msun;
dn/dlnM [(Mpc/h)^-3] = (dn/dlog10M) / ln(10) / h^3 (dlnM does not depend on the mass unit).
"""
import json
import math
import sys
from pathlib import Path

import numpy as np
import scipy
from scipy.integrate import simpson

import pyccl as ccl

PARAM_NAMES = ["Omega_c", "Omega_b", "h", "n_s", "sigma8"]
FID = dict(Omega_c=0.2589, Omega_b=0.0486, h=0.6774, n_s=0.9667, sigma8=0.8159)
MATCHED = dict(
    Neff=0.0,
    Omega_g=0.0,
    T_CMB=2.726,
    m_nu=0.0,
    Omega_k=0.0,
    w0=-1.0,
    wa=0.0,
    transfer_function="eisenstein_hu",
    matter_power_spectrum="linear",
)
A_VALUES = np.array([1.0, 0.5])
LOG10_MASS_H = np.linspace(11.0, 15.5, 91)  # == log10(numpy.logspace(11, 15.5, 91))
SHARED_PK = Path("/work/shared/reference/cosmology/pk_fid.npz")


def sigma_quad(cosmo, R, a, kmin, kmax, n=100001):
    """sigma(R) and -dln sigma/dln M by Simpson quadrature in ln k of CCL's P_lin(k, a).

    R in Mpc, k in 1/Mpc; M ∝ R^3 so dln sigma/dln M = (1/3) dln sigma/dln R.
    """
    lk = np.linspace(math.log(kmin), math.log(kmax), n)
    k = np.exp(lk)
    pk = ccl.linear_matter_power(cosmo, k, a)
    sig = np.empty(R.size)
    dl = np.empty(R.size)
    for i, r in enumerate(R):
        x = k * r
        w = 3.0 * (np.sin(x) - x * np.cos(x)) / x**3
        dw = 3.0 * (np.sin(x) * (x**2 - 3.0) + 3.0 * x * np.cos(x)) / x**4  # dW/dx
        s2 = simpson(k**3 * pk * w * w, x=lk) / (2.0 * np.pi**2)
        rds2 = simpson(k**3 * pk * 2.0 * w * dw * x, x=lk) / (2.0 * np.pi**2)  # R dsigma^2/dR
        sig[i] = math.sqrt(s2)
        dl[i] = -rds2 / s2 / 6.0
    return sig, dl


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = Path(sys.argv[1])

    h = FID["h"]
    cosmo = ccl.Cosmology(**FID, **MATCHED)
    omega_m = cosmo["Omega_m"]
    assert abs(omega_m - (FID["Omega_c"] + FID["Omega_b"])) < 1e-15

    # Check the configuration against the shared `matched` reference spectra.
    pk_check = None
    if SHARED_PK.exists():
        ref = np.load(SHARED_PK)
        kh = ref["k_h_Mpc"]
        worst = 0.0
        for iz, zz in enumerate(ref["z"]):
            p = ccl.linear_matter_power(cosmo, kh * h, 1.0 / (1.0 + zz)) * h**3
            worst = max(worst, float(np.max(np.abs(p / ref["ccl_matched_plin_ehwiggle"][iz] - 1))))
        pk_check = worst
        assert worst < 1e-10, f"configuration differs from ccl_matched_plin_ehwiggle: {worst}"

    mass_h = 10.0**LOG10_MASS_H  # Msun/h
    mass = mass_h / h  # Msun (CCL units)
    ln10 = math.log(10.0)

    # Mean matter density: RHO_CRITICAL [Msun/Mpc^3 / h^2] * Omega_m * h^2.
    rho_crit = ccl.physical_constants.RHO_CRITICAL
    rho_m = rho_crit * omega_m * h**2  # Msun / Mpc^3 (comoving)
    rho_m_ccl = cosmo.rho_x(1.0, "matter")  # what sigma(M)'s m2r uses (C: ccl_rho_x(a=1, matter, comoving))
    assert abs(rho_m_ccl / rho_m - 1) < 1e-14
    radius = (3.0 * mass / (4.0 * np.pi * rho_m)) ** (1.0 / 3.0)  # Mpc
    radius_ccl = ccl.halos.mass2radius_lagrangian(cosmo, mass)
    assert np.allclose(radius, radius_ccl, rtol=1e-10, atol=0)
    radius_h = radius * h  # Mpc/h

    mf_t08 = ccl.halos.MassFuncTinker08(mass_def=ccl.halos.MassDef200m)
    mf_st = ccl.halos.MassFuncSheth99(mass_def=ccl.halos.MassDefFof)  # fof required (strict)
    assert mf_st.use_delta_c_fit is False
    assert abs(mf_st.A / (0.3222 * math.sqrt(2 * mf_st.a / math.pi)) - 1) < 1e-10

    shape = (A_VALUES.size, mass.size)
    sigma_m = np.empty(shape)
    dlninvs = np.empty(shape)
    n_t08 = np.empty(shape)
    n_st = np.empty(shape)
    f_t08 = np.empty(shape)
    f_st = np.empty(shape)
    sig_q = np.empty(shape)
    dl_q = np.empty(shape)
    sp = cosmo.cosmo.spline_params
    for ia, a in enumerate(A_VALUES):
        sigma_m[ia] = ccl.sigmaM(cosmo, mass, a)
        d, status = ccl.lib.dlnsigM_dlogM_vec(cosmo.cosmo, a, np.log10(mass), mass.size, 0)
        assert status == 0
        dlninvs[ia] = d / ln10
        dn_t08 = mf_t08(cosmo, mass, a)  # dn/dlog10M [Mpc^-3]
        dn_st = mf_st(cosmo, mass, a)
        n_t08[ia] = dn_t08 / ln10 / h**3
        n_st[ia] = dn_st / ln10 / h**3
        lnm = np.log(mass)
        f_t08[ia] = mf_t08._get_fsigma(cosmo, sigma_m[ia], a, lnm)
        f_st[ia] = mf_st._get_fsigma(cosmo, sigma_m[ia], a, lnm)
        # dn/dlnM = f(sigma) rho_m / M * (-dln sigma/dln M)  (all in CCL units)
        for f, dn in ((f_t08[ia], dn_t08), (f_st[ia], dn_st)):
            np.testing.assert_allclose(f * rho_m / mass * dlninvs[ia], dn / ln10, rtol=1e-12)
        sig_q[ia], dl_q[ia] = sigma_quad(cosmo, radius, a, sp.K_MIN, sp.K_MAX)

    # How far CCL's spline-based sigma(M) numerics sit from the direct quadrature.
    rel = lambda x, y: float(np.max(np.abs(x / y - 1)))  # noqa: E731
    n_t08_q = np.empty(shape)
    n_st_q = np.empty(shape)
    for ia, a in enumerate(A_VALUES):
        lnm = np.log(mass)
        n_t08_q[ia] = mf_t08._get_fsigma(cosmo, sig_q[ia], a, lnm) * rho_m / mass * dl_q[ia] / h**3
        n_st_q[ia] = mf_st._get_fsigma(cosmo, sig_q[ia], a, lnm) * rho_m / mass * dl_q[ia] / h**3
    numerics = {
        "sigma_M_vs_quad_maxrel": rel(sigma_m, sig_q),
        "sigmaR_direct_vs_quad_maxrel": rel(
            np.array([ccl.sigmaR(cosmo, radius, a) for a in A_VALUES]), sig_q),
        "dlninvsigma_dlnM_vs_quad_maxrel": rel(dlninvs, dl_q),
        "dndlnM_tinker08_200m_vs_quad_maxrel": rel(n_t08, n_t08_q),
        "dndlnM_sheth_tormen_vs_quad_maxrel": rel(n_st, n_st_q),
        "note": "quad = Simpson on 100001 points in ln k over [K_MIN, K_MAX] of "
                "ccl.linear_matter_power(cosmo, k, a); these numbers are the numerical "
                "floor of the CCL reference itself",
    }

    params = np.array([FID[n] for n in PARAM_NAMES], dtype=np.float64)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Uncompressed (stored) npz: the workspace's ndarray-npy reads stored members only.
    np.savez(
        out,
        log10_mass_h=LOG10_MASS_H,
        a=A_VALUES,
        z=1.0 / A_VALUES - 1.0,
        params=params,
        sigma_M=sigma_m,
        radius_mpc_h=radius_h,
        dndlnM_tinker08_200m=n_t08,
        dndlnM_sheth_tormen=n_st,
        dlninvsigma_dlnM=dlninvs,
        f_tinker08_200m=f_t08,
        f_sheth_tormen=f_st,
        sigma_M_quad=sig_q,
        dlninvsigma_dlnM_quad=dl_q,
        rho_m_h=np.array([rho_crit * omega_m]),
    )

    # Conventions, read off pyccl's Python (halos/hmfunc/*.py, halos/halo_model_base.py)
    # and C (src/ccl_massfunc.c, src/ccl_power.c) sources.
    d200 = 200.0
    ld = math.log10(d200)
    t08_alpha = 10.0 ** (-((0.75 / (ld - math.log10(75.0))) ** 1.2))
    st_p, st_a = mf_st.p, mf_st.a
    a_st_norm = 1.0 / (1.0 + 2.0**-st_p * math.gamma(0.5 - st_p) / math.sqrt(math.pi))
    gp = cosmo.cosmo.gsl_params
    meta = {
        "pyccl_version": ccl.__version__,
        "numpy_version": np.__version__,
        "scipy_version": scipy.__version__,
        "python_version": sys.version.split()[0],
        "command": "/work/venv-ccl/bin/python bench/halos/make_hmf_reference.py "
                   + str(out),
        "cosmology": {"tag": "fid", **FID, "w0": -1.0, "wa": 0.0},
        "ccl_configuration": {"name": "matched", **MATCHED},
        "params_columns": PARAM_NAMES,
        "config_check_vs_shared_pk_fid_ccl_matched_plin_ehwiggle_maxrel": pk_check,
        "grids": {
            "log10_mass_h": "numpy.linspace(11, 15.5, 91); M_h in Msun/h; CCL is called with M = M_h / h in Msun",
            "a": A_VALUES.tolist(),
        },
        "units": {
            "sigma_M": "dimensionless",
            "radius_mpc_h": "comoving Mpc/h",
            "dndlnM_*": "comoving (Mpc/h)^-3 per unit ln M",
            "rho_m_h": "(Msun/h) / (Mpc/h)^3, comoving",
            "conversion": "dn/dlnM [(Mpc/h)^-3] = CCL dn/dlog10M [Mpc^-3] / ln(10) / h^3",
        },
        "mean_matter_density": {
            "formula": "rho_m0 = RHO_CRITICAL * Omega_m * h^2 [Msun/Mpc^3], comoving, a-independent",
            "RHO_CRITICAL_Msun_per_Mpc3_over_h2": rho_crit,
            "Omega_m": omega_m,
            "Omega_m_definition": "Omega_c + Omega_b + Omega_nu_mass (massive neutrinos only; "
                                  "photons and massless neutrinos never enter). Here m_nu = 0, "
                                  "so Omega_m = Omega_c + Omega_b = 0.3075",
            "rho_m0_Msun_per_Mpc3": rho_m,
            "rho_m0_Msun_h_per_Mpc_h3": rho_crit * omega_m,
            "where": "sigma(M) radius: C sigmaM_m2r uses ccl_rho_x(a=1, matter, comoving); "
                     "MassFunc.__call__ uses const.RHO_CRITICAL * cosmo['Omega_m'] * h^2; identical here",
            "physical_constants": {
                "GNEWT": ccl.physical_constants.GNEWT,
                "SOLAR_MASS": ccl.physical_constants.SOLAR_MASS,
                "MPC_TO_METER": ccl.physical_constants.MPC_TO_METER,
            },
        },
        "sigma_M": {
            "definition": "sigma^2(R) = 1/(2 pi^2) int dk k^2 P_lin(k, a) W(kR)^2, "
                          "W(x) = 3 (sin x - x cos x) / x^3, R = (3 M / (4 pi rho_m0))^(1/3) (Lagrangian, comoving)",
            "power_spectrum": "linear P(k, a) of the cosmology (here Eisenstein-Hu with BAO, "
                              "P(k, a) = P_EH(k) D(a)^2 with CCL's growth factor, sigma8-normalised at a=1; "
                              "stored as a ln P spline on a log k grid K_MIN..K_MAX with N_K per decade)",
            "integration": "gsl cquad in log10 k over [log10 K_MIN, log10 K_MAX] (k in 1/Mpc, not h/Mpc), "
                           "epsrel INTEGRATION_SIGMAR_EPSREL on sigma^2",
            "K_MIN_per_Mpc": sp.K_MIN,
            "K_MAX_per_Mpc": sp.K_MAX,
            "N_K_per_decade": sp.N_K,
            "INTEGRATION_SIGMAR_EPSREL": gp.INTEGRATION_SIGMAR_EPSREL,
            "spline": "ln sigma tabulated on LOGM_SPLINE_NM points linear in log10 M [Msun] over "
                      "[LOGM_SPLINE_MIN, LOGM_SPLINE_MAX] times an a-grid (A_SPLINE_NLOG_SM log-spaced "
                      "points from A_SPLINE_MINLOG_SM, then A_SPLINE_NA_SM linear from A_SPLINE_MIN_SM to 1), "
                      "gsl bicubic 2-D spline; ccl.sigmaM evaluates the spline; the HMF's dln sigma/dlog10 M "
                      "is the spline's analytic x-derivative",
            "LOGM_SPLINE_MIN": sp.LOGM_SPLINE_MIN,
            "LOGM_SPLINE_MAX": sp.LOGM_SPLINE_MAX,
            "LOGM_SPLINE_NM": sp.LOGM_SPLINE_NM,
            "A_SPLINE_MINLOG_SM": sp.A_SPLINE_MINLOG_SM,
            "A_SPLINE_MIN_SM": sp.A_SPLINE_MIN_SM,
            "A_SPLINE_NLOG_SM": sp.A_SPLINE_NLOG_SM,
            "A_SPLINE_NA_SM": sp.A_SPLINE_NA_SM,
        },
        "mass_function_general": "dn/dlog10M = f(sigma) * rho_m0 / M * (-dln sigma/dlog10 M) "
                                 "[Mpc^-3], M in Msun; hence dn/dlnM = f(sigma) rho_m0 / M (-dln sigma/dln M)",
        "tinker08": {
            "class": "ccl.halos.MassFuncTinker08(mass_def=ccl.halos.MassDef200m)",
            "mass_definition": "200m: M = (4 pi / 3) 200 rho_m(z) R^3 with rho_m(z) the mean matter density "
                               "at that epoch (MassDef(200, 'matter')); Delta_m = 200 at all a",
            "f_sigma": "f = A [ (sigma/b)^(-a_) + 1 ] exp(-c / sigma^2)",
            "parameters_vs_Delta": "A0, a0, b0, c linearly interpolated in log10 Delta_m from Tinker08 "
                                   "Table 2 (Delta = 200..3200); at Delta = 200: A0 = 0.186, a0 = 1.47, "
                                   "b0 = 2.57, c = 1.19",
            "redshift_dependence": "A = A0 a^0.14 = A0 (1+z)^-0.14; a_ = a0 a^0.06 = a0 (1+z)^-0.06; "
                                   "b = b0 a^alpha = b0 (1+z)^-alpha with alpha = 10^(-(0.75 / log10(Delta/75))^1.2); "
                                   "c has no z-dependence; no cap at z = 3 and no renormalisation",
            "alpha_at_Delta_200": t08_alpha,
            "A0": float(mf_t08.pA0(ld)), "a0": float(mf_t08.pa0(ld)),
            "b0": float(mf_t08.pb0(ld)), "c": float(mf_t08.pc(ld)),
        },
        "sheth_tormen": {
            "class": "ccl.halos.MassFuncSheth99(mass_def=ccl.halos.MassDefFof)",
            "mass_definition": "'fof' (MassDef('fof', 'matter')), required: any other definition raises "
                               "unless mass_def_strict=False; the mass definition does not enter f(sigma)",
            "f_sigma": "f = A nu [1 + (a nu^2)^-p] exp(-a nu^2 / 2), nu = delta_c / sigma",
            "A": mf_st.A, "a": st_a, "p": st_p,
            "A_equivalent": f"A = 0.3222 sqrt(2 a / pi) = {0.3222 * math.sqrt(2 * st_a / math.pi)!r} "
                            "(the rounded Sheth-Tormen A_ST = 0.3222, hard-coded as 0.21615998645); NOT the exact "
                            f"normalisation A_ST = 1/(1 + 2^-p Gamma(1/2-p)/sqrt(pi)) = {a_st_norm!r}, which would "
                            f"give {a_st_norm * math.sqrt(2 * st_a / math.pi)!r} ("
                            f"{a_st_norm / 0.3222 - 1:.2e} relative)",
            "delta_c": ccl.halos.get_delta_c(cosmo, 1.0, "EdS"),
            "delta_c_convention": "use_delta_c_fit=False (default): delta_c = (3/20)(12 pi)^(2/3) = 1.68647019984, "
                                  "constant in a and cosmology (no Nakamura-Suto Omega_m(a) correction); "
                                  "redshift enters only through sigma(M, a)",
            "use_delta_c_fit": mf_st.use_delta_c_fit,
        },
        "numerics": numerics,
    }
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    i13 = int(np.argmin(np.abs(LOG10_MASS_H - 13.0)))
    print(f"log10 M_h = {LOG10_MASS_H[i13]}, z = 0: sigma_M = {sigma_m[0, i13]!r}, "
          f"R = {radius_h[i13]!r} Mpc/h, dn/dlnM T08 = {n_t08[0, i13]!r}, ST = {n_st[0, i13]!r} (Mpc/h)^-3")
    print(json.dumps(numerics, indent=2))
    print(f"wrote {out} and {out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
