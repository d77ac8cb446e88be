"""PyTorch twin of cosmodiff's TRENF field flow (crates/nn/src/trenf.rs) for
the CPU throughput benchmark against `cargo run --example trenf_bench`.

Written from the definitions in trenf.rs, fourier_kernel.rs and spline.rs,
not from another project. Per layer, data -> noise, in order:

1. ActNorm: h_c -> exp(s_c) h_c + b_c                 (log det = L sum_c s_c)
2. radial Fourier filter u = irfftn(T rfftn(h)), log T = (base [C, K] +
   MLP(theta)) @ basis [K, M], basis = natural cubic spline in
   s = ln(1 + |k|) / ln(1 + k_max), k_max = sqrt(d) n / 2
                                                      (log det = sum_m w_m log T_m)
3. pixel-wise monotone rational-quadratic spline (Durkan et al. 2019), linear
   tails outside [-B, B], parameters base [C, 3K - 1] + MLP(theta), one spline
   per field and channel shared by its pixels     (log det = sum_pixels log psi')

Conditioners: Linear(p, 32)-SiLU-Linear(32, 32)-SiLU-Linear(32, out), the last
layer uniform in [-1e-3, 1e-3] so a fresh flow is (nearly) the identity.
Loss: mean negative log-likelihood per pixel, standard-normal base.

    python trenf_torch.py --shape 64x64 --batch 16 --steps 20 --threads 2

prints one JSON line with train_fields_per_s and logprob_fields_per_s.
"""
import argparse
import json
import math
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

MIN_BIN = 1e-3
MIN_DERIVATIVE = 1e-3
# softplus(c) + MIN_DERIVATIVE = 1: the boundary (and identity) derivative.
UNIT_DERIVATIVE = math.log(math.expm1(1.0 - MIN_DERIVATIVE))


# ---------------------------------------------------------------- modes --

