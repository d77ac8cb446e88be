//! Cosmology, background, growth, power spectra, tracers, C_ell,
//! covariance, likelihood and Fisher matrices.

use crate::{bad, err, flat2, slice, vec1, vec2};
use cosmodiff_cosmo::covariance::ClLikelihood;
use cosmodiff_cosmo::nz::{Nz, RedshiftDistribution};
use cosmodiff_cosmo::tracers::TracerKind;
use cosmodiff_cosmo::{
    angular_cl, angular_cl_noise, fisher_hessian, fisher_matrix, gaussian_covariance, tracer_pairs,
    Background, ClOptions, Cosmology, Growth, NonLinear, Param, PowerSpectrum, TransferFunction,
};
use num_dual::Dual64;
use numpy::ndarray::{Array2, Array3, ArrayD, IxDyn};
use numpy::{
    IntoPyArray, PyArray2, PyArray3, PyArrayDyn, PyReadonlyArrayDyn, PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rayon::prelude::*;

// ---------------------------------------------------------------- Cosmology

/// A flat or curved w0-wa CDM cosmology (no radiation, no massive neutrinos).
///
/// Cosmology(Omega_c=0.2589, Omega_b=0.0486, h=0.6774, n_s=0.9667,
///           sigma8=0.8159, Omega_k=0.0, w0=-1.0, wa=0.0, T_CMB=2.726)
///
/// Defaults are Planck 2015 (the jax-cosmo default). Densities are today's
/// fractions of the critical density, h = H0 / (100 km/s/Mpc); dark energy
/// is CPL, w(a) = w0 + wa (1 - a); T_CMB (K) enters only Eisenstein-Hu.
/// Invalid parameters raise CosmodiffError (a ValueError) naming the
/// parameter and the allowed range.
#[pyclass(name = "Cosmology", module = "cosmodiff._core", frozen, eq)]
#[derive(PartialEq)]
pub struct PyCosmology {
    pub inner: Cosmology,
}

#[allow(non_snake_case, clippy::too_many_arguments)]
#[pymethods]
impl PyCosmology {
    #[new]
    #[pyo3(signature = (Omega_c=0.2589, Omega_b=0.0486, h=0.6774, n_s=0.9667, sigma8=0.8159, Omega_k=0.0, w0=-1.0, wa=0.0, T_CMB=2.726))]
    fn new(
        Omega_c: f64,
        Omega_b: f64,
        h: f64,
        n_s: f64,
        sigma8: f64,
        Omega_k: f64,
        w0: f64,
        wa: f64,
        T_CMB: f64,
    ) -> PyResult<Self> {
        let c = Cosmology {
            omega_c: Omega_c,
            omega_b: Omega_b,
            h,
            n_s,
            sigma8,
            omega_k: Omega_k,
            w0,
            wa,
            t_cmb: T_CMB,
        };
        c.validate().map_err(err)?;
        Ok(Self { inner: c })
    }

    /// Planck 2015 (TT,TE,EE+lowP+lensing+ext; the default).
    #[staticmethod]
    fn planck15() -> Self {
        Self {
            inner: Cosmology::planck15(),
        }
    }

    /// Planck 2018 (TT,TE,EE+lowE+lensing+BAO), massless neutrinos.
    #[staticmethod]
    fn planck18() -> Self {
        Self {
            inner: Cosmology::planck18(),
        }
    }

    #[getter]
    fn Omega_c(&self) -> f64 {
        self.inner.omega_c
    }
    #[getter]
    fn Omega_b(&self) -> f64 {
        self.inner.omega_b
    }
    #[getter]
    fn h(&self) -> f64 {
        self.inner.h
    }
    #[getter]
    fn n_s(&self) -> f64 {
        self.inner.n_s
    }
    #[getter]
    fn sigma8(&self) -> f64 {
        self.inner.sigma8
    }
    #[getter]
    fn Omega_k(&self) -> f64 {
        self.inner.omega_k
    }
    #[getter]
    fn w0(&self) -> f64 {
        self.inner.w0
    }
    #[getter]
    fn wa(&self) -> f64 {
        self.inner.wa
    }
    #[getter]
    fn T_CMB(&self) -> f64 {
        self.inner.t_cmb
    }
    /// Omega_m = Omega_c + Omega_b.
    #[getter]
    fn Omega_m(&self) -> f64 {
        self.inner.omega_m()
    }
    /// Omega_de = 1 - Omega_m - Omega_k.
    #[getter]
    fn Omega_de(&self) -> f64 {
        self.inner.omega_de()
    }

    /// The parameters as a dict (keys as in the constructor).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        let c = &self.inner;
        for (k, v) in [
            ("Omega_c", c.omega_c),
            ("Omega_b", c.omega_b),
            ("h", c.h),
            ("n_s", c.n_s),
            ("sigma8", c.sigma8),
            ("Omega_k", c.omega_k),
            ("w0", c.w0),
            ("wa", c.wa),
            ("T_CMB", c.t_cmb),
        ] {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    /// A copy with some parameters changed: `c.replace(sigma8=0.7)`.
    #[pyo3(signature = (**changes))]
    fn replace(&self, changes: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let mut c = self.inner;
        if let Some(ch) = changes {
            for (k, v) in ch.iter() {
                let k: String = k.extract()?;
                let v: f64 = v.extract()?;
                if k == "T_CMB" {
                    c.t_cmb = v;
                } else {
                    let p: Param = k.parse().map_err(err)?;
                    c.set(p, v);
                }
            }
        }
        c.validate().map_err(err)?;
        Ok(Self { inner: c })
    }

    fn __repr__(&self) -> String {
        let c = &self.inner;
        format!(
            "Cosmology(Omega_c={}, Omega_b={}, h={}, n_s={}, sigma8={}, Omega_k={}, w0={}, wa={}, T_CMB={})",
            c.omega_c, c.omega_b, c.h, c.n_s, c.sigma8, c.omega_k, c.w0, c.wa, c.t_cmb
        )
    }

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(
        Bound<'py, PyAny>,
        (f64, f64, f64, f64, f64, f64, f64, f64, f64),
    )> {
        let c = slf.get().inner;
        Ok((
            slf.get_type().into_any(),
            (
                c.omega_c, c.omega_b, c.h, c.n_s, c.sigma8, c.omega_k, c.w0, c.wa, c.t_cmb,
            ),
        ))
    }
}

fn opts(transfer: &str, nonlinear: &str) -> PyResult<ClOptions> {
    Ok(ClOptions {
        transfer: transfer.parse::<TransferFunction>().map_err(err)?,
        nonlinear: nonlinear.parse::<NonLinear>().map_err(err)?,
        ..Default::default()
    })
}

fn params(names: &[String]) -> PyResult<Vec<Param>> {
    if names.is_empty() {
        return Err(bad("params: expected at least one parameter name"));
    }
    let mut v: Vec<Param> = vec![];
    for n in names {
        let p: Param = n.parse().map_err(err)?;
        if v.contains(&p) {
            return Err(bad(format!("params: {n} listed twice")));
        }
        v.push(p);
    }
    Ok(v)
}

// ----------------------------------------------------- background and growth

/// Evaluate a background / growth quantity at every scale factor of `a`
/// (any shape, values in (1e-4, 1]); returns an array of the same shape.
#[pyfunction]
#[pyo3(signature = (cosmo, a, quantity))]
fn background<'py>(
    py: Python<'py>,
    cosmo: PyRef<'py, PyCosmology>,
    a: PyReadonlyArrayDyn<'py, f64>,
    quantity: &str,
) -> PyResult<Bound<'py, PyArrayDyn<f64>>> {
    let c = cosmo.inner;
    let shape = a.shape().to_vec();
    let av = slice(&a, "a")?;
    if let Some(x) = av.iter().find(|x| !(**x > 1e-4 && **x <= 1.0)) {
        return Err(bad(format!("a = {x}: expected scale factors in (1e-4, 1]")));
    }
    let q = quantity.to_string();
    let out: Vec<f64> = py.detach(|| -> PyResult<Vec<f64>> {
        match q.as_str() {
            "comoving_distance" | "angular_diameter_distance" | "luminosity_distance" | "transverse_comoving_distance" | "hubble" => {
                let bg = Background::new(&c).map_err(err)?;
                Ok(av
                    .iter()
                    .map(|&x| match q.as_str() {
                        "comoving_distance" => bg.comoving_distance(x),
                        "angular_diameter_distance" => bg.angular_diameter_distance(x),
                        "luminosity_distance" => bg.luminosity_distance(x),
                        "transverse_comoving_distance" => bg.transverse_comoving_distance(x),
                        _ => bg.hubble(x),
                    })
                    .collect())
            }
            "growth_factor" | "growth_rate" | "growth_factor2" | "growth_rate2" => {
                let g = Growth::new(&c).map_err(err)?;
                Ok(av
                    .iter()
                    .map(|&x| match q.as_str() {
                        "growth_factor" => g.d1(x),
                        "growth_rate" => g.f1(x),
                        "growth_factor2" => g.d2(x),
                        _ => g.f2(x),
                    })
                    .collect())
            }
            _ => Err(bad(format!(
                "quantity = \"{q}\": expected comoving_distance, angular_diameter_distance, luminosity_distance, \
                 transverse_comoving_distance, hubble, growth_factor, growth_rate, growth_factor2 or growth_rate2"
            ))),
        }
    })?;
    Ok(ArrayD::from_shape_vec(IxDyn(&shape), out)
        .map_err(err)?
        .into_pyarray(py))
}

