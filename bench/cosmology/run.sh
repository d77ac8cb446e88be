#!/usr/bin/env bash
# cosmodiff vs jax-cosmo: the benchmark of issue 3 ("Performance").
#
#   bash bench/cosmology/run.sh
#
# 1. creates (or reuses) a throwaway venv at ${BENCH_VENV:-$HOME/.cache/cosmodiff-bench-venv}
#    and pip-installs pinned jax[cpu], jax-cosmo and numpy there (nothing else on the
#    machine is touched);
# 2. builds and runs `cargo run --release -p cosmodiff-cosmo --example bench_cl`
#    (CARGO_TARGET_DIR defaults to $HOME/.cache/cosmodiff-target);
# 3. runs bench/cosmology/jaxcosmo_bench.py (jit, warm-up call, block_until_ready,
#    median of BENCH_REPS runs) in the venv;
# 4. prints a markdown table: workload | cosmodiff (ms) | jax-cosmo warm (ms) |
#    speed-up (jax/cosmodiff) | jax-cosmo compile (s).
#
# Knobs (environment): BENCH_VENV, BENCH_PYTHON (interpreter for the venv, default python3),
# BENCH_THREADS (cores for both codes, default 2), BENCH_REPS (default 30),
# BENCH_JAX_VERSION, BENCH_NUMPY_SPEC, CARGO_TARGET_DIR, COSMODIFF_REF_DIR.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

VENV="${BENCH_VENV:-$HOME/.cache/cosmodiff-bench-venv}"
PYTHON="${BENCH_PYTHON:-python3}"
THREADS="${BENCH_THREADS:-2}"
REPS="${BENCH_REPS:-30}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cosmodiff-target}"

# Pins: jax-cosmo 0.1.0 is its only release. It runs unchanged on Python 3.11 with
# jax 0.4.30 (numpy < 2 for that jaxlib) and reproduces the reference jc__wl2 C_ell
# to 3e-15. The newest jax (0.10.2, numpy 2) also runs it, with the same numbers, but
# its warm Fisher was ~2x slower here (1.6 s against 0.85 s), so the benchmark uses
# the faster 0.4.30: the comparison does not favour cosmodiff.
JAX_VERSION="${BENCH_JAX_VERSION:-0.4.30}"
JAXCOSMO_VERSION="0.1.0"
NUMPY_SPEC="${BENCH_NUMPY_SPEC:-==1.26.4}"

log() { echo "[bench] $*" >&2; }

# --- 1. the throwaway venv -------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
    log "creating venv $VENV"
    "$PYTHON" -m venv "$VENV"
fi
if ! "$VENV/bin/python" - "$JAX_VERSION" "$JAXCOSMO_VERSION" <<'PY' 2>/dev/null; then
import sys
from importlib.metadata import version
ok = version("jax") == sys.argv[1] and version("jaxlib") == sys.argv[1] and version("jax-cosmo") == sys.argv[2]
sys.exit(0 if ok else 1)
PY
    log "installing jax[cpu]==$JAX_VERSION jax-cosmo==$JAXCOSMO_VERSION numpy$NUMPY_SPEC into $VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
        "jax[cpu]==$JAX_VERSION" "jaxlib==$JAX_VERSION" "jax-cosmo==$JAXCOSMO_VERSION" "numpy$NUMPY_SPEC" >&2
else
    log "reusing venv $VENV (jax $JAX_VERSION, jax-cosmo $JAXCOSMO_VERSION)"
fi

# --- same cores for both codes -----------------------------------------------------
# Rust (rayon) and OpenMP take their pool size from these; XLA's CPU client sizes its
# thread pool from the CPUs the process may run on, so both are also pinned to the
# same THREADS cores with taskset where there are more of them.
export RAYON_NUM_THREADS="$THREADS" OMP_NUM_THREADS="$THREADS"
export XLA_FLAGS="${XLA_FLAGS:+$XLA_FLAGS }--xla_cpu_multi_thread_eigen=true"
export JAX_PLATFORMS=cpu
PIN=()
NCPU="$(nproc)"
if command -v taskset >/dev/null 2>&1 && [ "$NCPU" -gt "$THREADS" ]; then
    PIN=(taskset -c "0-$((THREADS - 1))")
fi

