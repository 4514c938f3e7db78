//! [`Weights`]: a safetensors file read into memory, with typed, shape-checked access.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::{SafeTensorError, SafeTensors};

use super::Dtype;
use crate::loading::LoadError;

/// Name, dtype and shape of one tensor in a safetensors file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    /// Tensor name, e.g. `encoder.layer.0.attention.self.query.weight`.
    pub name: String,
    /// Stored dtype as safetensors spells it (`F32`, `BF16`, `I64`, ...).
    pub dtype: String,
    /// Shape, outermost dimension first.
    pub shape: Vec<usize>,
}

/// A tensor's stored bytes, for callers that keep reduced precision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawTensor<'a> {
    /// Stored dtype.
    pub dtype: Dtype,
    /// Shape, outermost dimension first.
    pub shape: &'a [usize],
    /// Little-endian element bytes, `shape.iter().product() * dtype.size()` of them.
    pub bytes: &'a [u8],
}

/// One entry of the index built when the file is opened.
#[derive(Debug)]
struct Entry {
    dtype: safetensors::Dtype,
    shape: Vec<usize>,
    /// Byte range in `Weights::bytes` (absolute, header included).
    start: usize,
    end: usize,
}

/// A safetensors file held in memory, validated when opened.
///
/// ```
/// use streampool_models::loading::weights::{save_f32, Weights};
/// # let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("tiny.safetensors");
/// save_f32(&path, &[("w", &[2, 2], &[1.0, 2.0, 3.0, 4.0])]).unwrap();
/// let weights = Weights::open(&path).unwrap();
/// assert_eq!(weights.get_f32("w", &[2, 2]).unwrap(), vec![1.0, 2.0, 3.0, 4.0]);
/// ```
#[derive(Debug)]
pub struct Weights {
    path: PathBuf,
    bytes: Vec<u8>,
    index: HashMap<String, Entry>,
}

impl Weights {
    /// Reads and validates `path`: header, offsets and file length are checked here, so later
    /// accesses only fail on a missing tensor, dtype or shape.
    pub fn open(path: &Path) -> Result<Self, LoadError> {
        let bytes = std::fs::read(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => LoadError::FileMissing { path: path.to_path_buf() },
            _ => LoadError::io(path, e),
        })?;
        Self::from_bytes(path, bytes)
    }

    /// Validates an in-memory safetensors file; `path` is only used in error messages.
    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<Self, LoadError> {
        let (header_len, metadata) =
            SafeTensors::read_metadata(&bytes).map_err(|e| header_error(path, &bytes, e))?;
        let data_start = 8 + header_len;
        let index = metadata
            .tensors()
            .into_iter()
            .map(|(name, info)| {
                let (start, end) = info.data_offsets;
                let entry = Entry {
                    dtype: info.dtype,
                    shape: info.shape.clone(),
                    start: data_start + start,
                    end: data_start + end,
                };
                (name, entry)
            })
            .collect();
        Ok(Self { path: path.to_path_buf(), bytes, index })
    }

    /// The file these weights were read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every tensor in the file, sorted by name.
    pub fn tensors(&self) -> Vec<TensorInfo> {
        let mut list: Vec<TensorInfo> = self
            .index
            .iter()
            .map(|(name, e)| TensorInfo {
                name: name.clone(),
                dtype: format!("{:?}", e.dtype),
                shape: e.shape.clone(),
            })
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }

    /// Whether the file holds a tensor called `name` (or one of its [`name_variants`]).
    pub fn contains(&self, name: &str) -> bool {
        self.entry(name).is_ok()
    }

    /// The shape of tensor `name`.
    pub fn shape(&self, name: &str) -> Result<&[usize], LoadError> {
        Ok(&self.entry(name)?.shape)
    }

    /// Tensor `name` converted to `f32` (from F32, F16 or BF16), after checking that its shape
    /// is `expected_shape`.
    pub fn get_f32(&self, name: &str, expected_shape: &[usize]) -> Result<Vec<f32>, LoadError> {
        let raw = self.get_raw(name, expected_shape)?;
        Ok(raw.dtype.decode_f32(raw.bytes))
    }

    /// Tensor `name` as stored (F32, F16 or BF16 bytes), after checking that its shape is
    /// `expected_shape`.
    pub fn get_raw(
        &self,
        name: &str,
        expected_shape: &[usize],
    ) -> Result<RawTensor<'_>, LoadError> {
        let entry = self.entry(name)?;
        let dtype = Dtype::from_safetensors(entry.dtype).ok_or_else(|| LoadError::WrongDtype {
            path: self.path.clone(),
            name: name.to_owned(),
            found: format!("{:?}", entry.dtype),
            expected: "F32, F16 or BF16",
        })?;
        if entry.shape != expected_shape {
            return Err(LoadError::WrongShape {
                path: self.path.clone(),
                name: name.to_owned(),
                expected: expected_shape.to_vec(),
                found: entry.shape.clone(),
            });
        }
        // In range: `read_metadata` checked that the offsets tile the data section exactly.
        let bytes = self.bytes.get(entry.start..entry.end).ok_or_else(|| {
            LoadError::CorruptSafetensors {
                path: self.path.clone(),
                detail: format!("offsets of `{name}` lie outside the file"),
            }
        })?;
        Ok(RawTensor { dtype, shape: &entry.shape, bytes })
    }

    /// Tensor `name`, under its own name or the first of its [`name_variants`] present.
    fn entry(&self, name: &str) -> Result<&Entry, LoadError> {
        name_variants(name).iter().find_map(|n| self.index.get(n)).ok_or_else(|| {
            LoadError::TensorMissing { path: self.path.clone(), name: name.to_owned() }
        })
    }
}

