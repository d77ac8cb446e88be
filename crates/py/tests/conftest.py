"""Shared fixtures: the reference data folder and the Rust CLI binary."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

# crates/py/tests/conftest.py -> parents[3] is the repository root; the shared
# reference data lives beside the repository (../shared/reference).
REPO = Path(__file__).resolve().parents[3]
REFERENCE = Path(os.environ.get("COSMODIFF_REFERENCE", REPO.parent / "shared" / "reference"))


@pytest.fixture(scope="session")
def refdir() -> Path:
    d = REFERENCE / "cosmology"
    if not d.is_dir():
        pytest.skip(f"shared reference data not found at {d} (set COSMODIFF_REFERENCE to the shared/reference folder)")
    return d


def find_cli():
    """The `cosmodiff` binary: $COSMODIFF_BIN, else the cargo target folders, else PATH."""
    env = os.environ.get("COSMODIFF_BIN")
    if env:
        return Path(env) if Path(env).is_file() else None
    targets = []
    if os.environ.get("CARGO_TARGET_DIR"):
        targets.append(Path(os.environ["CARGO_TARGET_DIR"]))
    targets.append(REPO / "target")
    found = [
        t / profile / "cosmodiff"
        for t in targets
        for profile in ("debug", "release")
        if (t / profile / "cosmodiff").is_file() and os.access(t / profile / "cosmodiff", os.X_OK)
    ]
    if found:
        # the most recently built one (an old build may predate some commands)
        return max(found, key=lambda p: p.stat().st_mtime)
    w = shutil.which("cosmodiff")
    return Path(w) if w else None


@pytest.fixture(scope="session")
def cli(tmp_path_factory) -> Path:
    p = find_cli()
    if p is None:
        pytest.skip(
            "cosmodiff CLI binary not found: build it (cargo build -p cosmodiff-cli) or set COSMODIFF_BIN; "
            "looked in $CARGO_TARGET_DIR/{debug,release}, target/{debug,release} and PATH"
        )
    # An old build may lack the commands: probe them once (a tiny real run).
    probe = tmp_path_factory.mktemp("cli_probe")
    (probe / "c.toml").write_text("[background]\na = [1.0]\n")
    runs = [
        [str(p), "cosmology", "--config", str(probe / "c.toml"), "--out", str(probe / "c.npz")],
        [str(p), "simulate", "lensing", "--help"],
    ]
    for cmd in runs:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            pytest.skip(
                f"{p} is an old build ({' '.join(cmd[1:3])}: {r.stderr.strip().splitlines()[0] if r.stderr.strip() else r.returncode}); "
                "rebuild it (cargo build -p cosmodiff-cli) or set COSMODIFF_BIN"
            )
    return p
