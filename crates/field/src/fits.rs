//! Minimal FITS image I/O (2-D and 3-D images, one or more HDUs).
//!
//! FITS (Pence et al. 2010, A&A 524, A42): 2880-byte blocks; each HDU is a
//! header of 80-character ASCII cards ending with `END`, padded with spaces,
//! then big-endian data padded with zeros. Images are written with
//! `BITPIX = -64` (float64); `NAXIS1` is the fastest axis (map columns,
//! `x`), so an array of numpy shape `[n3, n2, n1]` has `NAXIS1 = n1`. The
//! first image goes in the primary HDU, further ones in `IMAGE` extensions;
//! each carries `EXTNAME` and, when known, the pixel scale as `PIXSCALE`
//! (arcmin) and `CDELT1 = CDELT2` (deg, `CUNIT = 'deg'`).
//!
//! Reading accepts `BITPIX` 8, 16, 32, 64, -32, -64 (with `BSCALE`/`BZERO`),
//! skips non-image extensions in [`from_bytes`], and takes the pixel scale
//! from `PIXSCALE`, else from `|CDELT2|` (or `|CDELT1|`) in degrees; an
//! extension without one takes that of a data-less primary header.
//! Binary tables (`BINTABLE`, e.g. galaxy catalogues) are read by
//! [`read_fits_tables`] (scalar L/B/I/J/K/E/D columns with `TSCAL`/`TZERO`)
//! and written by [`table_to_bytes`] (float64 columns).

// The input layer: no panic reachable from a file's contents.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use crate::error::{FieldError, Result};
use std::path::Path;

const BLOCK: usize = 2880;

/// One image HDU.
#[derive(Debug, Clone, PartialEq)]
pub struct FitsImage {
    /// `EXTNAME` (primary HDU: `EXTNAME` if present).
    pub name: Option<String>,
    /// Shape in numpy (C) order, slowest axis first.
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
    /// Pixel scale in arcmin.
    pub pixel_arcmin: Option<f64>,
}

impl FitsImage {
    pub fn new(name: &str, shape: Vec<usize>, data: Vec<f64>, pixel_arcmin: Option<f64>) -> Self {
        Self {
            name: Some(name.to_string()),
            shape,
            data,
            pixel_arcmin,
        }
    }
}

fn card(key: &str, value: &str, comment: &str) -> String {
    let mut s = format!("{key:<8}= {value:>20}");
    if !comment.is_empty() {
        s.push_str(" / ");
        s.push_str(comment);
    }
    s.truncate(80);
    format!("{s:<80}")
}

fn fmt_str(v: &str) -> String {
    format!("'{:<8}'", v.replace('\'', "''"))
}

fn fmt_f64(v: f64) -> String {
    let s = format!("{v:.15E}");
    s
}

/// Serialise images to FITS bytes.
pub fn to_bytes(images: &[FitsImage]) -> Result<Vec<u8>> {
    let bad = |msg: String| FieldError::Fits {
        path: "<memory>".into(),
        msg,
    };
    if images.is_empty() {
        return Err(bad("nothing to write".into()));
    }
    let mut out = Vec::new();
    for (h, im) in images.iter().enumerate() {
        if im.shape.is_empty()
            || im.shape.len() > 999
            || im.shape.iter().product::<usize>() != im.data.len()
        {
            return Err(bad(format!(
                "HDU {h}: shape {:?} does not match {} values",
                im.shape,
                im.data.len()
            )));
        }
        let mut cards = vec![];
        if h == 0 {
            cards.push(card("SIMPLE", "T", "conforms to FITS standard"));
        } else {
            cards.push(card("XTENSION", "'IMAGE   '", "image extension"));
        }
        cards.push(card("BITPIX", "-64", "IEEE double precision"));
        cards.push(card("NAXIS", &im.shape.len().to_string(), ""));
        for (i, n) in im.shape.iter().rev().enumerate() {
            cards.push(card(&format!("NAXIS{}", i + 1), &n.to_string(), ""));
        }
        if h == 0 {
            cards.push(card("EXTEND", "T", ""));
        } else {
            cards.push(card("PCOUNT", "0", ""));
            cards.push(card("GCOUNT", "1", ""));
        }
        if let Some(n) = &im.name {
            cards.push(card("EXTNAME", &fmt_str(n), ""));
        }
        if let Some(p) = im.pixel_arcmin {
            cards.push(card("PIXSCALE", &fmt_f64(p), "pixel scale [arcmin]"));
            cards.push(card("CDELT1", &fmt_f64(p / 60.0), "[deg]"));
            cards.push(card("CDELT2", &fmt_f64(p / 60.0), "[deg]"));
            cards.push(card("CUNIT1", "'deg     '", ""));
            cards.push(card("CUNIT2", "'deg     '", ""));
        }
        cards.push(format!("{:<80}", "END"));
        let mut hdr: Vec<u8> = cards.concat().into_bytes();
        hdr.resize(hdr.len().div_ceil(BLOCK) * BLOCK, b' ');
        out.extend_from_slice(&hdr);
        let start = out.len();
        for v in &im.data {
            out.extend_from_slice(&v.to_be_bytes());
        }
        let len = out.len() - start;
        out.resize(start + len.div_ceil(BLOCK) * BLOCK, 0);
    }
    Ok(out)
}

