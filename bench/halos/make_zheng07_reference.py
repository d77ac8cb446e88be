#!/usr/bin/env python3
"""Reference values of the Zheng et al. (2007) HOD mean occupations from halotools.

Usage:
    /work/venv-halos/bin/python bench/halos/make_zheng07_reference.py OUT.npz

Writes OUT.npz (uncompressed) with (all float64, C order, no strings, no pickles):
    mass            [201]    halo mass grid, logspace(10.5, 15.5, 201) Msun/h
    params          [3, 5]   (logMmin, sigma_logM, logM0, logM1, alpha) per row
    ncen            [3, 201] Zheng07Cens.mean_occupation
    nsat            [3, 201] Zheng07Sats().mean_occupation, halotools default
                             modulate_with_cenocc=False (no <Ncen> factor)
    nsat_modulated  [3, 201] Zheng07Sats(modulate_with_cenocc=True).mean_occupation
                             (= nsat * ncen)
and OUT.json (same stem) with the package versions and the parameter column names.

halotools formulas (halotools.empirical_models.occupation_models.zheng07_components):
    <Ncen>(M) = 0.5 * (1 + erf((log10 M - logMmin) / sigma_logM))
    <Nsat>(M) = ((M - 10**logM0) / 10**logM1)**alpha   if M > 10**logM0 else 0
    modulated: <Nsat>(M) * <Ncen>(M)
"""
import json
import sys
from pathlib import Path

import numpy as np

import halotools
import scipy
from halotools.empirical_models import Zheng07Cens, Zheng07Sats

PARAM_NAMES = ["logMmin", "sigma_logM", "logM0", "logM1", "alpha"]
PARAMS = np.array(
    [
        [13.0, 0.5, 13.0, 14.0, 1.0],
        [12.02, 0.26, 11.38, 13.31, 1.06],
        [13.5, 0.2, 12.5, 14.5, 0.8],
    ],
    dtype=np.float64,
)


def set_params(model, row):
    # Only set the keys the component has; a modulated Zheng07Sats carries the
    # central keys too and pushes them to its central model at evaluation time.
    for name, value in zip(PARAM_NAMES, row):
        if name in model.param_dict:
            model.param_dict[name] = float(value)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = Path(sys.argv[1])
    mass = np.logspace(10.5, 15.5, 201)

    ncen = np.empty((len(PARAMS), mass.size))
    nsat = np.empty_like(ncen)
    nsat_mod = np.empty_like(ncen)
    for i, row in enumerate(PARAMS):
        cens = Zheng07Cens()
        sats = Zheng07Sats()  # halotools default: modulate_with_cenocc=False
        assert sats.modulate_with_cenocc is False
        sats_mod = Zheng07Sats(modulate_with_cenocc=True)
        for m in (cens, sats, sats_mod):
            set_params(m, row)
        # Sanity: every parameter got set where it should.
        assert set(PARAM_NAMES[:2]) <= set(cens.param_dict)
        assert set(PARAM_NAMES[2:]) <= set(sats.param_dict)
        assert set(PARAM_NAMES) <= set(sats_mod.param_dict)
        ncen[i] = cens.mean_occupation(prim_haloprop=mass)
        nsat[i] = sats.mean_occupation(prim_haloprop=mass)
        nsat_mod[i] = sats_mod.mean_occupation(prim_haloprop=mass)
        # Cross-check that modulated == plain * ncen (halotools' definition).
        np.testing.assert_allclose(nsat_mod[i], nsat[i] * ncen[i], rtol=1e-14, atol=0)

    out.parent.mkdir(parents=True, exist_ok=True)
    # Uncompressed (stored) npz: the workspace's ndarray-npy is built with
    # feature "npz" only (no zip/deflate), so it cannot read deflated members.
    np.savez(
        out,
        mass=mass,
        params=PARAMS,
        ncen=ncen,
        nsat=nsat,
        nsat_modulated=nsat_mod,
    )
    meta = {
        "halotools_version": halotools.__version__,
        "numpy_version": np.__version__,
        "scipy_version": scipy.__version__,
        "python_version": sys.version.split()[0],
        "params_columns": PARAM_NAMES,
        "mass_grid": "numpy.logspace(10.5, 15.5, 201) [Msun/h]",
        "nsat_default_modulate_with_cenocc": False,
    }
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {out} and {out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
