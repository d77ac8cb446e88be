#!/usr/bin/env python3
"""By how much the outputs of two golden-test runs differ, array by array.

    COSMODIFF_GOLDEN_KEEP=/tmp/a COSMODIFF_GOLDEN_BIN=old/cosmodiff cargo test -p cosmodiff-cli --test cli_golden
    COSMODIFF_GOLDEN_KEEP=/tmp/b cargo test -p cosmodiff-cli --test cli_golden
    python3 crates/cli/tests/golden/compare.py /tmp/a /tmp/b

Prints, for every array that is not bit-identical, the largest absolute
difference and the largest difference relative to the array's largest value.
"""
import sys
from pathlib import Path

import numpy as np


def arrays(root: Path):
    out = {}
    for f in sorted(root.rglob("*")):
        rel = str(f.relative_to(root))
        if f.suffix == ".npz":
            with np.load(f) as z:
                for k in z.files:
                    out[f"{rel}:{k}"] = z[k]
        elif f.suffix == ".npy":
            out[rel] = np.load(f)
    return out


def main(a: str, b: str) -> None:
    A, B = arrays(Path(a)), arrays(Path(b))
    same = 0
    for k in sorted(set(A) | set(B)):
        if k not in A or k not in B:
            print(f"{k}: only in {'A' if k in A else 'B'}")
            continue
        x, y = A[k], B[k]
        if x.shape != y.shape or x.dtype != y.dtype:
            print(f"{k}: shape/dtype {x.shape} {x.dtype} vs {y.shape} {y.dtype}")
            continue
        if x.dtype.kind not in "fiu" or np.array_equal(x, y):
            same += 1
            continue
        d = np.abs(x.astype(float) - y.astype(float))
        scale = np.max(np.abs(x.astype(float))) or 1.0
        print(f"{k}: max |diff| {d.max():.3e}, relative to max |value| {d.max() / scale:.3e}")
    print(f"{same} arrays identical")


if __name__ == "__main__":
    main(*sys.argv[1:3])
