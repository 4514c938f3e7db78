//! Moving a finished model directory into place atomically.

use std::path::Path;

use super::FetchError;
use crate::loading::files::locate_model;

/// Renames `staged` to `target`. If `target` appeared meanwhile and is complete (another process
/// won the race), keeps it; if it is incomplete, moves it into `scratch` (deleted with it) and
/// retries once.
pub(crate) fn install_dir(staged: &Path, target: &Path, scratch: &Path) -> Result<(), FetchError> {
    match std::fs::rename(staged, target) {
        Ok(()) => Ok(()),
        Err(_) if locate_model(target).is_ok() => Ok(()),
        Err(err) if !target.exists() => Err(FetchError::io(target, err)),
        Err(_) => {
            let stale = scratch.join("stale");
            std::fs::rename(target, &stale).map_err(|e| FetchError::io(target, e))?;
            match std::fs::rename(staged, target) {
                Ok(()) => Ok(()),
                Err(_) if locate_model(target).is_ok() => Ok(()),
                Err(err) => Err(FetchError::io(target, err)),
            }
        }
    }
}
