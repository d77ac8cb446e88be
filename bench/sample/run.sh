#!/usr/bin/env bash
# cosmodiff sample vs NumPyro NUTS on jax-cosmo: the benchmark of issue 5 ("Performance").
#
#   bash bench/sample/run.sh
#
# Same problem for both samplers (the wl2 posterior): two Smail WL bins (a=1, b=2,
# z0=1.0 and 0.5, n(z) on [0, 5]), sigma_e=0.26, 10 gal/arcmin^2 each, f_sky=0.25,
# Knox covariance (delta_ell = gradient(ell)) of signal+noise fixed at the Planck15
# fiducial, noiseless fiducial data, free (Omega_c, sigma8) with Uniform(0.1, 0.6) x
# Uniform(0.4, 1.3) priors, BENCH_NELL ells log-spaced over [10, 10^3.5].
#
# 1. creates (or reuses) the throwaway venv of bench/cosmology/run.sh
#    (${BENCH_VENV:-$HOME/.cache/cosmodiff-bench-venv}) and adds numpyro there;
# 2. builds `cosmodiff` (cargo build --release -p cosmodiff-cli) and runs
#    `cosmodiff sample` on a generated config; wall = the whole process;
# 3. runs bench/sample/numpyro_bench.py (NumPyro NUTS, default diagonal mass matrix,
#    then dense_mass=True unless BENCH_DENSE=0); wall includes JIT compilation;
# 4. scores all draws with the same bulk-ESS estimator (rank-normalised split-chain,
#    numpyro.diagnostics.effective_sample_size) and prints a markdown table:
#    sampler | chains x (warmup+draws) | wall s (incl. compile) | min ESS bulk | ESS/s | ratio.
#
# Knobs (environment): BENCH_VENV, BENCH_PYTHON, BENCH_THREADS (default 2), BENCH_CHAINS (1),
# BENCH_WARMUP (100), BENCH_DRAWS (200), BENCH_NELL (20), BENCH_SEED (0), BENCH_DENSE (1),
# CARGO_TARGET_DIR (default $HOME/.cache/cosmodiff-target).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

VENV="${BENCH_VENV:-$HOME/.cache/cosmodiff-bench-venv}"
PYTHON="${BENCH_PYTHON:-python3}"
THREADS="${BENCH_THREADS:-2}"
CHAINS="${BENCH_CHAINS:-1}"
WARMUP="${BENCH_WARMUP:-100}"
DRAWS="${BENCH_DRAWS:-200}"
NELL="${BENCH_NELL:-20}"
SEED="${BENCH_SEED:-0}"
DENSE="${BENCH_DENSE:-1}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cosmodiff-target}"

# Pins as bench/cosmology/run.sh (jax 0.4.30, jax-cosmo 0.1.0, numpy 1.26); numpyro 0.15.3
# is a release that supports jax 0.4.30 (pip keeps jax at the pin).
JAX_VERSION="0.4.30"
JAXCOSMO_VERSION="0.1.0"
NUMPYRO_VERSION="0.15.3"
NUMPY_SPEC="==1.26.4"

log() { echo "[bench] $*" >&2; }

# --- 1. the throwaway venv -------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
    log "creating venv $VENV"
    "$PYTHON" -m venv "$VENV"
fi
if ! "$VENV/bin/python" - "$JAX_VERSION" "$JAXCOSMO_VERSION" "$NUMPYRO_VERSION" <<'PY' 2>/dev/null; then
import sys
from importlib.metadata import version
ok = (version("jax") == sys.argv[1] and version("jaxlib") == sys.argv[1]
      and version("jax-cosmo") == sys.argv[2] and version("numpyro") == sys.argv[3])
import scipy  # noqa: F401  (comes with jax)
sys.exit(0 if ok else 1)
PY
    log "installing jax[cpu]==$JAX_VERSION jax-cosmo==$JAXCOSMO_VERSION numpyro==$NUMPYRO_VERSION numpy$NUMPY_SPEC into $VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
        "jax[cpu]==$JAX_VERSION" "jaxlib==$JAX_VERSION" "jax-cosmo==$JAXCOSMO_VERSION" \
        "numpyro==$NUMPYRO_VERSION" "numpy$NUMPY_SPEC" >&2
else
    log "reusing venv $VENV (jax $JAX_VERSION, jax-cosmo $JAXCOSMO_VERSION, numpyro $NUMPYRO_VERSION)"
fi

# --- same cores for both ------------------------------------------------------------
export RAYON_NUM_THREADS="$THREADS" OMP_NUM_THREADS="$THREADS" JAX_PLATFORMS=cpu
PIN=()
if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -gt "$THREADS" ]; then
    PIN=(taskset -c "0-$((THREADS - 1))")
