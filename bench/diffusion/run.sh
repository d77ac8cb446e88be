#!/usr/bin/env bash
# Issue 7 benchmark: the score U-Net on burn (cosmodiff) vs its PyTorch twin
# (unet_torch.py) on the same machine, 64x64 and 128x128 maps, 2 threads.
#   PYTHON=~/.cache/cosmodiff-sbi-venv/bin/python bash bench/diffusion/run.sh
# (any venv with CPU torch: python -m venv V && V/bin/pip install torch)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="${PYTHON:-python3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cosmodiff-target}"
cargo build --release -p cosmodiff-cli
B="$CARGO_TARGET_DIR/release/cosmodiff"
OUT=bench/diffusion/results
mkdir -p "$OUT"
uptime
"$PY" bench/diffusion/unet_torch.py --side 64 --batch 32 --steps 5 --evals 10 --threads 2 --json "$OUT/torch64.json" >/dev/null
"$B" prior bench --side 64 --batch 32 --steps 5 --evals 10 --torch-json "$OUT/torch64.json" --json "$OUT/cosmodiff64.json"
"$PY" bench/diffusion/unet_torch.py --side 128 --batch 8 --steps 3 --evals 5 --threads 2 --json "$OUT/torch128.json" >/dev/null
"$B" prior bench --side 128 --batch 8 --steps 3 --evals 5 --torch-json "$OUT/torch128.json" --json "$OUT/cosmodiff128.json"
uptime
