"""pmwd benchmark (issue 8): forward model and adjoint gradient, the same problem as
`cargo run --release -p cosmodiff-pm --example bench -- N 10 MODE`.

python bench_pmwd.py N forward|grad   -> best-of-3 wall time after a warm-up (JIT) call,
                                          and the process's peak RSS.

N^3 particles on an N^3 mesh (mesh_shape=1), particle spacing 4 Mpc/h (box 4N Mpc/h),
2LPT at a = 0.1, 10 N-body steps to a = 1 (a_nbody_maxstep = 0.09: steps linear in a,
pmwd's leapfrog = FastPM-type KDK with its growth-based factors), float32 particles,
pmwd's default cosmology (SimpleLCDM) with its Boltzmann tables computed once outside
the timed function. forward = linear modes from white noise + 2LPT + N-body + CIC
scatter of the density; grad = jax.grad of 0.5 * sum((rho - 1)^2) with respect to the
white noise, through pmwd's own adjoint (nbody is a custom_vjp that re-integrates the
particles backwards: constant memory in the number of steps).

pmwd is not on PyPI here: it is imported from a source checkout given by PYTHONPATH
(bench/pm/run.sh uses the commit recorded in the shared reference,
0552bc0131755367574d8d51ae4fc08d6c29ecf1); it is never copied into this repository.
"""
import sys, time, resource
import jax
jax.config.update("jax_enable_x64", True)  # pmwd keeps the cosmology in float64
import jax.numpy as jnp
from pmwd import (Configuration, SimpleLCDM, boltzmann, white_noise, linear_modes,
                  lpt, nbody, scatter)

N = int(sys.argv[1]); mode = sys.argv[2]
conf = Configuration(4.0, (N, N, N), mesh_shape=1, a_start=0.1, a_stop=1.0,
                     a_nbody_maxstep=0.09, lpt_order=2, float_dtype=jnp.float32)
assert conf.a_nbody_num == 10, conf.a_nbody_num
cosmo = boltzmann(SimpleLCDM(conf), conf)
modes = white_noise(0, conf, real=True)


def forward(modes):
    m = linear_modes(modes, cosmo, conf)
    ptcl, obsvbl = lpt(m, cosmo, conf)
    ptcl, obsvbl = nbody(ptcl, obsvbl, cosmo, conf)
    return scatter(ptcl, conf)  # val = mesh_size / ptcl_num = 1: CIC counts


if mode == 'grad':
    fn = jax.jit(jax.grad(lambda w: 0.5 * jnp.sum((forward(w) - 1.0) ** 2)))
else:
    fn = jax.jit(forward)
fn(modes).block_until_ready()
best = 1e9
for _ in range(3):
    t = time.perf_counter()
    fn(modes).block_until_ready()
    best = min(best, time.perf_counter() - t)
print(f"pmwd {mode} N={N}: best of 3 {best:.3f} s, peak RSS "
      f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