// ------------------------------------------------------------------ power

/// Matter power spectrum P(k, z) in (Mpc/h)^3 on the grid [len(z), len(k)],
/// k in h/Mpc (0, 1000], z in [0, 1000).
#[pyfunction]
#[pyo3(signature = (cosmo, k, z, transfer="eisenstein_hu", nonlinear="halofit"))]
fn power<'py>(
    py: Python<'py>,
    cosmo: PyRef<'py, PyCosmology>,
    k: PyReadonlyArrayDyn<'py, f64>,
    z: PyReadonlyArrayDyn<'py, f64>,
    transfer: &str,
    nonlinear: &str,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let c = cosmo.inner;
    let (kv, zv) = (slice(&k, "k")?, slice(&z, "z")?);
    if kv.is_empty() || kv.iter().any(|k| !(*k > 0.0 && *k <= 1e3)) {
        return Err(bad("k: expected wavenumbers in (0, 1000] h/Mpc"));
    }
    if zv.is_empty() || zv.iter().any(|z| !(*z >= 0.0 && *z < 1e3)) {
        return Err(bad("z: expected redshifts in [0, 1000)"));
    }
    let o = opts(transfer, nonlinear)?;
    let v = py.detach(|| -> PyResult<Vec<f64>> {
        let p = PowerSpectrum::new(&c, o.transfer, o.nonlinear).map_err(err)?;
        Ok(zv
            .iter()
            .flat_map(|z| {
                kv.iter()
                    .map(|k| p.pk(*k, 1.0 / (1.0 + z)))
                    .collect::<Vec<_>>()
            })
            .collect())
    })?;
    // no silent garbage: NaN from valid-looking parameters is an error
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        let (iz, ik) = (i / kv.len(), i % kv.len());
        return Err(bad(format!(
            "P(k) is not finite at k = {} h/Mpc, z = {}: the cosmology is outside the range the models represent (sigma8 = {:.4e}, Omega_c = {:.4e}, Omega_b = {:.4e}, h = {:.4e}, n_s = {:.4e})",
            kv[ik], zv[iz], c.sigma8, c.omega_c, c.omega_b, c.h, c.n_s
        )));
    }
    flat2(py, v, (zv.len(), kv.len()))
}