# --- 2. cosmodiff ----------------------------------------------------------------
log "building the bench_cl example (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
cargo build --release -p cosmodiff-cosmo --example bench_cl >&2
log "running cosmodiff"
RUST_JSON="$("${PIN[@]}" cargo run -q --release -p cosmodiff-cosmo --example bench_cl | grep '^{' | tail -n 1)"
log "cosmodiff: $RUST_JSON"

# --- 3. jax-cosmo ----------------------------------------------------------------
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are set on some machines of this workplace for
# old OpenBLAS builds; they slow a current numpy, so they are unset for this one
# command only (jax itself does not run on OpenBLAS).
BLAS_NOTE="OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE were not set"
if [ -n "${OPENBLAS_CORETYPE+x}${OPENBLAS_L2_SIZE+x}" ]; then
    BLAS_NOTE="OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-<unset>} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE-<unset>} were set here: unset for the python command only"
fi
log "running jax-cosmo (first calls compile: this takes minutes)"
JAX_JSON="$("${PIN[@]}" env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
    "$VENV/bin/python" bench/cosmology/jaxcosmo_bench.py --reps "$REPS" | grep '^{' | tail -n 1)"
log "jax-cosmo: $JAX_JSON"

# --- 4. the table ----------------------------------------------------------------
"$VENV/bin/python" - "$RUST_JSON" "$JAX_JSON" "$THREADS" "$BLAS_NOTE" <<'PY'
import json, platform, subprocess, sys, datetime, os

rust, jaxr, threads, blas_note = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]

def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"

def rustc():
    try:
        return subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "rustc ?"

rows = [
    ("C_ell: 2 Smail WL bins, 50 ells (halofit, EH)", rust["cl_ms"], jaxr["cl_ms"], jaxr["cl_compile_s"]),
    ("Knox covariance + (Omega_c, sigma8) Fisher J^T C^-1 J", rust["fisher_ms"], jaxr["fisher_ms"], jaxr["fisher_compile_s"]),
    ("same Fisher, jax-cosmo reusing the jacfwd C_ell (has_aux)", rust["fisher_ms"], jaxr["fisher_shared_ms"], jaxr["fisher_shared_compile_s"]),
]
load = os.getloadavg()
print()
print(f"Date (UTC): {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M}; machine: {os.cpu_count()} cores ({cpu_model()}), "
      f"both codes on {threads} threads; load average before the table {load[0]:.2f}")
print(f"cosmodiff: {rustc()}, release build; jax-cosmo {jaxr['jax_cosmo_version']} on jax/jaxlib {jaxr['jax_version']}/"
      f"{jaxr.get('jaxlib_version', '?')} (CPU, float64), numpy {jaxr['numpy_version']}; {jaxr['reps']} warm runs each, median")
print()
print("| workload | cosmodiff (ms) | jax-cosmo warm (ms) | speed-up (jax/cosmodiff) | jax-cosmo compile (s) |")
print("|---|---:|---:|---:|---:|")
for name, r, j, c in rows:
    print(f"| {name} | {r:.2f} | {j:.1f} | {j / r:.0f}x | {c:.1f} |")
print()
ref = jaxr.get("cl_maxrel_vs_ref_jc__wl2")
if ref is None:
    print("- jax-cosmo C_ell NOT checked: reference file not found")
else:
    print(f"- same workload: jax-cosmo's C_ell here vs the reference jc__wl2: max rel. diff {ref:.1e} "
          f"({jaxr['cl_zmax10_maxrel_vs_ref_jc__wl2']:.1e} with smail_nz's default zmax=10, which the reference used; "
          f"the benchmark normalises n(z) on [0, 5] as cosmodiff); vs CCL matched: {jaxr['cl_maxrel_vs_ref_ccl_matched__wl2']:.1e}")
if "fisher_maxrel_vs_ccl_finitediff" in jaxr:
    print(f"- jax-cosmo's Fisher vs CCL finite differences: max rel. diff {jaxr['fisher_maxrel_vs_ccl_finitediff']:.1e} "
          "(its halofit scale search is piecewise linear, so its derivatives are off)")
print("- compile = first call of the jitted function (trace + XLA compile + one run); cosmodiff has no compile step")
print(f"- {blas_note}")
PY
