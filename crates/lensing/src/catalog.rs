//! Binning a galaxy shear catalogue into shear and noise maps.
//!
//! Formats: CSV ([`read_catalog_csv`]) or a FITS binary table
//! ([`read_catalog_fits`]) with the same column names (case-insensitive):
//! `e1`, `e2`, optionally `w` (or `weight`), and the positions, either
//! flat-sky `x`, `y` in arcmin or degrees ([`AngleUnit`]) or sky
//! coordinates `ra`, `dec` in degrees, projected onto the plane tangent to
//! the sky at a centre ([`gnomonic`]). CSV: a header line naming the
//! columns, comma separated; lines starting with `#` are skipped. Pixel
//! `(iy, ix)` covers `x in [x0 + ix dx, x0 + (ix+1) dx)`,
//! `y in [y0 + iy dx, ...)`.
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

/// How the positions of a catalogue are read: flat-sky `x`, `y` columns in
/// `unit`, or, when the file has `ra`, `dec` instead, sky coordinates in
/// degrees projected at `center_deg` (RA, Dec; `None`: the catalogue's
/// mean direction, [`sky_center`]; a flat catalogue ignores it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Positions {
    pub unit: AngleUnit,
    pub center_deg: Option<(f64, f64)>,
}

impl From<AngleUnit> for Positions {
    fn from(unit: AngleUnit) -> Self {
        Positions {
            unit,
            center_deg: None,
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
    /// The tangent point (RA, Dec in degrees) of a catalogue read from sky
    /// coordinates: `x` points to increasing RA (east), `y` to increasing
    /// Dec (north), and `e1`, `e2` are taken in that frame.
    pub center_deg: Option<(f64, f64)>,
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

/// Gnomonic (tangent-plane) projection of the sky position `(ra, dec)`
/// (degrees) about the centre `(ra0, dec0)`, in arcmin (Calabretta &
/// Greisen 2002, the TAN projection):
///
/// `cos c = sin d0 sin d + cos d0 cos d cos(a - a0)`,
/// `x = cos d sin(a - a0) / cos c`,
/// `y = (cos d0 sin d - sin d0 cos d cos(a - a0)) / cos c`,
///
/// `x` towards increasing RA, `y` towards increasing Dec. `None` for a
/// position 90 degrees or more from the centre (not on the tangent plane).
pub fn gnomonic(ra_deg: f64, dec_deg: f64, center_deg: (f64, f64)) -> Option<(f64, f64)> {
    let (a, d) = (ra_deg.to_radians(), dec_deg.to_radians());
    let (a0, d0) = (center_deg.0.to_radians(), center_deg.1.to_radians());
    let cos_c = d0.sin() * d.sin() + d0.cos() * d.cos() * (a - a0).cos();
    if !(cos_c > 1e-12) {
        return None;
    }
    let to_arcmin = 180.0 / std::f64::consts::PI * 60.0;
    let x = d.cos() * (a - a0).sin() / cos_c;
    let y = (d0.cos() * d.sin() - d0.sin() * d.cos() * (a - a0).cos()) / cos_c;
    Some((x * to_arcmin, y * to_arcmin))
}

/// The inverse of [`gnomonic`]: the sky position (RA in [0, 360), Dec, in
/// degrees) of the tangent-plane point `(x, y)` (arcmin) about `center_deg`:
/// with `rho = |(x, y)|` and `c = atan(rho)`,
/// `Dec = asin(cos c sin d0 + y sin c cos d0 / rho)`,
/// `RA = a0 + atan2(x sin c, rho cos d0 cos c - y sin d0 sin c)`.
pub fn gnomonic_inverse(x_arcmin: f64, y_arcmin: f64, center_deg: (f64, f64)) -> (f64, f64) {
    let (x, y) = (
        (x_arcmin / 60.0).to_radians(),
        (y_arcmin / 60.0).to_radians(),
    );
    let (a0, d0) = (center_deg.0.to_radians(), center_deg.1.to_radians());
    let rho = x.hypot(y);
    if rho == 0.0 {
        return (center_deg.0.rem_euclid(360.0), center_deg.1);
    }
    let c = rho.atan();
    let dec = (c.cos() * d0.sin() + y * c.sin() * d0.cos() / rho).asin();
    let ra = a0 + (x * c.sin()).atan2(rho * d0.cos() * c.cos() - y * d0.sin() * c.sin());
    (ra.to_degrees().rem_euclid(360.0), dec.to_degrees())
}

/// The mean direction of sky positions (RA, Dec in degrees): the
/// normalised sum of their unit vectors, so a field across RA = 0 is
/// centred correctly.
pub fn sky_center(ra_deg: &[f64], dec_deg: &[f64]) -> Option<(f64, f64)> {
    let mut v = [0.0f64; 3];
    for (a, d) in ra_deg.iter().zip(dec_deg) {
        let (a, d) = (a.to_radians(), d.to_radians());
        v[0] += d.cos() * a.cos();
        v[1] += d.cos() * a.sin();
        v[2] += d.sin();
    }
    let r = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
    if !(r > 1e-9 * ra_deg.len() as f64) {
        return None;
    }
    let ra = v[1].atan2(v[0]).to_degrees().rem_euclid(360.0);
    Some((ra, (v[2] / r).asin().to_degrees()))
}

/// The numeric columns of a catalogue file (lower-case names), each value
/// finite; `path` names the file in errors.
struct Columns {
    path: String,
    columns: Vec<(String, Vec<f64>)>,
}

impl Columns {
    fn err(&self, msg: impl Into<String>) -> LensingError {
        LensingError::Catalog {
            path: self.path.clone(),
            msg: msg.into(),
        }
    }

    fn get(&self, names: &[&str]) -> Option<&[f64]> {
        self.columns
            .iter()
            .find(|(n, _)| names.contains(&n.as_str()))
            .map(|(_, v)| v.as_slice())
    }

    fn need(&self, name: &str) -> Result<&[f64]> {
        self.get(&[name])
            .ok_or_else(|| self.err(format!("no column '{name}'")))
    }

    /// The catalogue with positions read as `pos` says.
    fn catalog(&self, pos: Positions) -> Result<Catalog> {
        let (e1, e2) = (self.need("e1")?.to_vec(), self.need("e2")?.to_vec());
        if e1.is_empty() {
            return Err(self.err("no galaxies"));
        }
        if let Some((n, v)) = self.columns.iter().find(|(_, v)| v.len() != e1.len()) {
            return Err(self.err(format!(
                "column '{n}' has {} values, e1 has {}",
                v.len(),
                e1.len()
            )));
        }
        if let Some((n, _)) = self
            .columns
            .iter()
            .find(|(_, v)| v.iter().any(|x| !x.is_finite()))
        {
            return Err(self.err(format!("column '{n}' holds a non-finite value")));
        }
        let w = self.get(&["w", "weight"]).map(|w| w.to_vec());
        if w.as_ref().is_some_and(|w| w.iter().any(|&v| v < 0.0)) {
            return Err(self.err("negative weight"));
        }
        let mut c = Catalog {
            e1,
            e2,
            w,
            ..Default::default()
        };
        match (
            self.get(&["x"]),
            self.get(&["y"]),
            self.get(&["ra"]),
            self.get(&["dec"]),
        ) {
            (Some(x), Some(y), _, _) => {
                let s = pos.unit.to_arcmin();
                c.x_arcmin = x.iter().map(|v| v * s).collect();
                c.y_arcmin = y.iter().map(|v| v * s).collect();
            }
            (_, _, Some(ra), Some(dec)) => {
                if let Some(i) = dec.iter().position(|d| d.abs() > 90.0) {
                    return Err(self.err(format!(
                        "row {}: dec = {} degrees, outside [-90, 90]",
                        i + 1,
                        dec[i]
                    )));
                }
                let center = match pos.center_deg {
                    Some((a, d)) if a.is_finite() && d.is_finite() && d.abs() <= 90.0 => (a, d),
                    Some((a, d)) => {
                        return Err(self.err(format!(
                            "centre (RA {a}, Dec {d}) is not a sky position in degrees"
                        )))
                    }
                    None => sky_center(ra, dec).ok_or_else(|| {
                        self.err("positions cover the whole sky: no tangent plane holds them")
                    })?,
                };
                for (i, (&a, &d)) in ra.iter().zip(dec).enumerate() {
                    let (x, y) = gnomonic(a, d, center).ok_or_else(|| {
                        self.err(format!(
                            "row {}: (ra, dec) = ({a}, {d}) is 90 degrees or more from the centre ({}, {}): bin smaller patches",
                            i + 1,
                            center.0,
                            center.1
                        ))
                    })?;
                    c.x_arcmin.push(x);
                    c.y_arcmin.push(y);
                }
                c.center_deg = Some(center);
            }
            _ => {
                return Err(
                    self.err("no position columns: need x, y (flat sky) or ra, dec (degrees)")
                )
            }
        }
        Ok(c)
    }
}

/// The columns of a CSV text (`path` only names the source in errors).
fn csv_columns(text: &str, path: &str) -> Result<Columns> {
    let mut cols = Columns {
        path: path.into(),
        columns: vec![],
    };
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    let (_, header) = lines.next().ok_or_else(|| cols.err("empty file"))?;
    cols.columns = header
        .split(',')
        .map(|s| (s.trim().to_ascii_lowercase(), vec![]))
        .collect();
    for (ln, line) in lines {
        let f: Vec<&str> = line.split(',').map(|v| v.trim()).collect();
        if f.len() != cols.columns.len() {
            return Err(cols.err(format!(
                "line {}: {} fields, header has {}",
                ln + 1,
                f.len(),
                cols.columns.len()
            )));
        }
        for (field, (name, values)) in f.iter().zip(cols.columns.iter_mut()) {
            let v: f64 = field.parse().map_err(|_| LensingError::Catalog {
                path: path.into(),
                msg: format!(
                    "line {}: column '{name}' is not a number: '{field}'",
                    ln + 1
                ),
            })?;
            if !v.is_finite() {
                return Err(LensingError::Catalog {
                    path: path.into(),
                    msg: format!("line {}: column '{name}' is not finite", ln + 1),
                });
            }
            values.push(v);
        }
    }
    Ok(cols)
}

/// A catalogue from named columns in memory (names as in a file,
/// case-insensitive; `what` names the source in errors).
pub fn catalog_from_columns(
    columns: Vec<(String, Vec<f64>)>,
    pos: impl Into<Positions>,
    what: &str,
) -> Result<Catalog> {
    Columns {
        path: what.into(),
        columns: columns
            .into_iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v))
            .collect(),
    }
    .catalog(pos.into())
}

/// Parse a CSV catalogue from text (`path` only names the source in errors).
pub fn parse_catalog_csv(text: &str, pos: impl Into<Positions>, path: &str) -> Result<Catalog> {
    csv_columns(text, path)?.catalog(pos.into())
}

/// Read a CSV catalogue from a file.
pub fn read_catalog_csv(path: &std::path::Path, pos: impl Into<Positions>) -> Result<Catalog> {
    let text = std::fs::read_to_string(path).map_err(|e| LensingError::Catalog {
        path: path.display().to_string(),
        msg: e.to_string(),
    })?;
    parse_catalog_csv(&text, pos, &path.display().to_string())
}

/// Read a catalogue from the first binary table of a FITS file that has
/// columns `e1`, `e2`.
pub fn read_catalog_fits(path: &std::path::Path, pos: impl Into<Positions>) -> Result<Catalog> {
    let tables = cosmodiff_field::fits::read_fits_tables(path)?;
    let mut cols = Columns {
        path: path.display().to_string(),
        columns: vec![],
    };
    let t = tables
        .into_iter()
        .find(|t| t.column("e1").is_some() && t.column("e2").is_some())
        .ok_or_else(|| cols.err("no binary table with columns e1, e2"))?;
    cols.columns = t
        .columns
        .into_iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v))
        .collect();
    cols.catalog(pos.into())
}

