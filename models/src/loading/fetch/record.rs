//! Parsing a wheel's `*.dist-info/RECORD` and checking files against it.

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

use super::FetchError;

/// What RECORD says about one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordEntry {
    /// sha256 digest, urlsafe base64 without padding (as RECORD writes it).
    pub sha256: String,
    /// Size in bytes, when given.
    pub size: Option<u64>,
}

/// Parses RECORD text (`path,sha256=DIGEST,size` per line) into path → entry. Lines without a
/// sha256 hash (RECORD itself, signatures) are skipped; a hash of another algorithm is an error.
///
/// ```
/// use streampool_models::loading::fetch::parse_record;
/// let record = parse_record("pkg/a.txt,sha256=abc,3\npkg-0.1.dist-info/RECORD,,\n").unwrap();
/// assert_eq!(record["pkg/a.txt"].size, Some(3));
/// assert!(!record.contains_key("pkg-0.1.dist-info/RECORD"));
/// ```
pub fn parse_record(text: &str) -> Result<HashMap<String, RecordEntry>, FetchError> {
    let mut entries = HashMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        // Paths with commas would be CSV-quoted; wheel paths here never contain any, so split
        // from the right.
        let mut fields = line.rsplitn(3, ',');
        let (size, hash, path) = match (fields.next(), fields.next(), fields.next()) {
            (Some(size), Some(hash), Some(path)) => (size, hash, path),
            _ => return Err(FetchError::Record { reason: format!("malformed line `{line}`") }),
        };
        if hash.is_empty() {
            continue;
        }
        let Some(digest) = hash.strip_prefix("sha256=") else {
            return Err(FetchError::Record {
                reason: format!("unsupported hash `{hash}` for {path} (want sha256)"),
            });
        };
        let size = match size {
            "" => None,
            s => Some(s.parse().map_err(|_| FetchError::Record {
                reason: format!("bad size `{s}` for {path}"),
            })?),
        };
        entries.insert(path.to_owned(), RecordEntry { sha256: digest.to_owned(), size });
    }
    Ok(entries)
}

/// Encodes a finished sha256 digest the way RECORD does.
pub(crate) fn record_digest(hasher: Sha256) -> String {
    URL_SAFE_NO_PAD.encode(hasher.finalize())
}

/// Compares a computed digest and size with the RECORD entry for `file`.
pub(crate) fn check(
    file: &str,
    entry: &RecordEntry,
    digest: &str,
    size: u64,
) -> Result<(), FetchError> {
    if let Some(expected) = entry.size {
        if expected != size {
            return Err(FetchError::SizeMismatch { file: file.to_owned(), expected, found: size });
        }
    }
    // RECORD writers omit padding, some tools keep it: compare without it.
    if entry.sha256.trim_end_matches('=') != digest {
        return Err(FetchError::ChecksumMismatch {
            file: file.to_owned(),
            expected: entry.sha256.clone(),
            found: digest.to_owned(),
        });
    }
    Ok(())
}
