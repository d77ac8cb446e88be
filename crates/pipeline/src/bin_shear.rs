//! `cosmodiff bin-shear`: shear and noise maps from galaxy catalogues, in
//! the input layout of `cosmodiff massmap`.
//!
//! Each catalogue (`.csv` or a FITS binary table; columns `e1`, `e2`,
//! optional `w`/`weight`, and flat-sky `x`, `y` or sky `ra`, `dec` in
//! degrees) becomes one source bin, binned by
//! [`cosmodiff_lensing::catalog::bin_catalog`]: per pixel the weighted mean
//! ellipticity, its noise `sigma_e sqrt(sum w^2) / sum w`, the galaxy count
//! and a mask (0 where no galaxy fell). Sky positions are projected onto
//! the plane tangent at one centre for all bins (gnomonic, `x` towards
//! increasing RA), the map centred on it; flat-sky maps are centred on the
//! first catalogue's bounding box. `--origin-arcmin` places the map's
//! lower-left corner instead.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use cosmodiff_field::Grid2;
use cosmodiff_lensing::catalog::{
    bin_catalog, catalog_from_columns, read_catalog, AngleUnit, Catalog, Positions,
};

/// Settings of [`run`].
#[derive(Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct Settings {
    /// Galaxy catalogue, .csv or .fits: columns e1, e2, optional w (or weight), and x, y (flat
    /// sky, see --unit) or ra, dec (degrees). Repeat for several source bins.
    #[cfg_attr(feature = "cli", arg(long, required = true))]
    pub catalog: Vec<PathBuf>,
    /// Pixels per side of the maps.
    #[cfg_attr(feature = "cli", arg(long))]
    pub npix: usize,
    /// Pixel size in arcmin.
    #[cfg_attr(feature = "cli", arg(long))]
    pub pixel_arcmin: f64,
    /// Unit of flat-sky x, y columns: arcmin or deg.
    #[cfg_attr(feature = "cli", arg(long, default_value = "arcmin"))]
    pub unit: String,
    /// Tangent point of ra/dec catalogues, "RA,DEC" in degrees (default: the mean direction of
    /// the first catalogue).
    #[cfg_attr(feature = "cli", arg(long, value_name = "RA,DEC"))]
    pub center: Option<String>,
    /// Lower-left corner of the map, "X,Y" in arcmin on the (tangent) plane (default: the map
    /// centred on the tangent point, or on the first flat-sky catalogue).
    #[cfg_attr(feature = "cli", arg(long, value_name = "X,Y"))]
    pub origin_arcmin: Option<String>,
    /// Shape noise per component (default: estimated from each catalogue).
    #[cfg_attr(feature = "cli", arg(long))]
    pub sigma_e: Option<f64>,
    /// Output .npz: e1, e2, noise_std, mask, counts ([npix, npix], or [n_bins, npix, npix]),
    /// pixel_arcmin, sigma_e, origin_arcmin, and center_deg for ra/dec catalogues.
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
}

/// Binned maps of one or more source bins.
#[derive(Debug, Clone, PartialEq)]
pub struct ShearBins {
    pub npix: usize,
    pub pixel_arcmin: f64,
    /// Per bin, `[npix * npix]` row-major (`y` rows, `x` columns).
    pub e1: Vec<Vec<f64>>,
    pub e2: Vec<Vec<f64>>,
    pub noise_std: Vec<Vec<f64>>,
    pub mask: Vec<Vec<f64>>,
    pub counts: Vec<Vec<usize>>,
    /// Shape noise used per bin.
    pub sigma_e: Vec<f64>,
    /// Galaxies outside the map per bin.
    pub outside: Vec<usize>,
    /// Lower-left corner of the map (arcmin).
    pub origin_arcmin: (f64, f64),
    /// Tangent point (RA, Dec in degrees) of sky catalogues.
    pub center_deg: Option<(f64, f64)>,
}

/// "A,B" as two finite numbers.
fn pair(s: &str, flag: &str) -> Result<(f64, f64)> {
    let v: Vec<f64> = s
        .split(',')
        .map(|t| t.trim().parse::<f64>())
        .collect::<std::result::Result<_, _>>()
        .ok()
        .filter(|v: &Vec<f64>| v.len() == 2 && v.iter().all(|x| x.is_finite()))
        .with_context(|| format!("{flag} {s}: expected two numbers \"A,B\""))?;
    Ok((v[0], v[1]))
}

