#!/usr/bin/env bash
# Issue 28 benchmark: cosmodiff's networks on every backend of one build
# (cosmodiff nn bench) against their PyTorch twins (torch_twins.py), same
# machine, same threads, interleaved: twin, ours, twin, ours; the best round
# of each side is kept.
#   PYTHON=/work/venv-torch/bin/python bash bench/nn/run.sh
# (a venv with CPU torch and nflows: python -m venv V && V/bin/pip install torch nflows)
# FEATURES=wgpu,ndarray adds backends (wgpu runs on Mesa's lavapipe without a
# GPU: apt-get install mesa-vulkan-drivers; ndarray needs libopenblas-dev).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="${PYTHON:-python3}"
THREADS="${THREADS:-2}"
ROUNDS="${ROUNDS:-2}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cosmodiff-target}"
export RAYON_NUM_THREADS="$THREADS" COSMODIFF_KERNEL_THREADS="$THREADS"
cargo build --release -p cosmodiff-cli ${FEATURES:+--features "$FEATURES"}
B="$CARGO_TARGET_DIR/release/cosmodiff"
OUT="${OUT:-bench/nn/results}"
mkdir -p "$OUT"
uptime
for r in $(seq 1 "$ROUNDS"); do
  "$PY" bench/nn/torch_twins.py --threads "$THREADS" --json "$OUT/torch_$r.json" ${WORKLOADS:+--workloads "$WORKLOADS"}
  "$B" nn bench ${DEVICES:+--devices "$DEVICES"} ${WORKLOADS:+--workloads "$WORKLOADS"} \
    --torch-json "$OUT/torch_$r.json" --json "$OUT/cosmodiff_$r.json"
done
uptime
"$PY" - "$OUT" "$ROUNDS" <<'PY'
# best round of each side, as one markdown table
import json, sys
out, rounds = sys.argv[1], int(sys.argv[2])
torch = [json.load(open(f"{out}/torch_{r}.json")) for r in range(1, rounds + 1)]
ours = [json.load(open(f"{out}/cosmodiff_{r}.json")) for r in range(1, rounds + 1)]
print(f"| workload | device | training items/s | PyTorch | ratio | inference ms | PyTorch | ratio |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
names = [k for k in torch[0] if isinstance(torch[0][k], dict)]
for w in names:
    pt_tr = max(t[w]["train_per_s"] for t in torch)
    pt_ev = min(t[w]["eval_s"] for t in torch)
    devices = [r["device"] for r in ours[0]["rows"] if r["workload"] == w]
    for d in devices:
        rows = [r for o in ours for r in o["rows"] if r["workload"] == w and r["device"] == d]
        tr = max(r["train_per_s"] for r in rows)
        ev = min(r["eval_s"] for r in rows)
        print(f"| {w} | {d} | {tr:.1f} | {pt_tr:.1f} | {tr / pt_tr:.2f}x | {1e3 * ev:.2f} | {1e3 * pt_ev:.2f} | {pt_ev / ev:.2f}x |")
PY