/// Write images to a `.fits` file.
pub fn write_fits(path: &Path, images: &[FitsImage]) -> Result<()> {
    let bytes = to_bytes(images).map_err(|e| match e {
        FieldError::Fits { msg, .. } => FieldError::Fits {
            path: path.display().to_string(),
            msg,
        },
        e => e,
    })?;
    std::fs::write(path, bytes).map_err(|e| FieldError::Io {
        path: path.display().to_string(),
        msg: e.to_string(),
    })
}

fn parse_value(raw: &str) -> String {
    let v = raw.trim_start();
    if let Some(rest) = v.strip_prefix('\'') {
        // Quoted string with '' escapes.
        let mut s = String::new();
        let mut chars = rest.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\'' {
                if chars.peek() == Some(&'\'') {
                    s.push('\'');
                    chars.next();
                } else {
                    break;
                }
            } else {
                s.push(c);
            }
        }
        s.trim_end().to_string()
    } else {
        v.split('/').next().unwrap_or("").trim().to_string()
    }
}

/// One parsed HDU: header key/values and its (unpadded) data bytes.
struct Hdu<'a> {
    kv: Vec<(String, String)>,
    data: &'a [u8],
}

impl Hdu<'_> {
    fn get(&self, k: &str) -> Option<&str> {
        self.kv
            .iter()
            .find(|(a, _)| a == k)
            .map(|(_, v)| v.as_str())
    }
    fn getf(&self, k: &str) -> Option<f64> {
        self.get(k)
            .and_then(|v| v.replace('D', "E").parse::<f64>().ok())
    }
}

