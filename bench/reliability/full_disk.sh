#!/usr/bin/env bash
# Replay of issue 27's full-disk failures on a tiny tmpfs (needs root for
# `mount`; prints SKIP otherwise). For each command writing into a full
# disk: exit code 2, one line on stderr, no "panicked", the earlier good
# output byte-identical, no partial or new files left.
# Usage: bash bench/reliability/full_disk.sh [path/to/cosmodiff]
set -uo pipefail
BIN=${1:-${CARGO_TARGET_DIR:-target}/release/cosmodiff}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d)
DISK=$T/disk
mkdir -p "$DISK"
if ! mount -t tmpfs -o size=4m tmpfs "$DISK" 2> /dev/null; then
    echo "SKIP: cannot mount a tmpfs here (needs root)"
    rm -rf "$T"
    exit 0
fi
trap 'umount "$DISK"; rm -rf "$T"' EXIT
cd "$ROOT/examples"
"$BIN" -q cosmology --config cosmology.toml --out "$DISK/x.npz" || exit 1
"$BIN" -q simulate lensing --config simulate.toml --out "$T/big.npz" || exit 1
before=$(sha256sum "$DISK/x.npz")
# fill the disk
dd if=/dev/zero of="$DISK/fill" bs=4k 2> /dev/null
listing() { ls -A "$DISK" | sort | tr '\n' ' '; }
want=$(listing)
fail=0
check() { # label, command...
    local label=$1
    shift
    "$@" > /dev/null 2> "$T/err"
    local rc=$? lines
    lines=$(wc -l < "$T/err")
    local ok=1
    [ "$rc" = 2 ] || ok=0
    [ "$lines" = 1 ] || ok=0
    grep -q panicked "$T/err" && ok=0
    [ "$(sha256sum "$DISK/x.npz")" = "$before" ] || ok=0
    [ "$(listing)" = "$want" ] || ok=0
    if [ $ok = 1 ]; then
        echo "PASS $label: $(cat "$T/err")"
    else
        echo "FAIL $label (exit $rc, $lines lines, files: $(listing)): $(cat "$T/err")"
        fail=1
    fi
}
check "cosmology over x.npz" "$BIN" cosmology --config cosmology.toml --out "$DISK/x.npz"
check "simulate lensing over x.npz" "$BIN" simulate lensing --config simulate.toml --out "$DISK/x.npz"
check "massmap into a full disk" "$BIN" massmap --method wiener --input "$T/big.npz" --out "$DISK/map.npz"
printf "[box]\nn_mesh = 32\nn_particles = 16\n[steps]\nn = 2\n" > "$T/pm.toml"
check "pm run into a new folder" "$BIN" pm run --config "$T/pm.toml" --out "$DISK/pm"
check "demo --quick into a new folder" "$BIN" demo --quick --out "$DISK/demo"
# a disk that fills up in the middle of a run: 300 KiB free, a run that
# writes a few MiB
rm "$DISK/fill"
free_kb=$(df -k --output=avail "$DISK" | tail -1)
dd if=/dev/zero of="$DISK/fill" bs=1k count=$((free_kb - 300)) 2> /dev/null
want=$(listing)
printf "[box]\nn_mesh = 64\nn_particles = 32\n[steps]\nn = 2\n" > "$T/pm.toml"
check "pm run filling the disk midway" "$BIN" pm run --config "$T/pm.toml" --out "$DISK/pm"
check "simulate lensing filling the disk midway" "$BIN" simulate lensing --config simulate.toml --out "$DISK/x.npz"
exit $fail
