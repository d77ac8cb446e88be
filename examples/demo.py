#!/usr/bin/env python3
"""The `cosmodiff demo` tour, from Python.

Steps (the same as the Rust `cosmodiff demo --quick`, through the Python
package):

1. Fiducial cosmology (Planck 2015) and the lensing C_ell of two Smail
   source bins (z0 = 0.5, 1.0).
2. A simulated log-normal, noisy, two-bin shear field.
3. Mass maps of the deeper bin: Kaiser-Squires (best Gaussian smoothing) and
   the Wiener filter with constrained realisations and per-pixel sd.
4. The measured C_ell of the noisy Kaiser-Squires maps (noise subtracted)
   against theory, and the Fisher forecast at those multipoles.
5. A short NUTS posterior on (Omega_c, sigma8) from the measured C_ell.

Writes OUT/demo_py.npz and, when matplotlib is importable, OUT/maps.png,
OUT/kappa_std.png, OUT/cl.png and OUT/corner.png; prints a summary.

    pip install ./crates/py            # once
    python examples/demo.py --out cosmodiff-demo-py   # about 20-60 s on 2 cores
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import cosmodiff as cd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="cosmodiff-demo-py", help="output folder (default: cosmodiff-demo-py)")
    ap.add_argument("--seed", type=int, default=1, help="random seed (results are deterministic for a seed)")
    ap.add_argument("--full", action="store_true", help="256^2 maps and longer chains (the non-quick CLI demo sizes)")
    ap.add_argument("--smoke", action="store_true", help="tiny maps and chains (seconds; used by the test suite)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()

    # Demo sizes (as `cosmodiff demo --quick`, or the full demo with --full).
    npix, pixel_arcmin = (256, 4.0) if args.full else (128, 4.0)
    gals, sigma_e = 30.0, 0.26
    wiener_samples = 32 if args.full else 8
    chains, warmup, draws = (4, 400, 600) if args.full else (2, 200, 200)
    n_ell_bins = 8 if args.full else 6
    if args.smoke:
        npix, wiener_samples, chains, warmup, draws, n_ell_bins = 32, 2, 1, 20, 10, 4

    # 1. Cosmology and tracers: two source bins sharing the galaxies.
    fid = cd.Cosmology.planck15()
    tracers = [cd.WeakLensing(cd.smail_nz(1.0, 2.0, z0), sigma_e=sigma_e, gals_per_arcmin2=gals / 2) for z0 in (0.5, 1.0)]
    side_rad = npix * pixel_arcmin * np.pi / (180 * 60)
    f_sky = side_rad**2 / (4 * np.pi)
    print(f"[1/5] {fid}\n      map {npix}x{npix} x {pixel_arcmin} arcmin ({np.degrees(side_rad) ** 2:.1f} deg^2, f_sky = {f_sky:.2e})")

    # 2. Simulate.
    sim = cd.simulate_lensing(fid, tracers, npix=npix, pixel_arcmin=pixel_arcmin, kind="lognormal", seed=args.seed)
    ell_th, cl_th = sim["ell"], sim["cl_theory"]
    print(f"[2/5] simulated log-normal shear maps {sim['e1'].shape} (shifts {np.round(sim['lognormal_shifts'], 4)})")

    # 3. Mass maps for the deeper bin.
    b = 1
    pair_bb = 2  # pairs (0,0), (0,1), (1,1)
    truth, e1, e2, noise = sim["kappa"][b], sim["e1"][b], sim["e2"][b], sim["noise_std"][b]
    best = None
    for sig_pix in (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0):
        ke, _ = cd.kaiser_squires(e1, e2, pixel_arcmin, smoothing_arcmin=sig_pix * pixel_arcmin)
        r = cd.rmse(ke, truth)
        if best is None or r < best[0]:
            best = (r, sig_pix * pixel_arcmin, ke)
    rmse_ks, ks_smooth, kappa_ks = best
    wf = cd.wiener(e1, e2, noise, pixel_arcmin, ell_th, cl_th[pair_bb], samples=wiener_samples, seed=args.seed)
    kappa_wf, kappa_std = wf["kappa"], wf["kappa_std"]
    rmse_wf = cd.rmse(kappa_wf, truth)
    r_ks, r_wf = cd.pearson(kappa_ks, truth), cd.pearson(kappa_wf, truth)
    within = float(np.mean(np.abs(truth - kappa_wf) <= kappa_std))
    print(f"[3/5] Kaiser-Squires ({ks_smooth:.0f}' smoothing): RMSE {rmse_ks:.5f}, r = {r_ks:.3f}")
    print(f"      Wiener ({wf['iterations']} CG iterations): RMSE {rmse_wf:.5f}, r = {r_wf:.3f}; truth within 1 sd in {100 * within:.1f}% of pixels")

    # 4. Measured spectra of the noisy KS E maps, noise power removed.
    ke_all, _ = cd.kaiser_squires(sim["e1"], sim["e2"], pixel_arcmin)
    pairs = cd.tracer_pairs(len(tracers))
    noise_cl = cd.noise_cl(tracers, [100.0])[:, 0]
    cl_meas, ell_meas, n_modes = [], None, None
    for p, (i, j) in enumerate(pairs):
        est = cd.measure_cl(ke_all[i], ke_all[j], pixel_arcmin=pixel_arcmin, n_bins=n_ell_bins)
        ell_meas, n_modes = est["ell"], est["n_modes"]
        cl_meas.append(est["cl"] - noise_cl[p])
    cl_meas = np.array(cl_meas)
    cl_at_meas = cd.angular_cl(fid, tracers, ell_meas)
    F = cd.fisher(fid, tracers, ell_meas, f_sky, params=["Omega_c", "sigma8"])
    sig_fisher = np.sqrt(np.diag(np.linalg.inv(F)))
    print(f"[4/5] measured C_ell in {n_ell_bins} bins, ell = {ell_meas[0]:.0f}..{ell_meas[-1]:.0f}; "
          f"measured/theory (bin 2x2): {np.round(cl_meas[2] / cl_at_meas[2], 2)}")
    print(f"      Fisher forecast: sigma(Omega_c) = {sig_fisher[0]:.4f}, sigma(sigma8) = {sig_fisher[1]:.4f}")

    # 5. Posterior from the measured spectra.
    post = cd.sample_cl(
        fid, tracers, ell_meas, f_sky, data_cl=cl_meas,
        params=[("Omega_c", {"prior": "uniform", "low": 0.1, "high": 0.6}), ("sigma8", {"prior": "uniform", "low": 0.4, "high": 1.3})],
        chains=chains, warmup=warmup, draws=draws, seed=args.seed,
    )
    summ = post["summary"]
    for p, t in zip(summ["params"], (fid.Omega_c, fid.sigma8)):
        print(f"[5/5] {p['name']:8s} = {p['mean']:.3f} +- {p['sd']:.3f} (truth {t}; R-hat {p['r_hat']:.3f}, ESS {p['ess_bulk']:.0f})")
    print(f"      NUTS {chains} chains x {draws} draws in {summ['elapsed_s']:.1f} s, {summ['divergences']} divergences")

    np.savez(
        out / "demo_py.npz",
        kappa_true=truth, e1=e1, e2=e2, kappa_ks=kappa_ks, kappa_wiener=kappa_wf, kappa_std=kappa_std,
        ell_theory=ell_th, cl_theory=cl_th, ell_measured=ell_meas, cl_measured=cl_meas, fisher=F,
        posterior_draws=post["draws"],
    )
    figures = plot(out, truth, kappa_ks, ks_smooth, kappa_wf, wf["samples"][0], kappa_std, pairs, ell_th, cl_th,
                   ell_meas, cl_meas, cl_at_meas, noise_cl, n_modes, post, (fid.Omega_c, fid.sigma8))
    print(f"done in {time.time() - t0:.1f} s: {out}/demo_py.npz" + (", " + ", ".join(figures) if figures else
          " (install matplotlib for the PNG figures)"))


def plot(out, truth, kappa_ks, ks_smooth, kappa_wf, sample, kappa_std, pairs, ell_th, cl_th, ell_m, cl_m, cl_at_m,
         noise_cl, n_modes, post, truths):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    vmax = np.abs(truth).max()
    fig, axes = plt.subplots(1, 4, figsize=(16, 4.3), constrained_layout=True)
    for ax, (title, m) in zip(axes, [("truth", truth), (f"Kaiser-Squires ({ks_smooth:.0f}')", kappa_ks),
                                     ("Wiener mean", kappa_wf), ("Wiener sample", sample)]):
        im = ax.imshow(m, origin="lower", cmap="RdBu_r", vmin=-vmax, vmax=vmax)
        ax.set_title(title)
        ax.set_xticks([]), ax.set_yticks([])
    fig.colorbar(im, ax=axes, shrink=0.8, label="kappa")
    fig.savefig(out / "maps.png", dpi=90)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 4.3))
    im = ax.imshow(kappa_std, origin="lower", cmap="viridis")
    fig.colorbar(im, ax=ax, label="std(kappa)")
    ax.set_title("Wiener posterior standard deviation")
    fig.savefig(out / "kappa_std.png", dpi=90)
    plt.close(fig)

    scale = lambda l: l * (l + 1) / (2 * np.pi)  # noqa: E731
    idx = {(int(i), int(j)): p for p, (i, j) in enumerate(pairs)}
    fig, ax = plt.subplots(figsize=(7, 5))
    for p, (i, j) in enumerate(pairs):
        tot = lambda a, c: cl_at_m[idx[(min(a, c), max(a, c))]] + noise_cl[idx[(min(a, c), max(a, c))]]  # noqa: E731
        err = scale(ell_m) * np.sqrt((tot(i, i) * tot(j, j) + tot(i, j) ** 2) / np.maximum(n_modes, 1))
        (line,) = ax.loglog(ell_th, scale(ell_th) * cl_th[p], label=f"theory {i + 1}x{j + 1}")
        ax.errorbar(ell_m, scale(ell_m) * cl_m[p], yerr=err, fmt="o", color=line.get_color(), label=f"measured {i + 1}x{j + 1}")
    ax.set_xlabel("multipole ell")
    ax.set_ylabel("ell (ell+1) C_ell / 2 pi")
    ax.set_title("Lensing C_ell: theory and measurement (noise subtracted)")
    ax.legend(fontsize=8)
    fig.savefig(out / "cl.png", dpi=90)
    plt.close(fig)

    d = post["draws"].reshape(-1, post["draws"].shape[-1])
    names = post["names"]
    fig, axes = plt.subplots(2, 2, figsize=(6, 6))
    for a in range(2):
        for c in range(2):
            ax = axes[a, c]
            if a == c:
                ax.hist(d[:, a], bins=30, color="C0")
                ax.axvline(truths[a], color="k")
            elif a > c:
                ax.plot(d[:, c], d[:, a], ",", alpha=0.5)
                ax.plot(truths[c], truths[a], "k+", ms=12)
            else:
                ax.axis("off")
            if a == 1:
                ax.set_xlabel(names[c])
            if c == 0 and a == 1:
                ax.set_ylabel(names[a])
    fig.suptitle("NUTS posterior from the measured C_ell")
    fig.savefig(out / "corner.png", dpi=90)
    plt.close(fig)
    return ["maps.png", "kappa_std.png", "cl.png", "corner.png"]


if __name__ == "__main__":
    main()
