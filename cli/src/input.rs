//! Reading `embed`'s input: a JSON array of strings from a file or stdin, with errors a person
//! can act on.

use std::io::Read;
use std::path::{Path, PathBuf};

/// Why the input could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file (or `"<stdin>"`).
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The bytes are not UTF-8.
    #[error("{path} is not valid UTF-8 (first bad byte at offset {offset}); save it as UTF-8")]
    NotUtf8 {
        /// The file (or `"<stdin>"`).
        path: PathBuf,
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// The text is not JSON, or not an array of strings.
    #[error(
        "{path}: expected a JSON array of strings, e.g. [\"first text\", \"second\"]: {reason}"
    )]
    NotJsonStrings {
        /// The file (or `"<stdin>"`).
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
}

/// Parse `bytes` (named `path` in errors) as a JSON array of strings.
pub fn parse_texts(path: &Path, bytes: &[u8]) -> Result<Vec<String>, InputError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| InputError::NotUtf8 { path: path.to_owned(), offset: e.valid_up_to() })?;
    serde_json::from_str::<Vec<String>>(text)
        .map_err(|e| InputError::NotJsonStrings { path: path.to_owned(), reason: e.to_string() })
}

/// Read texts from `file`, or from stdin when `None`.
pub fn read_texts(file: Option<&Path>) -> Result<Vec<String>, InputError> {
    let (path, bytes) = match file {
        Some(path) => {
            let bytes = std::fs::read(path)
                .map_err(|source| InputError::Io { path: path.to_owned(), source })?;
            (path.to_owned(), bytes)
        }
        None => {
            let path = PathBuf::from("<stdin>");
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .map_err(|source| InputError::Io { path: path.clone(), source })?;
            (path, bytes)
        }
    };
    parse_texts(&path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<Vec<String>, InputError> {
        parse_texts(Path::new("in.json"), bytes)
    }

    #[test]
    fn reads_an_array_of_strings_in_order() {
        let texts = parse(br#"["a", "", "  ", "caf\u00e9"]"#).unwrap();
        assert_eq!(texts, vec!["a", "", "  ", "café"]);
    }

    #[test]
    fn invalid_utf8_names_the_offset() {
        let err = parse(b"[\"ok\", \"\xff\"]").unwrap_err();
        assert!(matches!(err, InputError::NotUtf8 { offset: 8, .. }), "{err}");
        assert!(err.to_string().contains("not valid UTF-8"));
    }

    #[test]
    fn malformed_json_and_wrong_types_are_typed_errors() {
        for bad in [&b"[\"unterminated"[..], b"{\"a\": 1}", b"[1, 2]", b"", b"[\"a\",]"] {
            let err = parse(bad).unwrap_err();
            assert!(matches!(err, InputError::NotJsonStrings { .. }), "{err}");
            assert!(err.to_string().contains("expected a JSON array of strings"));
        }
    }

    #[test]
    fn a_missing_file_is_an_io_error() {
        let err = read_texts(Some(Path::new("/nonexistent/texts.json"))).unwrap_err();
        assert!(matches!(err, InputError::Io { .. }));
    }
}
