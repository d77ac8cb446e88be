//! Step 6 of `cosmodiff demo`: halos and galaxies from a particle-mesh run.
//!
//! A FastPM run (the `pm run` code path, config written next to the outputs
//! as `pm.toml`), friends-of-friends halos, Zheng07 galaxies, the halo mass
//! function against Tinker et al. (2008), and xi(r) of halos and galaxies.

use crate::halos::{halos_of_simulation, write_halos};
use crate::hod::{populate_halos, write_galaxies};
use anyhow::{anyhow, Result};
use cosmodiff_catalog::mass_function::mass_function;
use cosmodiff_catalog::Zheng07;
use cosmodiff_cosmo::halo_mass_function::{dn_dlnm, MassFunctionModel};
use cosmodiff_cosmo::{NonLinear, PowerSpectrum, TransferFunction};
use cosmodiff_plot::lines::{LinePlot, Series};
use std::fmt::Write as _;
use std::path::Path;

/// What the halo step reports.
pub struct HaloStep {
    pub report: String,
    pub summary_line: String,
}

fn pm_toml(seed: u64) -> String {
    format!(
        r#"# Written by `cosmodiff demo`; rerun with: cosmodiff pm run --config pm.toml --out pm
[cosmology]
preset = "planck15"
[box]
n_mesh = 128
n_particles = 64
box_size = 128.0
[ic]
seed = {seed}
[steps]
n = 10
[halos]
linking_length = 0.2
min_particles = 20
"#
    )
}