// -------------------------------------------------------------------- n(z)

/// A normalised redshift distribution n(z) (unit integral), optionally
/// shifted by a photo-z offset dz: n(z - dz). Build with `smail_nz`,
/// `gaussian_nz`, `delta_nz`, `tabulated_nz` or `histogram_nz`; call it
/// on an array of redshifts to evaluate.
#[pyclass(name = "Nz", module = "cosmodiff._core", frozen)]
pub struct PyNz {
    pub inner: Nz,
}

impl PyNz {
    fn build(d: RedshiftDistribution, shift: f64) -> PyResult<Self> {
        Ok(Self {
            inner: Nz::new(d, shift).map_err(err)?,
        })
    }
}

#[pymethods]
impl PyNz {
    /// Smail et al. (1994): n(z) ~ z^a exp(-(z/z0)^b) on [0, zmax].
    #[staticmethod]
    #[pyo3(signature = (a, b, z0, zmax=5.0, shift=0.0))]
    fn smail(a: f64, b: f64, z0: f64, zmax: f64, shift: f64) -> PyResult<Self> {
        Self::build(RedshiftDistribution::Smail { a, b, z0, zmax }, shift)
    }
    /// Gaussian of mean z0 and width sigma truncated to [0, zmax].
    #[staticmethod]
    #[pyo3(signature = (z0, sigma, zmax=5.0, shift=0.0))]
    fn gaussian(z0: f64, sigma: f64, zmax: f64, shift: f64) -> PyResult<Self> {
        Self::build(RedshiftDistribution::Gaussian { z0, sigma, zmax }, shift)
    }
    /// All sources at z0 (one source plane).
    #[staticmethod]
    #[pyo3(signature = (z0, shift=0.0))]
    fn delta(z0: f64, shift: f64) -> PyResult<Self> {
        Self::build(RedshiftDistribution::Delta { z0 }, shift)
    }
    /// Values nz at increasing nodes z, linearly interpolated, zero outside.
    #[staticmethod]
    #[pyo3(signature = (z, nz, shift=0.0))]
    fn tabulated(z: Vec<f64>, nz: Vec<f64>, shift: f64) -> PyResult<Self> {
        Self::build(RedshiftDistribution::Tabulated { z, nz }, shift)
    }
    /// Counts in bins [edges[i], edges[i+1]) (piecewise constant).
    #[staticmethod]
    #[pyo3(signature = (edges, counts, shift=0.0))]
    fn histogram(edges: Vec<f64>, counts: Vec<f64>, shift: f64) -> PyResult<Self> {
        Self::build(RedshiftDistribution::Histogram { edges, counts }, shift)
    }

