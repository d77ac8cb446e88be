#!/usr/bin/env bash
# cosmodiff-catalog (friends-of-friends, exact periodic pair counts) vs its peers: the
# reference comparisons and benchmark of the halo-catalogue issue.
#
#   bash bench/halos/run.sh            (about 15 minutes on an idle 2-core machine)
#
# Compared, each tool one process per measurement, tools interleaved per problem so that
# they see the same machine load, the whole round repeated BENCH_OUTER times:
#   FoF, b = 0.2 (in units of the mean separation), on FastPM particles from
#   `cosmodiff pm run` at 128^3 (box 128 Mpc/h) and 256^3 (box 256 Mpc/h), a = 1:
#     cosmodiff   target/release/examples/bench fof POS.npy L 0.2 (periodic, links d <= b,
#                 RAYON_NUM_THREADS = BENCH_THREADS)
#     kdcount     kdcount.cluster.fof(kdcount.cluster.dataset(pos, boxsize=L), b): periodic,
#                 links d <= b; nbodykit's FOF engine; single-threaded (tree build timed too)
#     pyfof       pyfof.friends_of_friends(pos, b): open box (NOT periodic), links d < b;
#                 single-threaded. Timed on the unpadded points, i.e. the open-box problem.
#                 For correctness it is run once more on ghost-padded points (images of the
#                 points within b of a face, edge or corner), and the groups that share an
#                 original particle are merged: that is the periodic answer.
#   Pair counts DD(r) in shells [e_k, e_k+1), each pair once, periodic:
#     cosmodiff   bench xi POS.npy L e0,e1,...     (RAYON_NUM_THREADS = BENCH_THREADS)
#     Corrfunc    Corrfunc.theory.DD(autocorr=1, nthreads=BENCH_THREADS, periodic=True),
#                 float64; its ordered-pair counts are divided by 2
#   on 1e5 uniform points in a 1000 Mpc/h box (edges 1,2,5,10,20,50 and 1,...,50,100,150),
#   1e6 uniform points (edges to 50) and 1e6 clustered points (the 256^3 PM particles
#   subsampled to 1e6, box 256, edges 1,2,5,10,20).
# Every process does one warm-up call and then the best of BENCH_REPEAT (3) timed calls
# (the peers' in bench/halos/tools.py, cosmodiff's in crates/catalog/examples/bench.rs);
# except the peers at 256^3 FoF (each call ~30-60 s): no warm-up, one timed call per
# process (BENCH_BIG_REPEAT). The table reports the median over the BENCH_OUTER processes
# of these bests. Every process runs under taskset -c 0..THREADS-1 and /usr/bin/time -v
# (CPU time, peak RSS), with a timeout (BENCH_TIMEOUT, s); the 1-minute load average
# just before each process is recorded (on a shared machine, wall times grow with load).
# Correctness (bench/halos/compare.py): FoF groups of >= 20 members identical (member
# sets and counts) to kdcount's and to ghost-padded pyfof's, and the full partition;
# pair counts identical integers to Corrfunc's / 2. Results: bench/halos/results.md.
#
# Knobs: BENCH_VENV (python with numpy, scipy, Corrfunc 2.5.3, pyfof 0.1.5, kdcount
# 0.3.30; default ~/.cache/halos-bench-venv, created with pip when it lacks them), BENCH_CACHE (particles, outputs and logs; default
# ~/.cache/cosmodiff-halos-bench; PM particles are generated only if missing),
# COSMODIFF_CLI (default $CARGO_TARGET_DIR/debug/cosmodiff; build it with
# `cargo build -p cosmodiff-cli`), BENCH_THREADS (2), BENCH_OUTER (3), BENCH_REPEAT (3),
# BENCH_BIG_REPEAT (1), BENCH_TIMEOUT (600), BENCH_PYFOF_TIMEOUT (300),
# BENCH_FOF_SIZES ("128 256"), BENCH_XI ("uni1e5 uni1e6 pm1e6"; either may be set empty), BENCH_NO_BUILD (1: use
# the built bench binary as is), BENCH_RESULTS (default bench/halos/results.md),
# CARGO_TARGET_DIR.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
HERE="$ROOT/bench/halos"
VENV="${BENCH_VENV:-$HOME/.cache/halos-bench-venv}"
PY="$VENV/bin/python"
CACHE="${BENCH_CACHE:-$HOME/.cache/cosmodiff-halos-bench}"
THREADS="${BENCH_THREADS:-2}"
OUTER="${BENCH_OUTER:-3}"
REPEAT="${BENCH_REPEAT:-3}"
BIG_REPEAT="${BENCH_BIG_REPEAT:-1}"
TIMEOUT="${BENCH_TIMEOUT:-600}"
PYFOF_TIMEOUT="${BENCH_PYFOF_TIMEOUT:-300}"
FOF_SIZES="${BENCH_FOF_SIZES-128 256}"   # set but empty: no FoF problems
XI_SETS="${BENCH_XI-uni1e5 uni1e6 pm1e6}"   # set but empty: no pair counts
RESULTS="${BENCH_RESULTS:-$HERE/results.md}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cosmodiff-target}"
export CARGO_INCREMENTAL=0
export RAYON_NUM_THREADS="$THREADS" BENCH_THREADS="$THREADS" OMP_NUM_THREADS="$THREADS"
CLI="${COSMODIFF_CLI:-$CARGO_TARGET_DIR/debug/cosmodiff}"
CPUS="0-$((THREADS - 1))"
log() { echo "[halos $(date +%T) load $(cut -d' ' -f1 /proc/loadavg)] $*" >&2; }

