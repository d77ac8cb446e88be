#!/usr/bin/env python3
"""JAX benchmark twin of the point-cloud variational diffusion model (VDM).

A cost-faithful re-implementation, in flax + jraph + optax, of the graph
score network and continuous-time VDM loss of Cuesta-Lazaro & Mishra-Sharma
(2023, arXiv:2311.17141; reference code: smsharma/point-cloud-galaxy-diffusion,
``models/{gnn,scores,graph_utils,diffusion,diffusion_utils}.py``), sized like
cosmodiff's default point-cloud model, to time on the same CPU:

1. one jit-compiled training step (VLB with antithetic times, its gradient
   and an AdamW update with gradient clipping) on a batch of clouds;
2. the ELBO of ONE cloud at ``--times`` fixed times (one batched call on
   ``times`` copies of the cloud, no gradient).

Usage (see README_jax.md):

    python bench/pointcloud/jax_twin.py --json OUT.json \
        [--n 256 --k 20 --hidden 64 --layers 4 --batch 16 --steps 30 \
         --warmup 5 --times 32]

Threads: XLA's CPU client sizes its intra-op thread pool from the ``NPROC``
environment variable (else from the schedulable CPUs), so this script sets
``NPROC=--threads`` (default 2) unless it is already set, and appends
``--xla_force_host_platform_device_count=1 --xla_cpu_multi_thread_eigen=true
intra_op_parallelism_threads=N`` to any ``XLA_FLAGS`` already present (the
last token is the customary spelling; current XLA ignores it, NPROC is what
takes effect). All of this happens before jax is imported.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", metavar="OUT.json", help="write the results here")
    p.add_argument("--n", type=int, default=256, help="points per cloud")
    p.add_argument("--features", type=int, default=4,
                   help="features per point (3 positions + scalars)")
    p.add_argument("--k", type=int, default=20, help="neighbours per node")
    p.add_argument("--hidden", type=int, default=64,
                   help="hidden and latent width of every MLP")
    p.add_argument("--layers", type=int, default=4,
                   help="message-passing steps")
    p.add_argument("--mlp-layers", type=int, default=2,
                   help="Dense layers per MLP (the reference's num_mlp_layers "
                        "counts hidden layers: it equals this minus 1)")
    p.add_argument("--params", type=int, default=2,
                   help="conditioning parameters")
    p.add_argument("--batch", type=int, default=16, help="clouds per step")
    p.add_argument("--steps", type=int, default=30, help="timed train steps")
    p.add_argument("--warmup", type=int, default=5,
                   help="untimed train steps (the first compiles)")
    p.add_argument("--times", type=int, default=32,
                   help="fixed diffusion times of one ELBO evaluation")
    p.add_argument("--elbo-repeats", type=int, default=10,
                   help="timed ELBO evaluations")
    p.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate")
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--grad-clip", type=float, default=1.0,
                   help="global-norm gradient clipping threshold")
    p.add_argument("--threads", type=int, default=2,
                   help="intra-op threads of XLA (sets NPROC)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.k >= args.n:
        p.error("--k must be smaller than --n")
    if args.features < 3:
        p.error("--features must be at least 3 (the positions)")
    if min(args.hidden, args.layers, args.mlp_layers, args.batch, args.steps,
           args.times, args.elbo_repeats, args.threads) < 1 or args.warmup < 0:
        p.error("sizes and counts must be positive")
    return args


def configure_threads(threads):
    """Pin XLA to one host device and `threads` intra-op threads (before
    jax is imported)."""
    flags = os.environ.get("XLA_FLAGS", "").split()
    names = {f.split("=")[0] for f in flags}
    for flag in ("--xla_force_host_platform_device_count=1",
                 "--xla_cpu_multi_thread_eigen=true",
                 f"intra_op_parallelism_threads={threads}"):
        if flag.split("=")[0] not in names:
            flags.append(flag)
    os.environ["XLA_FLAGS"] = " ".join(flags)
    os.environ.setdefault("NPROC", str(threads))
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None:
    configure_threads(ARGS.threads)

# pylint: disable=wrong-import-position
from typing import Callable, Sequence  # noqa: E402

import flax  # noqa: E402
import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import jraph  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from flax.training import train_state  # noqa: E402

EPS = 1e-5  # offset of the pairwise displacements, as the reference's
LOG_2PI = float(np.log(2.0 * np.pi))


# ---------------------------------------------------------------------------
# Building blocks (reference: models/mlp.py, models/diffusion_utils.py)
# ---------------------------------------------------------------------------

class MLP(nn.Module):
    """Dense layers with GELU between them, none after the last."""

    sizes: Sequence[int]

    @nn.compact
    def __call__(self, x):
        for width in self.sizes[:-1]:
            x = nn.gelu(nn.Dense(width)(x))
        return nn.Dense(self.sizes[-1])(x)


class LearnedLinearSchedule(nn.Module):
    """Learned linear schedule gamma(t) = b - |w| t (reference:
    NoiseScheduleScalar; b = gamma_max, w = gamma_min - gamma_max at
    initialisation). Returns (gamma(t), dgamma/dt); the reference gets the
    derivative by jax.jvp, here it is written out (the same numbers)."""

    gamma_min: float = -8.0
    gamma_max: float = 14.0

    @nn.compact
    def __call__(self, t):
        w = self.param("w", nn.initializers.constant(self.gamma_min - self.gamma_max), (1,))
        b = self.param("b", nn.initializers.constant(self.gamma_max), (1,))
        t = jnp.asarray(t, jnp.float32)
        return b - jnp.abs(w) * t, -jnp.abs(w) * jnp.ones_like(t)


def sigma2(gamma):
    return jax.nn.sigmoid(-gamma)


def alpha(gamma):
    return jnp.sqrt(1.0 - sigma2(gamma))


def timestep_embedding(values, dim):
    """Sinusoidal (Fairseq) embedding of 1000 x values, shape [B, dim]."""
    values = 1000.0 * values
    half = dim // 2
    freq = jnp.exp(-jnp.log(10_000.0) / (half - 1) * jnp.arange(half, dtype=jnp.float32))
    arg = values.astype(jnp.float32)[:, None] * freq[None, :]
    emb = jnp.concatenate([jnp.sin(arg), jnp.cos(arg)], axis=1)
    if dim % 2:
        emb = jnp.pad(emb, ((0, 0), (0, 1)))
    return emb


# ---------------------------------------------------------------------------
# Periodic kNN graph (reference: models/graph_utils.py, "pairwise_dist")
# ---------------------------------------------------------------------------

def periodic_knn(x, mask, k, box_size):
    """k nearest neighbours of each point of one cloud `x` [N, 3] by brute
    force: all N^2 minimum-image displacements, then top_k. Returns jraph
    senders, receivers (edge i*k + e goes from node i to its e-th neighbour,
    the node itself included, as in the reference) and the edges'
    displacement vectors [N k, 3]."""
    n = x.shape[0]
    dr = (x[:, None, :] - x[None, :, :]) + EPS
    dr = dr - box_size * jnp.round(dr / box_size)  # minimum image
    d2 = jnp.sum(dr ** 2, axis=-1)
    valid = mask.astype(bool)
    d2 = jnp.where(valid[:, None] & valid[None, :], d2, jnp.inf)
    _, nearest = jax.lax.top_k(-d2, k)
    senders = jnp.repeat(jnp.arange(n), k)
    receivers = nearest.reshape(-1)
    return senders, receivers, dr[senders, receivers]


# ---------------------------------------------------------------------------
# Graph network (reference: models/gnn.py, GraphConvNet)
# ---------------------------------------------------------------------------

def edge_update(sizes, name):
    """Edge MLP on [edge, h_sender - h_receiver, globals] (relative updates)."""

    def fn(edges, sent, received, globals_):
        return MLP(sizes, name=name)(jnp.concatenate([edges, sent - received, globals_], axis=-1))

    return fn


def node_update(sizes, name):
    """Node MLP on [h, sum of attended incoming edges, globals]."""

    def fn(nodes, sent, received, globals_):
        del sent
        return MLP(sizes, name=name)(jnp.concatenate([nodes, received, globals_], axis=-1))

    return fn


def attention_logits(name):
    """One GELU unit per edge on [edge, h_sender, h_receiver, globals];
    jraph softmaxes the logits over the edges entering each node."""

    def fn(edges, sent, received, globals_):
        inputs = jnp.concatenate([edges, sent, received, globals_], axis=-1)
        return nn.gelu(MLP([1], name=name)(inputs))

    return fn


def attention_reduce(edges, weights):
    return edges * weights


class GraphNet(nn.Module):
    """Encode nodes and edges, `steps` rounds of message passing with
    attention, node skip connections and LayerNorm, decode the nodes."""

    hidden: int
    steps: int
    mlp_layers: int
    out_features: int

    @nn.compact
    def __call__(self, graph):
        sizes = [self.hidden] * self.mlp_layers
        graph = jraph.GraphMapFeatures(embed_node_fn=MLP(sizes), embed_edge_fn=MLP(sizes))(graph)
        for step in range(self.steps):
            gn = jraph.GraphNetwork(
                update_edge_fn=edge_update(sizes, f"update_edge_fn_{step}"),
                update_node_fn=node_update(sizes, f"update_node_fn_{step}"),
                attention_logit_fn=attention_logits(f"attention_logit_fn_{step}"),
                attention_reduce_fn=attention_reduce,
            )
            new = gn(graph)
            # node skip connection; no edge skip connection (nbody config)
            graph = graph._replace(nodes=graph.nodes + new.nodes, edges=new.edges)
            norm = nn.LayerNorm()
            graph = graph._replace(nodes=norm(graph.nodes), edges=norm(graph.edges))
        decoder = MLP([self.hidden] * (self.mlp_layers - 1) + [self.out_features])
        return decoder(graph.nodes)


class GraphScoreNet(nn.Module):
    """Noise prediction eps_hat(z_t, gamma_t, theta) (reference:
    models/scores.py, GraphScoreNet with graph_construction="pairwise_dist",
    use_edges, use_pbc)."""

    hidden: int
    steps: int
    mlp_layers: int
    k: int
    d_t_embedding: int = 16
    box_size: float = 1.0
    n_pos: int = 3

    @nn.compact
    def __call__(self, z, gamma_t, context, mask):
        cond = jnp.concatenate([timestep_embedding(gamma_t, self.d_t_embedding), context], axis=1)
        d = cond.shape[-1]
        cond = MLP([4 * d, 4 * d, d])(cond)

        # graph of the noisy positions (x_mean = 0, x_std = 1: z is already
        # in box units)
        pos = z[..., : self.n_pos]
        senders, receivers, disp = jax.vmap(periodic_knn, in_axes=(0, 0, None, None))(
            pos, mask, self.k, self.box_size)
        b, n, f = z.shape
        graphs = jraph.GraphsTuple(
            nodes=z, edges=disp, senders=senders, receivers=receivers, globals=cond[:, None, :],
            n_node=jnp.full((b, 1), n, jnp.int32), n_edge=jnp.full((b, 1), n * self.k, jnp.int32))
        net = nn.vmap(GraphNet, variable_axes={"params": None},
                      split_rngs={"params": False}, in_axes=0, out_axes=0)
        h = net(hidden=self.hidden, steps=self.steps, mlp_layers=self.mlp_layers,
                out_features=f, name="GraphNet")(graphs)
        return z - h


# ---------------------------------------------------------------------------
# Variational diffusion model (reference: models/diffusion.py)
# ---------------------------------------------------------------------------

class PointVDM(nn.Module):
    """Continuous-time VDM without encoder/decoder, learned linear schedule,
    Gaussian likelihood of width noise_scale, embedded conditioning."""

    hidden: int = 64
    steps: int = 4
    mlp_layers: int = 2
    k: int = 20
    gamma_min: float = -8.0
    gamma_max: float = 14.0
    noise_scale: float = 1e-3
    d_t_embedding: int = 16
    d_context_embedding: int = 16

    def setup(self):
        self.gamma = LearnedLinearSchedule(self.gamma_min, self.gamma_max)
        self.score_model = GraphScoreNet(self.hidden, self.steps, self.mlp_layers, self.k,
                                         self.d_t_embedding)
        self.embedding_context = nn.Dense(self.d_context_embedding)

    def terms(self, x, theta, mask, t):
        """Per-element terms (diffusion, prior, reconstruction) of -ELBO of
        clouds x [B, N, F] at times t [B]."""
        g0, _ = self.gamma(jnp.zeros(()))
        g1, _ = self.gamma(jnp.ones(()))
        # reconstruction: -log N(x; z_0 / alpha_0, noise_scale)
        eps0 = jax.random.normal(self.make_rng("sample"), x.shape)
        z0 = alpha(g0) * x + jnp.sqrt(sigma2(g0)) * eps0
        r = (x - z0 / alpha(g0)) / self.noise_scale
        recon = 0.5 * r ** 2 + jnp.log(self.noise_scale) + 0.5 * LOG_2PI
        # prior: KL(q(z_1 | x) || N(0, 1))
        var1 = sigma2(g1)
        klz = 0.5 * ((1.0 - var1) * x ** 2 + var1 - jnp.log(var1) - 1.0)
        # diffusion: -1/2 gamma'(t) |eps - eps_hat(z_t)|^2
        g_t, dg_t = self.gamma(t)
        eps = jax.random.normal(self.make_rng("sample"), x.shape)
        z_t = alpha(g_t)[:, None, None] * x + jnp.sqrt(sigma2(g_t))[:, None, None] * eps
        eps_hat = self.score_model(z_t, g_t, self.embedding_context(theta), mask)
        diff = -0.5 * dg_t[:, None, None] * (eps - eps_hat) ** 2
        return diff, klz, recon

    def __call__(self, x, theta, mask):
        """Training terms with antithetic times t_i = (u + i / B) mod 1."""
        b = x.shape[0]
        u = jax.random.uniform(self.make_rng("sample"))
        t = jnp.mod(u + jnp.arange(b, dtype=jnp.float32) / b, 1.0)
        return self.terms(x, theta, mask, t)


def loss_vdm(params, model, rng, x, theta, mask):
    """Mean over clouds of -ELBO per point (reference: loss_vdm, beta = 1)."""
    diff, klz, recon = model.apply(params, x, theta, mask, rngs={"sample": rng})
    m = mask[:, :, None]
    per_cloud = ((diff + klz + recon) * m).sum((-1, -2)) / mask.sum(-1)
    return per_cloud.mean()


def neg_elbo_one_cloud(params, model, rng, x1, theta1, times):
    """-ELBO (nats) of ONE cloud x1 [N, F] with the diffusion term averaged
    over the midpoints of `times` equal intervals, all in one batch."""
    x = jnp.broadcast_to(x1, (times,) + x1.shape)
    theta = jnp.broadcast_to(theta1, (times,) + theta1.shape)
    mask = jnp.ones(x.shape[:2])
    t = (jnp.arange(times, dtype=jnp.float32) + 0.5) / times
    diff, klz, recon = model.apply(params, x, theta, mask, t, rngs={"sample": rng},
                                   method=PointVDM.terms)
    return ((diff + klz + recon) * mask[:, :, None]).sum((-1, -2)).mean()


# ---------------------------------------------------------------------------
# Benchmark
# ---------------------------------------------------------------------------

def random_data(rng, batch, n, features, n_params):
    """Uniform positions in the unit box, standard-normal scalars and
    parameters (the data are normalised)."""
    pos = rng.uniform(0.0, 1.0, size=(batch, n, 3))
    scal = rng.normal(size=(batch, n, features - 3))
    x = np.concatenate([pos, scal], axis=-1).astype(np.float32)
    theta = rng.normal(size=(batch, n_params)).astype(np.float32)
    return jnp.asarray(x), jnp.asarray(theta), jnp.ones((batch, n), jnp.float32)


def timed(fn):
    start = time.perf_counter()
    out = jax.block_until_ready(fn())
    return out, time.perf_counter() - start


def run(args):
    model = PointVDM(hidden=args.hidden, steps=args.layers, mlp_layers=args.mlp_layers, k=args.k)
    data_rng = np.random.default_rng(args.seed)
    x, theta, mask = random_data(data_rng, args.batch, args.n, args.features, args.params)
    key = jax.random.PRNGKey(args.seed)
    key, init_key, sample_key = jax.random.split(key, 3)
    params = model.init({"params": init_key, "sample": sample_key}, x, theta, mask)
    n_params = sum(int(p.size) for p in jax.tree_util.tree_leaves(params))

    tx = optax.chain(optax.clip_by_global_norm(args.grad_clip),
                     optax.adamw(args.lr, weight_decay=args.weight_decay))
    state = train_state.TrainState.create(apply_fn=model.apply, params=params, tx=tx)

    def step_fn(state, x, theta, mask, rng):
        loss, grads = jax.value_and_grad(loss_vdm)(state.params, model, rng, x, theta, mask)
        return state.apply_gradients(grads=grads), loss

    train_step = jax.jit(step_fn, donate_argnums=(0,))
    keys = jax.random.split(key, args.warmup + args.steps + 1)
    key = keys[-1]

    losses, step_s = [], []
    compile_s = None
    for i in range(args.warmup + args.steps):
        (state, loss), dt = timed(lambda: train_step(state, x, theta, mask, keys[i]))
        if i == 0:
            compile_s = dt
        if i >= args.warmup:
            step_s.append(dt)
        losses.append(float(loss))
    if not all(np.isfinite(losses)):
        raise RuntimeError(f"non-finite training loss: {losses}")

    elbo = jax.jit(neg_elbo_one_cloud, static_argnums=(1, 5))
    x1, theta1 = x[0], theta[0]
    elbo_key = jax.random.PRNGKey(args.seed + 1)  # common random numbers
    nelbo, elbo_compile_s = timed(lambda: elbo(state.params, model, elbo_key, x1, theta1, args.times))
    timed(lambda: elbo(state.params, model, elbo_key, x1, theta1, args.times))
    elbo_s = []
    for _ in range(args.elbo_repeats):
        nelbo, dt = timed(lambda: elbo(state.params, model, elbo_key, x1, theta1, args.times))
        elbo_s.append(dt)
    if not np.isfinite(float(nelbo)):
        raise RuntimeError(f"non-finite ELBO: {float(nelbo)}")

    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    return {
        "framework": "jax",
        "jax_version": jax.__version__,
        "n": args.n,
        "k": args.k,
        "hidden": args.hidden,
        "layers": args.layers,
        "batch": args.batch,
        "train_step_ms_median": 1e3 * statistics.median(step_s),
        "train_step_ms_best": 1e3 * min(step_s),
        "elbo_per_s": 1.0 / statistics.median(elbo_s),
        "threads": int(os.environ.get("NPROC", args.threads)),
        # extras
        "features": args.features,
        "mlp_layers": args.mlp_layers,
        "params_conditioning": args.params,
        "times": args.times,
        "steps": args.steps,
        "warmup": args.warmup,
        "elbo_repeats": args.elbo_repeats,
        "elbo_ms_median": 1e3 * statistics.median(elbo_s),
        "train_compile_s": compile_s,
        "elbo_compile_s": elbo_compile_s,
        "param_count": n_params,
        "loss_first": losses[0],
        "loss_last": losses[-1],
        "neg_elbo_nats": float(nelbo),
        "flax_version": flax.__version__,
        "optax_version": optax.__version__,
        "jraph_version": getattr(jraph, "__version__", "unknown"),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "cpu_affinity": affinity,
        "device": str(jax.devices()[0]),
        "python": platform.python_version(),
    }


def main():
    args = ARGS
    res = run(args)
    print(
        f"jax {res['jax_version']} twin n={res['n']} k={res['k']} hidden={res['hidden']} "
        f"layers={res['layers']} batch={res['batch']} threads={res['threads']}: "
        f"train step {res['train_step_ms_median']:.1f} ms median "
        f"({res['train_step_ms_best']:.1f} best, compile {res['train_compile_s']:.1f} s), "
        f"ELBO@{res['times']} times {res['elbo_per_s']:.2f}/s, "
        f"params {res['param_count']}, loss {res['loss_first']:.3g} -> {res['loss_last']:.3g}",
        flush=True,
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(res, fh, indent=2)
            fh.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
