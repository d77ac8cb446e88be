//! Resumable training: the whole state of [`crate::train::fit`] between two
//! batches, written to one checkpoint file and read back, so that an
//! interrupted run continues to the same final weights, bit for bit, as an
//! uninterrupted one with the same seed.
//!
//! The state is everything the next batch depends on: the weights and the
//! best weights so far (with their burn parameter ids, which key the
//! optimiser's state), the optimiser's moments and step counts (burn's
//! [`OptimizerRecord`](burn::optim::OptimizerRecord), burnpack bytes), the batch-order generator and the
//! order of the current epoch, the position (epoch, batch), the running
//! sums and the loss curves, and the random stream of the loss itself
//! ([`LossState`], e.g. the noise of denoising score matching). Floats are
//! kept as their bits: a resumed run must not differ in the last digit.
//!
//! File layout (`format` 1): the 16-byte magic `cosmodiff-train\n`, the
//! SHA-256 of the rest of the file, the length of a JSON header as a
//! little-endian u64, the header, then the binary sections the header
//! points into (offsets from the end of the header). A damaged file fails
//! the digest; every offset and size is checked as well: a truncated or
//! edited file is a one-line error, never a panic.

// The input layer: no panic reachable from a file's contents.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::cell::RefCell;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::{DType, Tensor, TensorData};
use rand::rngs::ChaCha8Rng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::checkpoint::checkpoint_error;
use crate::error::NnError;

/// Writes a checkpoint's bytes to a path, atomically (temporary name,
/// fsync, rename): supplied by the workflow, which owns file output.
pub type WriteFn = dyn Fn(&Path, &[u8]) -> std::io::Result<()> + Send + Sync;

/// Checkpointing of a training run ([`crate::TrainConfig::checkpoint`]).
#[derive(Clone)]
pub struct CheckpointSettings {
    /// The checkpoint file. If it exists when training starts, training
    /// continues from it (it must belong to the same data, settings and
    /// network); the caller deletes it once the trained model is saved.
    pub file: PathBuf,
    /// Seconds between checkpoints, checked after every batch (0: after
    /// every batch).
    pub every_seconds: f64,
    /// How the file is written.
    pub write: Arc<WriteFn>,
    /// When this flag is set (Ctrl-C), training writes a checkpoint after
    /// the current batch and returns [`NnError::Interrupted`].
    pub stop: Option<&'static AtomicBool>,
}

impl CheckpointSettings {
    pub fn new(file: impl Into<PathBuf>, every_seconds: f64, write: Arc<WriteFn>) -> Self {
        Self {
            file: file.into(),
            every_seconds,
            write,
            stop: None,
        }
    }

    /// Stop (with a checkpoint) when `flag` is set.
    pub fn with_stop(mut self, flag: &'static AtomicBool) -> Self {
        self.stop = Some(flag);
        self
    }

    pub(crate) fn stop_requested(&self) -> bool {
        self.stop.is_some_and(|s| s.load(Ordering::Relaxed))
    }
}

impl fmt::Debug for CheckpointSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckpointSettings")
            .field("file", &self.file)
            .field("every_seconds", &self.every_seconds)
            .finish()
    }
}

/// Two settings are equal when they checkpoint to the same file as often.
impl PartialEq for CheckpointSettings {
    fn eq(&self, other: &Self) -> bool {
        self.file == other.file && self.every_seconds == other.every_seconds
    }
}

/// Random state a loss function draws from itself, saved and restored
/// with the checkpoint (the unit type: a loss without randomness).
pub trait LossState {
    fn save(&self) -> Vec<u8>;
    fn restore(&self, bytes: &[u8]) -> Result<(), String>;
}

impl LossState for () {
    fn save(&self) -> Vec<u8> {
        Vec::new()
    }
    fn restore(&self, _: &[u8]) -> Result<(), String> {
        Ok(())
    }
}

impl LossState for RefCell<ChaCha8Rng> {
    fn save(&self) -> Vec<u8> {
        rng_bytes(&self.borrow())
    }
    fn restore(&self, bytes: &[u8]) -> Result<(), String> {
        *self.borrow_mut() = rng_from_bytes(bytes)?;
        Ok(())
    }
}

