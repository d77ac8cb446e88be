"""PyTorch twin of cosmodiff's score U-Net (crates/nn/src/unet.rs) for the
issue-7 benchmark: training throughput (maps/s, denoising-score-matching
step with Adam) and score-evaluation time (batch forward, no grad) on CPU.

Same layout, widths, GroupNorm groups, SiLU, sinusoidal noise embedding,
2x2 average pooling, nearest up-sampling, zero-padded 3x3 convolutions.
Written from the description in unet.rs, not from another project.

    python unet_torch.py --side 64 --batch 32 --threads 2 --json out.json
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def groups(c):
    for g in (8, 4, 2, 1):
        if c % g == 0:
            return g
    return 1


class ResBlock(nn.Module):
    def __init__(self, cin, cout, e):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups(cin), cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(e, cout)
        self.norm2 = nn.GroupNorm(groups(cout), cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, emb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(emb)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + (self.skip(x) if self.skip is not None else x)


class UNet(nn.Module):
    def __init__(self, channels=(16, 32, 64), e=64):
        super().__init__()
        c = list(channels)
        self.e = e
        self.embed1 = nn.Linear(e, e)
        self.embed2 = nn.Linear(e, e)
        self.conv_in = nn.Conv2d(1, c[0], 3, padding=1)
        self.first = ResBlock(c[0], c[0], e)
        self.down = nn.ModuleList([ResBlock(c[l - 1], c[l], e) for l in range(1, len(c))])
        self.mid = ResBlock(c[-1], c[-1], e)
        self.up = nn.ModuleList([ResBlock(c[l + 1] + c[l], c[l], e) for l in reversed(range(len(c) - 1))])
        self.norm_out = nn.GroupNorm(groups(c[0]), c[0])
        self.conv_out = nn.Conv2d(c[0], 1, 3, padding=1)
        half = e // 2
        w = 0.5 * 128.0 ** (torch.arange(half) / max(half - 1, 1))
        self.register_buffer("w", w)

    def features(self, code):
        a = code[:, None] * self.w[None, :]
        return torch.cat([torch.sin(a), torch.cos(a)], dim=1)

    def forward(self, x, code):
        emb = self.embed2(F.silu(self.embed1(self.features(code))))
        h = self.first(self.conv_in(x), emb)
        skips = [h]
        for b in self.down:
            h = b(F.avg_pool2d(h, 2), emb)
            skips.append(h)
        h = self.mid(h, emb)
        skips.pop()
        for b in self.up:
            s = skips.pop()
            h = b(torch.cat([F.interpolate(h, scale_factor=2, mode="nearest"), s], dim=1), emb)
        return self.conv_out(F.silu(self.norm_out(h)))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--side", type=int, default=64)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--eval-batch", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--evals", type=int, default=10)
    p.add_argument("--json", default=None)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    net = UNet()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x0 = torch.randn(a.batch, 1, a.side, a.side)

    def step():
        sigma = torch.exp(torch.empty(a.batch).uniform_(math.log(0.005), math.log(50.0)))
        z = torch.randn_like(x0)
        x = (x0 + sigma[:, None, None, None] * z) / torch.sqrt(1 + sigma**2)[:, None, None, None]
        loss = ((net(x, torch.log(sigma) / 4) + z) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()

    step()  # warm-up
    t = time.perf_counter()
    for _ in range(a.steps):
        step()
    train = (time.perf_counter() - t) / a.steps
    xe = torch.randn(a.eval_batch, 1, a.side, a.side)
    code = torch.zeros(a.eval_batch)
    with torch.no_grad():
        net(xe, code)
        t = time.perf_counter()
        for _ in range(a.evals):
            net(xe, code)
        ev = (time.perf_counter() - t) / a.evals
    out = {
        "tool": f"torch {torch.__version__}",
        "threads": a.threads,
        "side": a.side,
        "train_batch": a.batch,
        "train_step_s": train,
        "train_maps_per_s": a.batch / train,
        "eval_batch": a.eval_batch,
        "score_eval_s": ev,
        "params": sum(p.numel() for p in net.parameters()),
    }
    print(json.dumps(out))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