    /// Evaluate the normalised n(z) at redshifts z (array of any shape).
    /// A float for a scalar z, otherwise an array of the shape of z.
    fn __call__<'py>(&self, py: Python<'py>, z: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        if z.is_none() {
            return Err(bad("z: expected redshifts, got None"));
        }
        if let Ok(x) = z.extract::<f64>() {
            return Ok(self.inner.eval(x).into_pyobject(py)?.into_any());
        }
        let z = crate::to_f64(z, "z")?;
        let shape = z.shape().to_vec();
        let v: Vec<f64> = slice(&z, "z")?
            .iter()
            .map(|&x| self.inner.eval(x))
            .collect();
        Ok(ArrayD::from_shape_vec(IxDyn(&shape), v)
            .map_err(err)?
            .into_pyarray(py)
            .into_any())
    }
    /// Pickle support: rebuild through the matching constructor.
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, pyo3::types::PyTuple>)> {
        let py = slf.py();
        let cls = slf.get_type();
        let n = &slf.get().inner;
        let sh = n.shift;
        let (ctor, args) = match &n.dist {
            RedshiftDistribution::Smail { a, b, z0, zmax } => {
                ("smail", (*a, *b, *z0, *zmax, sh).into_pyobject(py)?)
            }
            RedshiftDistribution::Gaussian { z0, sigma, zmax } => {
                ("gaussian", (*z0, *sigma, *zmax, sh).into_pyobject(py)?)
            }
            RedshiftDistribution::Delta { z0 } => ("delta", (*z0, sh).into_pyobject(py)?),
            RedshiftDistribution::Tabulated { z, nz } => {
                ("tabulated", (z.clone(), nz.clone(), sh).into_pyobject(py)?)
            }
            RedshiftDistribution::Histogram { edges, counts } => (
                "histogram",
                (edges.clone(), counts.clone(), sh).into_pyobject(py)?,
            ),
            // Made only inside the library (the sbi_lens set-ups) for now.
            RedshiftDistribution::PhotoZBin { .. } => {
                return Err(crate::bad("photo-z bin n(z) cannot be pickled"))
            }
        };
        Ok((cls.getattr(ctor)?, args))
    }
    /// Upper end of the support (after the shift).
    #[getter]
    fn zmax(&self) -> f64 {
        self.inner.zmax()
    }
    /// Photo-z shift dz.
    #[getter]
    fn shift(&self) -> f64 {
        self.inner.shift
    }
    fn __repr__(&self) -> String {
        let s = match &self.inner.dist {
            RedshiftDistribution::Smail { a, b, z0, zmax } => {
                format!("smail_nz(a={a}, b={b}, z0={z0}, zmax={zmax}")
            }
            RedshiftDistribution::Gaussian { z0, sigma, zmax } => {
                format!("gaussian_nz(z0={z0}, sigma={sigma}, zmax={zmax}")
            }
            RedshiftDistribution::Delta { z0 } => format!("delta_nz(z0={z0}"),
            RedshiftDistribution::Tabulated { z, .. } => {
                format!("tabulated_nz(<{} nodes>", z.len())
            }
            RedshiftDistribution::Histogram { counts, .. } => {
                format!("histogram_nz(<{} bins>", counts.len())
            }
            RedshiftDistribution::PhotoZBin {
                zlo, zhi, sigma, ..
            } => format!("photoz_bin(zlo={zlo}, zhi={zhi}, sigma={sigma}"),
        };
        if self.inner.shift != 0.0 {
            format!("{s}, shift={})", self.inner.shift)
        } else {
            format!("{s})")
        }
    }
}

// ----------------------------------------------------------------- tracers

/// One tomographic bin of one probe (base class of WeakLensing and NumberCounts).
#[pyclass(name = "Tracer", module = "cosmodiff._core", frozen, subclass)]
pub struct PyTracer {
    pub inner: cosmodiff_cosmo::Tracer,
}

#[pymethods]
impl PyTracer {
    /// The redshift distribution.
    #[getter]
    fn nz(&self) -> PyNz {
        PyNz {
            inner: self.inner.nz.clone(),
        }
    }
    /// Galaxy surface density in arcmin^-2.
    #[getter]
    fn gals_per_arcmin2(&self) -> f64 {
        self.inner.gals_per_arcmin2
    }
    /// "weak_lensing" or "number_counts".
    #[getter]
    fn kind(&self) -> &'static str {
        if self.inner.is_lensing() {
            "weak_lensing"
        } else {
            "number_counts"
        }
    }
    /// Noise power of the auto-spectrum (sr): sigma_e^2/n (lensing) or 1/n (counts).
    #[getter]
    fn noise(&self) -> f64 {
        self.inner.noise()
    }
    fn __repr__(&self) -> String {
        let nz = PyNz {
            inner: self.inner.nz.clone(),
        }
        .__repr__();
        match self.inner.kind {
            TracerKind::WeakLensing { ia_amplitude, m_bias, sigma_e } => format!(
                "WeakLensing({nz}, sigma_e={sigma_e}, gals_per_arcmin2={}, ia_amplitude={ia_amplitude}, m_bias={m_bias})",
                self.inner.gals_per_arcmin2
            ),
            TracerKind::NumberCounts { bias } => format!("NumberCounts({nz}, bias={bias}, gals_per_arcmin2={})", self.inner.gals_per_arcmin2),
        }
    }
}

/// Cosmic shear of one source bin: WeakLensing(nz, sigma_e=0.26,
/// gals_per_arcmin2=10, ia_amplitude=0, m_bias=0). sigma_e is the
/// intrinsic ellipticity dispersion per component, gals_per_arcmin2 the
/// source density (arcmin^-2), ia_amplitude the NLA amplitude A_IA and
/// m_bias the multiplicative shear bias.
#[pyclass(name = "WeakLensing", module = "cosmodiff._core", extends = PyTracer, frozen)]
pub struct PyWeakLensing;