/// `--unit` as an [`AngleUnit`].
pub fn angle_unit(unit: &str) -> Result<AngleUnit> {
    match unit {
        "arcmin" => Ok(AngleUnit::Arcmin),
        "deg" => Ok(AngleUnit::Deg),
        u => bail!("--unit {u}: expected arcmin or deg"),
    }
}

/// A point given as "A,B" (degrees or arcmin).
type Point = Option<(f64, f64)>;

/// Check the map settings before reading anything: the unit, the centre
/// and the origin.
fn check(s: &Settings) -> Result<(AngleUnit, Point, Point)> {
    if !(1..=8192).contains(&s.npix) {
        bail!("--npix {}: expected 1 to 8192 pixels per side", s.npix);
    }
    if !(s.pixel_arcmin > 0.0 && s.pixel_arcmin.is_finite()) {
        bail!(
            "--pixel-arcmin {}: expected a positive number of arcmin",
            s.pixel_arcmin
        );
    }
    if let Some(e) = s.sigma_e {
        if !(e > 0.0 && e.is_finite()) {
            bail!("--sigma-e {e}: expected a positive shape noise");
        }
    }
    let unit = angle_unit(&s.unit)?;
    let center = s
        .center
        .as_deref()
        .map(|c| pair(c, "--center"))
        .transpose()?;
    if let Some((_, dec)) = center {
        if dec.abs() > 90.0 {
            bail!("--center: Dec {dec} is outside [-90, 90] degrees");
        }
    }
    let origin = s
        .origin_arcmin
        .as_deref()
        .map(|o| pair(o, "--origin-arcmin"))
        .transpose()?;
    Ok((unit, center, origin))
}

/// Bin catalogues already read (all on one tangent plane or all flat-sky)
/// into maps of `npix` pixels of `pixel_arcmin`; `origin_arcmin` is the
/// map's lower-left corner (default: centred as the module docs say).
pub fn bin(
    catalogs: &[Catalog],
    npix: usize,
    pixel_arcmin: f64,
    origin_arcmin: Option<(f64, f64)>,
    sigma_e: Option<f64>,
) -> Result<ShearBins> {
    let first = catalogs.first().context("no catalogue to bin")?;
    if !(1..=8192).contains(&npix) {
        bail!("npix {npix}: expected 1 to 8192 pixels per side");
    }
    let grid = Grid2::new(npix, pixel_arcmin)?;
    let side = npix as f64 * pixel_arcmin;
    let origin = match (origin_arcmin, first.center_deg) {
        (Some(o), _) => o,
        (None, Some(_)) => (-side / 2.0, -side / 2.0),
        (None, None) => {
            let mid = |v: &[f64]| {
                let (lo, hi) = v
                    .iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
                        (a.min(x), b.max(x))
                    });
                (lo + hi) / 2.0
            };
            (
                mid(&first.x_arcmin) - side / 2.0,
                mid(&first.y_arcmin) - side / 2.0,
            )
        }
    };
    let mut out = ShearBins {
        npix,
        pixel_arcmin,
        e1: vec![],
        e2: vec![],
        noise_std: vec![],
        mask: vec![],
        counts: vec![],
        sigma_e: vec![],
        outside: vec![],
        origin_arcmin: origin,
        center_deg: first.center_deg,
    };
    for c in catalogs {
        let b = bin_catalog(c, &grid, origin, sigma_e)?;
        out.e1.push(b.g1);
        out.e2.push(b.g2);
        out.noise_std.push(b.noise_std);
        out.mask.push(b.mask);
        out.counts.push(b.counts);
        out.sigma_e.push(b.sigma_e);
        out.outside.push(b.outside);
    }
    Ok(out)
}

/// Where a catalogue comes from.
pub enum Source {
    /// A `.csv` or `.fits` file.
    File(PathBuf),
    /// Named columns in memory (`what` names them in errors).
    Columns {
        what: String,
        columns: Vec<(String, Vec<f64>)>,
    },
}

