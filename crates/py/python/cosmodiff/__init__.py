"""cosmodiff: field-level Bayesian inference for cosmology, from Python.

Python bindings of the cosmodiff Rust library (PyO3 + maturin). Everything
numerical runs in Rust; this module converts inputs to float64 numpy
arrays, documents the API and shapes the outputs. Results are identical to
the ``cosmodiff`` command line (same library calls).

Contents
--------
Cosmology
    :class:`Cosmology` (Planck 2015 defaults; ``Cosmology.planck18()``).
Background and growth (vectorised over the scale factor ``a``)
    :func:`comoving_distance`, :func:`angular_diameter_distance`,
    :func:`luminosity_distance`, :func:`hubble`, :func:`growth_factor`,
    :func:`growth_rate`.
Power spectra
    :func:`pk_linear`, :func:`pk_nonlinear` -> ``[len(z), len(k)]``.
Tracers
    :func:`smail_nz`, :func:`gaussian_nz`, :func:`delta_nz`,
    :func:`tabulated_nz`, :func:`histogram_nz`; :class:`WeakLensing`,
    :class:`NumberCounts`.
Angular power spectra, covariance, Fisher
    :func:`angular_cl`, :func:`noise_cl`, :func:`tracer_pairs`,
    :func:`gaussian_covariance`, :func:`cl_gradient`, :func:`fisher`,
    :class:`ClLikelihood`.
Maps
    :func:`simulate_lensing`, :func:`bin_shear`, :func:`kaiser_squires`,
    :func:`wiener`, :func:`measure_cl`, :func:`rmse`, :func:`pearson`.
Sampling
    :func:`sample_cl` (NUTS), :func:`find_map_cl` (MAP + Laplace).
Mass maps with a learned score (diffusion) prior
    :func:`massmap_diffusion`, :func:`diffusion_prior_info`.
Simulation-based inference (normalizing flows)
    :func:`sbi_train` -> :class:`SbiModel` (``sample``, ``summaries``,
    ``save``), :func:`sbi_load`.
Halo and galaxy catalogues (periodic boxes, Mpc/h)
    :func:`fof` (friends-of-friends), :func:`hod_populate` (Zheng07, exact
    or relaxed) and :func:`hod_relaxed_vjp`, :func:`xi` and :func:`xi_vjp`, :func:`pk_points` and
    :func:`pk_points_vjp`, :func:`knn_cdf`.
Cosmology from lensing maps (the sbi_lens benchmark)
    :func:`sbi_lens_kappa`, :func:`sbi_lens_log_likelihood` (the log-normal
    simulator and its gradients), :func:`lensing_cosmology_simulate`,
    :func:`lensing_cosmology_infer` (``cl`` or ``fullfield``).

Units and conventions
---------------------
Distances in Mpc/h (divide by ``h`` for Mpc), wavenumbers in h/Mpc, P(k)
in (Mpc/h)^3, H in km/s/Mpc, map pixels and smoothing scales in arcmin,
galaxy densities in arcmin^-2, C_ell dimensionless (per steradian).
Tracer pairs are ordered (i, j) with j >= i (see :func:`tracer_pairs`);
data vectors and covariances are pair-major (``pair * n_ell + ell_index``).
Maps are ``[npix, npix]`` arrays, row index y, column index x.

Errors
------
Invalid input raises :class:`CosmodiffError`, a subclass of ``ValueError``
with the library's one-line message (e.g. ``invalid parameter sigma8 = -0.1:
must be in (0, 3]``).
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import _core


def _guarded(name: str, fn: Any) -> Any:
    """``fn`` with a Rust panic (a bug, never the caller's fault) turned into
    one-line :class:`CosmodiffError` asking for a report, instead of pyo3's
    ``PanicException`` (a ``BaseException`` that ``except Exception`` misses)."""

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except BaseException as e:  # noqa: B036 - only PanicException is rewritten
            if type(e).__name__ != "PanicException":
                raise
            msg = " ".join(str(e).split())
            raise _core.CosmodiffError(
                f"internal error in cosmodiff.{name}: {msg}; please report it with the call that caused it"
            ) from None

    return call


for _name in dir(_core):
    _obj = getattr(_core, _name)
    if callable(_obj) and not isinstance(_obj, type) and not _name.startswith("__"):
        setattr(_core, _name, _guarded(_name, _obj))

from ._core import (
    ClLikelihood,
    CosmodiffError,
    Cosmology,
    NumberCounts,
    Nz,
    SbiModel,
    Tracer,
    WeakLensing,
)

__version__: str = _core.__version__

ArrayLike = Union[float, Sequence[float], np.ndarray]

__all__ = [
    "CosmodiffError",
    "Cosmology",
    "Nz",
    "Tracer",
    "WeakLensing",
    "NumberCounts",
    "ClLikelihood",
    "comoving_distance",
    "angular_diameter_distance",
    "luminosity_distance",
    "transverse_comoving_distance",
    "hubble",
    "growth_factor",
    "growth_rate",
    "pk_linear",
    "pk_nonlinear",
    "smail_nz",
    "gaussian_nz",
    "delta_nz",
    "tabulated_nz",
    "histogram_nz",
    "angular_cl",
    "noise_cl",
    "tracer_pairs",
    "gaussian_covariance",
    "cl_gradient",
    "fisher",
    "simulate_lensing",
    "bin_shear",
    "kaiser_squires",
    "wiener",
    "measure_cl",
    "rmse",
    "pearson",
    "Chains",
    "sample_cl",
    "find_map_cl",
    "massmap_diffusion",
    "diffusion_prior_info",
    "SbiModel",
    "sbi_train",
    "sbi_load",
    "c2st",
    "fof",
    "hod_populate",
    "hod_relaxed_vjp",
    "xi",
    "xi_vjp",
    "pk_points",
    "pk_points_vjp",
    "knn_cdf",
    "sbi_lens_kappa",
    "sbi_lens_log_likelihood",
    "lensing_cosmology_simulate",
    "lensing_cosmology_infer",
    "fieldflow_train",
    "fieldflow_logprob",
    "fieldflow_infer",
    "fieldflow_fisher",
    "fieldflow_calibrate",
    "simulate_density",
    "set_max_memory",
    "set_device",
    "device",
    "devices",
    "tarp",
    "sbc",
]


def _f64(x: Any, name: str = "array") -> np.ndarray:
    """A C-contiguous float64 array view of x (no copy when it already is one).
    Complex input is refused: numpy would drop the imaginary part with only a
    warning (a complex shear g1 + i g2 would silently become g1)."""
    if x is None:
        raise CosmodiffError(f"{name}: expected numbers, got None")
    if np.iscomplexobj(x):
        raise CosmodiffError(f"{name}: complex values; pass real arrays (a complex shear g as g.real, g.imag)")
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise CosmodiffError(f"{name}: expected numbers ({e})") from None
    return arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)


def _n(x: Any, name: str) -> int:
    """A non-negative whole number (counts, sizes, seeds): 3, 3.0 and
    np.int64(3) pass; 2.7, -1, True and "3" raise CosmodiffError naming it."""
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, float, np.integer, np.floating)):
        raise CosmodiffError(f"{name} = {x!r}: expected a whole number >= 0")
    if not float(x).is_integer() or x < 0:
        raise CosmodiffError(f"{name} = {x!r}: expected a whole number >= 0")
    if x >= 2**64:
        raise CosmodiffError(f"{name} = {x!r}: expected a whole number below 2**64")
    return int(x)


def _shear_inputs(e1: ArrayLike, e2: ArrayLike, noise_std: ArrayLike, mask: Optional[ArrayLike]):
    """One shear map's arrays: e1, e2, noise_std (a scalar fills e1's shape), mask or None."""
    a1, a2 = _f64(e1, "e1"), _f64(e2, "e2")
    sd = _f64(noise_std, "noise_std")
    if sd.ndim == 0:
        sd = np.full(a1.shape, float(sd))
    return a1, a2, sd, None if mask is None else _f64(mask, "mask")


def _vectorised(cosmo: Cosmology, a: ArrayLike, quantity: str):
    arr = _f64(a, "a")
    out = _core.background(cosmo, arr, quantity)
    return float(out) if arr.ndim == 0 else out


# --------------------------------------------------------------- background


def comoving_distance(cosmo: Cosmology, a: ArrayLike) -> Union[float, np.ndarray]:
    """Line-of-sight comoving distance chi(a) in Mpc/h (same shape as ``a``; a in (1e-4, 1])."""
    return _vectorised(cosmo, a, "comoving_distance")


def transverse_comoving_distance(cosmo: Cosmology, a: ArrayLike) -> Union[float, np.ndarray]:
    """Transverse comoving distance f_K(chi(a)) in Mpc/h (equals chi when Omega_k = 0)."""
    return _vectorised(cosmo, a, "transverse_comoving_distance")


def angular_diameter_distance(cosmo: Cosmology, a: ArrayLike) -> Union[float, np.ndarray]:
    """Angular diameter distance D_A(a) = a f_K(chi(a)) in Mpc/h."""
    return _vectorised(cosmo, a, "angular_diameter_distance")


def luminosity_distance(cosmo: Cosmology, a: ArrayLike) -> Union[float, np.ndarray]:
    """Luminosity distance D_L(a) = f_K(chi(a)) / a in Mpc/h."""
    return _vectorised(cosmo, a, "luminosity_distance")


def hubble(cosmo: Cosmology, a: ArrayLike) -> Union[float, np.ndarray]:
    """Hubble rate H(a) in km/s/Mpc."""
    return _vectorised(cosmo, a, "hubble")


def growth_factor(cosmo: Cosmology, a: ArrayLike) -> Union[float, np.ndarray]:
    """Linear growth factor D(a), normalised to D(1) = 1."""
    return _vectorised(cosmo, a, "growth_factor")


def growth_rate(cosmo: Cosmology, a: ArrayLike) -> Union[float, np.ndarray]:
    """Linear growth rate f(a) = d ln D / d ln a."""
    return _vectorised(cosmo, a, "growth_rate")


# -------------------------------------------------------------------- power


def pk_linear(cosmo: Cosmology, k: ArrayLike, z: ArrayLike, transfer: str = "eisenstein_hu") -> np.ndarray:
    """Linear matter power spectrum P_lin(k, z) in (Mpc/h)^3, shape ``[len(z), len(k)]``.

    k in h/Mpc (0 < k <= 1000), z >= 0. ``transfer``: "eisenstein_hu",
    "eisenstein_hu_nowiggles" or "bbks". Normalised to ``cosmo.sigma8``.
    """
    return _core.power(cosmo, _f64(k, "k").ravel(), _f64(z, "z").ravel(), transfer, "linear")


def pk_nonlinear(
    cosmo: Cosmology, k: ArrayLike, z: ArrayLike, transfer: str = "eisenstein_hu", nonlinear: str = "halofit"
) -> np.ndarray:
    """Non-linear matter power spectrum in (Mpc/h)^3, shape ``[len(z), len(k)]``.

    ``nonlinear``: "halofit" (Takahashi et al. 2012) or "linear".
    """
    return _core.power(cosmo, _f64(k, "k").ravel(), _f64(z, "z").ravel(), transfer, nonlinear)


# --------------------------------------------------------------------- n(z)


def smail_nz(a: float, b: float, z0: float, zmax: float = 5.0, shift: float = 0.0) -> Nz:
    """Smail et al. (1994) n(z) ~ z^a exp(-(z/z0)^b) on [0, zmax], normalised; photo-z shift dz."""
    return Nz.smail(a, b, z0, zmax, shift)


def gaussian_nz(z0: float, sigma: float, zmax: float = 5.0, shift: float = 0.0) -> Nz:
    """Gaussian n(z) of mean z0 and width sigma truncated to [0, zmax], normalised."""
    return Nz.gaussian(z0, sigma, zmax, shift)


def delta_nz(z0: float, shift: float = 0.0) -> Nz:
    """All galaxies at redshift z0 (a single source plane; lensing only)."""
    return Nz.delta(z0, shift)


def tabulated_nz(z: ArrayLike, nz: ArrayLike, shift: float = 0.0) -> Nz:
    """n(z) tabulated at increasing nodes ``z``, linearly interpolated, normalised to unit integral."""
    return Nz.tabulated(list(_f64(z, "z").ravel()), list(_f64(nz, "nz").ravel()), shift)


def histogram_nz(edges: ArrayLike, counts: ArrayLike, shift: float = 0.0) -> Nz:
    """Piecewise-constant n(z): ``counts[i]`` galaxies in [edges[i], edges[i+1]), normalised."""
    return Nz.histogram(list(_f64(edges, "edges").ravel()), list(_f64(counts, "counts").ravel()), shift)


# --------------------------------------------------------------------- C_ell


def _tracers(tracers: Union[Tracer, Iterable[Tracer]]) -> List[Tracer]:
    if isinstance(tracers, Tracer):
        return [tracers]
    try:
        ts = list(tracers)
    except TypeError:
        raise CosmodiffError(f"tracers: expected a tracer or a list of tracers, got {type(tracers).__name__}") from None
    for i, t in enumerate(ts):
        if not isinstance(t, Tracer):
            raise CosmodiffError(f"tracers[{i}]: expected a WeakLensing or NumberCounts tracer, got {type(t).__name__}")
    return ts


def angular_cl(
    cosmo: Cosmology,
    tracers: Union[Tracer, Sequence[Tracer]],
    ell: ArrayLike,
    transfer: str = "eisenstein_hu",
    nonlinear: str = "halofit",
) -> np.ndarray:
    """Limber angular power spectra C_ell, shape ``[n_pairs, n_ell]`` (signal only).

    Pairs (i, j), j >= i, in tracer order (see :func:`tracer_pairs`);
    ell >= 2. Lensing includes the spin-2 prefactor and NLA intrinsic
    alignments; number counts use linear bias.
    """
    return _core.angular_cl(cosmo, _tracers(tracers), _f64(ell, "ell").ravel(), transfer, nonlinear)


def noise_cl(tracers: Union[Tracer, Sequence[Tracer]], ell: ArrayLike) -> np.ndarray:
    """Noise spectra ``[n_pairs, n_ell]``: sigma_e^2/n (lensing) or 1/n (counts) on auto pairs, n per steradian."""
    return _core.noise_cl(_tracers(tracers), _f64(ell, "ell").ravel())


def tracer_pairs(n: int) -> np.ndarray:
    """Pair indices ``[n_pairs, 2]`` ((i, j) with j >= i), the row order of every C_ell array."""
    return _core.tracer_pairs(_n(n, "n"))


def gaussian_covariance(cl_total: ArrayLike, n_tracers: int, ell: ArrayLike, f_sky: float) -> np.ndarray:
    """Knox (Gaussian) covariance of C_ell, ``[n_pairs*n_ell, n_pairs*n_ell]``, pair-major.

    ``cl_total`` = signal + noise ``[n_pairs, n_ell]``;
    Cov = (C_ac C_bd + C_ad C_bc) / ((2 ell + 1) Delta_ell f_sky), Delta_ell = numpy.gradient(ell).
    """
    return _core.gaussian_covariance(_f64(cl_total, "cl_total"), _n(n_tracers, "n_tracers"), _f64(ell, "ell").ravel(), float(f_sky))


def cl_gradient(
    cosmo: Cosmology,
    tracers: Union[Tracer, Sequence[Tracer]],
    ell: ArrayLike,
    params: Union[str, Sequence[str]] = ("Omega_c", "sigma8"),
    transfer: str = "eisenstein_hu",
    nonlinear: str = "halofit",
) -> np.ndarray:
    """Exact derivatives dC_ell/dtheta ``[n_params, n_pairs, n_ell]`` (forward-mode dual numbers).

    Parameter names: Omega_c, Omega_b, h, n_s, sigma8, Omega_k, w0, wa.
    """
    return _core.cl_gradient(cosmo, _tracers(tracers), _f64(ell, "ell").ravel(), params, transfer, nonlinear)


def fisher(
    cosmo: Cosmology,
    tracers: Union[Tracer, Sequence[Tracer]],
    ell: ArrayLike,
    f_sky: float,
    params: Union[str, Sequence[str]] = ("Omega_c", "sigma8"),
    method: str = "jacobian",
    transfer: str = "eisenstein_hu",
    nonlinear: str = "halofit",
) -> np.ndarray:
    """Fisher matrix ``[n_params, n_params]`` of the Gaussian C_ell likelihood at ``cosmo``.

    Exact derivatives: ``method="jacobian"`` gives J^T C^-1 J with J from
    dual numbers; ``method="hessian"`` gives minus the Hessian of log L
    (hyper-dual numbers) at data = theory. The two agree to rounding.
    Covariance: Knox with the tracers' noise and ``f_sky``.
    """
    return _core.fisher(cosmo, _tracers(tracers), _f64(ell, "ell").ravel(), float(f_sky), params, method, transfer, nonlinear)


# --------------------------------------------------------------------- maps


def _sources(sources: Any) -> List[Tracer]:
    if isinstance(sources, Tracer):
        return [sources]
    if isinstance(sources, Nz):
        return [WeakLensing(sources)]
    if not isinstance(sources, Iterable):
        raise CosmodiffError(f"sources: expected a WeakLensing tracer, an Nz or a list of them, got {type(sources).__name__}")
    out = []
    for i, s in enumerate(sources):
        if isinstance(s, Tracer):
            out.append(s)
        elif isinstance(s, Nz):
            out.append(WeakLensing(s))
        elif isinstance(s, (tuple, list)) and 1 <= len(s) <= 3 and isinstance(s[0], Nz):
            out.append(WeakLensing(*s))
        else:
            raise CosmodiffError(f"sources[{i}]: expected a WeakLensing tracer, an Nz or a tuple (nz, sigma_e, gals_per_arcmin2)")
    return out


def simulate_lensing(
    cosmo: Cosmology,
    sources: Any,
    npix: int = 128,
    pixel_arcmin: float = 2.0,
    kind: str = "lognormal",
    seed: int = 1,
    lognormal_shifts: Optional[Sequence[Optional[float]]] = None,
    transfer: str = "eisenstein_hu",
    nonlinear: str = "halofit",
) -> Dict[str, Any]:
    """Simulate tomographic weak-lensing maps conditioned on a cosmology.

    The same computation as ``cosmodiff simulate lensing`` (bit-identical for
    the same inputs and seed): theory C_ell of the source bins on 96
    log-spaced multipoles, a Gaussian or log-normal correlated convergence
    field, shear by the flat-sky operator, Gaussian shape noise
    sigma_e / sqrt(n_gal A_pix) per component.

    Parameters
    ----------
    sources : list of WeakLensing, Nz or (nz, sigma_e, gals_per_arcmin2) tuples, one per source bin.
    npix : pixels per side (8..8192); pixel_arcmin : pixel side in arcmin.
    kind : "lognormal" (default) or "gaussian".
    seed : random seed (results are deterministic for a given seed).
    lognormal_shifts : per-bin log-normal shift (None entries: the Hilbert et al. 2011
        fit at the mean source redshift).

    Returns
    -------
    dict with ``kappa``, ``gamma1``, ``gamma2`` (noiseless), ``e1``, ``e2``
    (with shape noise), ``noise_std`` (per-component noise per pixel), all
    ``[n_bins, npix, npix]``; ``ell`` ``[n_ell]`` and ``cl_theory``
    ``[n_pairs, n_ell]``; ``pixel_arcmin``; ``lognormal_shifts``.
    """
    srcs = _sources(sources)
    if lognormal_shifts is not None and np.ndim(lognormal_shifts) == 0:
        lognormal_shifts = [lognormal_shifts] * len(srcs)  # one shift for every bin
    return _core.simulate_lensing(
        cosmo,
        srcs,
        _n(npix, "npix"),
        float(pixel_arcmin),
        kind,
        _n(seed, "seed"),
        None if lognormal_shifts is None else list(lognormal_shifts),
        transfer,
        nonlinear,
    )


def bin_shear(
    catalogs: Any,
    npix: int,
    pixel_arcmin: float,
    unit: str = "arcmin",
    center: Optional[Tuple[float, float]] = None,
    origin_arcmin: Optional[Tuple[float, float]] = None,
    sigma_e: Optional[float] = None,
) -> Dict[str, Any]:
    """Bin galaxy shear catalogues into shear, noise and mask maps.

    The same computation as ``cosmodiff bin-shear`` (whose ``.npz`` output
    ``cosmodiff massmap`` reads). Per pixel: the weighted mean ellipticity
    ``g = sum w e / sum w``, its per-component noise
    ``sigma_e sqrt(sum w^2) / sum w``, the galaxy count, mask 1 (0 and
    noise ``inf`` where no galaxy fell).

    Parameters
    ----------
    catalogs : a catalogue or a list of them, one per source bin: a path
        (``.csv`` or ``.fits`` binary table) or a dict of 1-D columns, with
        ``e1``, ``e2``, optional ``w`` (or ``weight``), and flat-sky ``x``,
        ``y`` (in ``unit``) or sky ``ra``, ``dec`` in degrees.
    npix : pixels per side; pixel_arcmin : pixel side in arcmin.
    unit : "arcmin" or "deg", the unit of ``x``, ``y``.
    center : (RA, Dec) in degrees of the tangent point onto which sky
        positions are projected (gnomonic; ``x`` towards increasing RA);
        default the first catalogue's mean direction.
    origin_arcmin : lower-left corner of the map on the plane; default the
        map centred on the tangent point (sky) or on the first catalogue.
    sigma_e : shape noise per component; default estimated per catalogue.

    Returns
    -------
    dict with ``e1``, ``e2``, ``noise_std``, ``mask``, ``counts``
    (``[npix, npix]``, or ``[n_bins, npix, npix]`` for several
    catalogues), ``pixel_arcmin``, ``sigma_e`` and ``outside`` per bin,
    ``origin_arcmin`` and, for sky catalogues, ``center_deg``.
    """
    if isinstance(catalogs, (str, os.PathLike, dict)):
        catalogs = [catalogs]
    return _core.bin_shear(
        [os.fspath(c) if isinstance(c, (str, os.PathLike)) else c for c in catalogs],
        _n(npix, "npix"),
        float(pixel_arcmin),
        unit,
        None if center is None else (float(center[0]), float(center[1])),
        None if origin_arcmin is None else (float(origin_arcmin[0]), float(origin_arcmin[1])),
        None if sigma_e is None else float(sigma_e),
    )


def kaiser_squires(
    e1: ArrayLike, e2: ArrayLike, pixel_arcmin: float = 1.0, smoothing_arcmin: float = 0.0
) -> Tuple[np.ndarray, np.ndarray]:
    """Kaiser-Squires convergence (kappa_E, kappa_B) from shear maps.

    ``e1``, ``e2``: ``[npix, npix]`` or ``[n_bins, npix, npix]`` (each bin
    separately). ``smoothing_arcmin``: standard deviation of a Gaussian
    smoothing kernel in arcmin (0 = none; needs the right ``pixel_arcmin``).
    The ell = 0 mode is zero (mass-sheet degeneracy).
    """
    a1, a2 = _f64(e1, "e1"), _f64(e2, "e2")
    if a1.shape != a2.shape:
        raise CosmodiffError(f"e1 has shape {a1.shape} but e2 has {a2.shape}")
    if a1.ndim == 3 and a1.shape[0] == 0:
        raise CosmodiffError("e1: no source bins (shape [0, npix, npix])")
    if a1.ndim == 3:
        res = [_core.kaiser_squires(a1[b], a2[b], float(pixel_arcmin), float(smoothing_arcmin)) for b in range(a1.shape[0])]
        return np.stack([r[0] for r in res]), np.stack([r[1] for r in res])
    return _core.kaiser_squires(a1, a2, float(pixel_arcmin), float(smoothing_arcmin))


def wiener(
    e1: ArrayLike,
    e2: ArrayLike,
    noise_std: ArrayLike,
    pixel_arcmin: float,
    ell: ArrayLike,
    cl: ArrayLike,
    mask: Optional[ArrayLike] = None,
    samples: int = 0,
    seed: int = 0,
    tol: float = 1e-6,
    max_iter: int = 20000,
    b_mode: bool = True,
) -> Dict[str, Any]:
    """Wiener-filter mass map (posterior mean of a Gaussian kappa) from one shear map.

    Prior: the convergence spectrum ``cl`` tabulated at ``ell`` (e.g.
    ``sim["cl_theory"][pair]``); noise: per-component ``noise_std`` (scalar
    or ``[npix, npix]``; inf = unobserved) and optional ``mask`` (1 observed,
    0 masked; masked pixels may hold NaN). Solved by conjugate gradients to
    relative tolerance ``tol``.

    Returns a dict: ``kappa`` (Wiener E map), ``kappa_b`` (Wiener filter of
    the data rotated by 45 degrees, a B-mode null test; if ``b_mode``),
    ``samples`` ``[samples, npix, npix]`` (constrained realisations of the
    posterior), ``kappa_std`` (per-pixel posterior sd, if samples >= 2),
    ``iterations``, ``residual``.
    """
    a1, a2, sd, m = _shear_inputs(e1, e2, noise_std, mask)
    return _core.wiener(
        a1, a2, sd, float(pixel_arcmin), _f64(ell, "ell").ravel(), _f64(cl, "cl").ravel(),
        m, _n(samples, "samples"), _n(seed, "seed"), float(tol), _n(max_iter, "max_iter"), bool(b_mode),
    )


def measure_cl(
    a: ArrayLike,
    b: Optional[ArrayLike] = None,
    pixel_arcmin: float = 1.0,
    n_bins: int = 8,
    lmin: Optional[float] = None,
    lmax: Optional[float] = None,
    spacing: str = "log",
    edges: Optional[ArrayLike] = None,
    mask: Optional[ArrayLike] = None,
) -> Dict[str, np.ndarray]:
    """Binned flat-sky auto (``b=None``) or cross power spectrum of ``[npix, npix]`` maps.

    Bins: ``edges`` if given, else ``n_bins`` log (or ``spacing="linear"``)
    bins from ``lmin`` (default 2 x the fundamental mode 2 pi / side) to
    ``lmax`` (default the Nyquist multipole pi / pixel); a mode counts in a
    bin when lo <= |ell| < hi. Modes with ell = 0 are skipped. Normalised so that
    <C_hat> = C for an unmasked field; with a mask, divided by mean(mask^2).
    Returns ``ell`` (mode-averaged), ``cl``, ``n_modes`` and ``edges``.
    """
    x = _f64(a, "a")
    y = x if b is None else _f64(b, "b")
    return _core.measure_cl(
        x, y, float(pixel_arcmin), _n(n_bins, "n_bins"),
        None if lmin is None else float(lmin), None if lmax is None else float(lmax), spacing,
        None if edges is None else [float(v) for v in _f64(edges, "edges").ravel()],
        None if mask is None else _f64(mask, "mask"),
    )


def rmse(a: ArrayLike, b: ArrayLike, mask: Optional[ArrayLike] = None) -> float:
    """Root-mean-square difference of two maps (over pixels with mask > 0)."""
    return _core.rmse(_f64(a, "a"), _f64(b, "b"), None if mask is None else _f64(mask, "mask"))


def pearson(a: ArrayLike, b: ArrayLike, mask: Optional[ArrayLike] = None) -> float:
    """Pearson correlation coefficient of two maps (over pixels with mask > 0)."""
    return _core.pearson(_f64(a, "a"), _f64(b, "b"), None if mask is None else _f64(mask, "mask"))


# ------------------------------------------------------------------ sampling

PriorSpec = Union[Mapping[str, Any], Tuple[Any, ...]]


def _prior_json(name: str, p: PriorSpec) -> str:
    """Prior as the library's JSON: {"prior": "uniform", "low": .., "high": ..} etc.

    Accepts a dict with key "prior" (or "kind"), or a tuple
    ("uniform", low, high) / ("normal", mean, sd) /
    ("truncated_normal", mean, sd, low, high) / ("log_normal", mu, sigma).
    """
    if isinstance(p, Mapping):
        d = dict(p)
        if "prior" not in d and "kind" in d:
            d["prior"] = d.pop("kind")
    elif isinstance(p, (tuple, list)) and p and isinstance(p[0], str):
        keys = {
            "uniform": ("low", "high"),
            "normal": ("mean", "sd"),
            "truncated_normal": ("mean", "sd", "low", "high"),
            "log_normal": ("mu", "sigma"),
        }.get(p[0])
        if keys is None or len(p) - 1 != len(keys):
            raise CosmodiffError(f"prior of {name}: unknown tuple form {p!r}")
        d = {"prior": p[0], **{k: float(v) for k, v in zip(keys, p[1:])}}
    else:
        raise CosmodiffError(f"prior of {name}: expected a dict like {{'prior': 'uniform', 'low': 0.1, 'high': 0.5}}")
    try:
        return json.dumps(d, allow_nan=False)
    except ValueError:
        raise CosmodiffError(f"prior of {name}: NaN or infinite value in {p!r}") from None


def _params(params: Any) -> Tuple[List[str], List[str]]:
    if isinstance(params, Mapping):
        items = list(params.items())
    else:
        if isinstance(params, str):
            params = [params]
        items = []
        for i, p in enumerate(params):
            if isinstance(p, str) or not isinstance(p, (tuple, list)) or len(p) != 2:
                raise CosmodiffError(
                    f"params[{i}] = {p!r}: expected a (name, prior) pair such as "
                    "('sigma8', ('uniform', 0.4, 1.3)), or a dict name -> prior"
                )
            items.append(tuple(p))
    if not items:
        raise CosmodiffError("params: expected at least one (name, prior) pair")
    return [str(n) for n, _ in items], [_prior_json(str(n), p) for n, p in items]


#: LaTeX labels of the cosmological parameters (getdist convention: no $).
LATEX_LABELS: Dict[str, str] = {
    "Omega_c": r"\Omega_c",
    "Omega_b": r"\Omega_b",
    "Omega_k": r"\Omega_k",
    "Omega_m": r"\Omega_m",
    "sigma8": r"\sigma_8",
    "S8": r"S_8",
    "h": "h",
    "n_s": "n_s",
    "w0": "w_0",
    "wa": "w_a",
}


class Chains(dict):
    """MCMC chains as returned by :func:`sample_cl`: a ``dict`` (``draws``
    ``[chains, draws, dim]``, ``names``, ``summary``, per-draw sampler
    statistics ``[chains, draws]``) with exports to the usual tools.
    """

    def to_arviz(self):
        """An ArviZ ``InferenceData``: ``posterior`` with one variable per
        parameter ``[chain, draw]``, ``sample_stats`` with ``diverging``,
        ``lp``, ``step_size``, ``tree_depth``, ``n_steps`` and
        ``acceptance_rate`` (ArviZ's names). ``arviz.summary`` of it gives the
        same R-hat and ESS as ``self["summary"]`` (both Vehtari et al. 2021).
        """
        try:
            import arviz as az
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise CosmodiffError("to_arviz needs arviz: pip install arviz") from e
        draws = np.asarray(self["draws"])
        posterior = {n: draws[:, :, i] for i, n in enumerate(self["names"])}
        stats = {
            "diverging": np.asarray(self["diverging"]).astype(bool),
            "lp": np.asarray(self["logp"]),
            "step_size": np.asarray(self["step_size"]),
            "tree_depth": np.asarray(self["tree_depth"]),
            "n_steps": np.asarray(self["n_leapfrog"]),
            "acceptance_rate": np.asarray(self["accept_prob"]),
        }
        return az.from_dict(posterior=posterior, sample_stats=stats)

    def to_getdist(self, labels: Optional[Mapping[str, str]] = None, **kwargs: Any):
        """A getdist ``MCSamples`` with one chain per sampler chain and LaTeX
        labels (:data:`LATEX_LABELS`, overridden by ``labels``); extra keyword
        arguments go to ``MCSamples`` (``ranges``, ``label``, ...).
        """
        try:
            from getdist import MCSamples
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise CosmodiffError("to_getdist needs getdist: pip install getdist") from e
        draws = np.asarray(self["draws"])
        names = list(self["names"])
        table = dict(LATEX_LABELS, **(labels or {}))
        return MCSamples(
            samples=[draws[c] for c in range(draws.shape[0])],
            names=names,
            labels=[table.get(n, n) for n in names],
            sampler="mcmc",
            **kwargs,
        )


def sample_cl(
    cosmo: Cosmology,
    tracers: Union[Tracer, Sequence[Tracer]],
    ell: ArrayLike,
    f_sky: float,
    data_cl: Optional[ArrayLike] = None,
    params: Any = (("Omega_c", {"prior": "uniform", "low": 0.1, "high": 0.6}), ("sigma8", {"prior": "uniform", "low": 0.4, "high": 1.3})),
    chains: int = 4,
    warmup: int = 500,
    draws: int = 1000,
    seed: int = 0,
    progress: bool = False,
    init: Optional[Sequence[float]] = None,
    target_accept: float = 0.8,
    max_depth: int = 10,
    transfer: str = "eisenstein_hu",
    nonlinear: str = "halofit",
) -> Chains:
    """NUTS posterior of cosmological parameters from the Gaussian C_ell likelihood.

    As ``cosmodiff sample``: Knox covariance at ``cosmo`` (the fiducial, whose
    other parameters stay fixed), exact gradients from dual numbers, priors
    mapped to unconstrained space, chains in parallel with seeds derived
    from ``seed`` (deterministic).

    ``data_cl``: measured signal C_ell ``[n_pairs, n_ell]`` (noise removed), or
    None for the noiseless theory at ``cosmo``. ``params``: sequence of
    (name, prior) pairs or a dict name -> prior; a prior is a dict such as
    ``{"prior": "uniform", "low": 0.1, "high": 0.5}``, ``{"prior": "normal",
    "mean": 0.96, "sd": 0.01}``, ``{"prior": "truncated_normal", "mean", "sd",
    "low", "high"}``, ``{"prior": "log_normal", "mu", "sigma"}`` (or a tuple
    ``("uniform", 0.1, 0.5)``).

    Returns a dict: ``draws`` ``[chains, draws, dim]``, ``names``,
    ``summary`` (dict: per-parameter mean, sd, q05, q50, q95, r_hat,
    ess_bulk, ess_tail; divergences, elapsed_s, warnings), per-draw
    ``diverging``, ``step_size``, ``tree_depth``, ``n_leapfrog``, ``logp``,
    ``accept_prob`` ``[chains, draws]``, and the ``likelihood``; a
    :class:`Chains`, so ``.to_arviz()`` and ``.to_getdist()`` export it.
    """
    names, priors = _params(params)
    like = ClLikelihood(
        cosmo, _tracers(tracers), _f64(ell, "ell").ravel(), float(f_sky), names,
        None if data_cl is None else _f64(data_cl, "data_cl"), transfer, nonlinear,
    )
    out = _core.run_nuts_cl(
        like, priors, _n(chains, "chains"), _n(warmup, "warmup"), _n(draws, "draws"), _n(seed, "seed"), bool(progress),
        None if init is None else [float(v) for v in init], float(target_accept), _n(max_depth, "max_depth"),
    )
    out["summary"] = json.loads(out.pop("summary_json"))
    out["likelihood"] = like
    return Chains(out)


def find_map_cl(
    cosmo: Cosmology,
    tracers: Union[Tracer, Sequence[Tracer]],
    ell: ArrayLike,
    f_sky: float,
    data_cl: Optional[ArrayLike] = None,
    params: Any = (("Omega_c", {"prior": "uniform", "low": 0.1, "high": 0.6}), ("sigma8", {"prior": "uniform", "low": 0.4, "high": 1.3})),
    init: Optional[Sequence[float]] = None,
    transfer: str = "eisenstein_hu",
    nonlinear: str = "halofit",
) -> Dict[str, Any]:
    """Maximum a posteriori point (L-BFGS) and Laplace covariance (exact Hessian).

    Same likelihood and priors as :func:`sample_cl`; the optimiser starts at
    ``init`` (default: the parameter values of ``cosmo``). Returns a dict with
    ``names``, ``x`` (MAP), ``sd``, ``cov``, ``logp``, ``converged``, ...
    """
    names, priors = _params(params)
    like = ClLikelihood(
        cosmo, _tracers(tracers), _f64(ell, "ell").ravel(), float(f_sky), names,
        None if data_cl is None else _f64(data_cl, "data_cl"), transfer, nonlinear,
    )
    start = list(like.fiducial) if init is None else [float(v) for v in init]
    return json.loads(_core.find_map_cl(like, priors, start))


def massmap_diffusion(
    e1: ArrayLike,
    e2: ArrayLike,
    noise_std: ArrayLike,
    mask: Optional[ArrayLike] = None,
    pixel_arcmin: Optional[float] = None,
    prior: Optional[str] = None,
    samples: int = 16,
    steps: int = 300,
    seed: int = 0,
    sampler: str = "reverse_sde",
    independent: bool = False,
    progress: bool = False,
) -> Dict[str, Any]:
    """Posterior samples of kappa given one shear map, with a learned score prior.

    As ``cosmodiff massmap --method diffusion`` for one source bin (same
    samplers and settings; the same ``seed`` gives the same maps): the
    posterior score is the prior's learned score (``prior``: a model
    directory written by ``cosmodiff prior train``; None: the shipped 64x64,
    2-arcmin model trained on log-normal maps) plus the likelihood score of
    ``gamma = P kappa + n`` with per-component ``noise_std`` (scalar or
    ``[npix, npix]``; inf = unobserved) and optional ``mask`` (1 observed, 0
    masked; masked pixels may hold NaN).

    ``sampler``: ``"reverse_sde"`` (Euler-Maruyama + one Langevin corrector
    per step, ``steps`` steps; with an even ``samples >= 4``, chains in
    antithetic pairs unless ``independent``) or ``"annealed_hmc"`` (Remy et
    al. 2022; ``steps`` noise levels). ``pixel_arcmin`` (optional) must match
    the prior's pixel size; the maps must have the prior's size.

    Returns a dict: ``kappa_mean``, ``kappa_std`` ``[npix, npix]``,
    ``samples`` ``[samples, npix, npix]``, ``pixel_arcmin``, ``antithetic``
    (whether samples 2j, 2j+1 are pairs), ``acceptance`` (annealed HMC).
    """
    a1, a2, sd, m = _shear_inputs(e1, e2, noise_std, mask)
    return _core.massmap_diffusion(
        a1, a2, sd, m, None if pixel_arcmin is None else float(pixel_arcmin),
        None if prior is None else str(prior), _n(samples, "samples"), _n(steps, "steps"), _n(seed, "seed"),
        str(sampler), bool(independent), bool(progress),
    )


def diffusion_prior_info(prior: Optional[str] = None) -> Dict[str, Any]:
    """Map size (``npix``), ``pixel_arcmin``, ``hybrid`` and U-Net ``channels``
    of a score-prior model directory (None: the shipped default)."""
    return _core.diffusion_prior_info(None if prior is None else str(prior))


def sbi_train(
    theta: ArrayLike,
    x: ArrayLike,
    method: str = "npe",
    prior: Any = None,
    flow: Optional[str] = None,
    embedding: Optional[str] = None,
    summary_dim: Optional[int] = None,
    transforms: int = 5,
    hidden: int = 50,
    bins: Optional[int] = None,
    lr: float = 5e-4,
    batch_size: int = 200,
    max_epochs: int = 2000,
    patience: int = 20,
    weight_decay: float = 0.0,
    cosine: bool = False,
    seed: int = 0,
    progress: bool = False,
) -> SbiModel:
    """Train a neural posterior (``method="npe"``) or likelihood (``"nle"``) estimator.

    As ``cosmodiff sbi train`` (same defaults as sbi/sbibm): ``theta``
    ``[N, dim_theta]`` simulation parameters and ``x`` ``[N, dim_x]`` (2-D maps
    ``[N, side, side]`` for ``embedding="cnn"``) simulated data. ``prior``:
    None (uniform on the bounding box of ``theta``), a sequence of
    ``(low, high)`` uniform bounds per parameter, or the path of a TOML file
    with one ``[[param]]`` block per parameter (as ``cosmodiff sample``).
    ``flow``: ``"nsf"`` (default for NPE), ``"maf"`` (default for NLE),
    ``"realnvp"``, ``"nsf_ar"``; ``embedding``: None, ``"mlp"`` or ``"cnn"``
    (NPE only; ``summary_dim`` learned summaries); ``bins``: spline bins of
    ``nsf``/``nsf_ar`` (default 10). Training stops when the
    validation loss has not improved for ``patience`` epochs.

    Returns an :class:`SbiModel`: ``model.sample(x_obs, n, seed)`` draws
    ``[n, dim_theta]`` from the posterior, ``model.save(dir)`` writes a
    directory that ``cosmodiff sbi sample --model dir`` and :func:`sbi_load`
    read; ``model.report`` has the loss curves.
    """
    prior_file = None
    prior_box = None
    if isinstance(prior, (str, bytes)) or hasattr(prior, "__fspath__"):
        prior_file = str(prior)
    elif prior is not None:
        try:
            prior_box = [(float(lo), float(hi)) for lo, hi in prior]
        except (TypeError, ValueError):
            raise CosmodiffError(
                f"prior = {prior!r}: expected None, a TOML file path, or one (low, high) pair per parameter"
            ) from None
    return _core.sbi_train(
        _f64(theta, "theta"), _f64(x, "x"), str(method), prior_file, prior_box,
        flow, embedding, None if summary_dim is None else _n(summary_dim, "summary_dim"),
        _n(transforms, "transforms"), _n(hidden, "hidden"), None if bins is None else _n(bins, "bins"), float(lr), _n(batch_size, "batch_size"),
        _n(max_epochs, "max_epochs"), _n(patience, "patience"), float(weight_decay), bool(cosine), _n(seed, "seed"),
        bool(progress),
    )


def sbi_load(path: str) -> SbiModel:
    """Load an SBI model directory (``cosmodiff sbi train --out`` or ``SbiModel.save``)."""
    if path is None or str(path) == "":
        raise CosmodiffError(f"sbi_load: expected a model directory, got {path!r}")
    return _core.sbi_load(str(path))


def c2st(reference: ArrayLike, candidate: ArrayLike, seed: int = 0) -> float:
    """Classifier two-sample test accuracy of ``candidate`` against
    ``reference`` samples (both ``[n, dim]``): 0.5 when the two are
    indistinguishable, 1 when fully separated.

    Exactly as sbibm runs it (Lopez-Paz & Oquab 2017; Lueckmann et al. 2021):
    both sets z-scored by the reference, an MLP classifier (sklearn's
    ``MLPClassifier`` settings, 10 x dim hidden units) scored by 5-fold
    cross-validation. Deterministic for a given ``seed``.
    """
    return _core.c2st(_f64(reference, "reference"), _f64(candidate, "candidate"), _n(seed, "seed"))


def sbi_lens_kappa(setup: str, theta: Sequence[float], z: ArrayLike) -> np.ndarray:
    """Noiseless convergence maps ``[npix, npix, n_bins]`` of the sbi_lens
    log-normal simulator (set-up ``"lsst-y10"`` or ``"sbi-lens-128"``) at
    ``theta`` (``Omega_c, Omega_b, sigma8, h, n_s, w0`` or ``Omega_c, sigma8``)
    for the latent white noise ``z`` ``[n_bins, npix, npix]``. Bit-exact with
    sbi_lens given the same C_ell (ours, from cosmodiff's Limber integral,
    are 0.35-0.55% below jax-cosmo's)."""
    return _core.sbi_lens_kappa(str(setup), [float(t) for t in theta], _f64(z, "z"))


def sbi_lens_log_likelihood(
    setup: str, data: ArrayLike, theta: Sequence[float], z: ArrayLike
) -> Tuple[float, np.ndarray, np.ndarray]:
    """``log L(data | theta, z)`` of observed maps ``[npix, npix, n_bins]``
    (Gaussian shape noise per pixel, normalised) and its exact gradients in
    ``theta`` ``[n_params]`` and ``z`` ``[n_bins, npix, npix]`` (dual numbers
    through the Limber integral, hand-written adjoint of the simulator)."""
    return _core.sbi_lens_log_likelihood(
        str(setup), _f64(data, "data"), [float(t) for t in theta], _f64(z, "z")
    )


def lensing_cosmology_simulate(setup: str, out: str, n: int = 1000, seed: int = 0) -> None:
    """Simulate ``n`` map sets with theta from the set-up's prior into ``out``
    (.npz: ``theta``, ``theta_names``, ``kappa_obs``, ``kappa``), as
    ``cosmodiff lensing-cosmology simulate``."""
    _core.lensing_cosmology_simulate(str(setup), str(out), _n(n, "n"), _n(seed, "seed"))


def lensing_cosmology_infer(
    setup: str,
    method: str,
    data: str,
    out: str,
    sims: Optional[str] = None,
    draws: Optional[int] = None,
    warmup: Optional[int] = None,
    chains: int = 2,
    seed: int = 0,
    estimator: str = "npe",
    n_sims: Optional[int] = None,
    tarp: int = 200,
    epochs: Optional[int] = None,
    pool: int = 1,
    overwrite: bool = False,
) -> Dict[str, Any]:
    """Posterior of the cosmological parameters of the map file ``data``
    (.npy) by ``method`` ``"cl"`` (binned C_ell, analytic covariance or from
    ``sims``), ``"fullfield"`` (NUTS over theta and the latent field) or
    ``"vmim"``, ``"mse"``, ``"mae"`` (a ResNet compressor trained on ``sims``
    or on ``n_sims`` prior simulations, for at most ``epochs`` epochs on maps
    average-pooled by ``pool``, then ``estimator`` ``"npe"`` or ``"nle"`` on
    its summaries, with TARP on ``tarp`` fresh simulations), as
    ``cosmodiff lensing-cosmology infer``: writes ``out/samples.npy``,
    ``summary.json``, ``corner.png`` and returns ``summary``, ``samples``
    ``[n, n_params]`` and ``names``. A full-field chain rerun into the same
    ``out`` resumes from its checkpoint; ``overwrite``: replace an ``out`` folder written by another run (kept
    until this one succeeds); without it such a folder is refused."""
    return _core.lensing_cosmology_infer(
        str(setup),
        str(method),
        str(data),
        str(out),
        None if sims is None else str(sims),
        str(estimator),
        None if draws is None else _n(draws, "draws"),
        None if warmup is None else _n(warmup, "warmup"),
        _n(chains, "chains"),
        _n(seed, "seed"),
        None if n_sims is None else _n(n_sims, "n_sims"),
        _n(tarp, "tarp"),
        None if epochs is None else _n(epochs, "epochs"),
        _n(pool, "pool"),
        overwrite=bool(overwrite),
    )


def fieldflow_train(fields: str, out: str, config: Optional[str] = None, overwrite: bool = False) -> Dict[str, Any]:
    """Train a TRENF field flow ``p(field | theta)`` (Dai & Seljak 2022) on
    the ``.npz`` file ``fields`` (``theta``, ``theta_names``, ``field`` or
    ``kappa_obs``: maps ``[n, N, N(, C)]`` or boxes ``[n, N, N, N]``) with
    the TOML ``config`` (``[flow]``, ``[train]``), as ``cosmodiff fieldflow
    train``: writes the model directory ``out`` and returns its
    ``train.json`` (losses in nats per pixel, epochs, wall time).
    ``overwrite``: replace an ``out`` folder written by another run (kept
    until this one succeeds); without it such a folder is refused."""
    return _core.fieldflow_train(
        str(fields), str(out), None if config is None else str(config), overwrite=bool(overwrite)
    )


def fieldflow_logprob(model: str, field: ArrayLike, theta: Sequence[float]) -> Dict[str, float]:
    """Exact ``log p(field | theta)`` (nats) of one field (``[N, N]``,
    ``[N, N, C]`` or ``[N, N, N]``) under the flow in ``model``, with its
    parts ``logdet`` and ``base_logprob``; theta must lie in the training
    range."""
    return _core.fieldflow_logprob(str(model), _f64(field, "field"), [float(t) for t in theta])


def fieldflow_infer(
    model: str,
    field: str,
    out: str,
    prior: Optional[str] = None,
    samples: int = 2000,
    seed: int = 0,
    temperature: float = 1.0,
    overwrite: bool = False,
) -> Dict[str, Any]:
    """Posterior of theta for the field file ``field`` (.npy) from the flow
    likelihood (slice sampling within the training range; ``prior``: a TOML
    with ``low``/``high`` or ``mean``/``sd`` per parameter; ``temperature``
    T samples ``p(field | theta)^(1/T)``), as ``cosmodiff fieldflow
    infer``: writes ``out/samples.npy``, ``summary.json``, ``corner.png``
    and returns ``summary`` and ``samples``. ``overwrite``: replace an ``out`` folder written by another run (kept
    until this one succeeds); without it such a folder is refused."""
    return _core.fieldflow_infer(
        str(model),
        str(field),
        str(out),
        None if prior is None else str(prior),
        _n(samples, "samples"),
        _n(seed, "seed"),
        temperature=float(temperature),
        overwrite=bool(overwrite),
    )


def fieldflow_fisher(
    model: str,
    theta: Sequence[float],
    out: str,
    fields: Optional[str] = None,
    samples: int = 64,
    step: float = 0.05,
    seed: int = 0,
) -> Dict[str, Any]:
    """Fisher matrix ``F_ij = -E[d^2 ln p(x | theta) / dtheta_i dtheta_j]``
    of the flow likelihood at the fiducial ``theta``, averaged over the
    ``.npz`` ``fields`` simulated there or over ``samples`` of the flow
    itself (second derivatives by central differences of the autodiff
    gradient, steps ``step`` x the training sd), as ``cosmodiff fieldflow
    fisher``: writes the JSON ``out`` and returns ``fisher`` (numpy
    ``[p, p]``) and ``summary`` (names, covariance, marginal sd, FoM)."""
    return _core.fieldflow_fisher(
        str(model),
        [float(t) for t in theta],
        str(out),
        fields=None if fields is None else str(fields),
        samples=_n(samples, "samples"),
        step=float(step),
        seed=_n(seed, "seed"),
    )


def fieldflow_calibrate(
    model: str,
    fields: str,
    out: str,
    pk_train: Optional[str] = None,
    grid: int = 24,
    max_fields: Optional[int] = None,
    temperature: float = 1.0,
    overwrite: bool = False,
) -> Dict[str, Any]:
    """Grid posteriors of theta for every held-out field of the ``.npz``
    ``fields`` (uniform prior over the training range): 68% coverage of the
    truth, figures of merit, latent-power flatness, and with ``pk_train``
    (the training ``.npz``) the same for a Gaussian likelihood of the binned
    log power spectrum, as ``cosmodiff fieldflow calibrate``: writes
    ``out/calibration.json``, ``per_field.csv``, ``truth_vs_posterior*.png``
    and returns the calibration summary (``suggested_temperature``: the
    likelihood temperature that would calibrate the flow's posteriors).
    ``overwrite``: replace an ``out`` folder written by another run (kept
    until this one succeeds); without it such a folder is refused."""
    return _core.fieldflow_calibrate(
        str(model),
        str(fields),
        str(out),
        pk_train=None if pk_train is None else str(pk_train),
        grid=_n(grid, "grid"),
        max_fields=None if max_fields is None else _n(max_fields, "max_fields"),
        temperature=float(temperature),
        overwrite=bool(overwrite),
    )


def set_max_memory(size: Optional[str] = None) -> None:
    """Memory later calls may use, e.g. ``"16G"`` (units K, M, G, T;
    ``None``: what the machine has available), as ``--max-memory`` on the
    command line. Workflows that estimate a larger peak (particle-mesh
    runs, campaigns, large lensing maps, large flows) raise
    :class:`CosmodiffError` with the estimate before they allocate."""
    _core.set_max_memory(None if size is None else str(size))


def set_device(name: str = "cpu") -> str:
    """Device the networks of later calls train and run on, as ``--device``
    on the command line: ``"cpu"`` (default; burn's ``flex`` backend with
    cosmodiff's fused kernels), ``"cuda"``, ``"cuda:N"`` or ``"wgpu"`` where
    this build has them (see :func:`devices`). The device is checked with
    one small operation first; an unknown, missing or broken one raises
    :class:`CosmodiffError` naming the devices this build supports.
    ``COSMODIFF_DEVICE`` in the environment selects one at import.
    Returns the device's name."""
    return _core.set_device(str(name))


def device() -> str:
    """The name of the device networks run on (see :func:`set_device`)."""
    return _core.device()


def devices() -> List[str]:
    """The devices compiled into this build, e.g. ``["cpu", "flex"]``
    (``flex``: burn's own CPU operations without cosmodiff's kernels, for
    benchmarks)."""
    return list(_core.devices())


def simulate_density(config: str, out: str, workers: int = 1, overwrite: bool = False) -> None:
    """A campaign of particle-mesh runs over the ``[design]`` of the TOML
    ``config`` (as ``simulate halos``), keeping each run's final CIC
    overdensity, as ``cosmodiff simulate density``: writes
    ``out/density_00000.npy``, ... and ``out/fields.npz`` (``theta``,
    ``theta_names``, ``field`` ``[n, N, N, N]``, ``box_size``) for
    :func:`fieldflow_train`. Rerunning resumes; ``overwrite`` replaces an
    ``out`` folder of another campaign."""
    _core.simulate_density(str(config), str(out), workers=_n(workers, "workers"), overwrite=bool(overwrite))


def tarp(samples: ArrayLike, theta: ArrayLike, seed: int = 0) -> Dict[str, Any]:
    """TARP expected coverage (Lemos et al. 2023, arXiv:2302.03026) of
    posterior ``samples`` ``[sims, draws, dim]`` for the true parameters
    ``theta`` ``[sims, dim]``.

    Returns ``alpha`` (credibility levels), ``ecp`` (expected coverage at
    each), ``atc`` (signed area to the diagonal on [1/2, 1]: < 0
    over-confident, > 0 under-confident), ``max_deviation`` (KS statistic)
    and its ``ks_pvalue``, and each simulation's ``credibility``.
    """
    return _core.tarp(_f64(samples, "samples"), _f64(theta, "theta"), _n(seed, "seed"))


def sbc(samples: ArrayLike, theta: ArrayLike) -> Dict[str, Any]:
    """Simulation-based calibration (Talts et al. 2018, arXiv:1804.06788):
    the rank of each true parameter among its posterior ``samples``
    (``[sims, draws, dim]`` against ``theta`` ``[sims, dim]``), with KS and
    chi-square uniformity tests per dimension.

    Returns ``ranks`` ``[sims, dim]``, ``ks_statistic``, ``ks_pvalues``,
    ``chi2_statistic``, ``chi2_pvalues`` (per dimension) and ``passes_1pct``
    (every p-value above 1%).
    """
    return _core.sbc(_f64(samples, "samples"), _f64(theta, "theta"))


# ---------------------------------------------------------------------------
# Halo and galaxy catalogues
# ---------------------------------------------------------------------------


def _points(x: Any, name: str) -> np.ndarray:
    a = _f64(x, name)
    if a.ndim != 2 or a.shape[1] != 3:
        raise CosmodiffError(f"{name}: expected shape [n, 3] (Mpc/h), got {list(a.shape)}")
    return a


def _opt(x: Any, name: str) -> Optional[np.ndarray]:
    return None if x is None else _f64(x, name)


def fof(
    positions: ArrayLike,
    box_size: float,
    omega_m: float,
    velocities: Optional[ArrayLike] = None,
    linking_length: float = 0.2,
    min_particles: int = 20,
) -> Dict[str, Any]:
    """Friends-of-friends halos (Davis et al. 1985) of particles at
    ``positions`` ``[N, 3]`` (Mpc/h, in ``[0, box_size)``) in a periodic box.

    Two particles are friends within ``b L / N^(1/3)`` (``linking_length`` b
    in units of the mean inter-particle separation); halos are groups of at
    least ``min_particles``. The particle mass is
    ``Omega_m rho_crit L^3 / N`` (Msun/h).

    Returns ``position`` ``[n, 3]`` (centre of mass, periodic, Mpc/h),
    ``velocity`` ``[n, 3]`` (km/s, when ``velocities`` ``[N, 3]`` are given),
    ``mass`` ``[n]`` (Msun/h), ``n_particles`` ``[n]``, ``particle_halo``
    ``[N]`` (halo index of each particle, -1 for none) and
    ``particle_mass``; halos sorted by mass, descending. The same
    computation as ``cosmodiff halos fof``.
    """
    return _core.fof(
        _points(positions, "positions"),
        float(box_size),
        float(omega_m),
        None if velocities is None else _points(velocities, "velocities"),
        float(linking_length),
        _n(min_particles, "min_particles"),
    )


def hod_populate(
    halo_position: ArrayLike,
    halo_mass: ArrayLike,
    box_size: float,
    log_mmin: float = 13.0,
    sigma_logm: float = 0.5,
    log_m0: float = 13.0,
    log_m1: float = 14.0,
    alpha: float = 1.0,
    relaxed_temperature: Optional[float] = None,
    seed: int = 0,
    modulate_with_cenocc: bool = False,
) -> Dict[str, np.ndarray]:
    """Galaxies in halos from the Zheng et al. (2007) HOD:
    ``<N_cen> = (1 + erf((log M - log_mmin) / sigma_logm)) / 2``,
    ``<N_sat> = ((M - M_0) / M_1)^alpha`` (masses Msun/h; times ``<N_cen>``
    with ``modulate_with_cenocc``, as halotools).

    Exact sampling (Bernoulli centrals at the halo centres, Poisson
    satellites on NFW profiles with the Duffy et al. 2008 concentration), or
    with ``relaxed_temperature`` the relaxed sampler of Horowitz et al.
    (2022): every candidate galaxy with a weight in (0, 1), differentiable in
    the five parameters.

    Returns ``position`` ``[n, 3]`` (Mpc/h), ``is_central`` ``[n]`` (bool),
    ``weight`` ``[n]`` and ``halo`` ``[n]`` (host index). The same
    computation as ``cosmodiff hod populate``.
    """
    return _core.hod_populate(
        _points(halo_position, "halo_position"),
        _f64(halo_mass, "halo_mass"),
        float(box_size),
        float(log_mmin),
        float(sigma_logm),
        float(log_m0),
        float(log_m1),
        float(alpha),
        None if relaxed_temperature is None else float(relaxed_temperature),
        _n(seed, "seed"),
        bool(modulate_with_cenocc),
    )


def hod_relaxed_vjp(
    halo_position: ArrayLike,
    halo_mass: ArrayLike,
    box_size: float,
    cotangent: ArrayLike,
    log_mmin: float = 13.0,
    sigma_logm: float = 0.5,
    log_m0: float = 13.0,
    log_m1: float = 14.0,
    alpha: float = 1.0,
    relaxed_temperature: float = 0.1,
    seed: int = 0,
    modulate_with_cenocc: bool = False,
) -> np.ndarray:
    """Vector-Jacobian product of the relaxed galaxy weights of
    :func:`hod_populate` (same halos, parameters, ``relaxed_temperature``
    and ``seed``, hence the same candidates) in the five HOD parameters:
    ``sum_i cotangent_i dw_i/dtheta`` for ``theta = (log_mmin, sigma_logm,
    log_m0, log_m1, alpha)``. Chained with :func:`xi_vjp` or
    :func:`pk_points_vjp` (as ``cotangent``) it gives d statistic / d theta.
    """
    return _core.hod_relaxed_vjp(
        _points(halo_position, "halo_position"),
        _f64(halo_mass, "halo_mass"),
        float(box_size),
        _f64(cotangent, "cotangent"),
        float(log_mmin),
        float(sigma_logm),
        float(log_m0),
        float(log_m1),
        float(alpha),
        float(relaxed_temperature),
        _n(seed, "seed"),
        bool(modulate_with_cenocc),
    )


def xi(
    positions: ArrayLike,
    box_size: float,
    r_edges: Sequence[float],
    weights: Optional[ArrayLike] = None,
) -> Dict[str, np.ndarray]:
    """Two-point correlation function of points ``[n, 3]`` (Mpc/h) in a
    periodic box by exact pair counts with analytic randoms (natural
    estimator): ``xi = DD / RR - 1``, ``DD`` counting each pair once
    (weighted by ``w_i w_j`` with ``weights``), ``RR`` the expected pairs
    of a uniform set with the same weights. ``r_edges`` (Mpc/h) must
    increase and end at most at ``box_size / 2`` (the minimum image).

    Returns ``r`` (mean separation of random pairs in each shell), ``xi``,
    ``pair_counts``, ``rr`` and ``r_edges``.
    """
    return _core.xi(
        _points(positions, "positions"),
        float(box_size),
        [float(e) for e in r_edges],
        _opt(weights, "weights"),
    )


def xi_vjp(
    positions: ArrayLike,
    box_size: float,
    r_edges: Sequence[float],
    cotangent: Sequence[float],
    weights: Optional[ArrayLike] = None,
) -> np.ndarray:
    """Vector-Jacobian product of :func:`xi` in the weights:
    ``dL/dw_i = sum_b cotangent_b dxi_b/dw_i`` (``[n]``), e.g. to
    back-propagate through the relaxed HOD weights."""
    return _core.xi_vjp(
        _points(positions, "positions"),
        float(box_size),
        [float(e) for e in r_edges],
        [float(c) for c in cotangent],
        _opt(weights, "weights"),
    )


def pk_points(
    positions: ArrayLike,
    box_size: float,
    n_mesh: int = 128,
    weights: Optional[ArrayLike] = None,
    interlacing: bool = True,
) -> Dict[str, Any]:
    """Power spectrum of points ``[n, 3]`` (Mpc/h) in a periodic box: CIC
    on an ``n_mesh^3`` mesh with interlacing, divided by the CIC window,
    shot noise ``V sum w^2 / (sum w)^2`` subtracted; bins of width
    ``2 pi / L`` (k = mean |k| of the modes).

    Returns ``k`` (h/Mpc), ``pk`` ((Mpc/h)^3), ``n_modes``, ``shot_noise``.
    """
    return _core.pk_points(
        _points(positions, "positions"),
        float(box_size),
        _n(n_mesh, "n_mesh"),
        _opt(weights, "weights"),
        bool(interlacing),
    )


def pk_points_vjp(
    positions: ArrayLike,
    box_size: float,
    cotangent: Sequence[float],
    n_mesh: int = 128,
    weights: Optional[ArrayLike] = None,
    interlacing: bool = True,
) -> np.ndarray:
    """Vector-Jacobian product of :func:`pk_points` in the weights:
    ``dL/dw_i = sum_b cotangent_b dP_b/dw_i`` (``[n]``)."""
    return _core.pk_points_vjp(
        _points(positions, "positions"),
        float(box_size),
        [float(c) for c in cotangent],
        _n(n_mesh, "n_mesh"),
        _opt(weights, "weights"),
        bool(interlacing),
    )


def knn_cdf(
    positions: ArrayLike,
    box_size: float,
    k: Sequence[int] = (1, 2, 3, 4, 5, 6, 7, 8, 9),
    n_query: int = 100_000,
    r: Optional[Sequence[float]] = None,
    seed: int = 0,
) -> Dict[str, np.ndarray]:
    """k-nearest-neighbour CDFs (Banerjee & Abel 2021) of points ``[n, 3]``
    (Mpc/h): for ``n_query`` uniform random queries, the fraction whose
    ``k``-th nearest point is within ``r`` (periodic distances).

    Returns ``k``, ``r`` (Mpc/h; by default 64 log-spaced radii over the
    measured range) and ``cdf`` ``[len(k), len(r)]``.
    """
    return _core.knn_cdf(
        _points(positions, "positions"),
        float(box_size),
        [_n(x, "k") for x in k],
        _n(n_query, "n_query"),
        None if r is None else [float(x) for x in r],
        _n(seed, "seed"),
    )


# The device named in the environment, as the command line reads it.
if os.environ.get("COSMODIFF_DEVICE"):
    set_device(os.environ["COSMODIFF_DEVICE"])