#[pymethods]
impl PyWeakLensing {
    #[new]
    #[pyo3(signature = (nz, sigma_e=0.26, gals_per_arcmin2=10.0, ia_amplitude=0.0, m_bias=0.0))]
    fn new(
        nz: PyRef<'_, PyNz>,
        sigma_e: f64,
        gals_per_arcmin2: f64,
        ia_amplitude: f64,
        m_bias: f64,
    ) -> PyResult<PyClassInitializer<Self>> {
        let t = cosmodiff_cosmo::Tracer {
            nz: nz.inner.clone(),
            kind: TracerKind::WeakLensing {
                ia_amplitude,
                m_bias,
                sigma_e,
            },
            gals_per_arcmin2,
        };
        t.validate().map_err(err)?;
        Ok(PyClassInitializer::from(PyTracer { inner: t }).add_subclass(Self))
    }
    /// Pickle support.
    fn __reduce__<'py>(
        slf: PyRef<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, (PyNz, f64, f64, f64, f64))> {
        let py = slf.py();
        let t = &slf.as_super().inner;
        match t.kind {
            TracerKind::WeakLensing {
                ia_amplitude,
                m_bias,
                sigma_e,
            } => Ok((
                py.get_type::<PyWeakLensing>().into_any(),
                (
                    PyNz {
                        inner: t.nz.clone(),
                    },
                    sigma_e,
                    t.gals_per_arcmin2,
                    ia_amplitude,
                    m_bias,
                ),
            )),
            _ => unreachable!(),
        }
    }
    #[getter]
    fn sigma_e(self_: PyRef<'_, Self>) -> f64 {
        match self_.as_super().inner.kind {
            TracerKind::WeakLensing { sigma_e, .. } => sigma_e,
            _ => unreachable!(),
        }
    }
    #[getter]
    fn ia_amplitude(self_: PyRef<'_, Self>) -> f64 {
        match self_.as_super().inner.kind {
            TracerKind::WeakLensing { ia_amplitude, .. } => ia_amplitude,
            _ => unreachable!(),
        }
    }
    #[getter]
    fn m_bias(self_: PyRef<'_, Self>) -> f64 {
        match self_.as_super().inner.kind {
            TracerKind::WeakLensing { m_bias, .. } => m_bias,
            _ => unreachable!(),
        }
    }
}

/// Galaxy clustering of one lens bin with constant linear bias:
/// NumberCounts(nz, bias=1, gals_per_arcmin2=10) (density in arcmin^-2).
#[pyclass(name = "NumberCounts", module = "cosmodiff._core", extends = PyTracer, frozen)]
pub struct PyNumberCounts;

#[pymethods]
impl PyNumberCounts {
    #[new]
    #[pyo3(signature = (nz, bias=1.0, gals_per_arcmin2=10.0))]
    fn new(
        nz: PyRef<'_, PyNz>,
        bias: f64,
        gals_per_arcmin2: f64,
    ) -> PyResult<PyClassInitializer<Self>> {
        let t = cosmodiff_cosmo::Tracer::number_counts(nz.inner.clone(), bias, gals_per_arcmin2);
        t.validate().map_err(err)?;
        Ok(PyClassInitializer::from(PyTracer { inner: t }).add_subclass(Self))
    }
    /// Pickle support.
    fn __reduce__<'py>(slf: PyRef<'py, Self>) -> PyResult<(Bound<'py, PyAny>, (PyNz, f64, f64))> {
        let py = slf.py();
        let t = &slf.as_super().inner;
        match t.kind {
            TracerKind::NumberCounts { bias } => Ok((
                py.get_type::<PyNumberCounts>().into_any(),
                (
                    PyNz {
                        inner: t.nz.clone(),
                    },
                    bias,
                    t.gals_per_arcmin2,
                ),
            )),
            _ => unreachable!(),
        }
    }
    #[getter]
    fn bias(self_: PyRef<'_, Self>) -> f64 {
        match self_.as_super().inner.kind {
            TracerKind::NumberCounts { bias } => bias,
            _ => unreachable!(),
        }
    }
}

pub(crate) fn tracers(ts: &[PyRef<'_, PyTracer>]) -> PyResult<Vec<cosmodiff_cosmo::Tracer>> {
    if ts.is_empty() {
        return Err(bad("tracers: expected at least one tracer"));
    }
    Ok(ts.iter().map(|t| t.inner.clone()).collect())
}

// ------------------------------------------------------------------- C_ell

/// Limber C_ell [n_pairs, n_ell] (pairs (i, j), j >= i, in tracer order).
#[pyfunction(name = "angular_cl")]
#[pyo3(signature = (cosmo, tracers, ell, transfer="eisenstein_hu", nonlinear="halofit"))]
fn angular_cl_<'py>(
    py: Python<'py>,
    cosmo: PyRef<'py, PyCosmology>,
    tracers: Vec<PyRef<'py, PyTracer>>,
    ell: PyReadonlyArrayDyn<'py, f64>,
    transfer: &str,
    nonlinear: &str,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let c = cosmo.inner;
    let ts = self::tracers(&tracers)?;
    let l = slice(&ell, "ell")?;
    let o = opts(transfer, nonlinear)?;
    let cl = py.detach(|| angular_cl(&c, &ts, l, &o)).map_err(err)?;
    vec2(py, cl, l.len())
}

