//! Binning a galaxy shear catalogue into shear and noise maps.
//!
//! Formats: CSV ([`read_catalog_csv`]) or a FITS binary table
//! ([`read_catalog_fits`]) with the same column names. CSV: a header line naming the columns `x`, `y`, `e1`, `e2` and
//! optionally `w` (or `weight`), comma separated; lines starting with `#`
//! are skipped. Positions are flat-sky coordinates in arcmin or degrees
//! ([`AngleUnit`]); pixel `(iy, ix)` covers
//! `x in [x0 + ix dx, x0 + (ix+1) dx)`, `y in [y0 + iy dx, ...)`.
//!
//! Per pixel the shear is the weighted mean `g = sum w e / sum w`, and its
//! per-component noise is `sigma_e sqrt(sum w^2) / sum w` (for unit weights
//! `sigma_e / sqrt(N)`), with `sigma_e` given or estimated from the
//! catalogue as `sqrt(sum w (e1^2 + e2^2) / (2 sum w))` (which includes the
//! shear signal, a small overestimate). Empty pixels get mask 0, shear 0 and
//! noise `+inf`.

use crate::error::{value, LensingError, Result};
use cosmodiff_field::Grid2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AngleUnit {
    Arcmin,
    Deg,
}

impl AngleUnit {
    fn to_arcmin(self) -> f64 {
        match self {
            AngleUnit::Arcmin => 1.0,
            AngleUnit::Deg => 60.0,
        }
    }
}

/// A shear catalogue (positions in arcmin after reading).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalog {
    pub x_arcmin: Vec<f64>,
    pub y_arcmin: Vec<f64>,
    pub e1: Vec<f64>,
    pub e2: Vec<f64>,
    pub w: Option<Vec<f64>>,
}

/// Binned maps.
#[derive(Debug, Clone, PartialEq)]
pub struct BinnedShear {
    pub g1: Vec<f64>,
    pub g2: Vec<f64>,
    pub noise_std: Vec<f64>,
    pub counts: Vec<usize>,
    pub mask: Vec<f64>,
    /// The `sigma_e` used for the noise.
    pub sigma_e: f64,
    /// Galaxies outside the map.
    pub outside: usize,
}

/// Parse a CSV catalogue from text (`path` only names the source in errors).
pub fn parse_catalog_csv(text: &str, unit: AngleUnit, path: &str) -> Result<Catalog> {
    let err = |msg: String| LensingError::Catalog {
        path: path.into(),
        msg,
    };
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    let (_, header) = lines.next().ok_or_else(|| err("empty file".into()))?;
    let names: Vec<String> = header
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .collect();
    let col = |want: &[&str]| names.iter().position(|n| want.contains(&n.as_str()));
    let ix = col(&["x"]).ok_or_else(|| err("no column 'x' in header".into()))?;
    let iy = col(&["y"]).ok_or_else(|| err("no column 'y' in header".into()))?;
    let i1 = col(&["e1"]).ok_or_else(|| err("no column 'e1' in header".into()))?;
    let i2 = col(&["e2"]).ok_or_else(|| err("no column 'e2' in header".into()))?;
    let iw = col(&["w", "weight"]);
    let s = unit.to_arcmin();
    let mut c = Catalog {
        w: iw.map(|_| vec![]),
        ..Default::default()
    };
    for (ln, line) in lines {
        let f: Vec<&str> = line.split(',').map(|v| v.trim()).collect();
        if f.len() != names.len() {
            return Err(err(format!(
                "line {}: {} fields, header has {}",
                ln + 1,
                f.len(),
                names.len()
            )));
        }
        let num = |i: usize| -> Result<f64> {
            let v: f64 = f[i].parse().map_err(|_| {
                err(format!(
                    "line {}: column '{}' is not a number: '{}'",
                    ln + 1,
                    names[i],
                    f[i]
                ))
            })?;
            if !v.is_finite() {
                return Err(err(format!(
                    "line {}: column '{}' is not finite",
                    ln + 1,
                    names[i]
                )));
            }
            Ok(v)
        };
        c.x_arcmin.push(num(ix)? * s);
        c.y_arcmin.push(num(iy)? * s);
        c.e1.push(num(i1)?);
        c.e2.push(num(i2)?);
        if let (Some(i), Some(w)) = (iw, c.w.as_mut()) {
            let v = num(i)?;
            if v < 0.0 {
                return Err(err(format!("line {}: negative weight", ln + 1)));
            }
            w.push(v);
        }
    }
    if c.e1.is_empty() {
        return Err(err("no galaxies".into()));
    }
    Ok(c)
}

/// Read a CSV catalogue from a file.
pub fn read_catalog_csv(path: &std::path::Path, unit: AngleUnit) -> Result<Catalog> {
    let text = std::fs::read_to_string(path).map_err(|e| LensingError::Catalog {
        path: path.display().to_string(),
        msg: e.to_string(),
    })?;
    parse_catalog_csv(&text, unit, &path.display().to_string())
}

