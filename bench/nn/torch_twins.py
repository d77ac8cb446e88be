"""PyTorch twins of the workloads of `cosmodiff nn bench` (crates/nn/src/bench.rs),
timed the same way: one warm-up step, then the mean seconds of `--steps`
training steps (loss, backward, global gradient clipping at norm 1, Adam) and
the best of `--evals` inference calls (no grad). Same architectures, sizes and
losses, written from the descriptions in crates/nn, not from another project:

- unet64 / unet128: the score U-Net of bench/diffusion/unet_torch.py, DSM step;
- nsf_two_moons / nsf_slcp: nflows' neural spline flow as sbi's NPE builds it
  (5 rational-quadratic coupling transforms with ResidualNet conditioners of
  50 hidden units and 2 blocks, linear tails at 3, LU-linear layers);
- encoder: the VMIM compressor's ResNet (width 8, pre-activation blocks
  without norm, 2x2 average pooling, global mean, 64-unit head) on 5 x 64^2;
- graph: 4 message-passing layers of width 64 on the periodic 20-nearest-
  neighbour graph of 5000 points (edge MLP on [h_i, h_j, e_ij], sum at i,
  residual node MLP).

    python bench/nn/torch_twins.py --threads 2 --json torch.json
(needs torch and nflows: python -m venv V && V/bin/pip install torch nflows)
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "diffusion"))
from unet_torch import UNet  # noqa: E402


def train_time(params, loss, steps):
    opt = torch.optim.Adam(params, lr=1e-4)
    params = list(params) if not isinstance(params, list) else params

    def step():
        opt.zero_grad()
        value = loss()
        value.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()

    step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - t) / steps


def eval_time(f, evals):
    with torch.no_grad():
        f()
        best = math.inf
        for _ in range(evals):
            t = time.perf_counter()
            f()
            best = min(best, time.perf_counter() - t)
    return best


def unet(side, batch, ebatch, steps, evals):
    net = UNet()
    x0 = torch.randn(batch, 1, side, side)

    def loss():
        sigma = torch.exp(torch.empty(batch).uniform_(math.log(0.005), math.log(50.0)))
        z = torch.randn_like(x0)
        x = (x0 + sigma[:, None, None, None] * z) / torch.sqrt(1 + sigma**2)[:, None, None, None]
        return ((net(x, torch.log(sigma) / 4) + z) ** 2).mean()

    params = list(net.parameters())
    tr = train_time(params, loss, steps)
    xe, code = torch.randn(ebatch, 1, side, side), torch.zeros(ebatch)
    return batch, tr, eval_time(lambda: net(xe, code), evals), params


def nsf(dim, ctx, batch, ebatch, steps, evals):
    from nflows import distributions, flows, transforms
    from nflows.nn.nets import ResidualNet
    from nflows.utils import torchutils

    layers = []
    for i in range(5):
        mask = torchutils.create_alternating_binary_mask(dim, even=(i % 2 == 0))
        layers.append(
            transforms.PiecewiseRationalQuadraticCouplingTransform(
                mask=mask,
                transform_net_create_fn=lambda i_, o_: ResidualNet(
                    i_, o_, hidden_features=50, context_features=ctx, num_blocks=2,
                    activation=F.relu, dropout_probability=0.0, use_batch_norm=False,
                ),
                num_bins=10, tails="linear", tail_bound=3.0,
            )
        )
        layers.append(transforms.LULinear(dim, identity_init=True))
    flow = flows.Flow(transforms.CompositeTransform(layers), distributions.StandardNormal([dim]))
    y, c = torch.randn(batch, dim), torch.randn(batch, ctx)
    params = list(flow.parameters())
    tr = train_time(params, lambda: -flow.log_prob(y, context=c).mean(), steps)
    ye, ce = torch.randn(ebatch, dim), torch.randn(ebatch, ctx)
    return batch, tr, eval_time(lambda: flow.log_prob(ye, context=ce), evals), params


class Block(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x):
        h = self.conv2(F.silu(self.conv1(F.silu(x))))
        return h + (self.skip(x) if self.skip is not None else x)


class Encoder(nn.Module):
    def __init__(self, channels=5, side=64, width=8, out=6):
        super().__init__()
        levels = 1
        while side >> levels >= 8 and side % (1 << levels) == 0:
            levels += 1
        widths = [min(width << l, 8 * width) for l in range(levels)]
        self.conv_in = nn.Conv2d(channels, width, 3, padding=1)
        self.blocks = nn.ModuleList([Block(width if l == 0 else widths[l - 1], widths[l]) for l in range(levels)])
        self.dense = nn.Linear(widths[-1], 64)
        self.out = nn.Linear(64, out)

    def forward(self, x):
        h = self.conv_in(x)
        for l, b in enumerate(self.blocks):
            if l > 0:
                h = F.avg_pool2d(h, 2)
            h = b(h)
        h = F.silu(h).mean(dim=(2, 3))
        return self.out(F.silu(self.dense(h)))


def encoder(batch, steps, evals):
    net = Encoder()
    x, t = torch.randn(batch, 5, 64, 64), torch.randn(batch, 6)
    params = list(net.parameters())
    tr = train_time(params, lambda: ((net(x) - t) ** 2).mean(), steps)
    xe = torch.randn(batch, 5, 64, 64)
    return batch, tr, eval_time(lambda: net(xe), evals), params


class MessagePassing(nn.Module):
    def __init__(self, h, e):
        super().__init__()
        self.edge_in, self.edge_out = nn.Linear(2 * h + e, h), nn.Linear(h, h)
        self.node_in, self.node_out = nn.Linear(2 * h, h), nn.Linear(h, h)

    def forward(self, h, senders, receivers, edges):
        m = self.edge_out(F.silu(self.edge_in(torch.cat([h[receivers], h[senders], edges], 1))))
        agg = torch.zeros_like(h).index_add_(0, receivers, m)
        return h + self.node_out(F.silu(self.node_in(torch.cat([h, agg], 1))))


class GraphNet(nn.Module):
    def __init__(self, hidden=64, layers=4):
        super().__init__()
        self.embed = nn.Linear(3, hidden)
        self.layers = nn.ModuleList([MessagePassing(hidden, 4) for _ in range(layers)])
        self.out = nn.Linear(hidden, 3)

    def forward(self, x, s, r, e):
        h = self.embed(x)
        for layer in self.layers:
            h = layer(h, s, r, e)
        return self.out(h)


def graph(steps, evals, n=5000, k=20, box=1000.0):
    pts = torch.rand(n, 3) * box
    d = pts[None, :, :] - pts[:, None, :]  # d[i, j] = x_j - x_i
    d = d - box * torch.round(d / box)
    r2 = (d**2).sum(-1)
    r2.fill_diagonal_(math.inf)
    nearest = torch.topk(r2, k, dim=1, largest=False).indices  # [n, k]
    receivers = torch.arange(n).repeat_interleave(k)
    senders = nearest.reshape(-1)
    disp = d[receivers, senders]
    edges = torch.cat([disp, disp.norm(dim=1, keepdim=True)], 1) / 100.0
    x = pts / box
    net, target = GraphNet(), torch.randn(n, 3)
    params = list(net.parameters())
    tr = train_time(params, lambda: ((net(x, senders, receivers, edges) - target) ** 2).mean(), steps)
    return 1, tr, eval_time(lambda: net(x, senders, receivers, edges), evals), params


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--evals", type=int, default=5)
    p.add_argument("--workloads", default="unet64,unet128,nsf_two_moons,nsf_slcp,encoder,graph")
    p.add_argument("--json", default=None)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    runs = {
        "unet64": lambda: unet(64, 32, 16, a.steps, a.evals),
        "unet128": lambda: unet(128, 8, 16, a.steps, a.evals),
        "nsf_two_moons": lambda: nsf(2, 2, 200, 1000, a.steps, a.evals),
        "nsf_slcp": lambda: nsf(5, 8, 200, 1000, a.steps, a.evals),
        "encoder": lambda: encoder(64, a.steps, a.evals),
        "graph": lambda: graph(a.steps, a.evals),
    }
    out = {"tool": f"torch {torch.__version__}", "threads": a.threads}
    for name in a.workloads.split(","):
        batch, tr, ev, params = runs[name]()
        out[name] = {
            "train_per_s": batch / tr,
            "train_step_s": tr,
            "eval_s": ev,
            "params": sum(q.numel() for q in params),
        }
        print(name, json.dumps(out[name]), flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
