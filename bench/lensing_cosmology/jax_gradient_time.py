"""Timing of the original sbi_lens JAX simulators (CPU), for comparison with the Rust port.

For each set-up (``lsst``: sbi_lens d239796 defaults, N=256, 5 bins; ``s128``: sbi_lens
3476824, N=128, 1 bin) and each precision (f32 = JAX default, f64 = jax_enable_x64) it
times, jit-compiled and warmed up, 20 calls each:

* ``grad``: value_and_grad of the numpyro log joint density (constrained space, all sites
  given, y = the observed map) w.r.t. (theta, z);
* ``fwd``: the noiseless forward simulation alone (theta, z -> kappa maps);

and prints one line per case, e.g. ``lsst f32 grad median 123.4 ms best 120.1 ms``.
z is the deterministic latent field of make_sbi_lens_reference.py.

Each precision runs in its own subprocess (x64 is a process-wide flag).
Same venv as make_sbi_lens_reference.py (see its docstring). Run:
    /work/venv-sbilens/bin/python bench/lensing_cosmology/jax_gradient_time.py
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
NCALLS = 20


def bench(fn, *args):
    import jax

    jax.block_until_ready(fn(*args))  # compile
    jax.block_until_ready(fn(*args))  # warm-up
    ts = []
    for _ in range(NCALLS):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        ts.append(time.perf_counter() - t0)
    ts.sort()
    return 1e3 * ts[len(ts) // 2], 1e3 * ts[0]


def run_precision(prec):
    import jax

    jax.config.update("jax_enable_x64", prec == "f64")
    import jax.numpy as jnp
    import numpy as np
    from numpyro import handlers
    from numpyro.infer.util import log_density

    sys.path.insert(0, str(HERE))
    import make_sbi_lens_reference as ref

    lsst, s128 = ref.load_simulators()
    dt = jnp.float64 if prec == "f64" else jnp.float32
    for tag, s in ref.make_setups(lsst, s128).items():
        N, nb = s["N"], s["nbins"]
        z = ref.latent_z(nb, N)
        z = jnp.asarray(z if tag == "lsst" else z[0], dt)
        y = jnp.asarray(np.load(ref.DATA / s["mdata"]), dt)
        theta = jnp.asarray(s["theta"], dt)
        model, kw, names = s["model"], s["kwargs"], s["names"]

        def site_values(th, zz):
            d = {n: th[k] for k, n in enumerate(names)}
            d["z"] = zz
            return d

        def logp(th, zz):
            d = site_values(th, zz)
            d["y"] = y
            return log_density(model, (), kw, d)[0]

        def fwd(th, zz):
            return handlers.condition(model, data=site_values(th, zz))(
                with_noise=False, **kw
            )

        vg = jax.jit(jax.value_and_grad(logp, argnums=(0, 1)))
        for what, fn in (("grad", vg), ("fwd", jax.jit(fwd))):
            med, best = bench(fn, theta, z)
            print(f"{tag} {prec} {what} median {med:.1f} ms best {best:.1f} ms", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prec", choices=["f32", "f64"])
    a = ap.parse_args()
    if a.prec:
        run_precision(a.prec)
        return
    for prec in ("f32", "f64"):
        subprocess.run([sys.executable, __file__, "--prec", prec], check=True)


if __name__ == "__main__":
    main()
