#!/usr/bin/env bash
# Time per full-field gradient (theta and z) of the sbi_lens log-normal model:
# cosmodiff (crates/pipeline/examples/fullfield_gradient.rs, 2 threads) against
# the original JAX code (jax_gradient_time.py, CPU, XLA on 2 threads),
# interleaved: ours, JAX f32, ours, JAX f32, then JAX f64 once.
#
#   bash bench/lensing_cosmology/run.sh            # from the repository root
#   PYTHON=/path/to/venv/bin/python bash bench/lensing_cosmology/run.sh
#
# The venv recipe (jax 0.4.30, jax-cosmo 0.1.0, numpyro 0.15.3,
# tensorflow-probability 0.24.0) is in make_sbi_lens_reference.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-/work/venv-sbilens/bin/python}
export CARGO_INCREMENTAL=0 RAYON_NUM_THREADS=2
export XLA_FLAGS="--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads=2"
cargo build --profile test -q -p cosmodiff-pipeline --example fullfield_gradient
EX="${CARGO_TARGET_DIR:-target}/debug/examples/fullfield_gradient"
date -u
uptime
for round in 1 2; do
  echo "== round $round: cosmodiff"
  "$EX" 20
  echo "== round $round: sbi_lens JAX f32"
  PYTHONWARNINGS=ignore "$PYTHON" bench/lensing_cosmology/jax_gradient_time.py --prec f32
done
echo "== sbi_lens JAX f64"
PYTHONWARNINGS=ignore "$PYTHON" bench/lensing_cosmology/jax_gradient_time.py --prec f64
uptime
