//! Where the model lives on disk: cache directory, model directory, the files it must hold.

use std::env;
use std::path::{Path, PathBuf};

use super::LoadError;

/// Name of the model's directory inside the cache directory.
pub const MODEL_DIR_NAME: &str = "all-MiniLM-L6-v2";

/// Environment variable naming the streampool cache directory.
pub const HOME_ENV: &str = "STREAMPOOL_HOME";

/// Environment variable naming a model directory directly (overrides the cache directory).
pub const MODEL_DIR_ENV: &str = "STREAMPOOL_MODEL_DIR";

/// Files a model directory must contain, relative to it. The sentence-transformers files
/// (`modules.json`, the pooling module's config, `sentence_bert_config.json`) are read when
/// present: see [`super::ModelConfig::load`].
pub const REQUIRED_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

/// The files of a complete sentence-transformers model directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelFiles {
    /// The model directory.
    pub dir: PathBuf,
    /// The encoder's configuration (`config.json`).
    pub config: PathBuf,
    /// Tokenizer definition (`tokenizer.json`).
    pub tokenizer: PathBuf,
    /// Weights (`model.safetensors`).
    pub weights: PathBuf,
    /// sentence-transformers settings, among them `max_seq_length`
    /// (`sentence_bert_config.json`; may be absent).
    pub sentence_config: PathBuf,
    /// Pooling settings where `modules.json` is absent (`1_Pooling/config.json`; may be absent).
    pub pooling_config: PathBuf,
}

impl ModelFiles {
    /// The model's name: its directory's name (`all-MiniLM-L6-v2`), or `model` for a directory
    /// without one (`/`).
    pub fn name(&self) -> String {
        let dir = self.dir.canonicalize().unwrap_or_else(|_| self.dir.clone());
        dir.file_name().map_or_else(|| "model".to_owned(), |n| n.to_string_lossy().into_owned())
    }
}

/// The streampool cache directory: `$STREAMPOOL_HOME`, else `$XDG_CACHE_HOME/streampool`,
/// else `~/.cache/streampool`. Empty variables count as unset.
///
/// ```
/// let dir = streampool_models::loading::default_cache_dir();
/// assert!(dir.is_ok() || std::env::var_os("HOME").is_none());
/// ```
pub fn default_cache_dir() -> Result<PathBuf, LoadError> {
    if let Some(home) = non_empty_var(HOME_ENV) {
        return Ok(home);
    }
    if let Some(xdg) = non_empty_var("XDG_CACHE_HOME") {
        return Ok(xdg.join("streampool"));
    }
    match non_empty_var("HOME") {
        Some(home) => Ok(home.join(".cache").join("streampool")),
        None => Err(LoadError::NoCacheDir),
    }
}

/// The model directory to use: `$STREAMPOOL_MODEL_DIR` if set, else
/// `default_cache_dir()/all-MiniLM-L6-v2`. The directory need not exist.
pub fn default_model_dir() -> Result<PathBuf, LoadError> {
    match non_empty_var(MODEL_DIR_ENV) {
        Some(dir) => Ok(dir),
        None => Ok(default_cache_dir()?.join(MODEL_DIR_NAME)),
    }
}

/// Checks that `dir` holds every file of [`REQUIRED_FILES`] and returns their paths.
///
/// Errors: [`LoadError::ModelDirMissing`] when `dir` is not a directory (the message tells the
/// user to run `streampool fetch-model`), [`LoadError::FileMissing`] for the first absent file.
pub fn locate_model(dir: &Path) -> Result<ModelFiles, LoadError> {
    if !dir.is_dir() {
        return Err(LoadError::ModelDirMissing { dir: dir.to_path_buf() });
    }
    for name in REQUIRED_FILES {
        let path = dir.join(name);
        if !path.is_file() {
            return Err(LoadError::FileMissing { path });
        }
    }
    Ok(ModelFiles {
        dir: dir.to_path_buf(),
        config: dir.join(REQUIRED_FILES[0]),
        tokenizer: dir.join(REQUIRED_FILES[1]),
        weights: dir.join(REQUIRED_FILES[2]),
        sentence_config: dir.join("sentence_bert_config.json"),
        pooling_config: dir.join("1_Pooling").join("config.json"),
    })
}

fn non_empty_var(name: &str) -> Option<PathBuf> {
    env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from)
}
