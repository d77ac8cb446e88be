#!/usr/bin/env python3
"""Peer side of bench/halos/run.sh: data preparation and the timed peer kernels.

Run with the throwaway venv (numpy, scipy, Corrfunc 2.5.3, pyfof 0.1.5, kdcount 0.3.30):

    tools.py pm-positions PM_OUT_DIR N_MESH BOX OUT.npy     PM positions -> float64 [N,3] in [0, BOX)
    tools.py uniform N BOX SEED OUT.npy                      uniform random points, float64 [N,3]
    tools.py subsample IN.npy N SEED OUT.npy                 N points drawn without replacement
    tools.py kdcount POS.npy BOX B [OUT_labels.npy]          kdcount.cluster.fof (periodic)
    tools.py pyfof POS.npy BOX B                             pyfof, open box, on the points as they are
    tools.py pyfof-ghost POS.npy BOX B OUT_labels.npy        pyfof on ghost-padded points, groups merged
    tools.py corrfunc POS.npy BOX e0,e1,... [OUT_counts.npy] Corrfunc.theory.DD, periodic, autocorr

B is the linking length in units of the mean inter-particle separation BOX / N^(1/3)
(the cosmodiff bench's convention). Each timed kernel does one warm-up call (none with
BENCH_WARMUP=0) and then BENCH_REPEAT (default 3) timed calls, and prints one JSON line like cosmodiff's bench:
{"kernel", "tool", "n", "threads", "best_s", "runs_s"} (pyfof-ghost: one timed call, no
warm-up). What is timed:
  kdcount   kdcount.cluster.dataset(pos, boxsize=BOX) (the KD-tree) + kdcount.cluster.fof;
            single-threaded (nbodykit's FOF calls exactly this, then MPI-merges domains)
  pyfof     pyfof.friends_of_friends(pos, b) on the unpadded points: NOT periodic, so it
            solves the open-box problem (slightly less work than the periodic one);
            single-threaded
  corrfunc  Corrfunc.theory.DD(autocorr=1, nthreads=BENCH_THREADS (default 2), binfile=edges,
            periodic=True, boxsize=BOX) on float64 arrays; counts are ordered pairs, written
            divided by 2 (each pair once, as cosmodiff)
Labels written are canonical: each particle's label is the smallest index in its group
(cosmodiff's convention), int64. Linking: kdcount links at d <= b, pyfof at d < b,
cosmodiff at d <= b (a tie at exactly d = b is measure-zero on these data).
"""
import json
import os
import sys
import time

import numpy as np

REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))
WARMUP = os.environ.get("BENCH_WARMUP", "1") != "0"
THREADS = int(os.environ.get("BENCH_THREADS", "2"))


def canonical(labels):
    """Relabel so that each particle carries the smallest index of its group."""
    labels = np.asarray(labels)
    order = np.argsort(labels, kind="stable")  # ascending index within each label
    sl = labels[order]
    start = np.ones(len(sl), dtype=bool)
    start[1:] = sl[1:] != sl[:-1]
    first = order[start]  # smallest member of each run
    run_id = np.cumsum(start) - 1
    out = np.empty(len(labels), dtype=np.int64)
    out[order] = first[run_id]
    return out


def link_length(n, box, b):
    return b * box / np.cbrt(n)


def timed(kernel, tool, n, threads, fn, warmup=WARMUP, repeat=REPEAT):
    if warmup:
        res = fn()
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        res = fn()
        runs.append(time.perf_counter() - t)
    print(json.dumps({"kernel": kernel, "tool": tool, "n": n, "threads": threads,
                      "best_s": min(runs), "runs_s": runs}), flush=True)
    return res


def load(path):
    pos = np.ascontiguousarray(np.load(path), dtype=np.float64)
    assert pos.ndim == 2 and pos.shape[1] == 3, pos.shape
    return pos


def pm_positions(pm_dir, n_mesh, box, out):
    p = np.load(os.path.join(pm_dir, "positions.npy"))
    pos = p.reshape(-1, 3).astype(np.float64) * (float(box) / int(n_mesh))
    pos = np.mod(pos, float(box))
    pos[pos >= float(box)] = 0.0  # np.mod can round up to exactly box
    assert np.all((pos >= 0) & (pos < float(box)))
    np.save(out, np.ascontiguousarray(pos))


def uniform(n, box, seed, out):
    rng = np.random.default_rng(int(seed))
    pos = rng.random((int(float(n)), 3)) * float(box)
    pos[pos >= float(box)] = 0.0
    np.save(out, pos)