# --- the peers, pip-installed into a throwaway venv (Corrfunc needs GSL, pyfof Boost)
if ! "$PY" -c 'import numpy, scipy, Corrfunc, pyfof, kdcount' 2>/dev/null; then
    log "creating the throwaway venv $VENV (numpy, scipy, Corrfunc 2.5.3, pyfof 0.1.5, kdcount 0.3.30)"
    if command -v apt-get >/dev/null && ! { [ -f /usr/include/gsl/gsl_math.h ] && [ -d /usr/include/boost ]; }; then
        apt-get install -y -q libgsl-dev libboost-dev >/dev/null
    fi
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q numpy scipy cython
    "$VENV/bin/pip" install -q Corrfunc==2.5.3 pyfof==0.1.5 kdcount==0.3.30
    "$PY" -c 'import numpy, scipy, Corrfunc, pyfof, kdcount'
fi
mkdir -p "$CACHE/bin" "$CACHE/out" "$CACHE/logs"
RUN="$CACHE/run"                      # this run's bookkeeping (reset each time)
rm -rf "$RUN"; mkdir -p "$RUN"
echo "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" > "$RUN/date_start"
cat /proc/loadavg > "$RUN/loadavg_start"

# --- the cosmodiff timing binary (copied: cosmodiff-pm's bench example has the same path)
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
    log "cargo build --release -p cosmodiff-catalog --example bench"
    cargo build -q --release -p cosmodiff-catalog --example bench
fi
cp -f "$CARGO_TARGET_DIR/release/examples/bench" "$CACHE/bin/catalog-bench"
{   # the sources the binary was built from (other work may commit during the run)
    echo "HEAD $(git rev-parse --short HEAD)"
    echo "catalog_last $(git log -1 --format=%h -- crates/catalog/src crates/catalog/examples)"
    git status --porcelain crates/catalog/src crates/catalog/examples | sed 's/^/dirty /'
} > "$RUN/commit"
BIN="$CACHE/bin/catalog-bench"
usage="$("$BIN" 2>&1 || true)"
[[ "$usage" == *"bench fof POS.npy"* ]] \
    || { echo "$CARGO_TARGET_DIR/release/examples/bench is not cosmodiff-catalog's bench (another crate's bench example built over it?)" >&2; exit 1; }

