#!/usr/bin/env bash
# Python reference side of the sbi-vs-cosmodiff benchmark (issue 6).
#
# Creates (or reuses) a throwaway venv OUTSIDE the repository, installs the `sbi`
# package from PyPI (it pulls torch; on Linux x86_64 PyPI's torch is the CUDA build,
# ~5-6 GB installed, which also runs on CPU), then runs bench/sbi/run_sbi.py.
#
#   bench/sbi/run.sh                       # two_moons + slcp, NPE, 10k sims, seed 0
#   bench/sbi/run.sh --num-simulations 1000 --tasks two_moons   # smoke test
#   bench/sbi/run.sh --methods npe,nle --nle-max-obs 1          # add NLE (MCMC is slow)
#   bench/sbi/run.sh --torch-threads 1     # on a busy 2-core machine (see README.md)
#
# Any arguments are passed to run_sbi.py (see `--help`). Outputs:
#   bench/sbi/results_sbi.json (or --out), training data and posterior samples as .npy
#   in /tmp/cosmodiff-sbi-data (or --save-data), sbi's TensorBoard logs in
#   /tmp/cosmodiff-sbi-logs.
#
# Environment: SBI_VENV (default ~/.cache/cosmodiff-sbi-venv), SBI_VERSION (default the
# version the committed results were taken with), PYTHON (default python3).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${SBI_VENV:-$HOME/.cache/cosmodiff-sbi-venv}"
SBI_VERSION="${SBI_VERSION:-0.27.0}"
PY="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
  echo "creating venv $VENV" >&2
  "$PY" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import sbi, numpy, sklearn, torch" 2>/dev/null; then
  echo "installing sbi==$SBI_VERSION (+ torch, numpy) into $VENV" >&2
  "$VENV/bin/python" -m pip install --upgrade pip >/dev/null
  "$VENV/bin/python" -m pip install "sbi==$SBI_VERSION" numpy
fi

"$VENV/bin/python" -c "import torch, sbi; print('torch', torch.__version__, 'sbi', sbi.__version__, 'threads', torch.get_num_threads())" >&2
uptime >&2
exec "$VENV/bin/python" "$HERE/run_sbi.py" "$@"