/// A ChaCha8 generator as seed (32 bytes), stream (8) and word position
/// (16): its exact place in its stream.
pub(crate) fn rng_bytes(rng: &ChaCha8Rng) -> Vec<u8> {
    let mut v = rng.get_seed().to_vec();
    v.extend(rng.get_stream().to_le_bytes());
    v.extend(rng.get_word_pos().to_le_bytes());
    v
}

pub(crate) fn rng_from_bytes(b: &[u8]) -> Result<ChaCha8Rng, String> {
    let wrong = || format!("a random-generator state has 56 bytes, found {}", b.len());
    let (seed, rest) = b.split_first_chunk::<32>().ok_or_else(wrong)?;
    let (stream, rest) = rest.split_first_chunk::<8>().ok_or_else(wrong)?;
    let pos: [u8; 16] = rest.try_into().map_err(|_| wrong())?;
    let mut rng = ChaCha8Rng::from_seed(*seed);
    rng.set_stream(u64::from_le_bytes(*stream));
    rng.set_word_pos(u128::from_le_bytes(pos));
    Ok(rng)
}

/// Floats kept as their bits in the JSON header: a resumed run must not
/// differ in the last digit.
mod bits {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        v.to_bits().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        u64::deserialize(d).map(f64::from_bits)
    }

    /// The same for a list of floats.
    pub mod vec {
        use serde::{Deserialize, Deserializer, Serialize, Serializer};

        pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
            v.iter()
                .map(|x| x.to_bits())
                .collect::<Vec<u64>>()
                .serialize(s)
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
            Vec::<u64>::deserialize(d).map(|v| v.into_iter().map(f64::from_bits).collect())
        }
    }
}

/// Where the training loop stands.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Position {
    /// Epoch in progress (from 0).
    pub epoch: usize,
    /// Batches of `epoch` already taken (0: the epoch's shuffle is still to
    /// come).
    pub batch: usize,
    /// The training rows in the order of the current epoch.
    pub order: Vec<usize>,
    /// Sum of the batch losses times their sizes, and the rows, so far in
    /// this epoch.
    #[serde(with = "bits")]
    pub sum: f64,
    pub count: usize,
    /// Epochs since the best validation loss.
    pub since_best: usize,
    /// Epoch of the best weights, and their loss (the report's).
    pub best_epoch: usize,
    #[serde(with = "bits")]
    pub best_loss: f64,
    /// The report's loss curves so far.
    #[serde(with = "bits::vec")]
    pub train_loss: Vec<f64>,
    #[serde(with = "bits::vec")]
    pub validation_loss: Vec<f64>,
    /// Training seconds before this run.
    #[serde(with = "bits")]
    pub seconds: f64,
}

/// One parameter tensor: its burn id and values.
pub(crate) struct Saved {
    pub id: u64,
    pub data: TensorData,
}

/// The whole state of a training run.
pub(crate) struct Snapshot {
    /// Data size, settings and network shapes ([`identity`]).
    pub identity: String,
    pub position: Position,
    pub rng: Vec<u8>,
    pub loss: Vec<u8>,
    pub model: Vec<Saved>,
    pub best: Vec<Saved>,
    /// burnpack bytes of the optimiser's record.
    pub optimizer: Vec<u8>,
}

/// What a checkpoint must match to be continued: the number of rows, the
/// training settings (without the progress bar and checkpointing) and the
/// shapes of the network's parameters.
pub(crate) fn identity<M: Module>(n: usize, cfg: &crate::TrainConfig, model: &M) -> String {
    let cfg = crate::TrainConfig {
        progress: false,
        checkpoint: None,
        ..cfg.clone()
    };
    let mut shapes = Shapes(Vec::new());
    model.visit(&mut shapes);
    let shapes = shapes.0;
    format!(
        "{n} rows; {}; {shapes:?}",
        serde_json::to_string(&cfg).unwrap_or_default()
    )
}

/// The shapes of a module's float parameters (no values copied).
struct Shapes(Vec<Vec<usize>>);

impl ModuleVisitor for Shapes {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.push(param.val().shape().to_vec());
    }
}

struct Collect(Vec<Saved>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.push(Saved {
            id: param.id.val(),
            data: param.val().into_data(),
        });
    }
}

/// The float parameters of `model` in visiting order.
pub(crate) fn parameters<M: Module>(model: &M) -> Vec<Saved> {
    let mut c = Collect(Vec::new());
    model.visit(&mut c);
    c.0
}

