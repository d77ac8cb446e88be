"""Type stubs of the compiled module ``cosmodiff._core`` (PyO3).

Use the ``cosmodiff`` package: its functions convert inputs and document
units. Arrays passed here must be C-contiguous float64 numpy arrays.
"""

from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
ArrayLike = npt.ArrayLike

__version__: str

class CosmodiffError(ValueError):
    """Invalid input or a failed computation (the library's one-line message)."""

class Cosmology:
    """w0-wa CDM cosmology without radiation or massive neutrinos (defaults: Planck 2015)."""

    def __init__(
        self,
        Omega_c: float = 0.2589,
        Omega_b: float = 0.0486,
        h: float = 0.6774,
        n_s: float = 0.9667,
        sigma8: float = 0.8159,
        Omega_k: float = 0.0,
        w0: float = -1.0,
        wa: float = 0.0,
        T_CMB: float = 2.726,
    ) -> None: ...
    @staticmethod
    def planck15() -> Cosmology: ...
    @staticmethod
    def planck18() -> Cosmology: ...
    @property
    def Omega_c(self) -> float: ...
    @property
    def Omega_b(self) -> float: ...
    @property
    def h(self) -> float: ...
    @property
    def n_s(self) -> float: ...
    @property
    def sigma8(self) -> float: ...
    @property
    def Omega_k(self) -> float: ...
    @property
    def w0(self) -> float: ...
    @property
    def wa(self) -> float: ...
    @property
    def T_CMB(self) -> float: ...
    @property
    def Omega_m(self) -> float: ...
    @property
    def Omega_de(self) -> float: ...
    def to_dict(self) -> Dict[str, float]: ...
    def replace(self, **changes: float) -> Cosmology: ...
    def __eq__(self, other: object) -> bool: ...

class Nz:
    """Normalised redshift distribution n(z) with an optional photo-z shift."""

    @staticmethod
    def smail(a: float, b: float, z0: float, zmax: float = 5.0, shift: float = 0.0) -> Nz: ...
    @staticmethod
    def gaussian(z0: float, sigma: float, zmax: float = 5.0, shift: float = 0.0) -> Nz: ...
    @staticmethod
    def delta(z0: float, shift: float = 0.0) -> Nz: ...
    @staticmethod
    def tabulated(z: Sequence[float], nz: Sequence[float], shift: float = 0.0) -> Nz: ...
    @staticmethod
    def histogram(edges: Sequence[float], counts: Sequence[float], shift: float = 0.0) -> Nz: ...
    def __call__(self, z: Any) -> Any: ...
    @property
    def zmax(self) -> float: ...
    @property
    def shift(self) -> float: ...

class Tracer:
    """One tomographic bin of one probe."""

    @property
    def nz(self) -> Nz: ...
    @property
    def gals_per_arcmin2(self) -> float: ...
    @property
    def kind(self) -> str: ...
    @property
    def noise(self) -> float: ...

class WeakLensing(Tracer):
    def __init__(
        self, nz: Nz, sigma_e: float = 0.26, gals_per_arcmin2: float = 10.0, ia_amplitude: float = 0.0, m_bias: float = 0.0
    ) -> None: ...
    @property
    def sigma_e(self) -> float: ...
    @property
    def ia_amplitude(self) -> float: ...
    @property
    def m_bias(self) -> float: ...

class NumberCounts(Tracer):
    def __init__(self, nz: Nz, bias: float = 1.0, gals_per_arcmin2: float = 10.0) -> None: ...
    @property
    def bias(self) -> float: ...

class ClLikelihood:
    """Gaussian C_ell likelihood with the Knox covariance fixed at the fiducial cosmology."""

    def __init__(
        self,
        cosmo: Cosmology,
        tracers: Union[Tracer, Sequence[Tracer]],
        ell: ArrayLike,
        f_sky: float,
        params: Union[str, Sequence[str], None] = None,  # None: ("Omega_c", "sigma8")
        data: Optional[ArrayLike] = None,
        transfer: str = "eisenstein_hu",
        nonlinear: str = "halofit",
    ) -> None: ...
    @property
    def names(self) -> List[str]: ...
    @property
    def fiducial(self) -> F64: ...
    @property
    def data(self) -> F64: ...
    @property
    def covariance(self) -> F64: ...
    @property
    def ell(self) -> F64: ...
    def log_likelihood(self, values: ArrayLike) -> float: ...
    def value_and_grad(self, values: ArrayLike) -> Tuple[float, F64]: ...
    def mean(self, values: ArrayLike) -> F64: ...
    def jacobian(self, values: ArrayLike) -> F64: ...
    def fisher(self, values: Optional[ArrayLike] = None) -> F64: ...
    def hessian(self, values: ArrayLike) -> F64: ...

