//! # cosmodiff-cosmo: differentiable analytic cosmology
//!
//! Background expansion, linear and second-order growth, Eisenstein-Hu and
//! BBKS transfer functions, halofit (Takahashi et al. 2012), redshift
//! distributions, weak-lensing and number-count tracers, Limber angular power
//! spectra, Gaussian covariance, likelihood and Fisher matrices.
//!
//! Every numerical routine is generic over a [`Scalar`]: plain `f64`, or a
//! `num_dual` dual number (`Dual64`, `Dual2_64`, `HyperDual64`, `DualSVec64<N>`,
//! ...). Evaluating with dual numbers gives exact derivatives with respect to
//! the cosmological parameters (no finite differences, no approximation of the
//! numerical model), which is how [`fisher_matrix`] and the samplers get gradients
//! and Hessians.
//!
//! ## Units
//! Distances are in Mpc/h, wavenumbers in h/Mpc, P(k) in (Mpc/h)^3, H in
//! km/s/Mpc, angles in radians unless a name says otherwise (`_arcmin`).
//! Convert distances to Mpc by dividing by h.
//!
//! ## Physics conventions (the "matched" CCL configuration)
//! No radiation and no massive neutrinos (Omega_r = 0); T_CMB = 2.726 K enters
//! only the Eisenstein-Hu transfer function. CPL dark energy
//! w(a) = w0 + wa (1 - a) (Chevallier & Polarski 2001; Linder 2003).

pub mod background;
pub mod cl;
pub mod covariance;
pub mod duals;
pub mod growth;
pub mod halo_mass_function;
pub mod numerics;
pub mod nz;
pub mod params;
pub mod power;
pub mod tracers;
pub mod transfer;

pub use background::Background;
pub use cl::{angular_cl, angular_cl_noise, tracer_pairs, ClOptions};
pub use covariance::{
    fisher_hessian, fisher_matrix, gaussian_covariance, gaussian_log_likelihood, ClLikelihood,
};
pub use growth::Growth;
pub use nz::RedshiftDistribution;
pub use params::{CosmoError, Cosmology, Param};
pub use power::{NonLinear, PowerSpectrum};
pub use tracers::Tracer;
pub use transfer::TransferFunction;

/// The number type all numerics are generic over: `f64` or any `num_dual`
/// dual number built on `f64`.
pub trait Scalar: num_dual::DualNum<Primitive = f64> + Copy + Send + Sync {}
impl<T: num_dual::DualNum<Primitive = f64> + Copy + Send + Sync> Scalar for T {}

pub type Result<T> = std::result::Result<T, CosmoError>;

/// Speed of light in km/s.
pub const C_KMS: f64 = 299_792.458;
/// Hubble distance c/H0 in Mpc/h (H0 = 100 h km/s/Mpc).
pub const HUBBLE_DISTANCE: f64 = C_KMS / 100.0;
