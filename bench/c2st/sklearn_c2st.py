"""sbibm-style C2ST with scikit-learn, to cross-check cosmodiff's Rust C2ST.

Same recipe as sbibm.metrics.c2st (z-score both sets with the reference's
mean / unbiased std, MLPClassifier(relu, (10 d, 10 d), adam, max_iter=10000),
KFold(5, shuffle=True) accuracy, mean over folds), written from the published
description; inputs and outputs are .npy files so the Rust side sees the same
numbers.

    python sklearn_c2st.py REFERENCE.npy CANDIDATE.npy [--seed 1] [--float64]

prints "c2st <value> wall_s <seconds>". By default the data are cast to
float32 before z-scoring, as sbibm's torch tensors are.

    python sklearn_c2st.py --make-inputs REF.npy OUTDIR [--seed 0]

writes the perturbed sets used in docs/inference.md: OUTDIR/noise005.npy
(reference + N(0, 0.05^2) per coordinate), OUTDIR/prior.npy (10,000 draws of
two_moons' prior U([-1, 1]^2)) and OUTDIR/ref_a.npy / ref_b.npy (the two halves
of the reference, 5,000 each).
"""
import argparse
import os
import time

import numpy as np
from sklearn.model_selection import KFold, cross_val_score
from sklearn.neural_network import MLPClassifier


def c2st(x, y, seed=1, n_folds=5, dtype=np.float32):
    x = np.asarray(x, dtype=dtype)
    y = np.asarray(y, dtype=dtype)
    mean = x.mean(axis=0)
    std = x.std(axis=0, ddof=1)
    x = (x - mean) / std
    y = (y - mean) / std
    dim = x.shape[1]
    clf = MLPClassifier(
        activation="relu",
        hidden_layer_sizes=(10 * dim, 10 * dim),
        max_iter=10000,
        solver="adam",
        random_state=seed,
    )
    data = np.concatenate([x, y])
    target = np.concatenate([np.zeros(len(x)), np.ones(len(y))])
    cv = KFold(n_splits=n_folds, shuffle=True, random_state=seed)
    return float(np.mean(cross_val_score(clf, data, target, cv=cv, scoring="accuracy")))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--float64", action="store_true")
    ap.add_argument("--make-inputs", action="store_true")
    args = ap.parse_args()
    if args.make_inputs:
        ref = np.load(args.a).astype(np.float64)
        os.makedirs(args.b, exist_ok=True)
        rng = np.random.default_rng(args.seed)
        np.save(os.path.join(args.b, "noise005.npy"), ref + rng.normal(0.0, 0.05, ref.shape))
        np.save(os.path.join(args.b, "prior.npy"), rng.uniform(-1.0, 1.0, ref.shape))
        np.save(os.path.join(args.b, "ref_a.npy"), ref[: len(ref) // 2])
        np.save(os.path.join(args.b, "ref_b.npy"), ref[len(ref) // 2 :])
        return
    x = np.load(args.a)
    y = np.load(args.b)
    t0 = time.perf_counter()
    v = c2st(x, y, seed=args.seed, dtype=np.float64 if args.float64 else np.float32)
    print(f"c2st {v:.4f} wall_s {time.perf_counter() - t0:.2f}")


if __name__ == "__main__":
    main()
