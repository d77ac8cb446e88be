#!/usr/bin/env python3
"""Correctness verdicts and timing table of bench/halos/run.sh -> bench/halos/results.md.

    compare.py --run RUN_DIR --out-dir OUT_DIR --results results.md [--threads 2 --outer 3 ...]

RUN_DIR holds run.sh's bookkeeping (problems.tsv, timings.tsv, commands.tsv, date_*,
loadavg_*); OUT_DIR the labels / counts written on each tool's first process:
  KEY.cosmodiff.npy     FoF: int64 label = smallest member index; xi: float64 counts
  KEY.kdcount.npy       canonical labels (tools.py)
  KEY.pyfof-ghost.npy   canonical labels of the ghost-padded, merged pyfof run
  KEY.corrfunc.npy      int64 Corrfunc npairs / 2
FoF checks, per reference: (1) the number of groups with >= 20 members and their sorted
member counts are identical (masses identical); (2) every cosmodiff group of >= 20 has
exactly the member set of the reference group holding its smallest member; (3) the full
partition (all groups, singletons included) is identical. Pair counts: every shell's
count is the same integer. Exit status 1 if any check fails.
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys

import numpy as np

MIN_MEMBERS = 20
TOOL_NAMES = {
    "cosmodiff": "cosmodiff-catalog",
    "kdcount": "kdcount 0.3.30 (nbodykit's FoF), 1 thread",
    "pyfof": "pyfof 0.1.5, open box, 1 thread",
    "pyfof-ghost": "pyfof 0.1.5 ghost-padded + merge (periodic), 1 thread, 1 call",
    "corrfunc": "Corrfunc 2.5.3 DD",
}


def read_tsv(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]


def canonical(labels):
    labels = np.asarray(labels)
    order = np.argsort(labels, kind="stable")
    sl = labels[order]
    start = np.ones(len(sl), dtype=bool)
    start[1:] = sl[1:] != sl[:-1]
    first = order[start]
    out = np.empty(len(labels), dtype=np.int64)
    out[order] = first[np.cumsum(start) - 1]
    return out


def fof_check(cd, ref):
    """cd, ref: canonical labels (smallest member index). Returns a dict of numbers."""
    n = len(cd)
    assert len(ref) == n
    cd = canonical(cd)  # cosmodiff's are canonical already; cheap insurance
    ref = canonical(ref)
    size_c = np.bincount(cd, minlength=n)
    size_r = np.bincount(ref, minlength=n)
    big_c = np.nonzero(size_c >= MIN_MEMBERS)[0]  # group ids (= smallest member)
    big_r = np.nonzero(size_r >= MIN_MEMBERS)[0]
    counts_c = np.sort(size_c[big_c])[::-1]
    counts_r = np.sort(size_r[big_r])[::-1]
    same_counts = len(counts_c) == len(counts_r) and bool(np.all(counts_c == counts_r))
    # member sets: cosmodiff group g equals the reference group holding g (its smallest
    # member, whose reference label is then g too) iff every member i of g has ref[i] == g
    # and the two groups have the same size.
    in_big = size_c[cd] >= MIN_MEMBERS
    bad_member = in_big & (ref != cd)
    bad_groups = np.unique(cd[bad_member])
    size_mismatch = big_c[size_r[big_c] != size_c[big_c]]
    bad = np.union1d(bad_groups, size_mismatch)
    n_groups_all_c = int(np.count_nonzero(size_c))
    n_groups_all_r = int(np.count_nonzero(size_r))
    return {
        "n": n,
        "groups20_cd": len(big_c),
        "groups20_ref": len(big_r),
        "largest_cd": int(counts_c[0]) if len(counts_c) else 0,
        "largest_ref": int(counts_r[0]) if len(counts_r) else 0,
        "members20_cd": int(size_c[big_c].sum()),
        "same_sorted_counts": same_counts,
        "groups20_same_members": len(big_c) - len(bad),
        "groups20_differ": len(bad),
        "max_abs_count_diff": int(np.max(np.abs(counts_c - counts_r)))
        if len(counts_c) == len(counts_r) and len(counts_c) else None,
        "groups_all_cd": n_groups_all_c,
        "groups_all_ref": n_groups_all_r,
        "particles_other_group": int(np.count_nonzero(cd != ref)),
        "pass": same_counts and len(bad) == 0 and len(big_c) == len(big_r),
        "full_partition_identical": bool(np.all(cd == ref)),
    }


def xi_check(cd, ref):
    cd = np.asarray(cd, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.int64)
    integral = bool(np.all(cd == np.round(cd)))
    diff = np.round(cd).astype(np.int64) - ref
    return {
        "shells": len(ref),
        "total_pairs": int(ref.sum()),
        "integral": integral,
        "max_abs_diff": int(np.max(np.abs(diff))),
        "pass": integral and bool(np.all(diff == 0)),
        "cd": [int(round(x)) for x in cd],
        "ref": [int(x) for x in ref],
    }


def fmt_s(x):
    if x is None:
        return "n/a"
    return f"{x:.3f}" if x < 10 else f"{x:.1f}"


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True,
                              timeout=30).stdout.strip()
    except Exception as e:  # noqa: BLE001
        return f"n/a ({e})"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--results", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--outer", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--big-repeat", type=int, default=1)
    a = ap.parse_args()

    problems = read_tsv(os.path.join(a.run, "problems.tsv"))
    rows = read_tsv(os.path.join(a.run, "timings.tsv"))
    commands = read_tsv(os.path.join(a.run, "commands.tsv"))
    rd = lambda f: open(os.path.join(a.run, f)).read().strip() if os.path.exists(os.path.join(a.run, f)) else "n/a"  # noqa: E731

    # ---- timings: per (problem, tool): bests of each process, median
    per = {}
    for key, tool, rep, load, cpu, rss, wall, status, js in rows:
        d = json.loads(js) if js.strip().startswith("{") else {}
        e = per.setdefault((key, tool), {"best": [], "load": [], "cpu": [], "rss": [],
                                         "wall": [], "status": [], "runs": [], "threads": None,
                                         "n_padded": None})
        e["status"].append(status)
        e["load"].append(float(load))
        e["wall"].append(float(wall))
        if cpu:
            e["cpu"].append(float(cpu))
        if rss:
            e["rss"].append(float(rss))
        if status == "ok" and "best_s" in d:
            e["best"].append(float(d["best_s"]))
            e["runs"].append(d.get("runs_s"))
            e["threads"] = d.get("threads")
            e["n_padded"] = d.get("n_padded", e["n_padded"])

    lines = []
    P = lines.append
    P("# cosmodiff-catalog vs peers: FoF and periodic pair counts")
    P("")
    P("Generated by `bash bench/halos/run.sh` (bench/halos/compare.py); see the header of "
      "run.sh for what is timed and how.")
    P("")
    model = sh("lscpu | sed -n 's/^Model name: *//p'")
    mem = sh("free -g | awk '/Mem:/ {print $2}'")
    P(f"- machine: {model}, {os.cpu_count()} CPUs (`nproc` {sh('nproc')}), "
      f"{platform.system()} {platform.release()}; memory {mem} GiB")
    P(f"- date: {rd('date_start')} to {rd('date_end')}")
    P(f"- load average (/proc/loadavg) at start: `{rd('loadavg_start')}`, at end: "
      f"`{rd('loadavg_end')}`; per process below (1-minute value just before it started). "
      "The machine is shared with other jobs: a load above the "
      f"{a.threads} pinned threads slows everything, roughly evenly across tools thanks "
      "to the interleaving.")
    info = {}
    for line in rd("commit").splitlines():
        k, _, v = line.partition(" ")
        info.setdefault(k, []).append(v)
    if "HEAD" in info:
        dirty = info.get("dirty", [])
        P(f"- cosmodiff: built at HEAD `{info['HEAD'][0]}`; last commit touching "
          f"crates/catalog/src or examples: `{info.get('catalog_last', ['?'])[0]}`; "
          + (f"uncommitted changes there: {', '.join(d.strip() for d in dirty)}"
             if dirty else "no uncommitted changes there")
          + f"; rustc: {sh('rustc --version')}; cargo build --release (workspace profile)"
          + "".join(f"; {n}" for n in info.get("note", [])))
    else:
        P(f"- cosmodiff: HEAD `{sh('git rev-parse --short HEAD')}` when compare.py ran; "
          f"rustc: {sh('rustc --version')}")
    P(f"- peers: Python {platform.python_version()}, numpy {np.__version__}, "
      f"Corrfunc {_ver('Corrfunc')} (default isa='fastest'), pyfof {_ver('pyfof')}, "
      f"kdcount {_ver('kdcount')}, scipy {_ver('scipy')}")
    P(f"- threads: cosmodiff RAYON_NUM_THREADS={a.threads}, Corrfunc nthreads={a.threads} "
      f"(OpenMP); kdcount and pyfof are single-threaded (no thread option). Every process "
      f"pinned with `taskset -c 0-{a.threads - 1}`.")
    P(f"- repetitions: each (problem, tool) ran as {a.outer} separate processes, tools "
      f"interleaved; each process: 1 warm-up + best of {a.repeat} "
      f"(peers at 256^3 FoF: no warm-up, best of {a.big_repeat}; cosmodiff always 1 + "
      f"{a.repeat}). Table: median over the processes of their best; ratio = tool / cosmodiff "
      "(> 1: cosmodiff faster).")
    P("")

    P("## Timings")
    P("")
    P("| problem | tool | threads | best s (median of processes) | process bests (s) | ratio vs cosmodiff | load before (median) | CPU s per process (median) | peak RSS MiB |")
    P("|---|---|---:|---:|---|---:|---:|---:|---:|")
    slower = []
    for key, kind, file, box, param, desc in problems:
        tools = ["cosmodiff", "kdcount", "pyfof", "pyfof-ghost"] if kind == "fof" else ["cosmodiff", "corrfunc"]
        cdm = per.get((key, "cosmodiff"), {}).get("best") or []
        cd_med = statistics.median(cdm) if cdm else None
        for tool in tools:
            e = per.get((key, tool))
            if e is None:
                continue
            med = statistics.median(e["best"]) if e["best"] else None
            bad = [s for s in e["status"] if s != "ok"]
            if med is None:
                cell = "; ".join(sorted(set(bad))) or "no result"
                cell = cell.replace("timeout ", "did not finish in ")
            else:
                cell = fmt_s(med)
                if bad:
                    cell += f" ({len(bad)} of {len(e['status'])} processes: {'; '.join(sorted(set(bad))).replace('timeout ', 'did not finish in ')})"
            ratio = f"{med / cd_med:.2f}" if (med and cd_med) else "n/a"
            if tool != "cosmodiff" and med and cd_med and med < cd_med and tool != "pyfof-ghost":
                slower.append((desc, TOOL_NAMES.get(tool, tool), cd_med / med))
            th = e["threads"] if e["threads"] is not None else (a.threads if tool in ("cosmodiff", "corrfunc") else 1)
            extra = f" ({e['n_padded']} padded points)" if e["n_padded"] else ""
            cpu = f"{statistics.median(e['cpu']):.1f}" if e["cpu"] else "n/a"
            rss = f"{max(e['rss']):.0f}" if e["rss"] else "n/a"
            P(f"| {desc} | {TOOL_NAMES.get(tool, tool)}{extra} | {th} | {cell} | "
              f"{', '.join(fmt_s(x) for x in e['best']) or '-'} | {ratio} | "
              f"{statistics.median(e['load']):.2f} | {cpu} | {rss} |")
    P("")
    P("CPU s = user + system time of the whole process (import, loading, warm-up and all "
      "timed calls), from /usr/bin/time -v. pyfof solves the open-box problem in its "
      "timing rows (no periodic images, no padding): slightly less work than the periodic "
      "FoF of the other two. kdcount's time includes building its KD-tree, cosmodiff's "
      "its cell grid.")
    P("")
    if slower:
        P("**cosmodiff slower than a peer:** " + "; ".join(
            f"{d}: {t} is {r:.2f}x faster" for d, t, r in slower))
        P("")

    # ---- correctness
    P("## Correctness")
    P("")
    ok_all = True
    for key, kind, file, box, param, desc in problems:
        if kind == "fof":
            cdp = os.path.join(a.out_dir, f"{key}.cosmodiff.npy")
            if not os.path.exists(cdp):
                P(f"- **{desc}**: no cosmodiff labels (run failed) -> FAIL")
                ok_all = False
                continue
            cd = np.load(cdp)
            for ref in ("kdcount", "pyfof-ghost"):
                rp = os.path.join(a.out_dir, f"{key}.{ref}.npy")
                name = TOOL_NAMES[ref] if ref == "kdcount" else "pyfof 0.1.5 (ghost-padded, merged)"
                if not os.path.exists(rp):
                    st = "; ".join(per.get((key, ref), {}).get("status", ["not run"]))
                    P(f"- **{desc}** vs {name}: not checked ({st.replace('timeout ', 'did not finish in ')})")
                    continue
                r = fof_check(cd, np.load(rp))
                ok_all &= r["pass"]
                P(f"- **{desc}** vs {name}: **{'PASS' if r['pass'] else 'FAIL'}** - "
                  f"groups >= {MIN_MEMBERS}: {r['groups20_cd']} (cosmodiff) / {r['groups20_ref']} "
                  f"(reference), sorted member counts identical: {'yes' if r['same_sorted_counts'] else 'no'}"
                  f"{'' if r['max_abs_count_diff'] in (None, 0) else ' (max |diff| ' + str(r['max_abs_count_diff']) + ')'}, "
                  f"identical member sets: {r['groups20_same_members']}/{r['groups20_cd']} "
                  f"({r['members20_cd']} particles; largest group {r['largest_cd']} / {r['largest_ref']}). "
                  f"Full partition of all {r['n']} particles (singletons included, {r['groups_all_cd']} / "
                  f"{r['groups_all_ref']} groups): "
                  f"{'identical' if r['full_partition_identical'] else str(r['particles_other_group']) + ' particles labelled differently'}.")
        else:
            cdp = os.path.join(a.out_dir, f"{key}.cosmodiff.npy")
            rp = os.path.join(a.out_dir, f"{key}.corrfunc.npy")
            if not (os.path.exists(cdp) and os.path.exists(rp)):
                P(f"- **{desc}** (edges {param}): not checked (missing output) -> FAIL")
                ok_all = False
                continue
            r = xi_check(np.load(cdp), np.load(rp))
            ok_all &= r["pass"]
            P(f"- **{desc}** (edges {param}) vs Corrfunc DD / 2: **{'PASS' if r['pass'] else 'FAIL'}** - "
              f"{r['shells']} shells, {r['total_pairs']} pairs in all, "
              f"{'all counts identical integers' if r['pass'] else 'max |diff| ' + str(r['max_abs_diff']) + ('' if r['integral'] else ', cosmodiff counts not integral')}; "
              f"cosmodiff {r['cd']}, Corrfunc/2 {r['ref']}")
    P("")
    P(f"Overall: **{'all checks pass' if ok_all else 'SOME CHECKS FAIL'}**.")
    P("")

    # ---- commands
    P("## Commands")
    P("")
    P("```")
    P("bash bench/halos/run.sh")
    P("# with: " + " ".join(f"{k}={os.environ[k]}" for k in (
        "RAYON_NUM_THREADS", "BENCH_THREADS", "OMP_NUM_THREADS", "CARGO_TARGET_DIR")
        if k in os.environ))
    P("# PM particles (only if missing in the cache):")
    P("cosmodiff pm run -q --config pmN.toml --out pmN   # [box] n_mesh = n_particles = N, "
      "box_size = N; [ic] seed = 1; [steps] n = 10; N = 128, 256")
    P("python bench/halos/tools.py pm-positions pmN N N fofN.npy   # float64, wrapped into [0, N)")
    P("python bench/halos/tools.py uniform 1e5 1000 1 uni1e5.npy; ... uniform 1e6 1000 2 uni1e6.npy")
    P("python bench/halos/tools.py subsample fof256.npy 1e6 3 pm256_1e6.npy")
    P("# first process of every (problem, tool); later ones omit the output file:")
    for key, tool, cmd in commands:
        P(f"{cmd}")
    P("```")
    P("")

    # ---- raw rows
    P("## Every process")
    P("")
    P("| problem | tool | process | status | best s | timed calls (s) | load before | CPU s | peak RSS MiB | wall s |")
    P("|---|---|---:|---|---:|---|---:|---:|---:|---:|")
    for key, tool, rep, load, cpu, rss, wall, status, js in rows:
        d = json.loads(js) if js.strip().startswith("{") else {}
        runs = d.get("runs_s") or []
        P(f"| {key} | {tool} | {rep} | {status} | {fmt_s(d.get('best_s'))} | "
          f"{', '.join(fmt_s(x) for x in runs)} | {load} | {cpu or 'n/a'} | {rss or 'n/a'} | {wall} |")
    P("")

    with open(a.results, "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))
    sys.exit(0 if ok_all else 1)


def _ver(dist, default="?"):
    """Installed distribution version (pyfof's module __version__ says 0.1.3-dev)."""
    try:
        from importlib.metadata import version
        return version(dist)
    except Exception:  # noqa: BLE001
        return default


if __name__ == "__main__":
    main()
