#!/usr/bin/env python3
"""Python reference side of the sbi-vs-cosmodiff benchmark (issue 6).

Trains the `sbi` package's NPE (and optionally NLE) on the shared sbibm tasks with the
settings Lueckmann et al. (2021) used through sbibm (see docs/sbi-reference-settings.md),
times the training wall clock only, samples 10,000 posterior draws for observations
1..5 and scores them with C2ST exactly as sbibm defines it.

Simulations come from the numpy task specification in
../shared/reference/sbi/tasks_numpy.py (imported by path), drawn with a fixed numpy
seed, and are saved as .npy (float32, exactly what sbi is trained on) so the Rust side
can train on identical data.

Usage (inside the venv made by bench/sbi/run.sh):
    python bench/sbi/run_sbi.py --tasks two_moons,slcp --num-simulations 10000 \
        --methods npe --seed 0 --out bench/sbi/results_sbi.json \
        --save-data /tmp/cosmodiff-sbi-data
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
DEFAULT_REF = REPO.parent / "shared" / "reference" / "sbi"
if not DEFAULT_REF.exists():  # the task checkout may also live next to /work/shared
    DEFAULT_REF = Path("/work/shared/reference/sbi")

NUM_POSTERIOR_SAMPLES = 10_000
OBSERVATIONS = (1, 2, 3, 4, 5)

# Settings of sbibm's NPE / NLE as run for the paper (results repo,
# benchmarking_sbi/config/algorithm/{npe,nle}.yaml, sbibm algorithms/sbi/sn{p,l}e.py).
# Everything not listed there is the sbi train() default, which has not changed
# between sbi 0.14 (paper) and 0.27 (lr 5e-4, val 0.1, patience 20, clip 5).
SBIBM_NPE = dict(
    density_estimator="nsf",
    hidden_features=50,
    num_transforms=5,
    num_bins=10,
    z_score_x="independent",
    z_score_theta="independent",
    training_batch_size=10_000,
    learning_rate=5e-4,
    validation_fraction=0.1,
    stop_after_epochs=20,
    clip_max_norm=5.0,
)
SBIBM_NLE = dict(
    density_estimator="maf",
    hidden_features=50,
    num_transforms=5,
    z_score_x="independent",
    z_score_theta="independent",
    training_batch_size=10_000,
    learning_rate=5e-4,
    validation_fraction=0.1,
    stop_after_epochs=20,
    clip_max_norm=5.0,
    mcmc_method="slice_np_vectorized",
    # sbibm's snle.py overrides warmup_steps to 25 in code (paper era and now); the
    # init strategy is the current sbibm one (resample from 10k prior candidates).
    mcmc_parameters=dict(
        num_chains=100,
        thin=10,
        warmup_steps=25,
        init_strategy="resample",
        init_strategy_parameters=dict(num_candidate_samples=10_000),
    ),
)


def load_tasks_module(ref_dir: Path):
    path = ref_dir / "tasks_numpy.py"
    spec = importlib.util.spec_from_file_location("cosmodiff_tasks_numpy", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def prior_box(task: str, ref_dir: Path):
    info = json.loads((ref_dir / task / "task_info.json").read_text())
    low = np.asarray(info["prior_params"]["low"], dtype=np.float64)
    high = np.asarray(info["prior_params"]["high"], dtype=np.float64)
    return low, high


def simulate(task: str, n: int, seed: int, tasks_mod, ref_dir: Path):
    """theta ~ U(box) then x ~ simulator(theta), one numpy Generator, fixed seed."""
    rng = np.random.default_rng(seed)
    low, high = prior_box(task, ref_dir)
    theta = rng.uniform(low, high, size=(n, low.size))
    sim = {"two_moons": tasks_mod.two_moons_simulate, "slcp": tasks_mod.slcp_simulate}[task]
    x = sim(theta, rng)
    return theta, x


def load_snapshot():
    la = os.getloadavg()
    try:
        up = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        up = ""
    return {"loadavg_1_5_15": [round(v, 2) for v in la], "uptime": up}


def versions():
    import sklearn
    import torch

    import sbi

    out = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "sbi": sbi.__version__,
        "sklearn": sklearn.__version__,
    }
    for name in ("nflows", "zuko"):
        try:
            from importlib.metadata import version

            out[name] = version(name)
        except Exception:  # noqa: BLE001
            pass
    return out


def c2st_sbibm(reference: np.ndarray, samples: np.ndarray, seed: int = 1) -> float:
    """C2ST as sbibm defines it, computed with sbi's own c2st.

    sbi's c2st defaults to a random forest; sbibm's is an MLP with two hidden layers of
    10 x dim (ReLU, Adam, max_iter 10000, sklearn defaults otherwise), 5-fold CV,
    z-scored by the reference's mean/std, seed 1. We pass exactly those settings.
    """
    import torch
    from sbi.utils.metrics import c2st

    ndim = reference.shape[1]
    kwargs = dict(
        activation="relu",
        hidden_layer_sizes=(10 * ndim, 10 * ndim),
        max_iter=10_000,
        solver="adam",
    )
    val = c2st(
        torch.as_tensor(reference, dtype=torch.float32),
        torch.as_tensor(samples, dtype=torch.float32),
        seed=seed,
        n_folds=5,
        classifier="mlp",
        classifier_kwargs=kwargs,
        z_score=True,
    )
    return float(val)


def epochs_trained(inference) -> int | None:
    summ = getattr(inference, "_summary", {}) or {}
    ep = summ.get("epochs_trained")
    if ep:
        return int(ep[-1])
    vals = summ.get("validation_loss") or summ.get("validation_log_probs")
    return len(vals) if vals else None


def best_val(inference):
    summ = getattr(inference, "_summary", {}) or {}
    for key in ("best_validation_loss", "best_validation_log_prob", "best_validation_log_probs"):
        if summ.get(key):
            return float(summ[key][-1]), key
    return None, None


class _SampleTimeout(Exception):
    pass


@contextlib.contextmanager
def _alarm(seconds):
    """Raise _SampleTimeout after `seconds` of wall clock (SIGALRM; main thread only)."""
    if not seconds:
        yield
        return

    def handler(signum, frame):
        raise _SampleTimeout()

    prev = signal.signal(signal.SIGALRM, handler)
    signal.alarm(int(seconds))
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, prev)


def run_method(task, method, theta, x, args, ref_dir, data_dir, cfg_overrides):
    import torch
    from sbi.inference import NLE, NPE
    from sbi.neural_nets import likelihood_nn, posterior_nn
    from sbi.utils import BoxUniform

    torch.manual_seed(args.seed)
    low, high = prior_box(task, ref_dir)
    prior = BoxUniform(torch.as_tensor(low, dtype=torch.float32),
                       torch.as_tensor(high, dtype=torch.float32))
    theta_t = torch.as_tensor(theta, dtype=torch.float32)
    x_t = torch.as_tensor(x, dtype=torch.float32)
    n = theta_t.shape[0]

    cfg = dict(SBIBM_NPE if method == "npe" else SBIBM_NLE)
    cfg.update(cfg_overrides)
    # sbibm caps the batch size at the per-round budget; sbi's loader then caps it
    # again at the training-set size (full-batch training at these budgets).
    cfg["training_batch_size"] = min(cfg["training_batch_size"], n)
    effective_batch = min(cfg["training_batch_size"], int((1 - cfg["validation_fraction"]) * n))

    if method == "npe":
        builder = posterior_nn(
            model=cfg["density_estimator"], hidden_features=cfg["hidden_features"],
            num_transforms=cfg["num_transforms"], num_bins=cfg["num_bins"],
            z_score_x=cfg["z_score_x"], z_score_theta=cfg["z_score_theta"],
        )
        inference = NPE(prior=prior, density_estimator=builder, show_progress_bars=False)
    else:
        builder = likelihood_nn(
            model=cfg["density_estimator"], hidden_features=cfg["hidden_features"],
            num_transforms=cfg["num_transforms"],
            z_score_x=cfg["z_score_x"], z_score_theta=cfg["z_score_theta"],
        )
        inference = NLE(prior=prior, density_estimator=builder, show_progress_bars=False)
    inference.append_simulations(theta_t, x_t)

    load_before = load_snapshot()
    t0 = time.perf_counter()
    estimator = inference.train(
        training_batch_size=cfg["training_batch_size"],
        learning_rate=cfg["learning_rate"],
        validation_fraction=cfg["validation_fraction"],
        stop_after_epochs=cfg["stop_after_epochs"],
        clip_max_norm=cfg["clip_max_norm"],
        max_num_epochs=args.max_epochs,
    )
    train_seconds = time.perf_counter() - t0
    load_after = load_snapshot()
    n_params = sum(p.numel() for p in estimator.parameters())
    ep = epochs_trained(inference)
    bv, bv_key = best_val(inference)
    print(f"[{task}/{method}] trained in {train_seconds:.1f}s, {ep} epochs, "
          f"{n_params} params, load {load_after['loadavg_1_5_15']}", flush=True)

    if method == "npe":
        posterior = inference.build_posterior(estimator)
    else:
        mp = dict(cfg["mcmc_parameters"])
        posterior = inference.build_posterior(
            estimator, sample_with="mcmc", mcmc_method=cfg["mcmc_method"],
            mcmc_parameters=mp,
        )

    observations = np.load(ref_dir / task / "observations.npy")
    res = {
        "settings": {k: v for k, v in cfg.items()},
        "effective_batch_size": effective_batch,
        "num_simulations": n,
        "num_parameters": int(n_params),
        "train_seconds": round(train_seconds, 3),
        "epochs": ep,
        "seconds_per_epoch": round(train_seconds / ep, 4) if ep else None,
        "best_validation": bv,
        "best_validation_key": bv_key,
        "load_before_train": load_before,
        "load_after_train": load_after,
        "c2st": {},
        "sample_seconds": {},
        "c2st_seconds": {},
    }
    for i in OBSERVATIONS:
        if method == "nle" and args.nle_max_obs is not None and i > args.nle_max_obs:
            break
        x_o = torch.as_tensor(observations[i - 1], dtype=torch.float32).reshape(1, -1)
        torch.manual_seed(args.seed + i)
        t0 = time.perf_counter()
        try:
            with _alarm(args.sample_timeout if method == "nle" else None):
                samples = posterior.sample((NUM_POSTERIOR_SAMPLES,), x=x_o,
                                           show_progress_bars=(method == "nle"))
        except _SampleTimeout:
            sample_seconds = time.perf_counter() - t0
            res["c2st"][f"obs{i}"] = None
            res["sample_seconds"][f"obs{i}"] = round(sample_seconds, 3)
            res.setdefault("timed_out", []).append(f"obs{i}")
            print(f"[{task}/{method}] obs{i}: sampling stopped after {sample_seconds:.0f}s "
                  f"(--sample-timeout)", flush=True)
            break
        sample_seconds = time.perf_counter() - t0
        samples = samples.detach().cpu().numpy().astype(np.float64)
        ref = np.load(ref_dir / task / f"reference_posterior_samples_obs{i}.npy")
        t0 = time.perf_counter()
        score = None if args.skip_c2st else c2st_sbibm(ref, samples)
        c2st_seconds = time.perf_counter() - t0
        res["c2st"][f"obs{i}"] = None if score is None else round(score, 4)
        res["sample_seconds"][f"obs{i}"] = round(sample_seconds, 3)
        res["c2st_seconds"][f"obs{i}"] = round(c2st_seconds, 2)
        if data_dir is not None:
            np.save(data_dir / f"{task}_{method}_n{n}_seed{args.seed}_samples_obs{i}.npy", samples)
        print(f"[{task}/{method}] obs{i}: c2st {score} (sample {sample_seconds:.2f}s, "
              f"c2st {c2st_seconds:.1f}s)", flush=True)
    vals = [v for v in res["c2st"].values() if v is not None]
    res["c2st_num_obs"] = len(vals)
    res["c2st_mean"] = round(float(np.mean(vals)), 4) if vals else None
    res["sample_seconds_total"] = round(sum(res["sample_seconds"].values()), 3)
    res["load_end"] = load_snapshot()
    return res


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default="two_moons,slcp")
    p.add_argument("--num-simulations", type=int, default=10_000)
    p.add_argument("--methods", default="npe", help="comma list of npe,nle")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(REPO / "bench" / "sbi" / "results_sbi.json"))
    p.add_argument("--save-data", default="/tmp/cosmodiff-sbi-data",
                   help="directory for theta/x training arrays and posterior samples ('' = off)")
    p.add_argument("--ref-dir", default=str(DEFAULT_REF))
    p.add_argument("--log-dir", default="/tmp/cosmodiff-sbi-logs",
                   help="working directory for sbi's TensorBoard logs (sbi-logs/)")
    p.add_argument("--training-batch-size", type=int, default=None,
                   help="override sbibm's 10000 (e.g. 200 = current sbi default)")
    p.add_argument("--max-epochs", type=int, default=2**31 - 1)
    p.add_argument("--nle-max-obs", type=int, default=None,
                   help="cap the number of observations sampled with MCMC for NLE")
    p.add_argument("--sample-timeout", type=float, default=None,
                   help="wall-clock cap (s) on NLE's MCMC sampling per observation")
    p.add_argument("--skip-c2st", action="store_true")
    p.add_argument("--torch-threads", type=int, default=None,
                   help="torch.set_num_threads(N); default: leave torch's default")
    args = p.parse_args(argv)

    import torch

    torch_default_threads = torch.get_num_threads()
    if args.torch_threads is not None:
        torch.set_num_threads(args.torch_threads)
    ref_dir = Path(args.ref_dir).resolve()
    tasks_mod = load_tasks_module(ref_dir)
    data_dir = Path(args.save_data).resolve() if args.save_data else None
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
    out_path = Path(args.out).resolve()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    # sbi's default tracker writes TensorBoard files to ./sbi-logs: keep them out of
    # the repository.
    log_dir = Path(args.log_dir).resolve()
    log_dir.mkdir(parents=True, exist_ok=True)
    os.chdir(log_dir)

    overrides = {}
    if args.training_batch_size is not None:
        overrides["training_batch_size"] = args.training_batch_size

    report = {
        "meta": {
            "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "hostname": socket.gethostname(),
            "cpu_count": os.cpu_count(),
            "torch_num_threads": torch.get_num_threads(),
            "torch_default_num_threads": torch_default_threads,
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
            "versions": versions(),
            "seed": args.seed,
            "num_simulations": args.num_simulations,
            "num_posterior_samples": NUM_POSTERIOR_SAMPLES,
            "observations": list(OBSERVATIONS),
            "command": " ".join([Path(sys.executable).name] + sys.argv),
            "c2st": "sbibm definition via sbi.utils.metrics.c2st(classifier='mlp', "
                    "hidden 2x(10*dim), relu, adam, max_iter 10000, 5-fold, seed 1, "
                    "z-score by reference)",
            "data_dir": str(data_dir) if data_dir else None,
            "load_start": load_snapshot(),
        },
        "results": {},
    }
    print(json.dumps(report["meta"], indent=1), flush=True)

    for task in [t for t in args.tasks.split(",") if t]:
        theta, x = simulate(task, args.num_simulations, args.seed, tasks_mod, ref_dir)
        theta32, x32 = theta.astype(np.float32), x.astype(np.float32)
        if data_dir is not None:
            stem = f"{task}_n{args.num_simulations}_seed{args.seed}"
            np.save(data_dir / f"{stem}_theta.npy", theta32)
            np.save(data_dir / f"{stem}_x.npy", x32)
        report["results"].setdefault(task, {})
        for method in [m for m in args.methods.split(",") if m]:
            res = run_method(task, method, theta32, x32, args, ref_dir, data_dir, overrides)
            report["results"][task][method] = res
            out_path.write_text(json.dumps(report, indent=1))  # incremental
    report["meta"]["load_end"] = load_snapshot()
    out_path.write_text(json.dumps(report, indent=1))
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
