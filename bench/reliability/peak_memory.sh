#!/usr/bin/env bash
# Peak resident memory of pm run, campaigns and simulate lensing against the
# estimates their memory budgets use (crates/pipeline/src/budget.rs).
# Usage: bash bench/reliability/peak_memory.sh [path/to/cosmodiff]
# Prints: command, sizes, measured peak (MiB), estimate (MiB), ratio.
set -euo pipefail
BIN=${1:-${CARGO_TARGET_DIR:-target}/release/cosmodiff}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

measure() { # label, then the command
    local label=$1
    shift
    rm -rf "$T/out" "$T/out.npz"
    /usr/bin/time -v "$BIN" -v "$@" 2> "$T/log" > /dev/null
    local kb est
    kb=$(awk '/Maximum resident/ {print $6}' "$T/log")
    est=$(grep -o 'estimated peak memory [0-9.]* [KMGT]iB' "$T/log" | head -1 | awk '{print $4, $5}')
    python3 - "$label" "$kb" "$est" <<'P'
import sys
label, kb, est = sys.argv[1], float(sys.argv[2]), sys.argv[3].split()
scale = {"KiB": 1 / 1024, "MiB": 1, "GiB": 1024, "TiB": 1024**2}[est[1]]
e = float(est[0]) * scale
m = kb / 1024
print(f"| {label} | {m:.0f} | {e:.0f} | {e / m:.2f} |")
P
}

echo "| run | measured peak MiB | estimate MiB | estimate / measured |"
echo "|---|---|---|---|"
for s in "64 32" "64 64" "128 64" "128 128" "192 96" "256 128"; do
    set -- $s
    printf "[box]\nn_mesh = %d\nn_particles = %d\nbox_size = 256.0\n[steps]\nn = 2\n" "$1" "$2" > "$T/pm.toml"
    measure "pm run n_mesh $1, n_particles $2" pm run --config "$T/pm.toml" --out "$T/out"
done
printf "[box]\nn_mesh = 128\nn_particles = 128\nbox_size = 256.0\n[steps]\nn = 4\nsnapshots = [0.3, 0.5, 0.7]\n" > "$T/pm.toml"
measure "pm run 128/128, 3 snapshots" pm run --config "$T/pm.toml" --out "$T/out"
printf "[box]\nn_mesh = 128\nn_particles = 128\nbox_size = 256.0\n[steps]\nn = 2\n[halos]\nmin_particles = 20\n" > "$T/pm.toml"
measure "pm run 128/128 with [halos]" pm run --config "$T/pm.toml" --out "$T/out"
printf "[box]\nn_mesh = 128\nn_particles = 64\nbox_size = 256.0\n[steps]\nn = 2\n[design]\nn = 2\nOmega_m = [0.2, 0.4]\nsigma8 = [0.7, 0.9]\n" > "$T/c.toml"
measure "simulate halos 128/64, --workers 2" simulate halos --config "$T/c.toml" --out "$T/out" --workers 2
for n in 512 1024 2048; do
    sed "s/^npix = 128/npix = $n/" "$ROOT/examples/simulate.toml" > "$T/s.toml"
    measure "simulate lensing ${n}^2, 2 bins" simulate lensing --config "$T/s.toml" --out "$T/out.npz"
done
python3 - "$ROOT/examples/simulate.toml" "$T/s4.toml" <<'P'
import sys
s = open(sys.argv[1]).read().replace("npix = 128", "npix = 1024")
src = s[s.index("[[source]]"):s.index("[field]")]
open(sys.argv[2], "w").write(s.replace("[field]", src + "[field]"))
P
measure "simulate lensing 1024^2, 4 bins" simulate lensing --config "$T/s4.toml" --out "$T/out.npz"
python3 - "$T/s4.toml" "$T/s6.toml" <<'P'
import sys
s = open(sys.argv[1]).read()
src = s[s.index("[[source]]"):s.index("[field]")]
one = src[:src.index("[[source]]", 1)]
open(sys.argv[2], "w").write(s.replace("[field]", one + one + "[field]"))
P
measure "simulate lensing 1024^2, 6 bins" simulate lensing --config "$T/s6.toml" --out "$T/out.npz"
