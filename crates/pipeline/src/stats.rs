//! `cosmodiff stats xi | pk | knn`: clustering statistics of a catalogue
//! `.npz` (`position` [n, 3] Mpc/h, optional `weight` [n], used when present)
//! in a periodic box: the two-point correlation function by exact pair
//! counts, the power spectrum of the points, and kNN-CDFs
//! ([`cosmodiff_catalog`]).

use crate::halos::read_catalogue;
use crate::io::Npz;
use anyhow::{anyhow, Result};
use cosmodiff_catalog::knn::{knn_cdf, KnnCdf, KnnSettings};
use cosmodiff_catalog::pk_points::{pk_points, PkPoints, PkPointsSettings};
use cosmodiff_catalog::Xi;
use std::path::PathBuf;

/// `cosmodiff stats xi`.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct XiSettings {
    /// Catalogue .npz (`position` [n, 3] Mpc/h; `weight` [n] used when present).
    #[cfg_attr(feature = "cli", arg(long))]
    pub catalog: PathBuf,
    /// Box side [Mpc/h].
    #[cfg_attr(feature = "cli", arg(long))]
    pub box_size: f64,
    /// Separation bin edges [Mpc/h], comma-separated and increasing; the last at most L/2.
    #[cfg_attr(feature = "cli", arg(long, value_delimiter = ',', required = true))]
    pub r_edges: Vec<f64>,
    /// Output .npz: r, xi, pair_counts (each pair once), rr, r_edges.
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
}

/// `cosmodiff stats pk`.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct PkSettings {
    /// Catalogue .npz (`position` [n, 3] Mpc/h; `weight` [n] used when present).
    #[cfg_attr(feature = "cli", arg(long))]
    pub catalog: PathBuf,
    /// Box side [Mpc/h].
    #[cfg_attr(feature = "cli", arg(long))]
    pub box_size: f64,
    /// Mesh cells per side (even).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 128))]
    pub n_mesh: usize,
    /// Skip interlacing (one CIC mesh instead of two).
    #[cfg_attr(feature = "cli", arg(long))]
    pub no_interlacing: bool,
    /// Output .npz: k [h/Mpc], pk [(Mpc/h)^3, shot noise subtracted], n_modes, shot_noise.
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
}

/// `cosmodiff stats knn`.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct KnnArgs {
    /// Catalogue .npz (`position` [n, 3] Mpc/h).
    #[cfg_attr(feature = "cli", arg(long))]
    pub catalog: PathBuf,
    /// Box side [Mpc/h].
    #[cfg_attr(feature = "cli", arg(long))]
    pub box_size: f64,
    /// Neighbour orders, comma-separated.
    #[cfg_attr(
        feature = "cli",
        arg(long, value_delimiter = ',', default_value = "1,2,3,4,5,6,7,8,9")
    )]
    pub k: Vec<usize>,
    /// Random query points.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 100_000))]
    pub n_query: usize,
    /// Radii [Mpc/h], comma-separated (default: 64 log-spaced over the measured range).
    #[cfg_attr(feature = "cli", arg(long, value_delimiter = ','))]
    pub r: Option<Vec<f64>>,
    /// Seed of the query points.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0))]
    pub seed: u64,
    /// Output .npz: k, r [Mpc/h], cdf [n_k, n_r].
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
}

/// `cosmodiff stats hmf`.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct HmfSettings {
    /// Halo catalogue .npz (`mass` [n] Msun/h).
    #[cfg_attr(feature = "cli", arg(long))]
    pub catalog: PathBuf,
    /// Box side [Mpc/h].
    #[cfg_attr(feature = "cli", arg(long))]
    pub box_size: f64,
    /// Bin edges in log10 M [Msun/h], comma-separated (default: 0.2 dex from the lightest halo).
    #[cfg_attr(feature = "cli", arg(long, value_delimiter = ','))]
    pub log_mass_edges: Option<Vec<f64>>,
    /// Omega_m of the simulation: adds the Tinker et al. (2008, 200m) and
    /// Sheth & Tormen (1999) predictions at a = 1 (other parameters Planck 2015).
    #[cfg_attr(feature = "cli", arg(long))]
    pub omega_m: Option<f64>,
    /// sigma8 of the simulation (with --omega-m; default Planck 2015).
    #[cfg_attr(feature = "cli", arg(long))]
    pub sigma8: Option<f64>,
    /// Output .npz: log_mass, count, dn_dlnm, error [(Mpc/h)^-3], and tinker08, sheth_tormen with --omega-m; plus a .png of the same name.
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
}