def background(cosmo: Cosmology, a: F64, quantity: str) -> F64: ...
def power(cosmo: Cosmology, k: F64, z: F64, transfer: str = ..., nonlinear: str = ...) -> F64: ...
def angular_cl(cosmo: Cosmology, tracers: Sequence[Tracer], ell: F64, transfer: str = ..., nonlinear: str = ...) -> F64: ...
def noise_cl(tracers: Sequence[Tracer], ell: F64) -> F64: ...
def tracer_pairs(n: int) -> npt.NDArray[np.int64]: ...
def gaussian_covariance(cl_total: F64, n_tracers: int, ell: F64, f_sky: float) -> F64: ...
def cl_gradient(
    cosmo: Cosmology, tracers: Sequence[Tracer], ell: F64, params: Union[str, Sequence[str], None] = ..., transfer: str = ..., nonlinear: str = ...
) -> F64: ...
def fisher(
    cosmo: Cosmology,
    tracers: Sequence[Tracer],
    ell: F64,
    f_sky: float,
    params: Union[str, Sequence[str], None] = ...,
    method: str = ...,
    transfer: str = ...,
    nonlinear: str = ...,
) -> F64: ...
def simulate_lensing(
    cosmo: Cosmology,
    tracers: Sequence[Tracer],
    npix: int = 128,
    pixel_arcmin: float = 2.0,
    kind: str = "lognormal",
    seed: int = 1,
    lognormal_shifts: Optional[Sequence[Optional[float]]] = None,
    transfer: str = ...,
    nonlinear: str = ...,
) -> Dict[str, Any]: ...
def kaiser_squires(e1: F64, e2: F64, pixel_arcmin: float = 1.0, smoothing_arcmin: float = 0.0) -> Tuple[F64, F64]: ...
def wiener(
    e1: F64,
    e2: F64,
    noise_std: F64,
    pixel_arcmin: float,
    ell: F64,
    cl: F64,
    mask: Optional[F64] = None,
    samples: int = 0,
    seed: int = 0,
    tol: float = 1e-6,
    max_iter: int = 20000,
    b_mode: bool = True,
) -> Dict[str, Any]: ...
def rmse(a: F64, b: F64, mask: Optional[F64] = None) -> float: ...
def pearson(a: F64, b: F64, mask: Optional[F64] = None) -> float: ...
def measure_cl(
    a: F64,
    b: F64,
    pixel_arcmin: float,
    n_bins: int = 8,
    lmin: Optional[float] = None,
    lmax: Optional[float] = None,
    spacing: str = "log",
    edges: Optional[Sequence[float]] = None,
    mask: Optional[F64] = None,
) -> Dict[str, Any]: ...
def map_ell_range(npix: int, pixel_arcmin: float) -> Tuple[float, float]: ...
def run_nuts_cl(
    likelihood: ClLikelihood,
    priors: Sequence[str],
    chains: int = 4,
    warmup: int = 500,
    draws: int = 1000,
    seed: int = 0,
    progress: bool = False,
    init: Optional[Sequence[float]] = None,
    target_accept: float = 0.8,
    max_depth: int = 10,
) -> Dict[str, Any]: ...
def find_map_cl(likelihood: ClLikelihood, priors: Sequence[str], init: Optional[Sequence[float]] = None) -> str: ...
def massmap_diffusion(
    e1: F64,
    e2: F64,
    noise_std: F64,
    mask: Optional[F64] = None,
    pixel_arcmin: Optional[float] = None,
    prior: Optional[str] = None,
    samples: int = 16,
    steps: int = 300,
    seed: int = 0,
    sampler: str = "reverse_sde",
    independent: bool = False,
    progress: bool = False,
) -> Dict[str, Any]: ...
def diffusion_prior_info(prior: Optional[str] = None) -> Dict[str, Any]: ...

class SbiModel:
    """A trained neural posterior (NPE) or likelihood (NLE) estimator with its prior."""
    @property
    def method(self) -> str: ...
    @property
    def dim_theta(self) -> int: ...
    @property
    def dim_x(self) -> int: ...
    @property
    def param_names(self) -> List[str]: ...
    @property
    def report(self) -> Dict[str, Any]: ...
    def sample(self, x_obs: Any, num_samples: int, seed: int = 0) -> F64: ...
    def summaries(self, x: Any) -> F64: ...
    def prior_log_prob(self, theta: Any) -> List[float]: ...
    def save(self, dir: str) -> None: ...

def sbi_train(
    theta: F64,
    x: F64,
    method: str,
    prior_file: Optional[str] = None,
    prior_box: Optional[List[Tuple[float, float]]] = None,
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
) -> SbiModel: ...
def sbi_load(dir: str) -> SbiModel: ...

def cli_main(argv: List[str]) -> int: ...
def c2st(reference: npt.NDArray[np.float64], candidate: npt.NDArray[np.float64], seed: int = 0) -> float: ...
def tarp(samples: npt.NDArray[np.float64], theta: npt.NDArray[np.float64], seed: int = 0) -> Dict[str, Any]: ...
def sbc(samples: npt.NDArray[np.float64], theta: npt.NDArray[np.float64]) -> Dict[str, Any]: ...