/// Noise spectra [n_pairs, n_ell]: sigma_e^2/n or 1/n (n per sr) on auto pairs, 0 on crosses.
#[pyfunction]
fn noise_cl<'py>(
    py: Python<'py>,
    tracers: Vec<PyRef<'py, PyTracer>>,
    ell: PyReadonlyArrayDyn<'py, f64>,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let ts = self::tracers(&tracers)?;
    let l = slice(&ell, "ell")?;
    vec2(py, angular_cl_noise(&ts, l), l.len())
}

/// Pair indices [n_pairs, 2] (i, j), j >= i, in the order C_ell rows use.
#[pyfunction(name = "tracer_pairs")]
fn tracer_pairs_(py: Python<'_>, n: usize) -> PyResult<Bound<'_, PyArray2<i64>>> {
    if n > 10_000 {
        return Err(bad(format!("tracer_pairs: n = {n}; at most 10000 tracers")));
    }
    let p = tracer_pairs(n);
    let flat: Vec<i64> = p.iter().flat_map(|&(i, j)| [i as i64, j as i64]).collect();
    Ok(Array2::from_shape_vec((p.len(), 2), flat)
        .expect("pairs")
        .into_pyarray(py))
}

/// Knox covariance [n_pairs*n_ell, n_pairs*n_ell] (pair-major) of total spectra.
#[pyfunction(name = "gaussian_covariance")]
fn gaussian_covariance_<'py>(
    py: Python<'py>,
    cl_total: PyReadonlyArrayDyn<'py, f64>,
    n_tracers: usize,
    ell: PyReadonlyArrayDyn<'py, f64>,
    f_sky: f64,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let l = slice(&ell, "ell")?;
    if l.is_empty() {
        return Err(bad(
            "ell: empty (the covariance needs at least one multipole)",
        ));
    }
    let s = cl_total.shape().to_vec();
    if s.len() != 2 || s[1] != l.len() {
        return Err(bad(format!(
            "cl_total: expected shape [n_pairs, len(ell)] = [n_pairs, {}], got {s:?}",
            l.len()
        )));
    }
    let rows: Vec<Vec<f64>> = slice(&cl_total, "cl_total")?
        .chunks(l.len())
        .map(|c| c.to_vec())
        .collect();
    let cov = gaussian_covariance(&rows, n_tracers, l, f_sky).map_err(err)?;
    let n = s[0] * l.len();
    flat2(py, cov, (n, n))
}

/// Exact derivatives d C_ell / d theta [n_params, n_pairs, n_ell] (dual numbers).
#[pyfunction]
#[pyo3(signature = (cosmo, tracers, ell, params=None, transfer="eisenstein_hu", nonlinear="halofit"))]
fn cl_gradient<'py>(
    py: Python<'py>,
    cosmo: PyRef<'py, PyCosmology>,
    tracers: Vec<PyRef<'py, PyTracer>>,
    ell: PyReadonlyArrayDyn<'py, f64>,
    params: Option<&Bound<'py, PyAny>>,
    transfer: &str,
    nonlinear: &str,
) -> PyResult<Bound<'py, PyArray3<f64>>> {
    let c = cosmo.inner;
    let ts = self::tracers(&tracers)?;
    let l = slice(&ell, "ell")?;
    let o = opts(transfer, nonlinear)?;
    let ps = self::params(&name_list(params)?)?;
    let np = ts.len() * (ts.len() + 1) / 2;
    let rows = py.detach(|| -> PyResult<Vec<Vec<f64>>> {
        ps.par_iter()
            .map(|p| {
                let mut cd = c.lift::<Dual64>();
                cd.set(*p, Dual64::new(c.get(*p), 1.0));
                let cl = angular_cl(&cd, &ts, l, &o).map_err(err)?;
                Ok(cl.into_iter().flatten().map(|d| d.eps).collect())
            })
            .collect()
    })?;
    Ok(
        Array3::from_shape_vec((ps.len(), np, l.len()), rows.concat())
            .map_err(err)?
            .into_pyarray(py),
    )
}

// ------------------------------------------------------------- likelihood

/// Gaussian C_ell likelihood with the Knox covariance fixed at `cosmo`.
///
/// ClLikelihood(cosmo, tracers, ell, f_sky, params=["Omega_c", "sigma8"],
///              data=None, transfer="eisenstein_hu", nonlinear="halofit")
///
/// `data` is the signal C_ell [n_pairs, n_ell] (noise bias removed); None
/// uses the noiseless theory at `cosmo`. Parameter vectors follow `params`.
#[pyclass(name = "ClLikelihood", module = "cosmodiff._core", frozen)]
pub struct PyClLikelihood {
    pub inner: ClLikelihood,
}

impl PyClLikelihood {
    fn check(&self, values: &[f64]) -> PyResult<()> {
        if values.len() != self.inner.params.len() {
            return Err(bad(format!(
                "values: expected {} parameters ({}), got {}",
                self.inner.params.len(),
                self.names().join(", "),
                values.len()
            )));
        }
        self.inner.cosmology(values).validate().map_err(err)
    }