fn prepare(catalog: &std::path::Path, out: &std::path::Path) -> Result<()> {
    crate::io::require_npz(out)?;
    crate::output::refuse_overwriting_inputs("--out", out, &[("--catalog", catalog)])
}

/// Library errors about the edges name the flag.
fn with_flag(flag: &str, e: cosmodiff_catalog::CatalogError) -> anyhow::Error {
    anyhow!("{flag}: {e}")
}

/// `cosmodiff stats xi`.
pub fn xi(s: &XiSettings) -> Result<Xi> {
    prepare(&s.catalog, &s.out)?;
    cosmodiff_catalog::pairs::check_edges(&s.r_edges, s.box_size)
        .map_err(|e| with_flag("--r-edges", e))?;
    let c = read_catalogue(&s.catalog, s.box_size, "--catalog")?;
    let t0 = std::time::Instant::now();
    let x = cosmodiff_catalog::xi(&c.position, c.weight.as_deref(), s.box_size, &s.r_edges)
        .map_err(|e| with_flag("--catalog", e))?;
    let mut z = Npz::new();
    z.add_1d("r", &x.r)?;
    z.add_1d("xi", &x.xi)?;
    z.add_1d("pair_counts", &x.pair_counts)?;
    z.add_1d("rr", &x.rr)?;
    z.add_1d("r_edges", &x.edges)?;
    z.write(&s.out)?;
    say!(
        "wrote {}: xi(r) of {} points in {} bins ({:.2} s{})",
        s.out.display(),
        c.position.len(),
        x.xi.len(),
        t0.elapsed().as_secs_f64(),
        if c.weight.is_some() { ", weighted" } else { "" }
    );
    Ok(x)
}

/// `cosmodiff stats pk`.
pub fn pk(s: &PkSettings) -> Result<PkPoints> {
    prepare(&s.catalog, &s.out)?;
    if s.n_mesh < 4 || !s.n_mesh.is_multiple_of(2) {
        return Err(anyhow!("--n-mesh must be even and >= 4, got {}", s.n_mesh));
    }
    let c = read_catalogue(&s.catalog, s.box_size, "--catalog")?;
    let set = PkPointsSettings {
        n_mesh: s.n_mesh,
        interlacing: !s.no_interlacing,
        compensate: true,
    };
    let p = pk_points(&c.position, c.weight.as_deref(), s.box_size, &set)
        .map_err(|e| with_flag("--catalog", e))?;
    let mut z = Npz::new();
    z.add_1d("k", &p.k)?;
    z.add_1d("pk", &p.pk)?;
    z.add_1d("n_modes", &p.n_modes)?;
    z.add("shot_noise", &[], vec![p.shot_noise])?;
    z.write(&s.out)?;
    say!(
        "wrote {}: P(k) of {} points on a {}^3 mesh, {} bins, shot noise {:.4e} (Mpc/h)^3 subtracted",
        s.out.display(),
        c.position.len(),
        s.n_mesh,
        p.k.len(),
        p.shot_noise
    );
    Ok(p)
}

/// `cosmodiff stats knn`.
pub fn knn(s: &KnnArgs) -> Result<KnnCdf> {
    prepare(&s.catalog, &s.out)?;
    let c = read_catalogue(&s.catalog, s.box_size, "--catalog")?;
    let set = KnnSettings {
        k: s.k.clone(),
        n_query: s.n_query,
        r: s.r.clone(),
        seed: s.seed,
    };
    let res = knn_cdf(&c.position, s.box_size, &set).map_err(|e| {
        let t = e.to_string();
        let flag = if t.starts_with("k ") || t.starts_with("k =") {
            "--k"
        } else if t.starts_with("r:") {
            "--r"
        } else if t.starts_with("n query") {
            "--n-query"
        } else {
            "--catalog"
        };
        anyhow!("{flag}: {t}")
    })?;
    let mut z = Npz::new();
    z.add_i64(
        "k",
        &[res.k.len()],
        res.k.iter().map(|&k| k as i64).collect(),
    )?;
    z.add_1d("r", &res.r)?;
    z.add_2d("cdf", &res.cdf)?;
    z.write(&s.out)?;
    say!(
        "wrote {}: kNN-CDFs (k = {:?}) of {} points from {} queries at {} radii",
        s.out.display(),
        res.k,
        c.position.len(),
        s.n_query,
        res.r.len()
    );
    Ok(res)
}