/// Read a catalogue from `.csv` or `.fits`/`.fit` (by extension).
pub fn read_catalog(path: &std::path::Path, pos: impl Into<Positions>) -> Result<Catalog> {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .as_deref()
    {
        Some("fits") | Some("fit") => read_catalog_fits(path, pos),
        Some("csv") | Some("txt") => read_catalog_csv(path, pos),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The inverse TAN projection (Calabretta & Greisen 2002), written
    /// independently, for the round trip.
    fn inverse(x_arcmin: f64, y_arcmin: f64, c: (f64, f64)) -> (f64, f64) {
        let (x, y) = (
            (x_arcmin / 60.0).to_radians(),
            (y_arcmin / 60.0).to_radians(),
        );
        let (a0, d0) = (c.0.to_radians(), c.1.to_radians());
        let rho = x.hypot(y);
        if rho == 0.0 {
            return c;
        }
        let cc = rho.atan();
        let dec = (cc.cos() * d0.sin() + y * cc.sin() * d0.cos() / rho).asin();
        let ra = a0 + (x * cc.sin()).atan2(rho * d0.cos() * cc.cos() - y * d0.sin() * cc.sin());
        (ra.to_degrees().rem_euclid(360.0), dec.to_degrees())
    }

    #[test]
    fn gnomonic_projection_is_the_tangent_plane() {
        let to_arcmin = 60.0 * 180.0 / std::f64::consts::PI;
        // the centre, the central meridian (y = tan dDec), the equator (x = tan dRA)
        assert_eq!(gnomonic(150.0, 2.0, (150.0, 2.0)), Some((0.0, 0.0)));
        let (x, y) = gnomonic(150.0, 7.0, (150.0, 2.0)).unwrap();
        assert!(x.abs() < 1e-9 && (y - 5f64.to_radians().tan() * to_arcmin).abs() < 1e-9);
        let (x, y) = gnomonic(10.0, 0.0, (0.0, 0.0)).unwrap();
        assert!((x - 10f64.to_radians().tan() * to_arcmin).abs() < 1e-9 && y.abs() < 1e-9);
        // small offsets: (dRA cos Dec0, dDec)
        let (x, y) = gnomonic(30.01, -60.01, (30.0, -60.0)).unwrap();
        assert!(
            (x - 0.6 * 0.5).abs() < 1e-3 && (y + 0.6).abs() < 1e-3,
            "{x} {y}"
        );
        // round trip through the inverse, near a pole and across RA = 0
        for &(c, p) in &[
            ((150.0, 2.0), (151.3, 0.4)),
            ((0.5, -85.0), (250.0, -87.0)),
            ((359.8, 10.0), (0.3, 11.0)),
        ] {
            let (x, y) = gnomonic(p.0, p.1, c).unwrap();
            for (ra, dec) in [inverse(x, y, c), gnomonic_inverse(x, y, c)] {
                assert!((ra - p.0).abs() < 1e-9 && (dec - p.1).abs() < 1e-9, "{p:?}");
            }
        }
        // 90 degrees away or more: not on the plane
        assert_eq!(gnomonic(100.0, 0.0, (0.0, 0.0)), None);
    }

    #[test]
    fn sky_centre_handles_ra_wrapping_and_sky_catalogues_project() {
        let (ra, dec) = sky_center(&[359.0, 1.0], &[-1.0, 1.0]).unwrap();
        assert!(
            (ra.min(360.0 - ra)).abs() < 1e-9 && dec.abs() < 1e-9,
            "{ra} {dec}"
        );
        let cols = |ra: f64| {
            vec![
                ("RA".to_string(), vec![ra, ra + 0.1]),
                ("dec".to_string(), vec![0.0, 0.0]),
                ("e1".to_string(), vec![0.1, 0.2]),
                ("e2".to_string(), vec![0.0, 0.0]),
            ]
        };
        let c = catalog_from_columns(cols(20.0), AngleUnit::Arcmin, "mem").unwrap();
        let (a, d) = c.center_deg.unwrap();
        assert!((a - 20.05).abs() < 1e-9 && d.abs() < 1e-9);
        assert!((c.x_arcmin[1] - c.x_arcmin[0] - 6.0).abs() < 1e-3);
        // a centre for a flat catalogue (ignored), mixed lengths, a position 90 degrees away
        let flat = vec![
            ("x".to_string(), vec![0.0]),
            ("y".to_string(), vec![0.0]),
            ("e1".to_string(), vec![0.0]),
            ("e2".to_string(), vec![0.0]),
        ];
        let centred = Positions {
            unit: AngleUnit::Arcmin,
            center_deg: Some((0.0, 0.0)),
        };
        let c = catalog_from_columns(flat, centred, "mem").unwrap();
        assert_eq!(c.center_deg, None, "a flat catalogue has no tangent point");
        let mut short = cols(20.0);
        short[2].1.pop();
        let e = catalog_from_columns(short, AngleUnit::Arcmin, "mem").unwrap_err();
        assert!(
            e.to_string().contains("column 'ra' has 2 values, e1 has 1"),
            "{e}"
        );
        let far = Positions {
            unit: AngleUnit::Arcmin,
            center_deg: Some((200.0, 0.0)),
        };
        let e = catalog_from_columns(cols(20.0), far, "mem").unwrap_err();
        assert!(e.to_string().contains("90 degrees or more"), "{e}");
    }
}
