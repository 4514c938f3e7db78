//! Downloading a wheel with `python3 -m pip download`.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::FetchError;

/// Environment variable naming the Python interpreter to run pip with (default `python3`).
pub const PYTHON_ENV: &str = "STREAMPOOL_PYTHON";

/// The Python interpreter to use: `$STREAMPOOL_PYTHON` or `python3`.
pub fn python() -> String {
    std::env::var(PYTHON_ENV).ok().filter(|p| !p.is_empty()).unwrap_or_else(|| "python3".into())
}

/// Runs `python -m pip download --no-deps` for `requirement` (e.g. `pkg==1.0`) into `dest` and
/// returns the path of the single wheel it leaves there.
pub fn download_wheel(python: &str, requirement: &str, dest: &Path) -> Result<PathBuf, FetchError> {
    let unavailable =
        |reason: String| FetchError::PipNotAvailable { python: python.into(), reason };
    let probe = Command::new(python)
        .args(["-m", "pip", "--version"])
        .output()
        .map_err(|e| unavailable(e.to_string()))?;
    if !probe.status.success() {
        return Err(unavailable(tail(&probe.stderr)));
    }
    let out = Command::new(python)
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
        .args(["--disable-pip-version-check", "--no-input", "--progress-bar", "off", "-d"])
        .arg(dest)
        .arg(requirement)
        .output()
        .map_err(|e| unavailable(e.to_string()))?;
    if !out.status.success() {
        return Err(FetchError::DownloadFailed {
            package: requirement.into(),
            status: out.status.to_string(),
            stderr: tail(&out.stderr),
        });
    }
    let entries = std::fs::read_dir(dest).map_err(|e| FetchError::io(dest, e))?;
    let mut wheels = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| FetchError::io(dest, e))?.path();
        if path.extension().is_some_and(|ext| ext == "whl") {
            wheels.push(path);
        }
    }
    match <[PathBuf; 1]>::try_from(wheels) {
        Ok([wheel]) => Ok(wheel),
        Err(wheels) => Err(FetchError::WheelNotFound { dir: dest.into(), found: wheels.len() }),
    }
}

/// The last 2,000 characters of a process's output, lossily decoded.
fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    let start = text.char_indices().rev().nth(1999).map_or(0, |(i, _)| i);
    text[start..].to_owned()
}