/// Model-head prefixes checkpoints put before the encoder's tensor names (a masked-LM or
/// classification checkpoint of BERT stores `bert.embeddings...`).
const PREFIXES: [&str; 5] = ["", "bert.", "roberta.", "mpnet.", "model."];

/// The names a tensor may have in a checkpoint, the canonical one first: with each of
/// `PREFIXES` (none, `bert.`, `roberta.`, `mpnet.`, `model.`), and a layer norm's `weight` / `bias` also as the older `gamma` / `beta`. The one
/// place where weight-name variants are resolved.
///
/// ```
/// use streampool_models::loading::weights::name_variants;
/// let names = name_variants("embeddings.LayerNorm.weight");
/// assert_eq!(names[0], "embeddings.LayerNorm.weight");
/// assert!(names.contains(&"bert.embeddings.LayerNorm.gamma".to_owned()));
/// ```
pub fn name_variants(name: &str) -> Vec<String> {
    let mut forms = vec![name.to_owned()];
    if let Some(stem) = name.strip_suffix("LayerNorm.weight") {
        forms.push(format!("{stem}LayerNorm.gamma"));
    } else if let Some(stem) = name.strip_suffix("LayerNorm.bias") {
        forms.push(format!("{stem}LayerNorm.beta"));
    }
    PREFIXES.iter().flat_map(|p| forms.iter().map(move |f| format!("{p}{f}"))).collect()
}

/// Sorts a header validation failure into "truncated" (the file is shorter than it says) and
/// "corrupt" (anything else).
fn header_error(path: &Path, bytes: &[u8], err: SafeTensorError) -> LoadError {
    let path = path.to_path_buf();
    let len = bytes.len();
    match err {
        SafeTensorError::HeaderTooSmall => LoadError::TruncatedSafetensors {
            path,
            detail: format!("{len} bytes, too short for the 8-byte header length"),
        },
        SafeTensorError::InvalidHeaderLength => {
            let declared = bytes.get(..8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes);
            LoadError::TruncatedSafetensors {
                path,
                detail: format!(
                    "the header is said to be {} bytes long but the file has only {len} bytes",
                    declared.map_or_else(|| "?".to_owned(), |d| d.to_string())
                ),
            }
        }
        SafeTensorError::MetadataIncompleteBuffer => match declared_len(bytes) {
            Some(declared) if declared > len => LoadError::TruncatedSafetensors {
                path,
                detail: format!("the header describes {declared} bytes, the file has only {len}"),
            },
            _ => LoadError::CorruptSafetensors {
                path,
                detail: format!("tensor data does not cover the file's {len} bytes exactly"),
            },
        },
        other => LoadError::CorruptSafetensors { path, detail: other.to_string() },
    }
}

/// The file length a (syntactically valid) header announces: 8 + header + largest end offset.
fn declared_len(bytes: &[u8]) -> Option<usize> {
    let n = usize::try_from(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?)).ok()?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(bytes.get(8..8usize.checked_add(n)?)?).ok()?;
    let data_end =
        header.values().filter_map(|t| t.get("data_offsets")?.get(1)?.as_u64()).max().unwrap_or(0);
    8usize.checked_add(n)?.checked_add(usize::try_from(data_end).ok()?)
}
