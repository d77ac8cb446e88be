//! Halo catalogues: `cosmodiff halos fof` on particle positions, the
//! `[halos]` section of `cosmodiff pm run`, and the catalogue files every
//! catalogue command reads and writes. Campaigns over many cosmologies are
//! in [`campaign`] (`cosmodiff simulate halos`).
//!
//! A halo catalogue (`halos.npz`): `position` [n, 3] (Mpc/h, in [0, L)),
//! `velocity` [n, 3] (km/s, when particle velocities are known), `mass` [n]
//! (Msun/h), `n_particles` [n] (int64), sorted by mass descending.
//! A galaxy catalogue (`cosmodiff hod populate`): `position` [n, 3],
//! `is_central` [n] (bool), `weight` [n].

pub mod campaign;

use crate::io::Npz;
use crate::output::refuse_overwriting_inputs;
use anyhow::{anyhow, bail, Context, Result};
use cosmodiff_catalog::fof::particle_mass;
use cosmodiff_catalog::{friends_of_friends, FofSettings, Halos};
use ndarray::ArrayD;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// `[halos]` of a `pm run` config: friends-of-friends on the final particles.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HalosSection {
    /// Linking length in units of the mean inter-particle separation (default 0.2).
    pub linking_length: Option<f64>,
    /// Smallest group kept (default 20).
    pub min_particles: Option<usize>,
}

impl HalosSection {
    /// The friends-of-friends settings, checked.
    pub fn settings(&self) -> Result<FofSettings> {
        let d = FofSettings::default();
        let s = FofSettings {
            linking_length: self.linking_length.unwrap_or(d.linking_length),
            min_particles: self.min_particles.unwrap_or(d.min_particles),
        };
        s.validate().map_err(|e| anyhow!("[halos] {e}"))?;
        Ok(s)
    }
}

/// Friends-of-friends halos of a finished PM run: positions from the
/// particles (mesh-cell units times `L / n_mesh`, wrapped into `[0, L)`),
/// velocities `v = a dx/dt = H0 p / a` [km/s] from the momenta
/// `p = a^3 E dx/da` (`H0 = 100 km/s per Mpc/h`).
pub(crate) fn halos_of_simulation(
    sim: &crate::pm::Simulation,
    omega_m: f64,
    s: &FofSettings,
) -> Result<Halos> {
    let cell = sim.box_size / sim.n_mesh as f64;
    let x = sim.pm.integrator().positions(&sim.st.disp);
    let pos: Vec<[f64; 3]> = x
        .iter()
        .map(|p| p.map(|c| cosmodiff_catalog::wrap(c as f64 * cell, sim.box_size)))
        .collect();
    let vel: Vec<[f64; 3]> = sim
        .st
        .mom
        .iter()
        .map(|p| p.map(|c| 100.0 * c as f64 * cell / sim.st.a))
        .collect();
    let mp = particle_mass(omega_m, sim.box_size, pos.len());
    Ok(friends_of_friends(&pos, Some(&vel), sim.box_size, mp, s)?)
}

/// Write a halo catalogue (see the module docs for the keys).
pub fn write_halos(path: &Path, h: &Halos) -> Result<()> {
    let n = h.len();
    let mut z = Npz::new();
    z.add(
        "position",
        &[n, 3],
        h.position.iter().flatten().copied().collect(),
    )?;
    if let Some(v) = &h.velocity {
        z.add("velocity", &[n, 3], v.iter().flatten().copied().collect())?;
    }
    z.add_1d("mass", &h.mass)?;
    z.add_i64(
        "n_particles",
        &[n],
        h.n_particles.iter().map(|&c| c as i64).collect(),
    )?;
    z.write(path)
}

/// Particle positions [Mpc/h] wrapped into `[0, L)` from a `.npy`:
/// `[N, 3]` in Mpc/h, or the `[n, n, n, 3]` array `pm run` writes
/// (`positions.npy`: mesh-cell units, not wrapped). For the latter the mesh
/// size is `n_mesh` when given, else read off the particle lattice: particles
/// start at `q = (i, j, k) n_mesh / n`, so the median spacing of neighbouring
/// particles along x is `n_mesh / n` (displacement gradients average out).
pub fn read_positions(path: &Path, box_size: f64, n_mesh: Option<usize>) -> Result<Vec<[f64; 3]>> {
    let a = crate::io::read_float_npy(path, "--positions")?;
    let shape = a.shape().to_vec();
    let rows: Vec<[f64; 3]> = to_rows(&a, path, "--positions")?;
    if let Some(i) = rows.iter().position(|p| p.iter().any(|c| !c.is_finite())) {
        bail!(
            "--positions {}: particle {i} has a non-finite coordinate",
            path.display()
        );
    }
    if shape.len() == 2 {
        if n_mesh.is_some() {
            bail!("--n-mesh applies to the [n, n, n, 3] layout of pm run, not to [N, 3] positions in Mpc/h");
        }
        if let Some(i) = rows
            .iter()
            .position(|p| p.iter().any(|c| !(*c >= 0.0 && *c < box_size)))
        {
            let p = rows[i];
            bail!(
                "--positions {}: particle {i} at [{}, {}, {}] is outside the box [0, {box_size}) Mpc/h (--box-size)",
                path.display(),
                p[0],
                p[1],
                p[2]
            );
        }
        return Ok(rows);
    }
    let n = shape[0];
    let nm = match n_mesh {
        Some(m) => m,
        None => {
            let m = lattice_mesh(&rows, n);
            say!("--positions {}: pm-run layout [{n}, {n}, {n}, 3], n_mesh = {m} read off the particle lattice (--n-mesh overrides)", path.display());
            m
        }
    };
    if nm == 0 {
        bail!("--n-mesh must be positive");
    }
    let cell = box_size / nm as f64;
    Ok(rows
        .iter()
        .map(|p| p.map(|c| cosmodiff_catalog::wrap(c * cell, box_size)))
        .collect())
}