# --- particles
pm_particles() { # n: 128 or 256 -> $CACHE/fof$n.npy (float64 [n^3, 3], Mpc/h, in [0, n))
    local n="$1" d="$CACHE/pm$n"
    if [ ! -f "$CACHE/fof$n.npy" ]; then
        if [ ! -f "$d/positions.npy" ]; then
            [ -x "$CLI" ] || { echo "no cosmodiff CLI at $CLI: cargo build -p cosmodiff-cli" >&2; exit 1; }
            printf '[box]\nn_mesh = %s\nn_particles = %s\nbox_size = %s.0\n\n[ic]\nseed = 1\n\n[steps]\nn = 10\n' \
                "$n" "$n" "$n" > "$CACHE/pm$n.toml"
            log "PM particles $n^3: $CLI pm run -q --config $CACHE/pm$n.toml --out $d"
            "$CLI" pm run -q --config "$CACHE/pm$n.toml" --out "$d"
        fi
        "$PY" "$HERE/tools.py" pm-positions "$d" "$n" "$n" "$CACHE/fof$n.npy"
    fi
}
for n in $FOF_SIZES; do pm_particles "$n"; done
[ -f "$CACHE/uni1e5.npy" ] || "$PY" "$HERE/tools.py" uniform 1e5 1000 1 "$CACHE/uni1e5.npy"
[ -f "$CACHE/uni1e6.npy" ] || "$PY" "$HERE/tools.py" uniform 1e6 1000 2 "$CACHE/uni1e6.npy"
if [[ " $XI_SETS " == *" pm1e6 "* ]] && [ ! -f "$CACHE/pm256_1e6.npy" ]; then
    pm_particles 256
    "$PY" "$HERE/tools.py" subsample "$CACHE/fof256.npy" 1e6 3 "$CACHE/pm256_1e6.npy"
fi

# --- one measurement: problem key, tool, rep, timeout, command...
# appends to $RUN/timings.tsv: problem tool rep load_before cpu_s rss_mib wall_s status json
run() {
    local key="$1" tool="$2" rep="$3" to="$4"; shift 4
    local tf log load t0 t1 rc=0 line
    tf="$(mktemp)"; log="$CACHE/logs/$key.$tool.$rep.log"
    load="$(cut -d' ' -f1 /proc/loadavg)"
    [ "$rep" = 1 ] && printf '%s\t%s\ttaskset -c %s %s\n' "$key" "$tool" "$CPUS" "$*" >> "$RUN/commands.tsv"
    t0="$(date +%s.%N)"
    taskset -c "$CPUS" /usr/bin/time -v -o "$tf" timeout "$to" "$@" > "$log" 2>&1 || rc=$?
    t1="$(date +%s.%N)"
    local rss cpu status wall
    rss="$(awk -F: '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$tf")"
    cpu="$(awk -F: '/User time|System time/ {s += $2} END {printf "%.1f", s}' "$tf")"
    wall="$(echo "$t1 - $t0" | bc)"
    rm -f "$tf"
    case "$rc" in 0) status=ok;; 124) status="timeout ${to}s";; *) status="failed rc=$rc";; esac
    line="$(grep '^{' "$log" | tail -1 || true)"; [ -n "$line" ] || line='{}'
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%.1f\t%s\t%s\n' "$key" "$tool" "$rep" "$load" "${cpu:-}" "${rss:-}" \
        "$wall" "$status" "$line" >> "$RUN/timings.tsv"
    log "$key $tool rep $rep: $status $(echo "$line" | sed -n 's/.*"best_s": \([0-9.e-]*\).*/best \1 s/p')"
}

# problems: key kind file box param description
problems="$RUN/problems.tsv"
for n in $FOF_SIZES; do
    printf 'fof%s\tfof\t%s\t%s\t0.2\tFoF b=0.2, PM %s^3, box %s Mpc/h\n' "$n" "$CACHE/fof$n.npy" "$n" "$n" "$n" >> "$problems"
