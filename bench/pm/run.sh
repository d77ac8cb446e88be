#!/usr/bin/env bash
# cosmodiff-pm vs JaxPM and pmwd: the benchmark of issue 8 ("Performance").
#
#   bash bench/pm/run.sh [N ...]          (default N = 64 128)
#
# For every N and mode (forward, grad), one process per tool and measurement, each
# under /usr/bin/time -v (peak RSS = "Maximum resident set size"), tools interleaved
# so that they see the same machine load:
#   cosmodiff-pm  cargo run --release -p cosmodiff-pm --example bench -- N 10 MODE
#   JaxPM 0.1.6   bench/pm/bench_jaxpm.py N MODE   (reverse-mode autodiff for grad)
#   pmwd          bench/pm/bench_pmwd.py  N MODE   (its adjoint, custom_vjp)
# Each prints its best of 3 after a warm-up call (JAX: after jit compilation).
# Problem: N^3 particles on an N^3 mesh, box 4N Mpc/h, 2LPT at a = 0.1, 10 KDK steps
# to a = 1, float32, grad = d/d(white noise) of 0.5 sum (rho_CIC - 1)^2.
#
# The throwaway venv (${BENCH_VENV:-$HOME/.cache/pm-bench-venv}) gets jax[cpu]==0.10.2,
# jaxpm==0.1.6, jax-cosmo and mcfit from the package index. pmwd has no PyPI release
# reachable here; set PMWD_SRC to a source checkout (commit
# 0552bc0131755367574d8d51ae4fc08d6c29ecf1, the one of the shared reference) and it is
# put on PYTHONPATH (nothing is installed from it, nothing is copied into the repo).
# Without PMWD_SRC the pmwd rows are skipped.
#
# Every row also records the 1-minute load average just before the process
# (/proc/loadavg) and the process's CPU time (user + system, from time -v): on a
# shared machine the wall time of a 2-thread job grows with the load, its CPU time
# much less.
# Knobs: BENCH_BASELINE (path of another build of the cosmodiff bench example, e.g.
# an older commit's, run right after cosmodiff-pm as "cosmodiff-pm baseline"),
# BENCH_TOOLS (default "cosmodiff jaxpm pmwd"), BENCH_VENV, BENCH_PYTHON (default python3), BENCH_THREADS (default 2: rayon
# threads, and taskset to CPUs 0..THREADS-1 for every tool), CARGO_TARGET_DIR, PMWD_SRC.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
VENV="${BENCH_VENV:-$HOME/.cache/pm-bench-venv}"
PYTHON="${BENCH_PYTHON:-python3}"
THREADS="${BENCH_THREADS:-2}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cosmodiff-target}"
export RAYON_NUM_THREADS="$THREADS"
SIZES=("$@"); [ ${#SIZES[@]} -eq 0 ] && SIZES=(64 128)
TOOLS="${BENCH_TOOLS:-cosmodiff jaxpm pmwd}"
want() { case " $TOOLS " in *" $1 "*) return 0;; *) return 1;; esac; }
log() { echo "[bench] $*" >&2; }

if [ ! -x "$VENV/bin/python" ]; then
    log "creating venv $VENV"
    "$PYTHON" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import jax, jaxpm, jax_cosmo, mcfit; assert jax.__version__ == "0.10.2"' 2>/dev/null; then
    log "installing jax[cpu]==0.10.2 jaxpm==0.1.6 jax-cosmo mcfit into $VENV"
    "$VENV/bin/pip" install -q "jax[cpu]==0.10.2" "jaxpm==0.1.6" jax-cosmo mcfit
fi
cargo build -q --release -p cosmodiff-pm --example bench
BIN="$CARGO_TARGET_DIR/release/examples/bench"
CPUS="0-$((THREADS - 1))"

run() { # label, command...
    local label="$1"; shift
    local tf; tf="$(mktemp)"
    local line load
    load="$(cut -d' ' -f1 /proc/loadavg)"
    line="$(taskset -c "$CPUS" /usr/bin/time -v -o "$tf" "$@" 2>/dev/null | tail -1)" || line="FAILED"
    local rss; rss="$(awk -F: '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$tf")"
    local cpu; cpu="$(awk -F: '/User time|System time/ {s += $2} END {printf "%.1f", s}' "$tf")"
    rm -f "$tf"
    local t; t="$(echo "$line" | sed -n 's/.*best of 3 \([0-9.]*\) s.*/\1/p')"
    echo "| $label | ${t:-n/a} | ${rss:-n/a} | ${cpu:-n/a} | $load |"
}

echo "| tool, mode, N | best of 3 (s) | peak RSS (MiB) | CPU time, whole process (s) | load before |"
echo "|---|---:|---:|---:|---:|"
for n in "${SIZES[@]}"; do
    for mode in forward grad; do
        want cosmodiff && run "cosmodiff-pm $mode $n" "$BIN" "$n" 10 "$mode"
        if want cosmodiff && [ -n "${BENCH_BASELINE:-}" ]; then
            run "cosmodiff-pm baseline $mode $n" "$BENCH_BASELINE" "$n" 10 "$mode"
        fi
        want jaxpm && run "JaxPM 0.1.6 $mode $n" "$VENV/bin/python" bench/pm/bench_jaxpm.py "$n" "$mode"
        if want pmwd && [ -n "${PMWD_SRC:-}" ]; then
            run "pmwd $mode $n" env PYTHONPATH="$PMWD_SRC" "$VENV/bin/python" bench/pm/bench_pmwd.py "$n" "$mode"
        fi
    done
done