/// `cosmodiff stats hmf`: the measured halo mass function, with the
/// Tinker et al. (2008) and Sheth & Tormen (1999) predictions of
/// `cosmodiff_cosmo::halo_mass_function` when the cosmology is given.
pub fn hmf(s: &HmfSettings) -> Result<cosmodiff_catalog::mass_function::MassFunction> {
    use cosmodiff_cosmo::halo_mass_function::{dn_dlnm, MassFunctionModel};
    prepare(&s.catalog, &s.out)?;
    let c = read_catalogue(&s.catalog, s.box_size, "--catalog")?;
    let Some(mass) = c.mass else {
        return Err(anyhow!(
            "--catalog {}: no 'mass' array (Msun/h)",
            s.catalog.display()
        ));
    };
    let edges = match &s.log_mass_edges {
        Some(e) => e.clone(),
        None => {
            let lo = mass.iter().fold(f64::INFINITY, |a, b| a.min(*b)).log10();
            let hi = mass.iter().fold(0.0f64, |a, b| a.max(*b)).log10();
            let n = (((hi - lo) / 0.2).ceil() as usize).max(1);
            (0..=n).map(|i| lo - 1e-9 + 0.2 * i as f64).collect()
        }
    };
    let f = cosmodiff_catalog::mass_function::mass_function(&mass, s.box_size, &edges)
        .map_err(|e| with_flag("--log-mass-edges", e))?;
    let mut z = Npz::new();
    z.add_1d("log_mass", &f.log_mass)?;
    z.add_1d("log_mass_edges", &f.log_mass_edges)?;
    z.add_i64(
        "count",
        &[f.count.len()],
        f.count.iter().map(|&c| c as i64).collect(),
    )?;
    z.add_1d("dn_dlnm", &f.dn_dlnm)?;
    z.add_1d("error", &f.error)?;
    let mut theory = Vec::new();
    if let Some(om) = s.omega_m {
        let mut cosmo = cosmodiff_cosmo::Cosmology::planck15();
        cosmo.omega_c = om - cosmo.omega_b;
        if let Some(s8) = s.sigma8 {
            cosmo.sigma8 = s8;
        }
        cosmo
            .validate()
            .map_err(|e| anyhow!("--omega-m/--sigma8: {e}"))?;
        let p = cosmodiff_cosmo::PowerSpectrum::new(
            &cosmo,
            cosmodiff_cosmo::TransferFunction::EisensteinHu,
            cosmodiff_cosmo::NonLinear::Linear,
        )
        .map_err(|e| anyhow!("power spectrum: {e}"))?;
        for (key, model) in [
            ("tinker08", MassFunctionModel::Tinker08),
            ("sheth_tormen", MassFunctionModel::ShethTormen),
        ] {
            let v: Vec<f64> = f
                .log_mass
                .iter()
                .map(|l| dn_dlnm(&cosmo, &p, model, 10f64.powf(*l), 1.0))
                .collect();
            z.add_1d(key, &v)?;
            theory.push((key, v));
        }
    } else if s.sigma8.is_some() {
        return Err(anyhow!("--sigma8 needs --omega-m"));
    }
    z.write(&s.out)?;
    // plot: measured with Poisson errors, and the predictions
    let keep: Vec<usize> = (0..f.count.len()).filter(|&i| f.count[i] > 0).collect();
    let pick = |v: &[f64]| keep.iter().map(|&i| v[i]).collect::<Vec<f64>>();
    let m: Vec<f64> = pick(&f.log_mass).iter().map(|l| 10f64.powf(*l)).collect();
    let mut plot = cosmodiff_plot::lines::LinePlot::new(
        "halo mass function",
        "M [Msun/h]",
        "dn/dln M [(Mpc/h)^-3]",
    )
    .log_x(true)
    .log_y(true)
    .add(cosmodiff_plot::lines::Series::points(
        "measured (Poisson errors)",
        &m,
        &pick(&f.dn_dlnm),
        Some(&pick(&f.error)),
    ));
    for (k, v) in &theory {
        plot = plot.add(cosmodiff_plot::lines::Series::line(k, &m, &pick(v)));
    }
    let png = s.out.with_extension("png");
    if !m.is_empty() {
        crate::output::write_via(&png, |t| Ok(plot.save(t)?))?;
    }
    say!(
        "wrote {} and {}: dn/dln M of {} halos in {} bins{}",
        s.out.display(),
        png.display(),
        mass.len(),
        f.count.len(),
        if theory.is_empty() {
            ""
        } else {
            ", with Tinker08 and Sheth-Tormen"
        }
    );
    Ok(f)
}