    /// The likelihood from converted inputs (shared by the constructor and `fisher`).
    #[allow(clippy::too_many_arguments)]
    fn build(
        py: Python<'_>,
        c: cosmodiff_cosmo::Cosmology,
        ts: Vec<cosmodiff_cosmo::Tracer>,
        l: Vec<f64>,
        f_sky: f64,
        params: &[String],
        data: Option<(Vec<usize>, Vec<f64>)>,
        transfer: &str,
        nonlinear: &str,
    ) -> PyResult<Self> {
        if l.is_empty() || l.iter().any(|x| !(*x >= 2.0 && x.is_finite())) {
            return Err(bad("ell: expected a non-empty list of multipoles >= 2"));
        }
        let o = opts(transfer, nonlinear)?;
        let ps = self::params(params)?;
        let np = ts.len() * (ts.len() + 1) / 2;
        let d = match data {
            None => None,
            Some((shape, v)) => {
                if shape != [np, l.len()] {
                    return Err(bad(format!(
                        "data: expected shape [n_pairs, n_ell] = [{np}, {}], got {shape:?}",
                        l.len()
                    )));
                }
                Some(v)
            }
        };
        let like = py
            .detach(|| ClLikelihood::new(c, ts, l, f_sky, o, d, ps))
            .map_err(err)?;
        Ok(Self { inner: like })
    }
}

/// Tracers given as one tracer or a sequence of them.
fn tracer_list(obj: &Bound<'_, PyAny>) -> PyResult<Vec<cosmodiff_cosmo::Tracer>> {
    if let Ok(t) = obj.extract::<PyRef<'_, PyTracer>>() {
        return Ok(vec![t.inner.clone()]);
    }
    let ts: Vec<PyRef<'_, PyTracer>> = obj.extract().map_err(|_| {
        bad("tracers: expected a tracer (WeakLensing, NumberCounts) or a list of them")
    })?;
    self::tracers(&ts)
}

/// Parameter names given as one name or a sequence of names; None:
/// (Omega_c, sigma8).
fn name_list(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<String>> {
    let Some(obj) = obj else {
        return Ok(vec!["Omega_c".to_string(), "sigma8".to_string()]);
    };
    if let Ok(s) = obj.extract::<String>() {
        return Ok(vec![s]);
    }
    obj.extract().map_err(|_| bad("params: expected a parameter name or a list of names such as [\"Omega_c\", \"sigma8\"]"))
}

/// Parameter values: a number or any array-like, flattened.
fn value_list(obj: &Bound<'_, PyAny>) -> PyResult<Vec<f64>> {
    Ok(slice(&crate::to_f64(obj, "values")?, "values")?.to_vec())
}

#[allow(clippy::too_many_arguments)]
#[pymethods]
impl PyClLikelihood {
    #[new]
    #[pyo3(signature = (cosmo, tracers, ell, f_sky, params=None, data=None, transfer="eisenstein_hu", nonlinear="halofit"))]
    fn new(
        py: Python<'_>,
        cosmo: PyRef<'_, PyCosmology>,
        tracers: &Bound<'_, PyAny>,
        ell: &Bound<'_, PyAny>,
        f_sky: f64,
        params: Option<&Bound<'_, PyAny>>,
        data: Option<&Bound<'_, PyAny>>,
        transfer: &str,
        nonlinear: &str,
    ) -> PyResult<Self> {
        let ts = tracer_list(tracers)?;
        let l = slice(&crate::to_f64(ell, "ell")?, "ell")?.to_vec();
        let params = name_list(params)?;
        let data = match data {
            Some(d) => {
                let a = crate::to_f64(d, "data")?;
                Some((a.shape().to_vec(), slice(&a, "data")?.to_vec()))
            }
            None => None,
        };
        Self::build(
            py,
            cosmo.inner,
            ts,
            l,
            f_sky,
            &params,
            data,
            transfer,
            nonlinear,
        )
    }

    /// Free parameter names.
    #[getter]
    fn names(&self) -> Vec<&'static str> {
        self.inner.params.iter().map(|p| p.name()).collect()
    }
    /// Fiducial values of the free parameters.
    #[getter]
    fn fiducial<'py>(&self, py: Python<'py>) -> Bound<'py, numpy::PyArray1<f64>> {
        vec1(
            py,
            self.inner
                .params
                .iter()
                .map(|p| self.inner.fiducial.get(*p))
                .collect(),
        )
    }
    /// Data vector [n_pairs, n_ell].
    #[getter]
    fn data<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let ne = self.inner.ell.len();
        flat2(
            py,
            self.inner.data.clone(),
            (self.inner.data.len() / ne, ne),
        )
    }
    /// Covariance [n, n] (pair-major data order).
    #[getter]
    fn covariance<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let n = self.inner.data.len();
        flat2(py, self.inner.cov.clone(), (n, n))
    }
    #[getter]
    fn ell<'py>(&self, py: Python<'py>) -> Bound<'py, numpy::PyArray1<f64>> {
        vec1(py, self.inner.ell.clone())
    }

    /// log L (without the constant -1/2 ln det C - n/2 ln 2 pi).
    fn log_likelihood(&self, py: Python<'_>, values: &Bound<'_, PyAny>) -> PyResult<f64> {
        let values = value_list(values)?;
        self.check(&values)?;
        py.detach(|| self.inner.log_likelihood(&self.inner.cosmology(&values)))
            .map_err(err)
    }
    /// (log L, exact gradient d log L / d theta).
    fn value_and_grad<'py>(
        &self,
        py: Python<'py>,
        values: &Bound<'_, PyAny>,
    ) -> PyResult<(f64, Bound<'py, numpy::PyArray1<f64>>)> {
        let values = value_list(values)?;
        self.check(&values)?;
        let (v, g) = py
            .detach(|| self.inner.value_and_grad(&values))
            .map_err(err)?;
        Ok((v, vec1(py, g)))
    }
    /// Model mean C_ell [n_pairs, n_ell] at `values`.
    fn mean<'py>(
        &self,
        py: Python<'py>,
        values: &Bound<'_, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let values = value_list(values)?;
        self.check(&values)?;
        let m = py
            .detach(|| self.inner.mean(&self.inner.cosmology(&values)))
            .map_err(err)?;
        let ne = self.inner.ell.len();
        flat2(py, m, (self.inner.data.len() / ne, ne))
    }
    /// Exact Jacobian d mu / d theta [n_params, n_pairs * n_ell].
    fn jacobian<'py>(
        &self,
        py: Python<'py>,
        values: &Bound<'_, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let values = value_list(values)?;
        self.check(&values)?;
        let j = py.detach(|| self.inner.jacobian(&values)).map_err(err)?;
        vec2(py, j, self.inner.data.len())
    }
    /// Fisher matrix J^T C^-1 J at `values` (default: the fiducial).
    #[pyo3(signature = (values=None))]
    fn fisher<'py>(
        &self,
        py: Python<'py>,
        values: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let v = match values {
            Some(v) => value_list(v)?,
            None => self
                .inner
                .params
                .iter()
                .map(|p| self.inner.fiducial.get(*p))
                .collect(),
        };
        self.check(&v)?;
        let f = py.detach(|| self.inner.fisher(&v)).map_err(err)?;
        vec2(py, f, v.len())
    }
    /// Exact Hessian of log L at `values` (hyper-dual numbers).
    fn hessian<'py>(
        &self,
        py: Python<'py>,
        values: &Bound<'_, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let values = value_list(values)?;
        self.check(&values)?;
        let h = py.detach(|| self.inner.hessian(&values)).map_err(err)?;
        vec2(py, h, values.len())
    }
}

