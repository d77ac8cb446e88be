//! Reading `.npy`/`.npz` files, and [`Npz`], the archive every workflow writes.

// The input layer: no panic reachable from a file's contents.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use anyhow::{bail, Context, Result};
use ndarray::{ArrayD, IxDyn};
use ndarray_npy::NpzWriter;
use std::path::Path;

/// Commands that write only numpy archives: refuse another extension
/// instead of writing an `.npz` under a misleading name.
pub fn require_npz(out: &Path) -> Result<()> {
    if out.extension().and_then(|e| e.to_str()) != Some("npz") {
        anyhow::bail!(
            "--out {}: this command writes a numpy .npz archive; name it *.npz",
            out.display()
        );
    }
    Ok(())
}

/// A float `.npy` of any shape, stored as float32 or float64, as f64.
pub fn read_float_npy(path: &Path, what: &str) -> Result<ArrayD<f64>> {
    match ndarray_npy::read_npy::<_, ArrayD<f32>>(path) {
        Ok(a) => Ok(a.mapv(f64::from)),
        Err(_) => ndarray_npy::read_npy::<_, ArrayD<f64>>(path).with_context(|| {
            format!(
                "cannot read {what} {} (float32 or float64 .npy)",
                path.display()
            )
        }),
    }
}

/// Array `name` of an open `.npz`, stored as float64 or float32, as f64
/// (the float32 error is returned when neither reads).
pub fn npz_float<R: std::io::Read + std::io::Seek>(
    z: &mut ndarray_npy::NpzReader<R>,
    name: &str,
) -> std::result::Result<ArrayD<f64>, ndarray_npy::ReadNpzError> {
    match z.by_name::<ndarray::OwnedRepr<f64>, IxDyn>(name) {
        Ok(a) => Ok(a),
        Err(_) => Ok(z
            .by_name::<ndarray::OwnedRepr<f32>, IxDyn>(name)?
            .mapv(f64::from)),
    }
}

/// A 1-D numpy unicode array (`<U*`, as [`Npz::add_str`] writes it) from
/// an `.npz`, or `None` when the archive has no such member. ndarray-npy
/// reads no strings, so the `.npy` header is parsed here.
pub fn npz_strings(path: &Path, name: &str) -> Result<Option<Vec<String>>> {
    use std::io::Read;
    let what = || format!("{}: member {name}", path.display());
    let f = std::fs::File::open(path).with_context(|| path.display().to_string())?;
    let mut zip = zip::ZipArchive::new(f)
        .with_context(|| format!("{}: not an .npz archive", path.display()))?;
    let mut member = match zip.by_name(&format!("{name}.npy")) {
        Ok(m) => m,
        Err(_) => return Ok(None),
    };
    let mut bytes = Vec::new();
    member.read_to_end(&mut bytes).with_context(what)?;
    // magic, version, header length (u16 in version 1, u32 after)
    let le = |r: std::ops::Range<usize>| {
        bytes
            .get(r)
            .map(|b| b.iter().rev().fold(0usize, |a, &x| a << 8 | x as usize))
    };
    if bytes.get(..6) != Some(b"\x93NUMPY".as_slice()) {
        bail!("{}: not a .npy array", what());
    }
    let (hlen, start) = match bytes.get(6) {
        Some(1) => (le(8..10), 10usize),
        _ => (le(8..12), 12),
    };
    let hlen = hlen.with_context(|| format!("{}: truncated header", what()))?;
    let header = bytes
        .get(start..start.saturating_add(hlen))
        .map(String::from_utf8_lossy)
        .with_context(|| format!("{}: truncated header", what()))?;
    let descr = header
        .split("'descr':")
        .nth(1)
        .and_then(|r| r.split('\'').nth(1))
        .unwrap_or("");
    let width: usize = match descr.strip_prefix("<U") {
        Some(w) => w
            .parse()
            .with_context(|| format!("{}: dtype {descr}", what()))?,
        None => bail!(
            "{}: dtype {descr:?} is not a little-endian unicode string",
            what()
        ),
    };
    if header.contains("'fortran_order': True") {
        bail!("{}: Fortran order is not supported", what());
    }
    let data = bytes.get(start + hlen..).unwrap_or_default();
    let Some(item) = width
        .checked_mul(4)
        .filter(|&b| b > 0 && data.len() % b == 0)
    else {
        bail!(
            "{}: {} data bytes are not whole strings of {width} characters",
            what(),
            data.len()
        );
    };
    Ok(Some(
        data.chunks(item)
            .map(|s| {
                s.chunks_exact(4)
                    .filter_map(|c| c.try_into().ok().map(u32::from_le_bytes))
                    .take_while(|&c| c != 0)
                    .filter_map(char::from_u32)
                    .collect()
            })
            .collect(),
    ))
}

/// One array of an [`Npz`]: float64 (most), int64 (counts) or bool (flags).
enum Array {
    F64(ArrayD<f64>),
    F32(ArrayD<f32>),
    I64(ArrayD<i64>),
    Bool(ArrayD<bool>),
    Str(ArrayD<UStr>),
}

/// Longest string [`Npz::add_str`] stores (numpy dtype `<U32`).
pub const MAX_STR_CHARS: usize = 32;

/// One fixed-width numpy unicode string (`<U32`: UTF-32LE, zero-padded).
/// ndarray-npy writes no strings, so the element format is written here.
#[derive(Clone, Copy)]
struct UStr([u32; MAX_STR_CHARS]);

