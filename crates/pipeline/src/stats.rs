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
