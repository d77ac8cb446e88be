#!/usr/bin/env bash
# TRENF field-flow throughput: cosmodiff (crates/nn/examples/trenf_bench.rs)
# against its PyTorch twin (trenf_torch.py), both on 2 threads, interleaved
# (ours, torch, ours, torch) per shape; each run prints one JSON line
# (train_fields_per_s, logprob_fields_per_s, best of 3 inside the run).
#
#   bash bench/fieldflow/run.sh                    # from the repository root
#   PYTHON=/path/to/venv/bin/python bash bench/fieldflow/run.sh
#
# The venv: python3 -m venv /work/venv-torch && /work/venv-torch/bin/pip install torch numpy
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-/work/venv-torch/bin/python}
export CARGO_INCREMENTAL=0 RAYON_NUM_THREADS=2 COSMODIFF_KERNEL_THREADS=2
cargo build --profile test -q -p cosmodiff-nn --example trenf_bench
EX="${CARGO_TARGET_DIR:-target}/debug/examples/trenf_bench"
date -u
uptime
for spec in "64x64 16 20" "32x32x32 8 8" "64x64x64 2 4"; do
  set -- $spec
  for round in 1 2; do
    echo "== $1 round $round: cosmodiff"
    "$EX" "$1" "$2" "$3"
    echo "== $1 round $round: pytorch"
    "$PYTHON" bench/fieldflow/trenf_torch.py --shape "$1" --batch "$2" --steps "$3" --threads 2
  done
done
uptime