impl ndarray_npy::WritableElement for UStr {
    fn type_descriptor() -> py_literal::Value {
        py_literal::Value::String(format!("<U{MAX_STR_CHARS}"))
    }
    fn write<W: std::io::Write>(&self, mut w: W) -> Result<(), ndarray_npy::WriteDataError> {
        for c in self.0 {
            w.write_all(&c.to_le_bytes())
                .map_err(ndarray_npy::WriteDataError::Io)?;
        }
        Ok(())
    }
    fn write_slice<W: std::io::Write>(
        slice: &[Self],
        mut w: W,
    ) -> Result<(), ndarray_npy::WriteDataError> {
        for s in slice {
            s.write(&mut w)?;
        }
        Ok(())
    }
}

/// Collects named arrays and writes them as one `.npz`.
#[derive(Default)]
pub struct Npz {
    arrays: Vec<(String, Array)>,
}

impl Npz {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, name: &str, shape: &[usize], data: Vec<f64>) -> Result<()> {
        let a = ArrayD::from_shape_vec(IxDyn(shape), data)
            .with_context(|| format!("array '{name}' has the wrong size"))?;
        self.arrays.push((name.to_string(), Array::F64(a)));
        Ok(())
    }

    /// A float32 array (large fields whose precision is that of float32).
    pub fn add_f32(&mut self, name: &str, shape: &[usize], data: Vec<f32>) -> Result<()> {
        let a = ArrayD::from_shape_vec(IxDyn(shape), data)
            .with_context(|| format!("array '{name}' has the wrong size"))?;
        self.arrays.push((name.to_string(), Array::F32(a)));
        Ok(())
    }

    /// An int64 array (counts, indices).
    pub fn add_i64(&mut self, name: &str, shape: &[usize], data: Vec<i64>) -> Result<()> {
        let a = ArrayD::from_shape_vec(IxDyn(shape), data)
            .with_context(|| format!("array '{name}' has the wrong size"))?;
        self.arrays.push((name.to_string(), Array::I64(a)));
        Ok(())
    }

    /// A bool array (flags).
    pub fn add_bool(&mut self, name: &str, shape: &[usize], data: Vec<bool>) -> Result<()> {
        let a = ArrayD::from_shape_vec(IxDyn(shape), data)
            .with_context(|| format!("array '{name}' has the wrong size"))?;
        self.arrays.push((name.to_string(), Array::Bool(a)));
        Ok(())
    }

    /// A 1-D array of unicode strings (numpy `<U32`; names, labels).
    pub fn add_str(&mut self, name: &str, strings: &[&str]) -> Result<()> {
        let v = strings
            .iter()
            .map(|s| {
                let mut u = [0u32; MAX_STR_CHARS];
                if s.chars().count() > MAX_STR_CHARS {
                    anyhow::bail!("'{s}' in '{name}' is longer than {MAX_STR_CHARS} characters");
                }
                for (d, c) in u.iter_mut().zip(s.chars()) {
                    *d = c as u32;
                }
                Ok(UStr(u))
            })
            .collect::<Result<Vec<_>>>()?;
        let a = ArrayD::from_shape_vec(IxDyn(&[v.len()]), v)?;
        self.arrays.push((name.to_string(), Array::Str(a)));
        Ok(())
    }

    pub fn add_1d(&mut self, name: &str, data: &[f64]) -> Result<()> {
        self.add(name, &[data.len()], data.to_vec())
    }

    pub fn add_2d(&mut self, name: &str, rows: &[Vec<f64>]) -> Result<()> {
        let ncol = rows.first().map(|r| r.len()).unwrap_or(0);
        self.add(name, &[rows.len(), ncol], rows.concat())
    }

    /// The first float array holding a NaN or an infinity, with the flat
    /// index of the first such value.
    pub fn first_non_finite(&self) -> Option<(&str, usize)> {
        self.arrays.iter().find_map(|(n, a)| match a {
            Array::F64(a) => a
                .iter()
                .position(|v| !v.is_finite())
                .map(|i| (n.as_str(), i)),
            Array::F32(a) => a
                .iter()
                .position(|v| !v.is_finite())
                .map(|i| (n.as_str(), i)),
            _ => None,
        })
    }

    pub fn names(&self) -> Vec<&str> {
        self.arrays.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// Write the archive atomically (see [`crate::output`]). An archive
    /// holding a NaN or an infinity is refused, naming the array: garbage
    /// computed from valid-looking input is an error, never a file (the
    /// workflows check their own outputs first, with messages naming the
    /// parameter; this is the net under them).
    pub fn write(&self, path: &Path) -> Result<()> {
        if let Some((name, i)) = self.first_non_finite() {
            anyhow::bail!(
                "not writing {}: array '{name}' holds a non-finite value (NaN or infinity) at flat index {i}; the inputs give a result outside the range cosmodiff can represent",
                path.display()
            );
        }
        self.write_unchecked(path)
    }

    /// [`Npz::write`] without the finiteness check, for data whose NaN mean
    /// something (masked pixels of an input catalogue).
    pub fn write_unchecked(&self, path: &Path) -> Result<()> {
        // Built in memory, written in one go: a failed write (disk full) is
        // one error, not also a complaint from the zip writer's destructor.
        let mut w = NpzWriter::new(std::io::Cursor::new(Vec::new()));
        for (n, a) in &self.arrays {
            match a {
                Array::F64(a) => w.add_array(n.as_str(), a),
                Array::F32(a) => w.add_array(n.as_str(), a),
                Array::I64(a) => w.add_array(n.as_str(), a),
                Array::Bool(a) => w.add_array(n.as_str(), a),
                Array::Str(a) => w.add_array(n.as_str(), a),
            }
            .with_context(|| format!("writing '{n}' to {}", path.display()))?;
        }
        let bytes = w
            .finish()
            .with_context(|| format!("finishing {}", path.display()))?
            .into_inner();
        crate::output::write_bytes(path, &bytes)
    }
}