fn parse_hdus<'a>(bytes: &'a [u8], path: &str) -> Result<Vec<Hdu<'a>>> {
    let bad = |msg: String| FieldError::Fits {
        path: path.into(),
        msg,
    };
    let mut pos = 0;
    let mut out = vec![];
    let mut hdu = 0;
    while pos < bytes.len() {
        let mut kv: Vec<(String, String)> = vec![];
        let mut ended = false;
        while !ended {
            let block = bytes
                .get(pos..pos.saturating_add(BLOCK))
                .ok_or_else(|| bad(format!("HDU {hdu}: truncated header")))?;
            for c in block.chunks(80) {
                if !c.is_ascii() {
                    return Err(bad(format!("HDU {hdu}: header is not ASCII")));
                }
                let line = std::str::from_utf8(c)
                    .map_err(|_| bad(format!("HDU {hdu}: header is not ASCII")))?;
                let key = line[..8].trim().to_string();
                if key == "END" {
                    ended = true;
                    break;
                }
                if line.len() >= 10 && &line[8..10] == "= " {
                    kv.push((key, parse_value(&line[10..])));
                }
            }
            pos += BLOCK;
        }
        let get = |k: &str| kv.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
        let geti = |k: &str| -> Result<i64> {
            get(k)
                .ok_or_else(|| bad(format!("HDU {hdu}: missing {k}")))?
                .parse::<i64>()
                .map_err(|_| bad(format!("HDU {hdu}: {k} is not an integer")))
        };
        if hdu == 0 && get("SIMPLE") != Some("T") {
            return Err(bad("not a FITS file (SIMPLE = T missing)".into()));
        }
        let bitpix = geti("BITPIX")?;
        if ![8, 16, 32, 64, -32, -64].contains(&bitpix) {
            return Err(bad(format!("HDU {hdu}: unsupported BITPIX {bitpix}")));
        }
        let naxis = geti("NAXIS")?;
        if !(0..=999).contains(&naxis) {
            return Err(bad(format!("HDU {hdu}: bad NAXIS {naxis}")));
        }
        let mut nval: usize = if naxis == 0 { 0 } else { 1 };
        for i in 1..=naxis {
            let d = geti(&format!("NAXIS{i}"))?;
            if d < 0 {
                return Err(bad(format!("HDU {hdu}: negative NAXIS{i}")));
            }
            nval = nval
                .checked_mul(d as usize)
                .ok_or_else(|| bad(format!("HDU {hdu}: data too large")))?;
        }
        // optional counts of extensions: absent -> the standard default,
        // present -> a non-negative integer
        let count = |k: &str, default: usize| -> Result<usize> {
            if hdu == 0 {
                return Ok(default);
            }
            match get(k) {
                None => Ok(default),
                Some(v) => v
                    .parse::<usize>()
                    .map_err(|_| bad(format!("HDU {hdu}: {k} = {v} is not an integer >= 0"))),
            }
        };
        let (pcount, gcount) = (count("PCOUNT", 0)?, count("GCOUNT", 1)?);
        // sizes come from the file: checked arithmetic, never a panic
        let too_large = || {
            bad(format!(
                "HDU {hdu}: data size overflows (hostile or corrupt header)"
            ))
        };
        let nbytes = (bitpix.unsigned_abs() / 8) as usize;
        let nbytes = pcount
            .checked_add(nval)
            .and_then(|v| v.checked_mul(gcount))
            .and_then(|v| v.checked_mul(nbytes))
            .ok_or_else(too_large)?;
        let data = bytes.get(pos..pos.saturating_add(nbytes)).ok_or_else(|| {
            bad(format!(
                "HDU {hdu}: truncated data ({} of {nbytes} bytes)",
                bytes.len() - pos
            ))
        })?;
        out.push(Hdu { kv, data });
        // the padding of the last HDU may be missing: stop at the end
        pos = pos
            .saturating_add(nbytes.div_ceil(BLOCK) * BLOCK)
            .min(bytes.len());
        hdu += 1;
    }
    if out.is_empty() {
        return Err(bad("empty file: no FITS header".into()));
    }
    Ok(out)
}

/// Parse FITS bytes into its image HDUs (`path` names the source in errors).
pub fn from_bytes(bytes: &[u8], path: &str) -> Result<Vec<FitsImage>> {
    let mut out = vec![];
    // A data-less primary header may carry the scale for all extensions
    // (the usual layout of multi-extension files).
    let mut primary_pixel_arcmin = None;
    for (i, h) in parse_hdus(bytes, path)?.into_iter().enumerate() {
        let is_image = i == 0
            || h.get("XTENSION")
                .map(|x| x.trim() == "IMAGE")
                .unwrap_or(false);
        if !is_image {
            continue;
        }
        let pixel_arcmin = pixel_scale(&h, i, path)?;
        if h.data.is_empty() {
            if i == 0 {
                primary_pixel_arcmin = pixel_arcmin;
            }
            continue;
        }
        let bitpix: i64 = h.get("BITPIX").and_then(|v| v.parse().ok()).unwrap_or(-64);
        let naxis: usize = h.get("NAXIS").and_then(|v| v.parse().ok()).unwrap_or(0);
        let dims: Vec<usize> = (1..=naxis)
            .map(|k| {
                h.get(&format!("NAXIS{k}"))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            })
            .collect();
        let bytes_per = (bitpix.unsigned_abs() / 8) as usize;
        let values = dims
            .iter()
            .try_fold(1usize, |a, d| a.checked_mul(*d))
            .and_then(|n| n.checked_mul(bytes_per))
            .and_then(|n| h.data.get(..n))
            .ok_or_else(|| FieldError::Fits {
                path: path.into(),
                msg: format!("HDU {i}: the image is larger than its data (GCOUNT = 0?)"),
            })?;
        let (bscale, bzero) = (
            h.getf("BSCALE").unwrap_or(1.0),
            h.getf("BZERO").unwrap_or(0.0),
        );
        let data: Vec<f64> = values
            .chunks(bytes_per)
            .map(|c| bzero + bscale * be_value(bitpix, c))
            .collect();
        out.push(FitsImage {
            name: h.get("EXTNAME").map(|s| s.to_string()),
            shape: dims.iter().rev().copied().collect(),
            data,
            pixel_arcmin: pixel_arcmin.or(primary_pixel_arcmin),
        });
    }
    Ok(out)
}