/// Mesh size of a `pm run` particle lattice (see [`read_positions`]).
///
/// Particles start at `q = (i, j, k) h`, `h = n_mesh / n`, and are not
/// wrapped, so their mean position is `h (n - 1) / 2 + <s>` on each axis;
/// the mean displacement `<s>` vanishes (zero-mean initial displacements,
/// momentum-conserving forces), hence `h = 2 <x> / (n - 1)`, rounded to an
/// even `n_mesh`. (The median neighbour spacing is biased low by clustering.)
fn lattice_mesh(rows: &[[f64; 3]], n: usize) -> usize {
    if n < 2 || rows.is_empty() {
        return n.max(2);
    }
    let mean: f64 = rows.iter().map(|p| p[0] + p[1] + p[2]).sum::<f64>() / (3 * rows.len()) as f64;
    let h = 2.0 * mean / (n - 1) as f64;
    ((h * n as f64 / 2.0).round() as usize * 2).max(2)
}

/// Rows of a `[..., 3]` float array.
fn to_rows(a: &ArrayD<f64>, path: &Path, what: &str) -> Result<Vec<[f64; 3]>> {
    let shape = a.shape();
    let ok = (shape.len() == 2 && shape[1] == 3)
        || (shape.len() == 4 && shape[3] == 3 && shape[0] == shape[1] && shape[1] == shape[2]);
    if !ok {
        bail!(
            "{what} {}: shape {shape:?}, expected [N, 3] or [n, n, n, 3]",
            path.display()
        );
    }
    let flat: Vec<f64> = a.iter().copied().collect();
    Ok(flat.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect())
}

/// A catalogue `.npz` with `position` [n, 3] (Mpc/h) and optional `weight` [n].
pub struct Catalogue {
    pub position: Vec<[f64; 3]>,
    pub weight: Option<Vec<f64>>,
    pub mass: Option<Vec<f64>>,
}

/// Read a catalogue `.npz` (halos or galaxies) and check it against the box.
pub fn read_catalogue(path: &Path, box_size: f64, flag: &str) -> Result<Catalogue> {
    if !(box_size > 0.0 && box_size.is_finite()) {
        bail!("--box-size must be positive and finite, got {box_size}");
    }
    let f = std::fs::File::open(path)
        .with_context(|| format!("{flag} {}: cannot open", path.display()))?;
    let mut z = ndarray_npy::NpzReader::new(f)
        .with_context(|| format!("{flag} {}: not a numpy .npz archive", path.display()))?;
    let names = z.names().unwrap_or_default();
    let has = |k: &str| names.iter().any(|n| n == k || n == &format!("{k}.npy"));
    if !has("position") {
        bail!(
            "{flag} {}: no 'position' array (keys: {})",
            path.display(),
            names.join(", ")
        );
    }
    let p = crate::io::npz_float(&mut z, "position")
        .with_context(|| format!("{flag} {}: cannot read 'position'", path.display()))?;
    if p.ndim() != 2 || p.shape()[1] != 3 {
        bail!(
            "{flag} {}: 'position' has shape {:?}, expected [n, 3]",
            path.display(),
            p.shape()
        );
    }
    let position = to_rows(&p, path, flag)?;
    if position.is_empty() {
        bail!("{flag} {}: the catalogue is empty", path.display());
    }
    // the library's check (finite, inside [0, L)), named by flag and file
    cosmodiff_catalog::check_positions(&position, box_size)
        .map_err(|e| anyhow!("{flag} {}: {e} (--box-size)", path.display()))?;
    let mut vec1 = |k: &str| -> Result<Option<Vec<f64>>> {
        if !has(k) {
            return Ok(None);
        }
        let a = crate::io::npz_float(&mut z, k)
            .with_context(|| format!("{flag} {}: cannot read '{k}'", path.display()))?;
        if a.shape() != [position.len()] {
            bail!(
                "{flag} {}: '{k}' has shape {:?}, expected [{}]",
                path.display(),
                a.shape(),
                position.len()
            );
        }
        let v: Vec<f64> = a.iter().copied().collect();
        if let Some(i) = v.iter().position(|x| !x.is_finite()) {
            bail!("{flag} {}: {k} {i} is not finite", path.display());
        }
        Ok(Some(v))
    };
    let weight = vec1("weight")?;
    let mass = vec1("mass")?;
    Ok(Catalogue {
        position,
        weight,
        mass,
    })
}