fi
PY=("${PIN[@]}" env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$VENV/bin/python")

WORK="$(mktemp -d "${TMPDIR:-/tmp}/cosmodiff-sample-bench.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# --- 2. cosmodiff ----------------------------------------------------------------
log "building cosmodiff (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
cargo build --release -p cosmodiff-cli >&2
BIN="$CARGO_TARGET_DIR/release/cosmodiff"
"$VENV/bin/python" - "$NELL" "$CHAINS" "$WARMUP" "$DRAWS" "$SEED" > "$WORK/sample.toml" <<'PY'
import sys
n, chains, warmup, draws, seed = (int(a) for a in sys.argv[1:])
ell = ", ".join(f"{10 ** (1 + 2.5 * i / (n - 1)):.12g}" for i in range(n))
wl = lambda z0: f'[[tracer]]\nkind = "weak_lensing"\nnz = {{ kind = "smail", a = 1.0, b = 2.0, z0 = {z0} }}\nsigma_e = 0.26\ngals_per_arcmin2 = 10.0\n'
print('[cosmology]\npreset = "planck15"\n' + wl(1.0) + wl(0.5)
      + f"[cl]\nell = [{ell}]\nf_sky = 0.25\n[data]\nfiducial = true\n"
      + '[[param]]\nname = "Omega_c"\nprior = "uniform"\nlow = 0.1\nhigh = 0.6\n'
      + '[[param]]\nname = "sigma8"\nprior = "uniform"\nlow = 0.4\nhigh = 1.3\n'
      + f"[sampler]\nchains = {chains}\nwarmup = {warmup}\ndraws = {draws}\nseed = {seed}\n")
PY
log "running cosmodiff sample ($CHAINS x ($WARMUP+$DRAWS), $NELL ells)"
T0="$(date +%s.%N)"
"${PIN[@]}" "$BIN" -q sample --config "$WORK/sample.toml" --out "$WORK/cosmodiff" >&2
T1="$(date +%s.%N)"
CD_ESS="$("${PY[@]}" bench/sample/numpyro_bench.py --ess-of "$WORK/cosmodiff/draws.npz" | tail -n 1)"
CD_JSON="$("$VENV/bin/python" - "$WORK/cosmodiff/summary.json" "$T0" "$T1" "$CD_ESS" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
ess = json.loads(sys.argv[4])["ess_bulk"]
print(json.dumps({"sampler": "cosmodiff", "wall_s": float(sys.argv[3]) - float(sys.argv[2]),
                  "mcmc_s": s["elapsed_s"], "ess_bulk": ess, "min_ess_bulk": min(ess),
                  "ess_bulk_cosmodiff_summary": [p["ess_bulk"] for p in s["params"]],
                  "divergences": s["divergences"],
                  "mean": [p["mean"] for p in s["params"]], "sd": [p["sd"] for p in s["params"]]}))
PY
)"
log "cosmodiff: $CD_JSON"

# --- 3. NumPyro ------------------------------------------------------------------
log "running NumPyro NUTS, diagonal mass matrix (JIT compilation takes minutes)"
NP_JSON="$("${PY[@]}" bench/sample/numpyro_bench.py --chains "$CHAINS" --warmup "$WARMUP" \
    --draws "$DRAWS" --n-ell "$NELL" --seed "$SEED" | tail -n 1)"
NPD_JSON="null"
if [ "$DENSE" = "1" ]; then
    log "running NumPyro NUTS, dense_mass=True"
    NPD_JSON="$("${PY[@]}" bench/sample/numpyro_bench.py --chains "$CHAINS" --warmup "$WARMUP" \
        --draws "$DRAWS" --n-ell "$NELL" --seed "$SEED" --dense | tail -n 1)"
fi

# --- 4. the table ----------------------------------------------------------------
"$VENV/bin/python" - "$CD_JSON" "$NP_JSON" "$NPD_JSON" "$CHAINS" "$WARMUP" "$DRAWS" "$NELL" "$THREADS" <<'PY'
import datetime, json, os, subprocess, sys
cd, npd, npx = (json.loads(a) for a in sys.argv[1:4])
chains, warmup, draws, nell, threads = sys.argv[4:9]

def rustc():
    try:
        return subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "rustc ?"

rows = [("cosmodiff sample (NUTS, low-rank adaptive mass)", cd), ("NumPyro NUTS (diagonal mass, default)", npd)]
if npx:
    rows.append(("NumPyro NUTS (dense_mass=True)", npx))
rate = lambda r: r["min_ess_bulk"] / r["wall_s"]
print()
print(f"Date (UTC): {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M}; {os.cpu_count()} cores, "
      f"both on {threads} threads; load average after the runs {os.getloadavg()[0]:.2f}")
print(f"cosmodiff: {rustc()}, release; NumPyro {npd['numpyro_version']} on jax {npd['jax_version']} (CPU, float64), "
      f"jax-cosmo {npd.get('jax_cosmo_version', '?')}; wl2 problem, {nell} ells, seed as given")
print()
print("| sampler | chains x (warmup+draws) | wall s (incl. compile) | min ESS bulk | ESS/s | ratio (cosmodiff / this) |")
print("|---|---|---:|---:|---:|---:|")
for name, r in rows:
    ratio = rate(cd) / rate(r)
    print(f"| {name} | {chains} x ({warmup}+{draws}) | {r['wall_s']:.1f} | {r['min_ess_bulk']:.0f} | {rate(r):.3g} | {ratio:.0f}x |")
print()
for name, r in rows:
    extra = f", mean leapfrog steps/draw {r['mean_leapfrog_per_draw']:.1f}, sampling+compile {r['mcmc_s']:.1f} s, setup {r['setup_s']:.1f} s" if "setup_s" in r else f", NUTS time {r['mcmc_s']:.1f} s"
    print(f"- {name}: ESS bulk {[round(e) for e in r['ess_bulk']]}, mean {[round(m, 4) for m in r['mean']]}, "
          f"sd {[round(s, 4) for s in r['sd']]}, divergences {r['divergences']}{extra}")
print(f"- cosmodiff's own summary.json ess_bulk: {[round(e) for e in cd['ess_bulk_cosmodiff_summary']]}")
PY