/// Pixel scale of HDU `i` in arcmin: `PIXSCALE`, else `|CDELT2|` (or
/// `|CDELT1|`) in degrees; non-square pixels are an error.
fn pixel_scale(h: &Hdu<'_>, i: usize, path: &str) -> Result<Option<f64>> {
    if let (Some(c1), Some(c2)) = (h.getf("CDELT1"), h.getf("CDELT2")) {
        if (c1.abs() - c2.abs()).abs() > 1e-6 * c2.abs() {
            return Err(FieldError::Fits {
                path: path.into(),
                msg: format!("HDU {i}: pixels are not square (CDELT1 = {c1}, CDELT2 = {c2})"),
            });
        }
    }
    Ok(h.getf("PIXSCALE").or_else(|| {
        h.getf("CDELT2")
            .or_else(|| h.getf("CDELT1"))
            .map(|d| d.abs() * 60.0)
    }))
}

/// The big-endian value of type `bitpix` at the start of `c` (its callers
/// hand it whole values; a short slice reads as zero bytes).
fn be_value(bitpix: i64, c: &[u8]) -> f64 {
    fn first<const N: usize>(c: &[u8]) -> [u8; N] {
        c.get(..N).and_then(|s| s.try_into().ok()).unwrap_or([0; N])
    }
    match bitpix {
        8 => u8::from_be_bytes(first(c)) as f64,
        16 => i16::from_be_bytes(first(c)) as f64,
        32 => i32::from_be_bytes(first(c)) as f64,
        64 => i64::from_be_bytes(first(c)) as f64,
        -32 => f32::from_be_bytes(first(c)) as f64,
        _ => f64::from_be_bytes(first(c)),
    }
}

/// A binary table (`XTENSION = 'BINTABLE'`) with its scalar numeric columns.
#[derive(Debug, Clone, PartialEq)]
pub struct FitsTable {
    pub name: Option<String>,
    /// `(TTYPE, values)` for every scalar column of type L/B/I/J/K/E/D
    /// (with `TSCAL`/`TZERO`); vector, string and complex columns are skipped.
    pub columns: Vec<(String, Vec<f64>)>,
}

impl FitsTable {
    /// Column by name (case-insensitive).
    pub fn column(&self, name: &str) -> Option<&[f64]> {
        self.columns
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }
}

