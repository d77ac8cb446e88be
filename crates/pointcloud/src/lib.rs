//! cosmodiff-pointcloud: likelihoods of point clouds such as halo
//! catalogues (Cuesta-Lazaro & Mishra-Sharma 2023, "Diffusion models for
//! cosmology", arXiv:2311.17141).
//!
//! - [`schedule`]: the learned noise schedules of a variational diffusion
//!   model (linear and monotone network, learnable endpoints) and the sign
//!   convention of `gamma`;
//! - [`vdm`]: the variational lower bound in nats (prior, reconstruction and
//!   continuous-time diffusion terms; antithetic or fixed time grids) and the
//!   ancestral sampler;
//! - [`graph`]: batched periodic k-nearest-neighbour graphs;
//! - [`net`]: the noise-prediction networks (attention GNN and EGNN);
//! - [`model`]: the conditional model `p(cloud | theta)` of catalogues:
//!   normalisation, training with augmentation, the ELBO with common random
//!   numbers, sampling, model directories;
//! - [`ode`]: continuous normalizing flows: the Dormand-Prince solver with
//!   dense output and the change of variables with exact or Hutchinson traces.

#![warn(missing_docs)]

pub mod bench;
pub mod error;
pub mod graph;
pub mod model;
pub mod net;
pub mod ode;
pub mod schedule;
pub mod vdm;

pub use error::{PointCloudError, Result};
pub use model::{PointVdm, PointVdmConfig, TrainSettings};
pub use net::{NetConfig, NetKind, ScoreNet};
pub use schedule::{NoiseSchedule, ScheduleConfig, ScheduleKind};