/// `cosmodiff halos fof`: where the particles are and how to link them.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct FofArgs {
    /// Particle positions .npy: [N, 3] in Mpc/h, or the positions.npy of `pm run` ([n, n, n, 3], mesh-cell units).
    #[cfg_attr(feature = "cli", arg(long))]
    pub positions: PathBuf,
    /// Particle velocities .npy [km/s], same layout as --positions (optional).
    #[cfg_attr(feature = "cli", arg(long))]
    pub velocities: Option<PathBuf>,
    /// Box side [Mpc/h].
    #[cfg_attr(feature = "cli", arg(long))]
    pub box_size: f64,
    /// Omega_m of the simulation (sets the particle mass Omega_m rho_crit L^3 / N).
    #[cfg_attr(feature = "cli", arg(long))]
    pub omega_m: f64,
    /// Output halo catalogue (.npz).
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
    /// Linking length in units of the mean inter-particle separation.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0.2))]
    pub linking_length: f64,
    /// Smallest group kept as a halo.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 20))]
    pub min_particles: usize,
    /// Mesh size of a pm-run positions.npy (default: read off the particle lattice).
    #[cfg_attr(feature = "cli", arg(long))]
    pub n_mesh: Option<usize>,
}

/// `cosmodiff halos fof`: friends-of-friends halos of particles.
pub fn fof(a: &FofArgs) -> Result<Halos> {
    crate::io::require_npz(&a.out)?;
    let mut inputs = vec![("--positions", a.positions.as_path())];
    if let Some(v) = &a.velocities {
        inputs.push(("--velocities", v.as_path()));
    }
    refuse_overwriting_inputs("--out", &a.out, &inputs)?;
    if !(a.box_size > 0.0 && a.box_size.is_finite()) {
        bail!("--box-size must be positive and finite, got {}", a.box_size);
    }
    if !(a.omega_m > 0.0 && a.omega_m <= 2.0) {
        bail!("--omega-m must be in (0, 2], got {}", a.omega_m);
    }
    if !(a.linking_length > 0.0 && a.linking_length < 1.0) {
        bail!(
            "--linking-length must be in (0, 1) (units of the mean inter-particle separation), got {}",
            a.linking_length
        );
    }
    if a.min_particles == 0 {
        bail!("--min-particles must be at least 1");
    }
    let pos = read_positions(&a.positions, a.box_size, a.n_mesh)?;
    if pos.is_empty() {
        bail!("--positions {}: no particles", a.positions.display());
    }
    let vel = match &a.velocities {
        Some(p) => {
            let v = crate::io::read_float_npy(p, "--velocities")?;
            let rows = to_rows(&v, p, "--velocities")?;
            if rows.len() != pos.len() {
                bail!(
                    "--velocities {}: {} rows for {} particles",
                    p.display(),
                    rows.len(),
                    pos.len()
                );
            }
            Some(rows)
        }
        None => None,
    };
    let s = FofSettings {
        linking_length: a.linking_length,
        min_particles: a.min_particles,
    };
    let t0 = std::time::Instant::now();
    let mp = particle_mass(a.omega_m, a.box_size, pos.len());
    let h = friends_of_friends(&pos, vel.as_deref(), a.box_size, mp, &s)?;
    write_halos(&a.out, &h)?;
    say!(
        "wrote {}: {} halos from {} particles ({:.2} s; particle mass {mp:.4e} Msun/h{})",
        a.out.display(),
        h.len(),
        pos.len(),
        t0.elapsed().as_secs_f64(),
        h.mass
            .first()
            .map(|m| format!(", largest {m:.3e} Msun/h"))
            .unwrap_or_default()
    );
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lattice_mesh_is_read_off_the_particles() {
        for (n, nm) in [(8usize, 8usize), (8, 16), (8, 12)] {
            let h = nm as f64 / n as f64;
            let mut rows = Vec::new();
            for i in 0..n {
                for j in 0..n {
                    for k in 0..n {
                        // zero-mean displacements of up to 2.5 cells
                        let s = 1.25 * (((i * 7 + j * 3 + k) % 5) as f64 - 2.0);
                        rows.push([i as f64 * h + s, j as f64 * h, k as f64 * h - s]);
                    }
                }
            }
            assert_eq!(lattice_mesh(&rows, n), nm);
        }
    }
}