/// Parse the binary-table HDUs of FITS bytes.
pub fn tables_from_bytes(bytes: &[u8], path: &str) -> Result<Vec<FitsTable>> {
    let bad = |msg: String| FieldError::Fits {
        path: path.into(),
        msg,
    };
    let mut out = vec![];
    for (i, h) in parse_hdus(bytes, path)?.into_iter().enumerate() {
        if h.get("XTENSION")
            .map(|x| x.trim() != "BINTABLE")
            .unwrap_or(true)
        {
            continue;
        }
        let geti = |k: &str| -> Result<usize> {
            h.get(k)
                .and_then(|v| v.parse::<usize>().ok())
                .ok_or_else(|| bad(format!("HDU {i}: missing or bad {k}")))
        };
        let (width, nrows, nf) = (geti("NAXIS1")?, geti("NAXIS2")?, geti("TFIELDS")?);
        // the rows must be in the data (parse_hdus checked NAXIS1 x NAXIS2 fits)
        if width == 0 && nrows > 0 && nf > 0 {
            return Err(bad(format!(
                "HDU {i}: NAXIS1 = 0 with {nrows} rows and {nf} columns"
            )));
        }
        if nf > 999 {
            return Err(bad(format!("HDU {i}: TFIELDS = {nf} (at most 999)")));
        }
        let mut off = 0;
        let mut cols = vec![];
        for f in 1..=nf {
            let form = h
                .get(&format!("TFORM{f}"))
                .ok_or_else(|| bad(format!("HDU {i}: missing TFORM{f}")))?
                .trim()
                .to_string();
            let digits: String = form.chars().take_while(|c| c.is_ascii_digit()).collect();
            let rep: usize = if digits.is_empty() {
                1
            } else {
                digits
                    .parse()
                    .map_err(|_| bad(format!("HDU {i}: bad TFORM{f} '{form}'")))?
            };
            let t = form[digits.len()..]
                .chars()
                .next()
                .ok_or_else(|| bad(format!("HDU {i}: bad TFORM{f} '{form}'")))?;
            let bytes_each = match t {
                'L' | 'B' | 'A' => 1,
                'X' => 0,
                'I' => 2,
                'J' | 'E' => 4,
                'K' | 'D' | 'C' | 'P' => 8,
                'M' | 'Q' => 16,
                _ => return Err(bad(format!("HDU {i}: unsupported TFORM{f} '{form}'"))),
            };
            let size = if t == 'X' {
                Some(rep.div_ceil(8))
            } else {
                rep.checked_mul(bytes_each)
            }
            .filter(|s| *s <= width)
            .ok_or_else(|| {
                bad(format!(
                    "HDU {i}: TFORM{f} '{form}' is wider than a row (NAXIS1 = {width})"
                ))
            })?;
            let name = h.get(&format!("TTYPE{f}")).unwrap_or("").to_string();
            if rep == 1 && "LBIJKED".contains(t) {
                let (sc, z) = (
                    h.getf(&format!("TSCAL{f}")).unwrap_or(1.0),
                    h.getf(&format!("TZERO{f}")).unwrap_or(0.0),
                );
                let bp: i64 = match t {
                    'L' | 'B' => 8,
                    'I' => 16,
                    'J' => 32,
                    'K' => 64,
                    'E' => -32,
                    _ => -64,
                };
                let mut v = Vec::new();
                for r in 0..nrows {
                    let c = r
                        .checked_mul(width)
                        .and_then(|a| a.checked_add(off))
                        .and_then(|a| Some((a, a.checked_add(size)?)))
                        .and_then(|(a, b)| h.data.get(a..b))
                        .ok_or_else(|| bad(format!("HDU {i}: row {r} is truncated")))?;
                    let x = if t == 'L' {
                        if c.first() == Some(&b'T') {
                            1.0
                        } else {
                            0.0
                        }
                    } else {
                        be_value(bp, c)
                    };
                    v.push(z + sc * x);
                }
                cols.push((name, v));
            }
            off = off
                .checked_add(size)
                .ok_or_else(|| bad(format!("HDU {i}: row size overflows")))?;
        }
        if off > width {
            return Err(bad(format!(
                "HDU {i}: columns need {off} bytes per row but NAXIS1 = {width}"
            )));
        }
        out.push(FitsTable {
            name: h.get("EXTNAME").map(|s| s.to_string()),
            columns: cols,
        });
    }
    Ok(out)
}

