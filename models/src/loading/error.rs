//! [`LoadError`]: everything that can go wrong while reading a model directory.

use std::path::PathBuf;

/// An error reading model files (directory, safetensors, config, tokenizer).
///
/// Every message names the file involved and, where the fix is to download the model again, says
/// so. Nothing in [`crate::loading`] panics on a bad file: it returns one of these.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The model directory does not exist.
    #[error(
        "model directory {} not found; run `streampool fetch-model` to download \
         all-MiniLM-L6-v2 (or set STREAMPOOL_MODEL_DIR to a directory holding it)",
        dir.display()
    )]
    ModelDirMissing {
        /// The directory that was looked for.
        dir: PathBuf,
    },
    /// The model directory exists but a required file is not in it.
    #[error(
        "model file {} is missing: the model directory is incomplete; \
         run `streampool fetch-model` to download it again",
        path.display()
    )]
    FileMissing {
        /// The file that is missing.
        path: PathBuf,
    },
    /// No cache directory can be derived from the environment.
    #[error(
        "cannot choose a cache directory: none of STREAMPOOL_HOME, XDG_CACHE_HOME, HOME is set"
    )]
    NoCacheDir,
    /// Reading or writing a file failed.
    #[error("cannot access {}: {source}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A safetensors file ends before the data its header announces.
    #[error(
        "safetensors file {} is truncated ({detail}); delete it and run \
         `streampool fetch-model` again",
        path.display()
    )]
    TruncatedSafetensors {
        /// The file.
        path: PathBuf,
        /// What exactly is short.
        detail: String,
    },
    /// A safetensors file whose header cannot be parsed or is inconsistent.
    #[error(
        "safetensors file {} is corrupt ({detail}); delete it and run \
         `streampool fetch-model` again",
        path.display()
    )]
    CorruptSafetensors {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// A tensor is stored with a dtype this loader cannot convert.
    #[error("tensor `{name}` in {} has dtype {found}, expected {expected}", path.display())]
    WrongDtype {
        /// The file.
        path: PathBuf,
        /// The tensor name.
        name: String,
        /// The dtype found in the file.
        found: String,
        /// What was accepted.
        expected: &'static str,
    },
    /// A tensor the model needs is not in the file.
    #[error("tensor `{name}` not found in {}", path.display())]
    TensorMissing {
        /// The file.
        path: PathBuf,
        /// The tensor name.
        name: String,
    },
    /// A tensor has a different shape than the model expects.
    #[error("tensor `{name}` in {} has shape {found:?}, expected {expected:?}", path.display())]
    WrongShape {
        /// The file.
        path: PathBuf,
        /// The tensor name.
        name: String,
        /// The shape the caller expected.
        expected: Vec<usize>,
        /// The shape found in the file.
        found: Vec<usize>,
    },
    /// Tensors handed to a save function are inconsistent (data length vs shape, duplicates).
    #[error("cannot save tensor `{name}` to {}: {reason}", path.display())]
    InvalidTensorToSave {
        /// The destination file.
        path: PathBuf,
        /// The tensor name.
        name: String,
        /// What is inconsistent.
        reason: String,
    },
    /// A JSON config file cannot be parsed.
    #[error("cannot parse config {}: {source}", path.display())]
    ConfigParse {
        /// The file.
        path: PathBuf,
        /// The JSON error (with line and column).
        source: serde_json::Error,
    },
    /// A config file parses but describes a model this runtime does not support.
    #[error("invalid config {}: {reason}", path.display())]
    InvalidConfig {
        /// The file.
        path: PathBuf,
        /// What is wrong or unsupported.
        reason: String,
    },
    /// tokenizer.json cannot be loaded.
    #[error(
        "cannot load tokenizer {}: {reason}; the file may be damaged, run \
         `streampool fetch-model` again",
        path.display()
    )]
    TokenizerLoad {
        /// The file.
        path: PathBuf,
        /// The tokenizers crate's message.
        reason: String,
    },
    /// Tokenizing a text failed.
    #[error("tokenization failed: {reason}")]
    Tokenize {
        /// The tokenizers crate's message.
        reason: String,
    },
}

impl LoadError {
    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }
}