/// Run the step into `out`, adding arrays to `npz`.
pub fn run(out: &Path, seed: u64, npz: &mut crate::io::Npz) -> Result<HaloStep> {
    let cfg = out.join("pm.toml");
    let text = pm_toml(seed);
    crate::output::write_bytes(&cfg, text.as_bytes())?;
    let t: crate::pm::PmToml = crate::config::parse(&text, &cfg)?;
    let cosmo = t.cosmology.build()?;
    let sim = crate::pm::simulate(&t, &cosmo, &cfg, None)?;
    let fof = t.halos.clone().unwrap_or_default().settings()?;
    let h = halos_of_simulation(&sim, cosmo.omega_m(), &fof)?;
    write_halos(&out.join("halos.npz"), &h)?;
    let l = sim.box_size;
    let hod = Zheng07 {
        log_mmin: 12.8,
        sigma_logm: 0.3,
        log_m0: 12.8,
        log_m1: 13.8,
        alpha: 1.0,
        modulate_with_cenocc: false,
    };
    let g = populate_halos(&hod, None, l, seed, &h.position, &h.mass)?;
    write_galaxies(&out.join("galaxies.npz"), &g)?;

    // mass function vs Tinker et al. (2008)
    let lo = h.mass.last().copied().unwrap_or(1e13).log10();
    let edges: Vec<f64> = (0..=8).map(|i| lo - 1e-9 + 0.25 * i as f64).collect();
    let mf = mass_function(&h.mass, l, &edges).map_err(|e| anyhow!("{e}"))?;
    let p = PowerSpectrum::new(&cosmo, TransferFunction::EisensteinHu, NonLinear::Linear)
        .map_err(|e| anyhow!("power spectrum: {e}"))?;
    let tinker: Vec<f64> = mf
        .log_mass
        .iter()
        .map(|lm| {
            dn_dlnm(
                &cosmo,
                &p,
                MassFunctionModel::Tinker08,
                10f64.powf(*lm),
                1.0,
            )
        })
        .collect();
    let keep: Vec<usize> = (0..mf.count.len()).filter(|&i| mf.count[i] > 0).collect();
    let pick = |v: &[f64]| keep.iter().map(|&i| v[i]).collect::<Vec<f64>>();
    let m: Vec<f64> = pick(&mf.log_mass).iter().map(|x| 10f64.powf(*x)).collect();
    let plot = LinePlot::new(
        &format!("FoF halos of a {}^3 PM run in {l} Mpc/h", sim.n_particles),
        "M [Msun/h]",
        "dn/dln M [(Mpc/h)^-3]",
    )
    .log_x(true)
    .log_y(true)
    .add(Series::points(
        "PM + FoF (Poisson errors)",
        &m,
        &pick(&mf.dn_dlnm),
        Some(&pick(&mf.error)),
    ))
    .add(Series::line(
        "Tinker et al. 2008 (200m)",
        &m,
        &pick(&tinker),
    ));
    crate::output::write_via(&out.join("hmf.png"), |t| Ok(plot.save(t)?))?;

    // xi(r) of halos and galaxies
    let edges_r: Vec<f64> = (0..=10)
        .map(|i| 1.0 * (40f64).powf(i as f64 / 10.0))
        .collect();
    let xh = cosmodiff_catalog::xi(&h.position, None, l, &edges_r).map_err(|e| anyhow!("{e}"))?;
    let xg = cosmodiff_catalog::xi(&g.position, None, l, &edges_r).map_err(|e| anyhow!("{e}"))?;
    let plot = LinePlot::new("two-point correlation function", "r [Mpc/h]", "xi(r)")
        .log_x(true)
        .log_y(true)
        .add(Series::line(
            "halos",
            &xh.r,
            &xh.xi.iter().map(|v| v.max(1e-3)).collect::<Vec<_>>(),
        ))
        .add(Series::line(
            "galaxies (Zheng07)",
            &xg.r,
            &xg.xi.iter().map(|v| v.max(1e-3)).collect::<Vec<_>>(),
        ));
    crate::output::write_via(&out.join("xi.png"), |t| Ok(plot.save(t)?))?;

    npz.add_1d("halo_mass", &h.mass)?;
    npz.add_1d("hmf_log_mass", &mf.log_mass)?;
    npz.add_1d("hmf_dn_dlnm", &mf.dn_dlnm)?;
    npz.add_1d("hmf_tinker08", &tinker)?;
    npz.add_1d("xi_r", &xh.r)?;
    npz.add_1d("xi_halos", &xh.xi)?;
    npz.add_1d("xi_galaxies", &xg.xi)?;

    let nc = g.is_central.iter().filter(|c| **c).count();
    let mut r = String::new();
    writeln!(
        r,
        "## 6. Halos and galaxies from a particle-mesh simulation\n"
    )?;
    writeln!(r, "FastPM, {np}^3 particles on a {nm}^3 mesh in {l} Mpc/h, 10 steps to a = 1 ({el:.1} s; config `pm.toml`). Friends-of-friends (b = 0.2, >= 20 particles): {nh} halos from {m0:.2e} to {m1:.2e} Msun/h (`halos.npz`). Zheng07 HOD (log M_min = 12.8, sigma_logM = 0.3, log M_0 = 12.8, log M_1 = 13.8, alpha = 1): {ng} galaxies, {nc} centrals (`galaxies.npz`).\n",
        np = sim.n_particles, nm = sim.n_mesh, el = sim.elapsed_s, nh = h.len(),
        m0 = h.mass.last().copied().unwrap_or(0.0), m1 = h.mass.first().copied().unwrap_or(0.0),
        ng = g.position.len())?;
    writeln!(r, "![hmf](hmf.png) ![xi](xi.png)\n")?;
    writeln!(
        r,
        "| log10 M [Msun/h] | halos | dn/dln M measured / Tinker08 |\n|---|---|---|"
    )?;
    for i in &keep {
        writeln!(
            r,
            "| {:.2} | {} | {:.2} |",
            mf.log_mass[*i],
            mf.count[*i],
            mf.dn_dlnm[*i] / tinker[*i]
        )?;
    }
    writeln!(r, "\nThe deficit of light halos (tens of particles) is the PM force resolution (two mesh cells per particle spacing here); see docs/halos.md.\n")?;
    let summary_line = format!(
        "  halos: {} FoF halos, {} galaxies; xi_gal(r = {:.1} Mpc/h) = {:.2}",
        h.len(),
        g.position.len(),
        xg.r[5],
        xg.xi[5]
    );
    Ok(HaloStep {
        report: r,
        summary_line,
    })
}
