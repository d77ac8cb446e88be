#!/usr/bin/env bash
# Point-cloud diffusion: cosmodiff's training step and ELBO against the JAX
# twin of point-cloud-galaxy-diffusion's GNN VDM, same N, k, width, depth,
# batch; ROUNDS interleaved rounds, best of each side (docs/benchmarks.md).
#   PYTHON=/work/venv-jax/bin/python bash bench/pointcloud/run.sh
# Environment: PYTHON (with jax, flax, optax, jraph), ROUNDS (3), OUT
# (bench/pointcloud/results), ARGS (passed to both, e.g. "--k 10 --hidden 32").
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
ROUNDS=${ROUNDS:-3}
OUT=${OUT:-bench/pointcloud/results}
ARGS=${ARGS:-}
mkdir -p "$OUT"
cargo build --release -p cosmodiff-cli
BIN=${CARGO_TARGET_DIR:-target}/release/cosmodiff
for r in $(seq "$ROUNDS"); do
  NPROC=2 "$PYTHON" bench/pointcloud/jax_twin.py --json "$OUT/jax_$r.json" $ARGS
  "$BIN" pointcloud bench --json "$OUT/ours_$r.json" $ARGS
done
"$PYTHON" - "$OUT" "$ROUNDS" <<'PY'
import json, sys
out, rounds = sys.argv[1], int(sys.argv[2])
jax = [json.load(open(f"{out}/jax_{r}.json")) for r in range(1, rounds + 1)]
ours = [json.load(open(f"{out}/ours_{r}.json")) for r in range(1, rounds + 1)]
jt = min(j["train_step_ms_best"] for j in jax)
ot = min(o["train_step_ms_best"] for o in ours)
je = max(j["elbo_per_s"] for j in jax)
oe = max(o["elbo_per_s"] for o in ours)
print(f"train step: cosmodiff {ot:.1} ms, JAX {jt:.1} ms -> {jt / ot:.2}x")
print(f"ELBO/s:     cosmodiff {oe:.2}, JAX {je:.2} -> {oe / je:.2}x")
PY
