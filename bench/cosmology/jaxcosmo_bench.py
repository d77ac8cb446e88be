#!/usr/bin/env python3
"""jax-cosmo side of the cosmodiff cosmology benchmark (issue 3, "Performance").

Runs the same two workloads as `crates/cosmo/examples/bench_cl.rs`, with
jax-cosmo on the CPU in float64:

1. ``cl``: Limber C_ell for two Smail weak-lensing bins (a=1, b=2, z0=1.0 and
   z0=0.5; n(z) normalised on [0, 5]; sigma_e=0.26; 10 galaxies/arcmin^2 per
   bin), halofit (Takahashi), Eisenstein-Hu with BAO wiggles, jax-cosmo's
   Planck15 cosmology, at 50 ells = logspace(1, 3.5, 50).
2. ``fisher``: the Gaussian (Knox) covariance (f_sky=0.25, jax-cosmo's
   gaussian_cl_covariance_and_mean) and the (Omega_c, sigma8) Fisher matrix
   F = J^T C^-1 J with J = jax.jacfwd of the mean C_ell (the recipe of
   jax-cosmo's introduction notebook).

Each workload is one jax.jit-compiled function of the cosmology (passed as an
argument, so nothing is constant-folded at compile time). The first call
(trace + compile + one run) is reported as the compile time; the warm time is
the median of ``--reps`` further calls, each ended by block_until_ready.

A second Fisher variant (``fisher_shared``) takes the covariance from the same
C_ell that jacfwd evaluates (has_aux), avoiding the notebook's second C_ell
evaluation: jax-cosmo's fastest route to the same matrix, timed so that the
comparison does not favour cosmodiff.

The C_ell is checked against the reference file (cls_fid.npz, key jc__wl2,
made with jax-cosmo 0.1.0) so that the workload is known to be the same.

Prints diagnostics on stderr and one JSON line on stdout.
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as onp

import jax

jax.config.update("jax_enable_x64", True)  # float64, as cosmodiff

import jax.numpy as jnp  # noqa: E402
import jax_cosmo as jc  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_REF = os.path.normpath(
    os.path.join(HERE, "..", "..", "..", "shared", "reference", "cosmology")
)

SIGMA_E = 0.26
GALS_PER_ARCMIN2 = 10.0
F_SKY = 0.25
ZMAX = 5.0  # n(z) normalised on [0, 5], as cosmodiff's workload


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def make_probes(zmax=ZMAX):
    nzs = [
        jc.redshift.smail_nz(1.0, 2.0, z0, gals_per_arcmin2=GALS_PER_ARCMIN2, zmax=zmax)
        for z0 in (1.0, 0.5)
    ]
    return [jc.probes.WeakLensing(nzs, sigma_e=SIGMA_E)]


def with_params(cosmo, omega_c, sigma8):
    """The cosmology `cosmo` with Omega_c and sigma8 replaced (traced values)."""
    return jc.Cosmology(
        Omega_c=omega_c,
        Omega_b=cosmo.Omega_b,
        h=cosmo.h,
        n_s=cosmo.n_s,
        sigma8=sigma8,
        Omega_k=cosmo.Omega_k,
        w0=cosmo.w0,
        wa=cosmo.wa,
    )


def build(ell, probes):
    def cl(cosmo):
        return jc.angular_cl.angular_cl(cosmo, ell, probes)

    def mean_fn(cosmo, p):
        return jc.angular_cl.angular_cl(with_params(cosmo, p[0], p[1]), ell, probes).flatten()

    def fisher(cosmo):
        # As jax-cosmo's introduction notebook: mean and covariance from
        # gaussian_cl_covariance_and_mean, J from jacfwd of the mean.
        _, cov = jc.angular_cl.gaussian_cl_covariance_and_mean(
            cosmo, ell, probes, f_sky=F_SKY, sparse=True
        )
        p0 = jnp.array([cosmo.Omega_c, cosmo.sigma8])
        jac = jax.jacfwd(lambda p: mean_fn(cosmo, p))(p0)
        return jc.sparse.dot(jac.T, jc.sparse.inv(cov), jac)

    def fisher_shared(cosmo):
        # Same matrix; the covariance reuses the C_ell evaluated inside jacfwd.
        def f(p):
            cl2d = jc.angular_cl.angular_cl(with_params(cosmo, p[0], p[1]), ell, probes)
            return cl2d.flatten(), cl2d

        p0 = jnp.array([cosmo.Omega_c, cosmo.sigma8])
        jac, cl2d = jax.jacfwd(f, has_aux=True)(p0)
        noise = jc.angular_cl.noise_cl(ell, probes)
        cov = jc.angular_cl.gaussian_cl_covariance(ell, probes, cl2d, noise, F_SKY, sparse=True)
        return jc.sparse.dot(jac.T, jc.sparse.inv(cov), jac)

    return {"cl": jax.jit(cl), "fisher": jax.jit(fisher), "fisher_shared": jax.jit(fisher_shared)}


def time_fn(fn, arg, reps):
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn(arg))
    first = time.perf_counter() - t0
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(arg))
        times.append((time.perf_counter() - t0) * 1e3)
    return out, first, statistics.median(times), times


def maxrel(a, b):
    a = onp.asarray(a)
    b = onp.asarray(b)
    return float(onp.max(onp.abs(a / b - 1.0)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=30, help="warm repetitions (>= 10)")
    ap.add_argument(
        "--ref-dir",
        default=os.environ.get("COSMODIFF_REF_DIR", DEFAULT_REF),
        help="folder with cls_fid.npz (default: <repo>/../shared/reference/cosmology)",
    )
    args = ap.parse_args()
    reps = max(args.reps, 10)

    ell = jnp.logspace(1.0, 3.5, 50)
    probes = make_probes()
    cosmo = jc.Planck15()
    fns = build(ell, probes)

    res = {}
    cl, first, med, _ = time_fn(fns["cl"], cosmo, reps)
    res["cl_ms"], res["cl_compile_s"] = med, first
    F, first, med, _ = time_fn(fns["fisher"], cosmo, reps)
    res["fisher_ms"], res["fisher_compile_s"] = med, first
    F2, first, med, _ = time_fn(fns["fisher_shared"], cosmo, reps)
    res["fisher_shared_ms"], res["fisher_shared_compile_s"] = med, first
    res["reps"] = reps

    F, F2 = onp.asarray(F), onp.asarray(F2)
    res["fisher"] = F.tolist()
    res["fisher_variants_maxrel"] = maxrel(F2, F)
    log(f"jax-cosmo Fisher (Omega_c, sigma8): {F.tolist()}")
    log(f"  marginal errors: {onp.sqrt(onp.diag(onp.linalg.inv(F))).tolist()}")

    # Is the workload the same as the reference's?
    ref_path = os.path.join(args.ref_dir, "cls_fid.npz")
    if os.path.exists(ref_path):
        ref = onp.load(ref_path)
        if onp.max(onp.abs(ref["ell"] / onp.asarray(ell) - 1)) > 1e-12:
            log("WARNING: reference ell grid differs from logspace(1, 3.5, 50)")
        res["cl_maxrel_vs_ref_jc__wl2"] = maxrel(cl, ref["jc__wl2"])
        # The reference was made with smail_nz's default zmax=10; the same
        # call here tells whether any remaining difference is that alone.
        cl10 = jc.angular_cl.angular_cl(cosmo, ell, make_probes(zmax=10.0))
        res["cl_zmax10_maxrel_vs_ref_jc__wl2"] = maxrel(cl10, ref["jc__wl2"])
        res["cl_maxrel_vs_ref_ccl_matched__wl2"] = maxrel(cl, ref["ccl_matched__wl2"])
        fref = os.path.join(args.ref_dir, "fisher_wl2bin_ccl_finitediff.npz")
        if os.path.exists(fref):
            res["fisher_maxrel_vs_ccl_finitediff"] = maxrel(F, onp.load(fref)["fisher"])
    else:
        log(f"WARNING: {ref_path} not found; C_ell not checked against the reference")
        res["cl_maxrel_vs_ref_jc__wl2"] = None

    res["jax_version"] = jax.__version__
    try:
        import jaxlib

        res["jaxlib_version"] = jaxlib.__version__
    except Exception:  # pragma: no cover
        pass
    try:
        from importlib.metadata import version

        res["jax_cosmo_version"] = version("jax-cosmo")
    except Exception:  # pragma: no cover
        res["jax_cosmo_version"] = getattr(jc, "__version__", "unknown")
    res["numpy_version"] = onp.__version__
    res["backend"] = jax.default_backend()
    res["x64"] = bool(jax.config.jax_enable_x64)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