struct Restore<'a> {
    saved: std::slice::Iter<'a, Saved>,
    error: Option<String>,
}

impl ModuleMapper for Restore<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if self.error.is_some() {
            return param;
        }
        let Some(s) = self.saved.next() else {
            self.error = Some("it holds fewer parameter tensors than the network".into());
            return param;
        };
        let value = param.val();
        if value.shape().to_vec() != s.data.shape().to_vec() || value.dtype() != s.data.dtype() {
            self.error = Some(format!(
                "a parameter of shape {:?} ({:?}) where the network has {:?} ({:?})",
                s.data.shape().to_vec(),
                s.data.dtype(),
                value.shape().to_vec(),
                value.dtype()
            ));
            return param;
        }
        let device = value.device();
        let t = Tensor::<D>::from_data(s.data.clone(), (&device, s.data.dtype()));
        let t = if value.is_require_grad() {
            t.require_grad()
        } else {
            t
        };
        // the saved id: the optimiser's record is keyed by it
        Param::initialized(ParamId::from(s.id), t)
    }
}

/// `model` with the saved values and ids of its parameters.
pub(crate) fn restore<M: Module>(model: M, saved: &[Saved]) -> Result<M, String> {
    let mut r = Restore {
        saved: saved.iter(),
        error: None,
    };
    let model = model.map(&mut r);
    if let Some(e) = r.error {
        return Err(e);
    }
    if r.saved.next().is_some() {
        return Err("it holds more parameter tensors than the network".into());
    }
    Ok(model)
}

const MAGIC: &[u8; 16] = b"cosmodiff-train\n";
const FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Section {
    offset: u64,
    len: u64,
}

#[derive(Serialize, Deserialize)]
struct TensorEntry {
    id: u64,
    shape: Vec<usize>,
    dtype: DType,
    #[serde(flatten)]
    at: Section,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    format: u32,
    identity: String,
    position: Position,
    rng: Section,
    loss: Section,
    optimizer: Section,
    model: Vec<TensorEntry>,
    best: Vec<TensorEntry>,
}

