//! `cosmodiff hod populate`: galaxies in halos from the Zheng et al. (2007)
//! occupation ([`cosmodiff_catalog::hod`]), sampled exactly or with the
//! relaxed sampler of Horowitz et al. (2022) (`--relaxed-temperature T`:
//! every candidate is written, with its differentiable weight).
//!
//! Writes `position` [n, 3] (Mpc/h), `is_central` [n] (bool) and `weight`
//! [n] (1 for the exact sampler).

use crate::halos::read_catalogue;
use crate::io::Npz;
use anyhow::{bail, Result};
use cosmodiff_catalog::{HodSample, Zheng07};
use std::path::PathBuf;

/// `cosmodiff hod populate`.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct PopulateSettings {
    /// Halo catalogue .npz (`position` [n, 3] Mpc/h, `mass` [n] Msun/h), e.g. from `halos fof`.
    #[cfg_attr(feature = "cli", arg(long))]
    pub halos: PathBuf,
    /// Box side [Mpc/h].
    #[cfg_attr(feature = "cli", arg(long))]
    pub box_size: f64,
    /// Output galaxy catalogue (.npz).
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
    /// log10 M_min [Msun/h]: half of the halos of this mass host a central.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 13.0))]
    pub log_mmin: f64,
    /// sigma_logM: width of the central cut-off.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0.5))]
    pub sigma_logm: f64,
    /// log10 M_0 [Msun/h]: satellite cut-off mass.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 13.0))]
    pub log_m0: f64,
    /// log10 M_1 [Msun/h]: mass scale of one satellite.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 14.0))]
    pub log_m1: f64,
    /// Satellite power-law slope alpha.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 1.0))]
    pub alpha: f64,
    /// Multiply <N_sat> by <N_cen> (halotools' modulate_with_cenocc).
    #[cfg_attr(feature = "cli", arg(long))]
    pub modulate_with_cenocc: bool,
    /// Relaxed (differentiable) sampling at this temperature: all candidates, weighted.
    #[cfg_attr(feature = "cli", arg(long))]
    pub relaxed_temperature: Option<f64>,
    /// Random seed.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0))]
    pub seed: u64,
}

impl PopulateSettings {
    /// The HOD parameters.
    pub fn model(&self) -> Zheng07 {
        Zheng07 {
            log_mmin: self.log_mmin,
            sigma_logm: self.sigma_logm,
            log_m0: self.log_m0,
            log_m1: self.log_m1,
            alpha: self.alpha,
            modulate_with_cenocc: self.modulate_with_cenocc,
        }
    }
}

/// A library error about an HOD parameter, prefixed with its flag.
fn hod_error(e: cosmodiff_catalog::CatalogError) -> anyhow::Error {
    let t = e.to_string();
    let f = [
        ("log M_min", "--log-mmin"),
        ("sigma_logM", "--sigma-logm"),
        ("log M_0", "--log-m0"),
        ("log M_1", "--log-m1"),
        ("alpha", "--alpha"),
        ("temperature", "--relaxed-temperature"),
    ]
    .iter()
    .find(|(k, _)| t.contains(k))
    .map(|(_, f)| *f);
    match f {
        Some(f) => anyhow::anyhow!("{f}: {t}"),
        None => anyhow::anyhow!(t),
    }
}

/// Draw galaxies for halos at `position` [Mpc/h] of `mass` [Msun/h] in a box
/// of side `box_size`: exact sampling, or relaxed at `relaxed_temperature`.
/// Errors name the CLI flag of the offending parameter.
pub fn populate_halos(
    model: &Zheng07,
    relaxed_temperature: Option<f64>,
    box_size: f64,
    seed: u64,
    position: &[[f64; 3]],
    mass: &[f64],
) -> Result<HodSample> {
    Ok(match relaxed_temperature {
        None => model
            .populate(position, mass, box_size, seed)
            .map_err(hod_error)?,
        Some(tau) => model
            .populate_relaxed(position, mass, box_size, tau, seed)
            .map_err(hod_error)?,
    })
}

/// Write a galaxy catalogue.
pub fn write_galaxies(path: &std::path::Path, g: &HodSample) -> Result<()> {
    let n = g.position.len();
    let mut z = Npz::new();
    z.add(
        "position",
        &[n, 3],
        g.position.iter().flatten().copied().collect(),
    )?;
    z.add_bool("is_central", &[n], g.is_central.clone())?;
    z.add_1d("weight", &g.weight)?;
    z.write(path)
}

/// `cosmodiff hod populate`: read the halos, draw galaxies, write them.
pub fn populate(s: &PopulateSettings) -> Result<HodSample> {
    crate::io::require_npz(&s.out)?;
    crate::output::refuse_overwriting_inputs("--out", &s.out, &[("--halos", &s.halos)])?;
    // parameters first: no reading before a bad flag is reported
    s.model().validate().map_err(hod_error)?;
    if let Some(t) = s.relaxed_temperature {
        if !(t > 0.0 && t.is_finite()) {
            bail!("--relaxed-temperature must be positive, got {t}");
        }
    }
    let cat = read_catalogue(&s.halos, s.box_size, "--halos")?;
    let Some(mass) = cat.mass else {
        bail!("--halos {}: no 'mass' array (Msun/h)", s.halos.display());
    };
    let g = populate_halos(
        &s.model(),
        s.relaxed_temperature,
        s.box_size,
        s.seed,
        &cat.position,
        &mass,
    )?;
    write_galaxies(&s.out, &g)?;
    let nc = g.is_central.iter().filter(|c| **c).count();
    say!(
        "wrote {}: {} galaxies ({nc} centrals, {} satellites{}) in {} halos",
        s.out.display(),
        g.position.len(),
        g.position.len() - nc,
        match s.relaxed_temperature {
            Some(t) => format!(
                ", relaxed at T = {t}: total weight {:.1}",
                g.weight.iter().sum::<f64>()
            ),
            None => String::new(),
        },
        cat.position.len()
    );
    Ok(g)
}
