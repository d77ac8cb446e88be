#!/usr/bin/env python3
"""NumPyro side of the cosmodiff sampling benchmark (issue 5, "Performance").

NumPyro NUTS on jax-cosmo's C_ell likelihood for the wl2 problem that
`cosmodiff sample` solves in bench/sample/run.sh:

* two Smail weak-lensing bins (a=1, b=2, z0=1.0 and 0.5, n(z) normalised on
  [0, 5]), sigma_e=0.26, 10 galaxies/arcmin^2 per bin, halofit + Eisenstein-Hu,
  jax-cosmo's Planck15 fiducial, float64 on the CPU;
* ``--n-ell`` ells log-spaced from 10 to 10^3.5;
* data: the noiseless fiducial C_ell; covariance: jax-cosmo's Gaussian (Knox)
  covariance (f_sky=0.25, delta_ell = gradient(ell)) of signal + noise, fixed
  at the fiducial (computed once, as cosmodiff does);
* free (Omega_c, sigma8), priors Uniform(0.1, 0.6) x Uniform(0.4, 1.3);
* 1..n chains, NumPyro's default NUTS (diagonal mass matrix adaptation) or
  ``--dense`` (dense_mass=True).

The wall time starts before the fiducial covariance is computed and ends when
the draws are on the host, so it includes all JIT compilation.

ESS: bulk ESS (rank-normalised split-chain, Vehtari et al. 2021), computed with
numpyro.diagnostics.effective_sample_size on the rank-normalised split chains.
The same function (``bulk_ess``) is applied to cosmodiff's draws by run.sh
(``--ess-of DRAWS.npz``), so both samplers are scored with one estimator.

Prints diagnostics on stderr and one JSON line on stdout.
"""
import argparse
import json
import sys
import time

import numpy as onp


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def bulk_ess(draws):
    """Bulk ESS per parameter of draws [chains, draws, dim]."""
    from numpyro.diagnostics import effective_sample_size
    from scipy.stats import norm, rankdata

    d = onp.asarray(draws, dtype=float)
    c, n, k = d.shape
    half = n // 2
    # split chains (drop the middle draw if n is odd)
    sp = onp.concatenate([d[:, :half], d[:, n - half:]], axis=0)
    out = []
    for j in range(k):
        x = sp[:, :, j]
        r = rankdata(x.ravel(), method="average").reshape(x.shape)
        z = norm.ppf((r - 0.375) / (r.size + 0.25))
        out.append(float(effective_sample_size(z)))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chains", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--draws", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-ell", type=int, default=20)
    ap.add_argument("--dense", action="store_true", help="dense_mass=True")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar (stderr)")
    ap.add_argument("--out", help="write the draws here (npz)")
    ap.add_argument("--ess-of", help="only print the bulk ESS of draws.npz (array 'draws' [chains, draws, dim])")
    args = ap.parse_args()

    if args.ess_of:
        z = onp.load(args.ess_of)
        print(json.dumps({"ess_bulk": bulk_ess(z["draws"])}))
        return

    t_start = time.perf_counter()
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import jax_cosmo as jc
    import numpyro
    import numpyro.distributions as dist
    from numpyro.infer import MCMC, NUTS

    numpyro.set_host_device_count(max(args.chains, 1))

    ell = jnp.logspace(1.0, 3.5, args.n_ell)
    nzs = [jc.redshift.smail_nz(1.0, 2.0, z0, gals_per_arcmin2=10.0, zmax=5.0) for z0 in (1.0, 0.5)]
    probes = [jc.probes.WeakLensing(nzs, sigma_e=0.26)]
    fid = jc.Planck15()

    # Fixed covariance and noiseless data at the fiducial.
    mu_fid, cov = jc.angular_cl.gaussian_cl_covariance_and_mean(fid, ell, probes, f_sky=0.25, sparse=False)
    data = onp.asarray(mu_fid)
    scale_tril = jnp.asarray(onp.linalg.cholesky(onp.asarray(cov)))
    t_setup = time.perf_counter() - t_start
    log(f"setup (fiducial C_ell + covariance, incl. compile): {t_setup:.1f} s")

    def model():
        omega_c = numpyro.sample("Omega_c", dist.Uniform(0.1, 0.6))
        sigma8 = numpyro.sample("sigma8", dist.Uniform(0.4, 1.3))
        cosmo = jc.Cosmology(
            Omega_c=omega_c, Omega_b=fid.Omega_b, h=fid.h, n_s=fid.n_s, sigma8=sigma8,
            Omega_k=fid.Omega_k, w0=fid.w0, wa=fid.wa,
        )
        mu = jc.angular_cl.angular_cl(cosmo, ell, probes).flatten()
        numpyro.sample("obs", dist.MultivariateNormal(mu, scale_tril=scale_tril), obs=data)

    kernel = NUTS(model, dense_mass=args.dense)
    mcmc = MCMC(
        kernel, num_warmup=args.warmup, num_samples=args.draws, num_chains=args.chains,
        chain_method="sequential", progress_bar=not args.no_progress,
    )
    t0 = time.perf_counter()
    mcmc.run(jax.random.PRNGKey(args.seed), extra_fields=("num_steps", "diverging"))
    s = mcmc.get_samples(group_by_chain=True)
    draws = onp.stack([onp.asarray(s["Omega_c"]), onp.asarray(s["sigma8"])], axis=-1)
    t_run = time.perf_counter() - t0
    wall = time.perf_counter() - t_start
    ex = mcmc.get_extra_fields(group_by_chain=True)
    steps = onp.asarray(ex["num_steps"])
    ess = bulk_ess(draws)
    flat = draws.reshape(-1, 2)
    res = {
        "sampler": "numpyro-dense" if args.dense else "numpyro",
        "chains": args.chains, "warmup": args.warmup, "draws": args.draws, "n_ell": args.n_ell,
        "wall_s": wall, "setup_s": t_setup, "mcmc_s": t_run,
        "ess_bulk": ess, "min_ess_bulk": min(ess),
        "mean": flat.mean(0).tolist(), "sd": flat.std(0, ddof=1).tolist(),
        "corr": float(onp.corrcoef(flat.T)[0, 1]),
        "divergences": int(onp.asarray(ex["diverging"]).sum()),
        "mean_leapfrog_per_draw": float(steps.mean()),
        "total_leapfrog_sampling": int(steps.sum()),
        "jax_version": jax.__version__, "numpyro_version": numpyro.__version__,
    }
    try:
        from importlib.metadata import version
        res["jax_cosmo_version"] = version("jax-cosmo")
    except Exception:  # pragma: no cover
        pass
    if args.out:
        onp.savez(args.out, draws=draws)
    log(json.dumps(res))
    print(json.dumps(res))


if __name__ == "__main__":
    main()