def subsample(inp, n, seed, out):
    pos = np.load(inp)
    rng = np.random.default_rng(int(seed))
    idx = np.sort(rng.choice(len(pos), size=int(float(n)), replace=False))
    np.save(out, np.ascontiguousarray(pos[idx]))


def run_kdcount(path, box, b, out=None):
    import kdcount.cluster as kc
    pos = load(path)
    box = float(box)
    ll = link_length(len(pos), box, float(b))

    def fn():
        return kc.fof(kc.dataset(pos, boxsize=box), ll).labels

    labels = timed("fof", "kdcount", len(pos), 1, fn)
    if out:
        np.save(out, canonical(labels))


def run_pyfof(path, box, b):
    import pyfof
    pos = load(path)
    ll = link_length(len(pos), float(box), float(b))
    timed("fof", "pyfof (open box)", len(pos), 1, lambda: pyfof.friends_of_friends(pos, ll))


def ghost_pad(pos, box, ll):
    """Append periodic images of every point within ll of a face (faces, edges, corners).

    Returns (padded positions, original index of each padded point)."""
    parts, origs = [pos], [np.arange(len(pos))]
    n = len(pos)
    lo = pos < ll          # near the low face -> image at +box
    hi = pos >= box - ll   # near the high face -> image at -box
    for sx in (-1, 0, 1):
        for sy in (-1, 0, 1):
            for sz in (-1, 0, 1):
                if sx == sy == sz == 0:
                    continue
                m = np.ones(n, dtype=bool)
                for ax, s in enumerate((sx, sy, sz)):
                    if s == 1:
                        m &= lo[:, ax]
                    elif s == -1:
                        m &= hi[:, ax]
                idx = np.nonzero(m)[0]
                if len(idx):
                    parts.append(pos[idx] + box * np.array([sx, sy, sz], dtype=np.float64))
                    origs.append(idx)
    return np.ascontiguousarray(np.concatenate(parts)), np.concatenate(origs)


def run_pyfof_ghost(path, box, b, out):
    """Periodic FoF from the open-box pyfof: pad with images of the points within ll of a
    face, run pyfof once, and merge the groups that share an original particle (union of
    each group's original indices, by connected components)."""
    import pyfof
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    pos = load(path)
    box = float(box)
    n = len(pos)
    ll = link_length(n, box, float(b))

    def fn():
        padded, orig = ghost_pad(pos, box, ll)
        groups = pyfof.friends_of_friends(padded, ll)
        # edges: first member's original index -- every member's original index
        rows, cols = [], []
        for g in groups:
            if len(g) > 1:
                o = orig[np.asarray(g)]
                rows.append(np.full(len(o), o[0]))
                cols.append(o)
        if rows:
            r = np.concatenate(rows)
            c = np.concatenate(cols)
        else:
            r = c = np.zeros(0, dtype=np.int64)
        g = coo_matrix((np.ones(len(r), dtype=np.int8), (r, c)), shape=(n, n)).tocsr()
        _, labels = connected_components(g, directed=False)
        return labels, len(padded)

    t = time.perf_counter()
    labels, n_padded = fn()
    dt = time.perf_counter() - t
    np.save(out, canonical(labels))
    print(json.dumps({"kernel": "fof", "tool": "pyfof (ghost-padded, periodic)", "n": n,
                      "n_padded": n_padded, "threads": 1, "best_s": dt, "runs_s": [dt]}),
          flush=True)


def run_corrfunc(path, box, edges, out=None):
    from Corrfunc.theory.DD import DD
    pos = load(path)
    box = float(box)
    e = np.array([float(x) for x in edges.split(",")], dtype=np.float64)
    x, y, z = (np.ascontiguousarray(pos[:, k]) for k in range(3))

    def fn():
        return DD(1, THREADS, e, x, y, z, periodic=True, boxsize=box)

    res = timed("xi", "Corrfunc", len(pos), THREADS, fn)
    npairs = res["npairs"].astype(np.uint64)
    assert np.all(npairs % 2 == 0), "Corrfunc autocorr counts should be even (ordered pairs)"
    assert np.allclose(res["rmin"], e[:-1]) and np.allclose(res["rmax"], e[1:])
    if out:
        np.save(out, (npairs // 2).astype(np.int64))


def main(argv):
    cmd, args = argv[1], argv[2:]
    {"pm-positions": pm_positions, "uniform": uniform, "subsample": subsample,
     "kdcount": run_kdcount, "pyfof": run_pyfof, "pyfof-ghost": run_pyfof_ghost,
     "corrfunc": run_corrfunc}[cmd](*args)


if __name__ == "__main__":
    main(sys.argv)