impl Snapshot {
    /// The checkpoint file's bytes.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut body = Vec::new();
        let mut section = |bytes: &[u8]| {
            let s = Section {
                offset: body.len() as u64,
                len: bytes.len() as u64,
            };
            body.extend_from_slice(bytes);
            s
        };
        let rng = section(&self.rng);
        let loss = section(&self.loss);
        let optimizer = section(&self.optimizer);
        let mut tensors = |saved: &[Saved]| -> Vec<TensorEntry> {
            saved
                .iter()
                .map(|s| TensorEntry {
                    id: s.id,
                    shape: s.data.shape().to_vec(),
                    dtype: s.data.dtype(),
                    at: section(s.data.as_bytes()),
                })
                .collect()
        };
        let model = tensors(&self.model);
        let best = tensors(&self.best);
        let header = Header {
            format: FORMAT,
            identity: self.identity.clone(),
            position: self.position.clone(),
            rng,
            loss,
            optimizer,
            model,
            best,
        };
        let json = serde_json::to_vec(&header).unwrap_or_default();
        let mut rest = Vec::with_capacity(8 + json.len() + body.len());
        rest.extend_from_slice(&(json.len() as u64).to_le_bytes());
        rest.extend_from_slice(&json);
        rest.extend_from_slice(&body);
        let mut out = Vec::with_capacity(48 + rest.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&Sha256::digest(&rest));
        out.extend_from_slice(&rest);
        out
    }

    /// Parse a checkpoint file's bytes; every size and offset is checked.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Snapshot, String> {
        let not_one = || "not a cosmodiff training checkpoint".to_string();
        let rest = bytes.strip_prefix(MAGIC.as_slice()).ok_or_else(not_one)?;
        let (digest, rest) = rest.split_first_chunk::<32>().ok_or_else(not_one)?;
        if Sha256::digest(rest).as_slice() != digest.as_slice() {
            return Err(
                "damaged (its SHA-256 does not match its contents); delete it to start again"
                    .into(),
            );
        }
        let (len, rest) = rest.split_first_chunk::<8>().ok_or_else(not_one)?;
        let len = usize::try_from(u64::from_le_bytes(*len)).map_err(|_| not_one())?;
        if len > rest.len() {
            return Err("truncated (the header runs past the end of the file)".into());
        }
        let (json, body) = rest.split_at(len);
        let header: Header =
            serde_json::from_slice(json).map_err(|e| format!("unreadable header: {e}"))?;
        if header.format != FORMAT {
            return Err(format!(
                "format {} is not one this cosmodiff reads ({FORMAT})",
                header.format
            ));
        }
        let slice = |s: &Section| -> Result<&[u8], String> {
            let start = usize::try_from(s.offset).ok();
            let end = start.zip(usize::try_from(s.len).ok());
            match end.and_then(|(a, l)| a.checked_add(l).map(|e| (a, e))) {
                Some((a, e)) => body
                    .get(a..e)
                    .ok_or_else(|| "truncated (a section runs past the end of the file)".into()),
                None => Err("truncated (a section runs past the end of the file)".into()),
            }
        };
        let tensors = |entries: &[TensorEntry]| -> Result<Vec<Saved>, String> {
            entries
                .iter()
                .map(|t| {
                    let b = slice(&t.at)?;
                    let n = t
                        .shape
                        .iter()
                        .try_fold(t.dtype.size(), |a, &d| a.checked_mul(d));
                    if n != Some(b.len()) {
                        return Err(format!(
                            "a tensor of shape {:?} ({:?}) with {} bytes",
                            t.shape,
                            t.dtype,
                            b.len()
                        ));
                    }
                    Ok(Saved {
                        id: t.id,
                        data: TensorData::from_bytes_vec(b.to_vec(), t.shape.clone(), t.dtype),
                    })
                })
                .collect()
        };
        let position = header.position;
        if position.count > position.order.len() {
            return Err("inconsistent position".into());
        }
        Ok(Snapshot {
            identity: header.identity,
            rng: slice(&header.rng)?.to_vec(),
            loss: slice(&header.loss)?.to_vec(),
            optimizer: slice(&header.optimizer)?.to_vec(),
            model: tensors(&header.model)?,
            best: tensors(&header.best)?,
            position,
        })
    }

    /// Read a checkpoint file.
    pub(crate) fn read(path: &Path) -> Result<Snapshot, NnError> {
        let bytes = std::fs::read(path).map_err(|e| checkpoint_error(path, e.to_string()))?;
        Snapshot::from_bytes(&bytes).map_err(|e| checkpoint_error(path, e))
    }
}

/// Parse untrusted checkpoint bytes (for the fuzz tests of the workflows):
/// `Err` with a one-line reason, never a panic.
pub fn check_checkpoint_bytes(bytes: &[u8]) -> Result<(), String> {
    Snapshot::from_bytes(bytes).map(|_| ())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use rand::RngExt;

    #[test]
    fn a_generator_continues_where_it_was_saved() {
        let mut a = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..13 {
            let _: u32 = a.random();
        }
        let mut b = rng_from_bytes(&rng_bytes(&a)).unwrap();
        let xa: Vec<u64> = (0..50).map(|_| a.random()).collect();
        let xb: Vec<u64> = (0..50).map(|_| b.random()).collect();
        assert_eq!(xa, xb);
        assert!(rng_from_bytes(&[0u8; 12]).is_err());
    }

    #[test]
    fn truncated_or_foreign_files_are_errors() {
        let s = Snapshot {
            identity: "x".into(),
            position: Position {
                order: vec![2, 0, 1],
                ..Default::default()
            },
            rng: vec![1; 56],
            loss: vec![],
            model: vec![Saved {
                id: 9,
                data: TensorData::new(vec![1.0f32, 2.0, 3.0], [3]),
            }],
            best: vec![],
            optimizer: vec![4, 5],
        };
        let bytes = s.to_bytes();
        let back = Snapshot::from_bytes(&bytes).unwrap();
        assert_eq!(back.position, s.position);
        assert_eq!(back.model[0].data, s.model[0].data);
        assert_eq!(back.optimizer, vec![4, 5]);
        for cut in [0, 10, 20, 30, bytes.len() - 1] {
            assert!(Snapshot::from_bytes(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        assert!(Snapshot::from_bytes(b"PK\x03\x04 not a checkpoint").is_err());
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        let e = Snapshot::from_bytes(&flipped).err().unwrap();
        assert!(e.contains("damaged"), "{e}");
    }
}
