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
//! skips non-image extensions (e.g. binary tables), and takes the pixel scale
//! from `PIXSCALE`, else from `|CDELT2|` (or `|CDELT1|`) in degrees.

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
        Self { name: Some(name.to_string()), shape, data, pixel_arcmin }
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
    let bad = |msg: String| FieldError::Fits { path: "<memory>".into(), msg };
    if images.is_empty() {
        return Err(bad("nothing to write".into()));
    }
    let mut out = Vec::new();
    for (h, im) in images.iter().enumerate() {
        if im.shape.is_empty() || im.shape.len() > 999 || im.shape.iter().product::<usize>() != im.data.len() {
            return Err(bad(format!("HDU {h}: shape {:?} does not match {} values", im.shape, im.data.len())));
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
        FieldError::Fits { msg, .. } => FieldError::Fits { path: path.display().to_string(), msg },
        e => e,
    })?;
    std::fs::write(path, bytes).map_err(|e| FieldError::Io { path: path.display().to_string(), msg: e.to_string() })
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

/// Parse FITS bytes into its image HDUs (`path` names the source in errors).
pub fn from_bytes(bytes: &[u8], path: &str) -> Result<Vec<FitsImage>> {
    let bad = |msg: String| FieldError::Fits { path: path.into(), msg };
    let mut pos = 0;
    let mut out = vec![];
    let mut hdu = 0;
    while pos < bytes.len() {
        // Header.
        let mut kv: Vec<(String, String)> = vec![];
        let mut ended = false;
        while !ended {
            if pos + BLOCK > bytes.len() {
                return Err(bad(format!("HDU {hdu}: truncated header")));
            }
            for c in bytes[pos..pos + BLOCK].chunks(80) {
                if !c.is_ascii() {
                    return Err(bad(format!("HDU {hdu}: header is not ASCII")));
                }
                let line = std::str::from_utf8(c).map_err(|_| bad(format!("HDU {hdu}: header is not ASCII")))?;
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
            get(k).ok_or_else(|| bad(format!("HDU {hdu}: missing {k}")))?.parse::<i64>().map_err(|_| bad(format!("HDU {hdu}: {k} is not an integer")))
        };
        let getf = |k: &str| get(k).and_then(|v| v.replace('D', "E").parse::<f64>().ok());
        if hdu == 0 && get("SIMPLE") != Some("T") {
            return Err(bad("not a FITS file (SIMPLE = T missing)".into()));
        }
        let bitpix = geti("BITPIX")?;
        let naxis = geti("NAXIS")?;
        if !(0..=999).contains(&naxis) {
            return Err(bad(format!("HDU {hdu}: bad NAXIS {naxis}")));
        }
        let mut dims = vec![];
        for i in 1..=naxis {
            let d = geti(&format!("NAXIS{i}"))?;
            if d < 0 {
                return Err(bad(format!("HDU {hdu}: negative NAXIS{i}")));
            }
            dims.push(d as usize);
        }
        let pcount = if hdu > 0 { get("PCOUNT").and_then(|v| v.parse::<usize>().ok()).unwrap_or(0) } else { 0 };
        let gcount = if hdu > 0 { get("GCOUNT").and_then(|v| v.parse::<usize>().ok()).unwrap_or(1) } else { 1 };
        let bytes_per = (bitpix.unsigned_abs() / 8) as usize;
        if ![8, 16, 32, 64, -32, -64].contains(&bitpix) {
            return Err(bad(format!("HDU {hdu}: unsupported BITPIX {bitpix}")));
        }
        let nval: usize = if naxis == 0 { 0 } else { dims.iter().product() };
        let nbytes = bytes_per * gcount * (pcount + nval);
        let padded = nbytes.div_ceil(BLOCK) * BLOCK;
        if pos + nbytes > bytes.len() {
            return Err(bad(format!("HDU {hdu}: truncated data ({} of {nbytes} bytes)", bytes.len() - pos)));
        }
        let is_image = hdu == 0 || get("XTENSION").map(|x| x.trim() == "IMAGE").unwrap_or(false);
        if is_image && nval > 0 {
            let (bscale, bzero) = (getf("BSCALE").unwrap_or(1.0), getf("BZERO").unwrap_or(0.0));
            let raw = &bytes[pos..pos + nval * bytes_per];
            let data: Vec<f64> = raw
                .chunks(bytes_per)
                .map(|c| {
                    let v = match bitpix {
                        8 => c[0] as f64,
                        16 => i16::from_be_bytes([c[0], c[1]]) as f64,
                        32 => i32::from_be_bytes(c.try_into().unwrap()) as f64,
                        64 => i64::from_be_bytes(c.try_into().unwrap()) as f64,
                        -32 => f32::from_be_bytes(c.try_into().unwrap()) as f64,
                        _ => f64::from_be_bytes(c.try_into().unwrap()),
                    };
                    bzero + bscale * v
                })
                .collect();
            let pixel_arcmin = getf("PIXSCALE").or_else(|| getf("CDELT2").or_else(|| getf("CDELT1")).map(|d| d.abs() * 60.0));
            out.push(FitsImage { name: get("EXTNAME").map(|s| s.to_string()), shape: dims.iter().rev().copied().collect(), data, pixel_arcmin });
        }
        pos += padded;
        hdu += 1;
    }
    Ok(out)
}

/// Read all image HDUs of a FITS file.
pub fn read_fits(path: &Path) -> Result<Vec<FitsImage>> {
    let b = std::fs::read(path).map_err(|e| FieldError::Io { path: path.display().to_string(), msg: e.to_string() })?;
    from_bytes(&b, &path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_2d_3d_and_header() {
        let a = FitsImage::new("KAPPA", vec![3, 5], (0..15).map(|i| i as f64 * 0.5 - 1.0).collect(), Some(2.0));
        let b = FitsImage::new("SAMPLES", vec![2, 3, 4], (0..24).map(|i| (i as f64).sin()).collect(), None);
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
    fn reads_int16_with_scaling_and_rejects_garbage() {
        let mut hdr = String::new();
        for c in [card("SIMPLE", "T", ""), card("BITPIX", "16", ""), card("NAXIS", "2", ""), card("NAXIS1", "2", ""), card("NAXIS2", "1", ""), card("BSCALE", "0.5", ""), card("BZERO", "1.0", ""), card("CDELT2", "-0.05", "")] {
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
        assert!(from_bytes(b"hello", "x.fits").unwrap_err().to_string().contains("x.fits"));
        assert!(from_bytes(&b[..2882], "t.fits").is_err());
        let mut nonascii = b.clone();
        nonascii[3] = 0xC3;
        assert!(from_bytes(&nonascii, "u.fits").is_err());
        assert!(to_bytes(&[FitsImage::new("A", vec![2, 2], vec![1.0; 3], None)]).is_err());
    }
}