/// Read catalogues, sky ones projected at one centre: `center_deg`, or the
/// first catalogue's mean direction.
pub fn read_catalogs(
    sources: Vec<Source>,
    unit: AngleUnit,
    center_deg: Option<(f64, f64)>,
) -> Result<Vec<Catalog>> {
    let mut catalogs: Vec<Catalog> = vec![];
    for source in sources {
        let pos = Positions {
            unit,
            center_deg: center_deg.or_else(|| catalogs.first().and_then(|c| c.center_deg)),
        };
        let (what, c) = match source {
            Source::File(p) => (p.display().to_string(), read_catalog(&p, pos)?),
            Source::Columns { what, columns } => {
                let c = catalog_from_columns(columns, pos, &what)?;
                (what, c)
            }
        };
        if center_deg.is_some() && c.center_deg.is_none() {
            bail!("{what}: a centre applies to ra/dec catalogues; this one has flat-sky x, y");
        }
        if let Some(first) = catalogs.first() {
            if first.center_deg.is_some() != c.center_deg.is_some() {
                bail!("{what}: mixes flat-sky x, y and sky ra, dec catalogues");
            }
        }
        catalogs.push(c);
    }
    Ok(catalogs)
}

/// Write `b` as the `.npz` that `cosmodiff massmap` reads.
pub fn write(b: &ShearBins, out: &Path) -> Result<()> {
    let n = b.npix;
    let nb = b.e1.len();
    let shape: Vec<usize> = if nb == 1 { vec![n, n] } else { vec![nb, n, n] };
    let mut z = crate::io::Npz::new();
    z.add("e1", &shape, b.e1.concat())?;
    z.add("e2", &shape, b.e2.concat())?;
    z.add("noise_std", &shape, b.noise_std.concat())?;
    z.add("mask", &shape, b.mask.concat())?;
    z.add_i64(
        "counts",
        &shape,
        b.counts.iter().flatten().map(|&c| c as i64).collect(),
    )?;
    z.add("pixel_arcmin", &[], vec![b.pixel_arcmin])?;
    z.add_1d("sigma_e", &b.sigma_e)?;
    z.add_1d("origin_arcmin", &[b.origin_arcmin.0, b.origin_arcmin.1])?;
    if let Some((ra, dec)) = b.center_deg {
        z.add_1d("center_deg", &[ra, dec])?;
    }
    // empty pixels have noise_std = inf: unobserved, as massmap reads it
    if b.noise_std.iter().flatten().any(|v| v.is_nan()) {
        bail!("not writing {}: a noise level is NaN", out.display());
    }
    z.write_unchecked(out)
}

/// `cosmodiff bin-shear`.
pub fn run(s: &Settings) -> Result<()> {
    crate::io::require_npz(&s.out)?;
    let (unit, center, origin) = check(s)?;
    let inputs: Vec<(&str, &Path)> = s
        .catalog
        .iter()
        .map(|p| ("--catalog", p.as_path()))
        .collect();
    crate::output::refuse_overwriting_inputs("--out", &s.out, &inputs)?;
    let sources = s.catalog.iter().cloned().map(Source::File).collect();
    let catalogs = read_catalogs(sources, unit, center)?;
    let b = bin(&catalogs, s.npix, s.pixel_arcmin, origin, s.sigma_e)?;
    write(&b, &s.out)?;
    for (i, c) in catalogs.iter().enumerate() {
        let observed = b.mask[i].iter().filter(|&&m| m > 0.0).count();
        say!(
            "bin {i}: {} galaxies, {} outside the map; {observed} of {} pixels observed; sigma_e {:.3}",
            c.e1.len(),
            b.outside[i],
            s.npix * s.npix,
            b.sigma_e[i]
        );
        if b.outside[i] == c.e1.len() {
            log::warn!("bin {i}: every galaxy is outside the map: check --origin-arcmin, --unit and --pixel-arcmin");
        }
    }
    if let Some((ra, dec)) = b.center_deg {
        say!("tangent point RA {ra:.4}, Dec {dec:.4} degrees");
    }
    say!("wrote {}", s.out.display());
    Ok(())
}