def mode_k(n, dims):
    """|k| of every half-complex mode (rfftn layout, C order), integer units."""
    full = np.fft.fftfreq(n) * n
    last = np.arange(n // 2 + 1, dtype=np.float64)
    grids = np.meshgrid(*([full] * (dims - 1) + [last]), indexing="ij")
    return np.sqrt(sum(g * g for g in grids)).reshape(-1)


def mode_weights(n, dims):
    """1 on the k_last = 0 and Nyquist planes, 2 elsewhere (sum = n^dims)."""
    nh = n // 2 + 1
    last = np.arange(nh)
    w1 = np.where((last == 0) | ((n % 2 == 0) & (last == n // 2)), 1.0, 2.0)
    return np.broadcast_to(w1, (n,) * (dims - 1) + (nh,)).reshape(-1).copy()


def natural_spline_basis(knots, at):
    """[len(at), K] matrix B with S(at_i) = sum_j B_ij y_j for the natural
    cubic spline through (knots_j, y_j) (zero second derivative at the ends)."""
    knots = np.asarray(knots, dtype=np.float64)
    k = len(knots)
    a = np.zeros((k, k))
    r = np.zeros((k, k))
    a[0, 0] = a[-1, -1] = 1.0
    for i in range(1, k - 1):
        h0, h1 = knots[i] - knots[i - 1], knots[i + 1] - knots[i]
        a[i, i - 1], a[i, i], a[i, i + 1] = h0 / 6.0, (h0 + h1) / 3.0, h1 / 6.0
        r[i, i - 1], r[i, i], r[i, i + 1] = 1.0 / h0, -1.0 / h0 - 1.0 / h1, 1.0 / h1
    m2 = np.linalg.solve(a, r)  # second derivatives per unit knot value
    x = np.clip(np.asarray(at, dtype=np.float64), knots[0], knots[-1])
    i = np.clip(np.searchsorted(knots[:-1], x, side="right") - 1, 0, k - 2)
    h = knots[i + 1] - knots[i]
    b = (knots[i + 1] - x) / h
    c = (x - knots[i]) / h
    bb = (b ** 3 - b) * h * h / 6.0
    cc = (c ** 3 - c) * h * h / 6.0
    out = bb[:, None] * m2[i] + cc[:, None] * m2[i + 1]
    rows = np.arange(len(x))
    out[rows, i] += b
    out[rows, i + 1] += c
    return out


def radial_basis(knots, n, dims):
    """[K, M] basis: log T at the modes = knot values @ basis."""
    k_max = math.sqrt(dims) * n / 2.0
    s = np.log1p(mode_k(n, dims)) / math.log1p(k_max)
    pos = np.arange(knots) / (knots - 1)
    return natural_spline_basis(pos, s).T.copy()


# --------------------------------------------------------------- spline --

def _knots(u, bound):
    """Knot positions [R, K + 1] from unconstrained bin sizes u [R, K]."""
    k = u.shape[-1]
    w = F.softmax(u, dim=-1) * (1.0 - MIN_BIN * k) + MIN_BIN
    cum = torch.cumsum(w, dim=-1) * (2.0 * bound) - bound
    lo = torch.full_like(u[:, :1], -bound)
    hi = torch.full_like(u[:, :1], bound)
    return torch.cat([lo, cum[:, : k - 1], hi], dim=-1)


def rq_forward(x, params, bins, bound):
    """x [R, L], params [R, 3 bins - 1] (one spline per row) -> (y, log dy/dx)."""
    uw, uh, ud = params[:, :bins], params[:, bins:2 * bins], params[:, 2 * bins:]
    edge = torch.full_like(ud[:, :1], UNIT_DERIVATIVE)
    xk_all = _knots(uw, bound)
    yk_all = _knots(uh, bound)
    d_all = F.softplus(torch.cat([edge, ud, edge], dim=-1)) + MIN_DERIVATIVE
    inside = (x >= -bound) & (x <= bound)
    xc = x.clamp(-bound, bound)
    left = xk_all[:, :bins].contiguous()
    idx = (torch.searchsorted(left, xc.contiguous(), right=True) - 1).clamp(0, bins - 1)
    idx1 = idx + 1
    xk = torch.gather(xk_all, 1, idx)
    yk = torch.gather(yk_all, 1, idx)
    wk = torch.gather(xk_all, 1, idx1) - xk
    hk = torch.gather(yk_all, 1, idx1) - yk
    dk = torch.gather(d_all, 1, idx)
    dk1 = torch.gather(d_all, 1, idx1)
    s = hk / wk
    xi = (xc - xk) / wk
    xi1 = xi * (1.0 - xi)
    den = s + (dk1 + dk - 2.0 * s) * xi1
    y = yk + hk * (s * xi * xi + dk * xi1) / den
    dnum = s * s * (dk1 * xi * xi + 2.0 * s * xi1 + dk * (1.0 - xi) ** 2)
    logdet = torch.log(dnum) - 2.0 * torch.log(den)
    return torch.where(inside, y, x), torch.where(inside, logdet, torch.zeros_like(logdet))


# ---------------------------------------------------------------- model --

class Conditioner(nn.Module):
    def __init__(self, d_in, d_out, hidden=32):
        super().__init__()
        self.l1 = nn.Linear(d_in, hidden)
        self.l2 = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, d_out)
        nn.init.uniform_(self.out.weight, -1e-3, 1e-3)
        nn.init.uniform_(self.out.bias, -1e-3, 1e-3)

    def forward(self, theta):
        return self.out(F.silu(self.l2(F.silu(self.l1(theta)))))


class TrenfLayer(nn.Module):
    def __init__(self, c, knots, bins, theta_dim, hidden):
        super().__init__()
        np_ = 3 * bins - 1
        self.act_log_scale = nn.Parameter(torch.zeros(c))
        self.act_shift = nn.Parameter(torch.zeros(c))
        self.radial = nn.Parameter(torch.zeros(c, knots))
        self.radial_cond = Conditioner(theta_dim, c * knots, hidden)
        ident = torch.zeros(c, np_)
        ident[:, 2 * bins:] = UNIT_DERIVATIVE
        self.spline = nn.Parameter(ident)
        self.spline_cond = Conditioner(theta_dim, c * np_, hidden)


def per_row(base, cond, theta):
    """[B * C, W] parameters: base [C, W] + cond(theta) reshaped [B, C, W]."""
    c, w = base.shape
    b = theta.shape[0]
    return (base.unsqueeze(0) + cond(theta).reshape(b, c, w)).reshape(b * c, w)


class Trenf(nn.Module):
    def __init__(self, n, dims, channels=1, layers=4, knots=16, bins=8, bound=5.0,
                 hidden=32, theta_dim=2, fft_dtype=torch.float32):
        super().__init__()
        if channels != 1:
            raise ValueError("the twin has no channel mixing: channels must be 1")
        self.n, self.dims, self.c = n, dims, channels
        self.bins, self.bound = bins, bound
        self.fft_dtype = fft_dtype
        self.layers = nn.ModuleList(
            [TrenfLayer(channels, knots, bins, theta_dim, hidden) for _ in range(layers)])
        self.register_buffer(
            "basis", torch.tensor(radial_basis(knots, n, dims), dtype=torch.float32))
        self.register_buffer(
            "weights", torch.tensor(mode_weights(n, dims), dtype=torch.float32)[:, None])

    def filter(self, h, log_t):
        """h [R, L], log T [R, M] -> (irfftn(T rfftn(h)), sum_m w_m log T_m)."""
        r = h.shape[0]
        n, d = self.n, self.dims
        axes = tuple(range(-d, 0))
        spatial = h.reshape((r,) + (n,) * d).to(self.fft_dtype)
        t = torch.exp(log_t).to(self.fft_dtype).reshape((r,) + (n,) * (d - 1) + (n // 2 + 1,))
        u = torch.fft.irfftn(torch.fft.rfftn(spatial, dim=axes) * t, s=(n,) * d, dim=axes)
        return u.reshape(r, -1).to(h.dtype), (log_t @ self.weights).reshape(r)

    def forward(self, x, theta):
        """x [B, C, L] (standardised), theta [B, p] -> (z [B, C, L], log det [B])."""
        b, c, l = x.shape
        h = x
        ld = x.new_zeros(b)
        for layer in self.layers:
            s = layer.act_log_scale
            h = h * torch.exp(s).reshape(1, c, 1) + layer.act_shift.reshape(1, c, 1)
            ld = ld + s.sum() * l
            log_t = per_row(layer.radial, layer.radial_cond, theta) @ self.basis
            u, lf = self.filter(h.reshape(b * c, l), log_t)
            ld = ld + lf.reshape(b, c).sum(1)
            params = per_row(layer.spline, layer.spline_cond, theta)
            u, ls = rq_forward(u, params, self.bins, self.bound)
            ld = ld + ls.reshape(b, c * l).sum(1)
            h = u.reshape(b, c, l)
        return h, ld

    def log_prob(self, x, theta):
        z, ld = self(x, theta)
        b = z.shape[0]
        z = z.reshape(b, -1)
        d = z.shape[1]
        return -0.5 * (z * z).sum(1) - 0.5 * d * math.log(2.0 * math.pi) + ld


# ---------------------------------------------------------------- bench --

def parse_shape(spec):
    sides = [int(v) for v in spec.lower().split("x")]
    if len(sides) not in (2, 3) or len(set(sides)) != 1 or sides[0] < 2:
        raise SystemExit(f"--shape must be NxN or NxNxN, got {spec}")
    return sides[0], len(sides)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shape", default="64x64", help="NxN maps or NxNxN boxes")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--clip", type=float, default=5.0,
                   help="global gradient-norm clip (the Rust TrainConfig default); 0: off")
    p.add_argument("--fft64", action="store_true",
                   help="FFTs in float64, as the Rust kernel does (default float32)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    if a.steps < 1 or a.batch < 1 or a.repeats < 1:
        raise SystemExit("--steps, --batch and --repeats must be at least 1")

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    n, dims = parse_shape(a.shape)
    l = n ** dims
    model = Trenf(n, dims, fft_dtype=torch.float64 if a.fft64 else torch.float32)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    # One distinct batch per step (the Rust benchmark trains on batch * steps fields).
    nb = max(a.steps, 1)
    xs = torch.randn(nb, a.batch, 1, l)
    ts = torch.randn(nb, a.batch, 2)
    norm = 1.0 / l

    with torch.no_grad():
        init_nll = float(-model.log_prob(xs[0], ts[0]).mean() * norm)

    def train_step(i):
        loss = -model.log_prob(xs[i % nb], ts[i % nb]).mean() * norm
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if a.clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip)
        opt.step()
        return loss

    def eval_step(i):
        with torch.no_grad():
            return model.log_prob(xs[i % nb], ts[i % nb])

    def best_of(fn):
        for i in range(a.warmup):
            fn(i)
        best = math.inf
        for _ in range(a.repeats):
            t = time.perf_counter()
            for i in range(a.steps):
                out = fn(i)
            best = min(best, time.perf_counter() - t)
        return best, out

    t_train, loss = best_of(train_step)
    t_eval, lp = best_of(eval_step)
    fields = a.steps * a.batch
    print(json.dumps({
        "shape": a.shape,
        "train_fields_per_s": round(fields / t_train, 2),
        "logprob_fields_per_s": round(fields / t_eval, 2),
        "batch": a.batch,
        "steps": a.steps,
        "threads": a.threads,
        "fft_dtype": "float64" if a.fft64 else "float32",
        "init_nll_per_pixel": round(init_nll, 6),
        "final_loss": round(float(loss.detach()), 6),
        "logprob_finite": bool(torch.isfinite(lp).all()),
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