/// Read a catalogue from the first binary table of a FITS file that has
/// columns `x`, `y`, `e1`, `e2` (and optionally `w` or `weight`), names
/// case-insensitive.
pub fn read_catalog_fits(path: &std::path::Path, unit: AngleUnit) -> Result<Catalog> {
    let p = path.display().to_string();
    let err = |msg: String| LensingError::Catalog {
        path: p.clone(),
        msg,
    };
    let tables = cosmodiff_field::fits::read_fits_tables(path)?;
    let t = tables
        .iter()
        .find(|t| ["x", "y", "e1", "e2"].iter().all(|c| t.column(c).is_some()))
        .ok_or_else(|| err("no binary table with columns x, y, e1, e2".into()))?;
    let s = unit.to_arcmin();
    let col = |n: &str| t.column(n).expect("checked").to_vec();
    let w = t
        .column("w")
        .or_else(|| t.column("weight"))
        .map(|w| w.to_vec());
    let c = Catalog {
        x_arcmin: col("x").iter().map(|v| v * s).collect(),
        y_arcmin: col("y").iter().map(|v| v * s).collect(),
        e1: col("e1"),
        e2: col("e2"),
        w,
    };
    if c.e1.is_empty() {
        return Err(err("no galaxies".into()));
    }
    let all = c
        .x_arcmin
        .iter()
        .chain(&c.y_arcmin)
        .chain(&c.e1)
        .chain(&c.e2)
        .chain(c.w.iter().flatten());
    if all.clone().any(|v| !v.is_finite()) {
        return Err(err("non-finite value in a column".into()));
    }
    if c.w.as_ref().is_some_and(|w| w.iter().any(|&v| v < 0.0)) {
        return Err(err("negative weight".into()));
    }
    Ok(c)
}

/// Read a catalogue from `.csv` or `.fits`/`.fit` (by extension).
pub fn read_catalog(path: &std::path::Path, unit: AngleUnit) -> Result<Catalog> {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .as_deref()
    {
        Some("fits") | Some("fit") => read_catalog_fits(path, unit),
        Some("csv") | Some("txt") => read_catalog_csv(path, unit),
        _ => Err(LensingError::Catalog {
            path: path.display().to_string(),
            msg: "unknown catalogue format (use .csv or .fits)".into(),
        }),
    }
}

/// Bin a catalogue on `grid` with lower-left corner `origin_arcmin`.
pub fn bin_catalog(
    cat: &Catalog,
    grid: &Grid2,
    origin_arcmin: (f64, f64),
    sigma_e: Option<f64>,
) -> Result<BinnedShear> {
    let ng = cat.e1.len();
    if cat.x_arcmin.len() != ng
        || cat.y_arcmin.len() != ng
        || cat.e2.len() != ng
        || cat.w.as_ref().is_some_and(|w| w.len() != ng)
    {
        return Err(value("catalogue", "columns have different lengths"));
    }
    let w = |i: usize| cat.w.as_ref().map(|w| w[i]).unwrap_or(1.0);
    let sig = match sigma_e {
        Some(s) if s.is_finite() && s > 0.0 => s,
        Some(s) => return Err(value("sigma_e", format!("must be positive, got {s}"))),
        None => {
            let sw: f64 = (0..ng).map(w).sum();
            if sw <= 0.0 {
                return Err(value("catalogue", "all weights are zero"));
            }
            ((0..ng)
                .map(|i| w(i) * (cat.e1[i].powi(2) + cat.e2[i].powi(2)))
                .sum::<f64>()
                / (2.0 * sw))
                .sqrt()
        }
    };
    let n = grid.n;
    let np = n * n;
    let (mut s1, mut s2, mut sw, mut sw2, mut cnt) = (
        vec![0.0; np],
        vec![0.0; np],
        vec![0.0; np],
        vec![0.0; np],
        vec![0usize; np],
    );
    let mut outside = 0;
    for i in 0..ng {
        let fx = ((cat.x_arcmin[i] - origin_arcmin.0) / grid.pixel_arcmin).floor();
        let fy = ((cat.y_arcmin[i] - origin_arcmin.1) / grid.pixel_arcmin).floor();
        if fx < 0.0 || fy < 0.0 || fx >= n as f64 || fy >= n as f64 {
            outside += 1;
            continue;
        }
        let p = fy as usize * n + fx as usize;
        let wi = w(i);
        s1[p] += wi * cat.e1[i];
        s2[p] += wi * cat.e2[i];
        sw[p] += wi;
        sw2[p] += wi * wi;
        cnt[p] += 1;
    }
    let mut out = BinnedShear {
        g1: vec![0.0; np],
        g2: vec![0.0; np],
        noise_std: vec![f64::INFINITY; np],
        counts: cnt,
        mask: vec![0.0; np],
        sigma_e: sig,
        outside,
    };
    for p in 0..np {
        if sw[p] > 0.0 {
            out.g1[p] = s1[p] / sw[p];
            out.g2[p] = s2[p] / sw[p];
            out.noise_std[p] = sig * sw2[p].sqrt() / sw[p];
            out.mask[p] = 1.0;
        }
    }
    Ok(out)
}