/// Serialise float64 columns as a FITS file with an empty primary HDU and one
/// `BINTABLE` extension (`TFORM = 'D'`).
pub fn table_to_bytes(name: &str, columns: &[(&str, &[f64])]) -> Result<Vec<u8>> {
    let bad = |msg: String| FieldError::Fits {
        path: "<memory>".into(),
        msg,
    };
    let nrows = columns.first().map(|c| c.1.len()).unwrap_or(0);
    if columns.is_empty() || columns.iter().any(|c| c.1.len() != nrows) {
        return Err(bad(
            "table columns must be non-empty and of equal length".into()
        ));
    }
    let mut out = Vec::new();
    let mut push_header = |cards: Vec<String>| {
        let mut h: Vec<u8> = cards.concat().into_bytes();
        h.extend_from_slice(format!("{:<80}", "END").as_bytes());
        h.resize(h.len().div_ceil(BLOCK) * BLOCK, b' ');
        out.extend_from_slice(&h);
    };
    push_header(vec![
        card("SIMPLE", "T", ""),
        card("BITPIX", "8", ""),
        card("NAXIS", "0", ""),
        card("EXTEND", "T", ""),
    ]);
    let mut cards = vec![
        card("XTENSION", "'BINTABLE'", "binary table"),
        card("BITPIX", "8", ""),
        card("NAXIS", "2", ""),
        card("NAXIS1", &(8 * columns.len()).to_string(), "bytes per row"),
        card("NAXIS2", &nrows.to_string(), "rows"),
        card("PCOUNT", "0", ""),
        card("GCOUNT", "1", ""),
        card("TFIELDS", &columns.len().to_string(), ""),
        card("EXTNAME", &fmt_str(name), ""),
    ];
    for (i, (n, _)) in columns.iter().enumerate() {
        cards.push(card(&format!("TTYPE{}", i + 1), &fmt_str(n), ""));
        cards.push(card(&format!("TFORM{}", i + 1), "'D       '", ""));
    }
    push_header(cards);
    let start = out.len();
    for r in 0..nrows {
        // every column has `nrows` values (checked above)
        for v in columns.iter().filter_map(|(_, c)| c.get(r)) {
            out.extend_from_slice(&v.to_be_bytes());
        }
    }
    let len = out.len() - start;
    out.resize(start + len.div_ceil(BLOCK) * BLOCK, 0);
    Ok(out)
}

/// Read the binary tables of a FITS file.
pub fn read_fits_tables(path: &Path) -> Result<Vec<FitsTable>> {
    let b = std::fs::read(path).map_err(|e| FieldError::Io {
        path: path.display().to_string(),
        msg: e.to_string(),
    })?;
    tables_from_bytes(&b, &path.display().to_string())
}