/// Fisher matrix [n_params, n_params] at `cosmo` with exact derivatives:
/// method "jacobian" (J^T C^-1 J) or "hessian" (-d^2 log L at the fiducial data).
#[pyfunction]
#[pyo3(signature = (cosmo, tracers, ell, f_sky, params=None, method="jacobian", transfer="eisenstein_hu", nonlinear="halofit"))]
#[allow(clippy::too_many_arguments)]
fn fisher<'py>(
    py: Python<'py>,
    cosmo: PyRef<'py, PyCosmology>,
    tracers: Vec<PyRef<'py, PyTracer>>,
    ell: PyReadonlyArrayDyn<'py, f64>,
    f_sky: f64,
    params: Option<&Bound<'py, PyAny>>,
    method: &str,
    transfer: &str,
    nonlinear: &str,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    if method != "jacobian" && method != "hessian" {
        return Err(bad(format!(
            "method = \"{method}\": expected \"jacobian\" or \"hessian\""
        )));
    }
    let params = name_list(params)?;
    let n = params.len();
    let ts = self::tracers(&tracers)?;
    let l = slice(&ell, "ell")?.to_vec();
    let like = PyClLikelihood::build(
        py,
        cosmo.inner,
        ts,
        l,
        f_sky,
        &params,
        None,
        transfer,
        nonlinear,
    )?
    .inner;
    let f = py
        .detach(|| {
            if method == "jacobian" {
                fisher_matrix(&like)
            } else {
                fisher_hessian(&like)
            }
        })
        .map_err(err)?;
    vec2(py, f, n)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyCosmology>()?;
    m.add_class::<PyNz>()?;
    m.add_class::<PyTracer>()?;
    m.add_class::<PyWeakLensing>()?;
    m.add_class::<PyNumberCounts>()?;
    m.add_class::<PyClLikelihood>()?;
    m.add_function(wrap_pyfunction!(background, m)?)?;
    m.add_function(wrap_pyfunction!(power, m)?)?;
    m.add_function(wrap_pyfunction!(angular_cl_, m)?)?;
    m.add_function(wrap_pyfunction!(noise_cl, m)?)?;
    m.add_function(wrap_pyfunction!(tracer_pairs_, m)?)?;
    m.add_function(wrap_pyfunction!(gaussian_covariance_, m)?)?;
    m.add_function(wrap_pyfunction!(cl_gradient, m)?)?;
    m.add_function(wrap_pyfunction!(fisher, m)?)?;
    Ok(())
}
