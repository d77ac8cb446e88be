"""JaxPM 0.1.6 FastPM-equivalent benchmark (run in a throwaway venv with jax[cpu], jaxpm==0.1.6).

python bench_jaxpm.py N forward|grad   -> best-of-3 wall time (after a warm-up/JIT call) and peak RSS.
Same problem as `cargo run --release -p cosmodiff-pm --example bench -- N 10 MODE`: N^3 particles on an
N^3 mesh, box 4N Mpc/h, 2LPT at a=0.1 (jax_cosmo Planck15), 10 FastPM KDK steps linear in a with
geometric half steps (EdS factors: the cost does not depend on them), fd4 gradient kernel (JaxPM default),
gradient = reverse-mode autodiff (backprop) of an MSE loss of the final CIC density w.r.t. the white noise.
"""
import sys, time, resource
import numpy as np
import jax, jax.numpy as jnp
import jax_cosmo as jc
from jaxpm.pm import lpt, pm_forces
from jaxpm.painting import cic_paint

N = int(sys.argv[1]); mode = sys.argv[2]
L = 4.0 * N; shape = (N, N, N)
stages = np.linspace(0.1, 1.0, 11)
Gf = lambda a: a ** 1.5; gf = lambda a: 1.5 * a ** 0.5; E = lambda a: a ** -1.5
k1, dr, k2 = [], [], []
for a0, a1 in zip(stages[:-1], stages[1:]):
    ah = np.sqrt(a0 * a1)
    k1.append(1.5 * (Gf(ah) - Gf(a0)) / (a0 ** 2 * E(a0) * gf(a0)))
    dr.append((a1 - a0) / Gf(ah))
    k2.append(1.5 * (Gf(a1) - Gf(ah)) / (a1 ** 2 * E(a1) * gf(a1)))
cosmo = jc.Planck15()
kk = jnp.logspace(-4, 1, 128); pk = jc.power.linear_matter_power(cosmo, kk)
pk_fn = lambda x: jnp.interp(x.reshape([-1]), kk, pk).reshape(x.shape)
kvec = [np.fft.fftfreq(n, d=L / n / (2 * np.pi)) for n in shape]
kmesh = np.sqrt(sum(k ** 2 for k in np.meshgrid(*kvec, indexing='ij')))
filt = jnp.sqrt(pk_fn(jnp.asarray(kmesh)) * (N / L) ** 3)
particles = jnp.stack(jnp.meshgrid(*[jnp.arange(s) for s in shape], indexing='ij'), axis=-1).reshape([-1, 3]).astype(jnp.float32)

def forward(w):
    lin = jnp.fft.irfftn(jnp.fft.rfftn(w) * filt[..., :N // 2 + 1], s=shape)
    dx, p, f = lpt(jc.Planck15(), lin, particles, a=0.1, order=2)
    x = particles + dx
    f = pm_forces(x, mesh_shape=shape) * 1.5
    for i in range(10):
        p = p + k1[i] * f
        x = x + dr[i] * p
        f = pm_forces(x, mesh_shape=shape) * 1.5
        p = p + k2[i] * f
    return cic_paint(jnp.zeros(shape), x)

w = jax.random.normal(jax.random.PRNGKey(0), shape)
if mode == 'grad':
    fn = jax.jit(jax.grad(lambda w: 0.5 * jnp.sum((forward(w) - 1.0) ** 2)))
else:
    fn = jax.jit(forward)
fn(w).block_until_ready()
best = 1e9
for _ in range(3):
    t = time.perf_counter(); fn(w).block_until_ready(); best = min(best, time.perf_counter() - t)
print(f"jaxpm {mode} N={N}: best of 3 {best:.3f} s, peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