/// Read all image HDUs of a FITS file.
pub fn read_fits(path: &Path) -> Result<Vec<FitsImage>> {
    let b = std::fs::read(path).map_err(|e| FieldError::Io {
        path: path.display().to_string(),
        msg: e.to_string(),
    })?;
    from_bytes(&b, &path.display().to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn empty_files_and_non_square_pixels_are_errors() {
        let e = from_bytes(&[], "e.fits").unwrap_err().to_string();
        assert!(e.contains("empty file"), "{e}");
        let im = FitsImage::new("E1", vec![2, 2], vec![0.0; 4], Some(2.0));
        let dir = std::env::temp_dir().join(format!("cosmodiff-fits-sq-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.fits");
        write_fits(&p, &[im]).unwrap();
        // Make CDELT1 differ from CDELT2 (same card width, so offsets hold).
        let mut b = std::fs::read(&p).unwrap();
        let text = String::from_utf8_lossy(&b).into_owned();
        let k = text.find("CDELT1").unwrap();
        let v = text[k..k + 80].find('=').unwrap() + k + 2;
        b[v..v + 20].copy_from_slice(format!("{:>20}", "0.1").as_bytes());
        let e = from_bytes(&b, "a.fits").unwrap_err().to_string();
        assert!(e.contains("not square"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn roundtrip_2d_3d_and_header() {
        let a = FitsImage::new(
            "KAPPA",
            vec![3, 5],
            (0..15).map(|i| i as f64 * 0.5 - 1.0).collect(),
            Some(2.0),
        );
        let b = FitsImage::new(
            "SAMPLES",
            vec![2, 3, 4],
            (0..24).map(|i| (i as f64).sin()).collect(),
            None,
        );
        let bytes = to_bytes(&[a.clone(), b.clone()]).unwrap();
        assert_eq!(bytes.len() % 2880, 0);
        assert_eq!(&bytes[..30], b"SIMPLE  =                    T");
        let h = std::str::from_utf8(&bytes[..2880]).unwrap();
        assert!(h.contains("NAXIS1  =                    5"));
        assert!(h.contains("NAXIS2  =                    3"));
        let back = from_bytes(&bytes, "mem").unwrap();
        assert_eq!(back, vec![a, b]);
        // File round trip.
        let p = std::env::temp_dir().join("cosmodiff_fits_test.fits");
        write_fits(&p, &back).unwrap();
        assert_eq!(read_fits(&p).unwrap(), back);
    }

    #[test]
    fn binary_table_roundtrip_and_skips_in_image_reader() {
        let x = [1.0, 2.5, -3.0];
        let y = [0.1, 0.2, 0.3];
        let b = table_to_bytes("CAT", &[("x", &x), ("Y", &y)]).unwrap();
        let t = tables_from_bytes(&b, "mem").unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].name.as_deref(), Some("CAT"));
        assert_eq!(t[0].column("X").unwrap(), &x);
        assert_eq!(t[0].column("y").unwrap(), &y);
        assert!(from_bytes(&b, "mem").unwrap().is_empty());
    }

    #[test]
    fn reads_int16_with_scaling_and_rejects_garbage() {
        let mut hdr = String::new();
        for c in [
            card("SIMPLE", "T", ""),
            card("BITPIX", "16", ""),
            card("NAXIS", "2", ""),
            card("NAXIS1", "2", ""),
            card("NAXIS2", "1", ""),
            card("BSCALE", "0.5", ""),
            card("BZERO", "1.0", ""),
            card("CDELT2", "-0.05", ""),
        ] {
            hdr.push_str(&c);
        }
        hdr.push_str(&format!("{:<80}", "END"));
        let mut b = hdr.into_bytes();
        b.resize(2880, b' ');
        b.extend_from_slice(&[0, 4, 0xff, 0xfe]);
        b.resize(5760, 0);
        let im = from_bytes(&b, "mem").unwrap();
        assert_eq!(im[0].data, vec![3.0, 0.0]);
        assert!((im[0].pixel_arcmin.unwrap() - 3.0).abs() < 1e-12);
        assert!(from_bytes(b"hello", "x.fits")
            .unwrap_err()
            .to_string()
            .contains("x.fits"));
        assert!(from_bytes(&b[..2882], "t.fits").is_err());
        let mut nonascii = b.clone();
        nonascii[3] = 0xC3;
        assert!(from_bytes(&nonascii, "u.fits").is_err());
        assert!(to_bytes(&[FitsImage::new("A", vec![2, 2], vec![1.0; 3], None)]).is_err());
    }

    fn header(cards: &[(&str, &str)]) -> Vec<u8> {
        let mut h: String = cards.iter().map(|(k, v)| card(k, v, "")).collect();
        h.push_str(&format!("{:<80}", "END"));
        let mut b = h.into_bytes();
        b.resize(b.len().div_ceil(BLOCK) * BLOCK, b' ');
        b
    }

    /// Headers whose sizes overflow or lie about the data: an error, never a
    /// panic or a huge allocation (the reliability issue's PCOUNT = 2^61 - 255
    /// among them).
    #[test]
    fn hostile_headers_are_errors_not_panics() {
        let primary = header(&[("SIMPLE", "T"), ("BITPIX", "8"), ("NAXIS", "0")]);
        let ext = |cards: &[(&str, &str)], data: usize| {
            let mut b = primary.clone();
            b.extend(header(cards));
            b.extend(vec![0u8; data]);
            b
        };
        let img = |n1: &str, n2: &str, p: &str, g: &str| {
            ext(
                &[
                    ("XTENSION", "'IMAGE   '"),
                    ("BITPIX", "-64"),
                    ("NAXIS", "2"),
                    ("NAXIS1", n1),
                    ("NAXIS2", n2),
                    ("PCOUNT", p),
                    ("GCOUNT", g),
                ],
                2880,
            )
        };
        let table = |n1: &str, n2: &str, tform: &str| {
            ext(
                &[
                    ("XTENSION", "'BINTABLE'"),
                    ("BITPIX", "8"),
                    ("NAXIS", "2"),
                    ("NAXIS1", n1),
                    ("NAXIS2", n2),
                    ("PCOUNT", "0"),
                    ("GCOUNT", "1"),
                    ("TFIELDS", "1"),
                    ("TFORM1", tform),
                    ("TTYPE1", "'X'"),
                ],
                2880,
            )
        };
        let cases = [
            (
                "PCOUNT = 2^61 - 255",
                img("2", "2", "2305843009213693697", "1"),
            ),
            ("GCOUNT huge", img("2", "2", "0", "4611686018427387904")),
            ("GCOUNT = 0", img("2", "2", "0", "0")),
            ("PCOUNT negative", img("2", "2", "-5", "1")),
            (
                "NAXIS1 x NAXIS2 overflow",
                img("4294967296", "4294967296", "0", "1"),
            ),
            ("table NAXIS1 = 0", table("0", "1000000000000", "'D'")),
            ("table rows beyond data", table("8", "1000000000", "'D'")),
            (
                "TFORM repeat overflow",
                table("8", "1", "'9223372036854775807D'"),
            ),
        ];
        for (what, b) in &cases {
            let r1 = std::panic::catch_unwind(|| from_bytes(b, "h.fits"));
            let r2 = std::panic::catch_unwind(|| tables_from_bytes(b, "h.fits"));
            let (r1, r2) = (
                r1.unwrap_or_else(|_| panic!("{what}: image reader panicked")),
                r2.unwrap_or_else(|_| panic!("{what}: table reader panicked")),
            );
            assert!(r1.is_err() || r2.is_err(), "{what}: accepted");
            let e = r1.err().or(r2.err()).unwrap().to_string();
            assert!(e.contains("h.fits") && !e.contains('\n'), "{what}: {e}");
        }
    }

    /// A fixed budget of random corruptions of valid image and table files:
    /// every one is read or refused, none panics.
    #[test]
    fn corrupted_files_never_panic() {
        use rand::{RngExt, SeedableRng};
        let img = to_bytes(&[FitsImage::new(
            "K",
            vec![3, 4],
            (0..12).map(|v| v as f64).collect(),
            Some(2.0),
        )])
        .unwrap();
        let tab = table_to_bytes("T", &[("ra", &[1.0, 2.0]), ("dec", &[3.0, 4.0])]).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let digits = b"0123456789-+ .'E";
        for base in [&img, &tab] {
            for _ in 0..3000 {
                let mut b = base.to_vec();
                for _ in 0..rng.random_range(1..6usize) {
                    let i = rng.random_range(0..b.len());
                    // mostly inside header values (digits and quotes), sometimes anywhere
                    b[i] = if rng.random_range(0..3u8) > 0 {
                        digits[rng.random_range(0..digits.len())]
                    } else {
                        rng.random()
                    };
                }
                if rng.random_range(0..8u8) == 0 {
                    b.truncate(rng.random_range(0..b.len()));
                }
                let ok = std::panic::catch_unwind(|| {
                    let _ = from_bytes(&b, "f.fits");
                    let _ = tables_from_bytes(&b, "f.fits");
                });
                assert!(ok.is_ok(), "panic on a corrupted file");
            }
        }
    }

    /// Multi-extension layout: the scale sits in a data-less primary header
    /// and the extensions carry none of their own.
    #[test]
    fn extensions_inherit_the_primary_pixel_scale() {
        let mut hdr = String::new();
        for c in [
            card("SIMPLE", "T", ""),
            card("BITPIX", "8", ""),
            card("NAXIS", "0", ""),
            card("PIXSCALE", "1.5", ""),
        ] {
            hdr.push_str(&c);
        }
        hdr.push_str(&format!("{:<80}", "END"));
        let mut b = hdr.into_bytes();
        b.resize(2880, b' ');
        // two scale-free images: drop the first (the primary) and keep the
        // extension (one header block, one data block each)
        let ims = [
            FitsImage::new("A", vec![2, 2], vec![0.0; 4], None),
            FitsImage::new("E1", vec![2, 2], vec![1.0, 2.0, 3.0, 4.0], None),
        ];
        b.extend_from_slice(&to_bytes(&ims).unwrap()[2 * 2880..]);
        let im = from_bytes(&b, "mem").unwrap();
        assert_eq!(im.len(), 1);
        assert_eq!(im[0].name.as_deref(), Some("E1"));
        assert_eq!(im[0].data, vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(im[0].pixel_arcmin, Some(1.5));
        // an extension's own scale wins
        let own = [
            FitsImage::new("A", vec![2, 2], vec![0.0; 4], None),
            FitsImage::new("E1", vec![2, 2], vec![0.0; 4], Some(2.0)),
        ];
        b.truncate(2880);
        b.extend_from_slice(&to_bytes(&own).unwrap()[2 * 2880..]);
        assert_eq!(from_bytes(&b, "mem").unwrap()[0].pixel_arcmin, Some(2.0));
    }
}
