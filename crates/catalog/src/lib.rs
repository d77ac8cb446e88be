//! cosmodiff-catalog: halo and galaxy catalogues in a periodic box, and the
//! statistics that judge them.
//!
//! - [`fof`]: friends-of-friends halos from N-body particles (Davis et al.
//!   1985), with masses, centres of mass and mean velocities;
//! - [`hod`]: the five-parameter Zheng et al. (2007) halo occupation, sampled
//!   exactly (Bernoulli centrals, Poisson satellites on NFW profiles) or with
//!   the relaxed, reparameterised sampler of Horowitz et al. (2022) whose
//!   galaxy weights are differentiable in the parameters;
//! - [`pairs`]: exact periodic pair counts and the two-point correlation
//!   function xi(r) with analytic randoms, with its vector-Jacobian product in
//!   the point weights;
//! - [`pk_points`]: P(k) of a point set (CIC, interlacing, window
//!   compensation, shot noise), with its VJP in the weights;
//! - [`knn`]: k-nearest-neighbour CDFs (Banerjee & Abel 2021);
//! - [`mass_function`]: the measured halo mass function dn/dln M.
//!
//! Positions are comoving Mpc/h in `[0, L)`, masses Msun/h, velocities km/s.
//! Neighbour searches share one periodic cell structure ([`columns`]).

#![warn(missing_docs)]
// Validation checks are written `!(x > 0.0)` on purpose so that NaN fails them.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub mod columns;
pub mod fof;
pub mod hod;
pub mod knn;
pub mod mass_function;
pub mod pairs;
pub mod pk_points;

pub use fof::{friends_of_friends, FofSettings, Halos};
pub use hod::{HodSample, Zheng07};
pub use pairs::{pair_counts, xi, Xi};

/// Errors of the catalogue code: what is wrong with which argument.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// An argument or input out of its domain; the message names it.
    #[error("{0}")]
    Input(String),
}

/// `Result` with [`CatalogError`].
pub type Result<T> = std::result::Result<T, CatalogError>;

pub(crate) fn input<T>(msg: impl Into<String>) -> Result<T> {
    Err(CatalogError::Input(msg.into()))
}

/// Critical density today, `rho_crit = 3 H0^2 / (8 pi G)` =
/// 2.77536627e11 (Msun/h) / (Mpc/h)^3.
pub const RHO_CRIT: f64 = 2.775_366_27e11;

/// Check a box side [Mpc/h]: positive and finite.
pub fn check_box_size(box_size: f64) -> Result<()> {
    if !(box_size > 0.0 && box_size.is_finite()) {
        return input(format!(
            "box size must be positive and finite, got {box_size}"
        ));
    }
    Ok(())
}

/// Check that every position is finite and inside `[0, L)`; names the first
/// offending point.
pub fn check_positions(pos: &[[f64; 3]], box_size: f64) -> Result<()> {
    check_box_size(box_size)?;
    for (i, p) in pos.iter().enumerate() {
        if p.iter().any(|x| !x.is_finite()) {
            return input(format!("position {i} is not finite: {p:?}"));
        }
        if p.iter().any(|x| !(*x >= 0.0 && *x < box_size)) {
            return input(format!(
                "position {i} = [{}, {}, {}] is outside the box [0, {box_size}) Mpc/h",
                p[0], p[1], p[2]
            ));
        }
    }
    Ok(())
}

/// `n` points uniform in the box `[0, L)^3` from a seeded generator (three
/// uniform draws per point, x then y then z): kNN query points, random
/// catalogues.
pub fn uniform_points(n: usize, box_size: f64, seed: u64) -> Vec<[f64; 3]> {
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardUniform};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let u: [f64; 3] = [
                StandardUniform.sample(&mut rng),
                StandardUniform.sample(&mut rng),
                StandardUniform.sample(&mut rng),
            ];
            [u[0] * box_size, u[1] * box_size, u[2] * box_size]
        })
        .collect()
}

/// Wrap a coordinate into `[0, L)` (a value that rounds to `L` becomes 0).
#[inline]
pub fn wrap(x: f64, box_size: f64) -> f64 {
    let y = x.rem_euclid(box_size);
    if y >= box_size {
        0.0
    } else {
        y
    }
}

/// Minimum-image separation `d` in `[-L/2, L/2]` for `|d| < L`... any `d`.
#[inline]
pub fn min_image(d: f64, box_size: f64) -> f64 {
    d - box_size * (d / box_size).round()
}
