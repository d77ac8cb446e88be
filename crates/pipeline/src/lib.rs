//! cosmodiff workflows as functions of typed settings.
//!
//! The layer between the front ends (the `cosmodiff` binary in `crates/cli`,
//! the Python module in `crates/py`) and the domain crates. It holds
//!
//! - the TOML config sections and their one-line errors ([`config`]),
//! - reading and writing numpy, FITS and JSON files ([`io`]), every file
//!   written through one atomic helper ([`output`]), into output folders
//!   that record the run that wrote them and never mix runs ([`run_dir`]),
//! - progress bars and summary lines ([`report`]), memory budgets checked
//!   before a command allocates ([`budget`]),
//! - every workflow, one module each: [`cosmology`], [`simulate`],
//!   [`massmap`], [`sample`], [`pm`], [`prior`], [`sbi`], the catalogue
//!   workflows [`halos`] (friends-of-friends, campaigns), [`hod`], [`stats`],
//!   and the end-to-end [`demo`].
//!
//! A front end builds the settings (from arguments or Python keywords) and
//! calls the workflow; it adds no check and no computation of its own, so the
//! same settings give the same numbers from both. With the `cli` feature the
//! settings types derive `clap::Args`, so the binary parses straight into them.
//! New workflows go here, as a module with a settings type and a `run`.

// The settings' docs are also the CLI's --help text: `[cosmology]`,
// `[n_pairs][n_ell]` there are TOML sections and array shapes, not links.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::private_intra_doc_links)]

#[macro_use]
pub mod report;

pub mod budget;
pub mod config;
pub mod io;
pub mod lensing_cosmology;
pub mod output;
pub mod run_dir;

pub mod bin_shear;
pub mod cosmology;
pub mod demo;
pub mod demo_halos;
pub mod emulator;
pub mod fieldflow;
pub mod halos;
pub mod hod;
pub mod massmap;
pub mod nn_bench;
pub mod pm;
pub mod pointcloud;
pub mod prior;
pub mod sample;
pub mod sbi;
pub mod simulate;
pub mod stats;

/// The device networks run on, chosen at run time (`--device`,
/// `COSMODIFF_DEVICE`, Python's `set_device`).
pub use cosmodiff_nn::device as nn_device;

#[cfg(test)]
mod fuzz;