done
E50="1,2,5,10,20,50"
for s in $XI_SETS; do
    case "$s" in
    uni1e5) printf 'xi_uni1e5_50\txi\t%s\t1000\t%s\tDD 1e5 uniform, box 1000, r < 50\n' "$CACHE/uni1e5.npy" "$E50" >> "$problems"
            printf 'xi_uni1e5_150\txi\t%s\t1000\t%s\tDD 1e5 uniform, box 1000, r < 150\n' "$CACHE/uni1e5.npy" "$E50,100,150" >> "$problems";;
    uni1e6) printf 'xi_uni1e6_50\txi\t%s\t1000\t%s\tDD 1e6 uniform, box 1000, r < 50\n' "$CACHE/uni1e6.npy" "$E50" >> "$problems";;
    pm1e6)  printf 'xi_pm1e6_20\txi\t%s\t256\t1,2,5,10,20\tDD 1e6 PM particles (256^3 subsample), box 256, r < 20\n' "$CACHE/pm256_1e6.npy" >> "$problems";;
    esac
done

log "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; load $(cat /proc/loadavg)"
while IFS=$'\t' read -r key kind file box param desc; do
    for rep in $(seq 1 "$OUTER"); do
        out=(); [ "$rep" = 1 ] && out=("$CACHE/out/$key.cosmodiff.npy")
        run "$key" cosmodiff "$rep" "$TIMEOUT" "$BIN" "$kind" "$file" "$box" "$param" "${out[@]}"
        if [ "$kind" = fof ]; then
            big=(env BENCH_REPEAT="$REPEAT")
            case "$key" in fof128) ;; *) big=(env BENCH_REPEAT="$BIG_REPEAT" BENCH_WARMUP=0);; esac
            out=(); [ "$rep" = 1 ] && out=("$CACHE/out/$key.kdcount.npy")
            run "$key" kdcount "$rep" "$TIMEOUT" "${big[@]}" "$PY" "$HERE/tools.py" kdcount "$file" "$box" "$param" "${out[@]}"
            run "$key" pyfof "$rep" "$PYFOF_TIMEOUT" "${big[@]}" "$PY" "$HERE/tools.py" pyfof "$file" "$box" "$param"
            if [ "$rep" = 1 ]; then   # the periodic pyfof answer, once (one timed call)
                run "$key" pyfof-ghost 1 "$PYFOF_TIMEOUT" "$PY" "$HERE/tools.py" pyfof-ghost "$file" "$box" "$param" "$CACHE/out/$key.pyfof-ghost.npy"
            fi
        else
            out=(); [ "$rep" = 1 ] && out=("$CACHE/out/$key.corrfunc.npy")
            run "$key" corrfunc "$rep" "$TIMEOUT" env BENCH_REPEAT="$REPEAT" "$PY" "$HERE/tools.py" corrfunc "$file" "$box" "$param" "${out[@]}"
        fi
    done
done < "$problems"

echo "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" > "$RUN/date_end"
cat /proc/loadavg > "$RUN/loadavg_end"
log "comparing -> $RESULTS"
"$PY" "$HERE/compare.py" --run "$RUN" --out-dir "$CACHE/out" --results "$RESULTS" \
    --threads "$THREADS" --outer "$OUTER" --repeat "$REPEAT" --big-repeat "$BIG_REPEAT"

# the comparison also goes into docs/halos.md, between its bench-halos markers
DOC="$ROOT/docs/halos.md"
if [ -f "$DOC" ] && grep -q '<!-- bench-halos -->' "$DOC"; then
    "$PY" - "$DOC" "$RESULTS" <<'PYEOF'
import sys
doc, res = sys.argv[1], sys.argv[2]
text = open(doc).read()
body = open(res).read().strip()
# drop the results file's own title: the section lives under docs/halos.md's heading
lines = body.splitlines()
if lines and lines[0].startswith("# "):
    lines = lines[1:]
# one heading level down: the section sits under a "##" heading of docs/halos.md
lines = ["#" + l if l.startswith("## ") else l for l in lines]
a, b = "<!-- bench-halos -->", "<!-- /bench-halos -->"
i, j = text.index(a) + len(a), text.index(b)
open(doc, "w").write(text[:i] + "\n" + "\n".join(lines).strip() + "\n" + text[j:])
PYEOF
    log "updated $DOC"
fi
