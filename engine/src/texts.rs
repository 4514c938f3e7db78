//! Reading a corpus one text at a time: JSON Lines (a string per line, or an object per line with
//! the text in a named field) or plain text (a text per line), from any `BufRead`, so that a
//! corpus of any size streams through without being held in memory. Each bad line is an error
//! that names its line number; the reader goes on after it, so a caller may skip it (and count
//! it) or stop.
//!
//! ```
//! use streampool_engine::texts::{Format, Texts};
//!
//! let input = "{\"id\": 1, \"body\": \"first\"}\nnot json\n{\"body\": \"third\"}\n";
//! let mut texts = Texts::new(input.as_bytes(), Format::JsonLines { field: Some("body".into()) });
//! assert_eq!(texts.next().unwrap().unwrap().text, "first");
//! let bad = texts.next().unwrap().unwrap_err();
//! assert_eq!(bad.line(), 2);
//! let third = texts.next().unwrap().unwrap();
//! assert_eq!((third.line, third.text.as_str()), (3, "third"));
//! assert!(texts.next().is_none());
//! ```

use std::io::{BufRead, Read};

use crossbeam_channel::{bounded, Receiver, Sender};

/// How the input holds its texts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// One JSON value per line: a string, or (with `field`) an object whose `field` is a
    /// string. Blank lines are skipped.
    JsonLines {
        /// The member holding the text, for lines that are objects.
        field: Option<String>,
    },
    /// One text per line, as it is (the line ending removed); empty lines are texts too.
    Text,
}

/// One text and the line it came from (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    /// Line number in the input, from 1.
    pub line: usize,
    /// The text.
    pub text: String,
}

/// Why a line gave no text. The reader goes on with the next line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TextError {
    /// Reading failed (the reader stops after this).
    #[error("line {line}: cannot read the input: {source}")]
    Io {
        /// The line being read.
        line: usize,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The line is not UTF-8.
    #[error("line {line}: not valid UTF-8 (first bad byte at column {column})")]
    NotUtf8 {
        /// The line.
        line: usize,
        /// 1-based byte column of the first invalid byte.
        column: usize,
    },
    /// The line is not what the format says (not JSON, not a string, no such field).
    #[error("line {line}: {reason}")]
    Malformed {
        /// The line.
        line: usize,
        /// What is wrong, in words.
        reason: String,
    },
}

impl TextError {
    /// The line the error is about (1-based).
    pub fn line(&self) -> usize {
        match *self {
            Self::Io { line, .. } | Self::NotUtf8 { line, .. } | Self::Malformed { line, .. } => {
                line
            }
        }
    }
}

/// The texts of an input, one per `next`, in input order. Holds one line at a time.
#[derive(Debug)]
pub struct Texts<R> {
    input: R,
    format: Format,
    line: usize,
    buffer: Vec<u8>,
    /// Set after an I/O error: the reader's state is unknown, so it ends.
    failed: bool,
}

impl<R: BufRead> Texts<R> {
    /// Texts of `input` in `format`.
    pub fn new(input: R, format: Format) -> Self {
        Self { input, format, line: 0, buffer: Vec::new(), failed: false }
    }

    /// The text of one line (its ending removed), or why it has none; `None` for a blank line
    /// that the format skips.
    fn parse(&self, bytes: &[u8]) -> Option<Result<String, TextError>> {
        let line = self.line;
        let text = match std::str::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => return Some(Err(TextError::NotUtf8 { line, column: e.valid_up_to() + 1 })),
        };
        let field = match &self.format {
            Format::Text => return Some(Ok(text.to_owned())),
            Format::JsonLines { field } => field,
        };
        if text.trim().is_empty() {
            return None;
        }
        let malformed = |reason: String| Some(Err(TextError::Malformed { line, reason }));
        let value: serde_json::Value = match serde_json::from_str(text) {
            Ok(value) => value,
            Err(e) => return malformed(format!("not JSON: {e}")),
        };
        match (value, field) {
            (serde_json::Value::String(s), _) => Some(Ok(s)),
            (serde_json::Value::Object(mut object), Some(field)) => match object.remove(field) {
                Some(serde_json::Value::String(s)) => Some(Ok(s)),
                Some(other) => {
                    malformed(format!("field {field:?} is {}, not a string", kind(&other)))
                }
                None => malformed(format!("no field {field:?} in this object")),
            },
            (serde_json::Value::Object(_), None) => {
                malformed("an object: name the field holding the text (--field NAME)".into())
            }
            (other, _) => malformed(format!("{}, not a string", kind(&other))),
        }
    }
}

/// A JSON value's kind, in words.
fn kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

impl<R: BufRead> Iterator for Texts<R> {
    type Item = Result<Text, TextError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.failed {
            self.buffer.clear();
            self.line += 1;
            match self.input.read_until(b'\n', &mut self.buffer) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(source) => {
                    self.failed = true;
                    return Some(Err(TextError::Io { line: self.line, source }));
                }
            }
            let mut bytes = self.buffer.as_slice();
            bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
            bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
            if let Some(result) = self.parse(bytes) {
                let line = self.line;
                return Some(result.map(|text| Text { line, text }));
            }
        }
        None
    }
}

/// The strings of one JSON array (`["first text", "second"]`), read as they come by a thread of
/// its own, so that an array of any size streams through: the iterator holds at most
/// [`JSON_ARRAY_QUEUE`] strings. Anything else (not JSON, not an array, an element that is not
/// a string, trailing characters, the input ending early) is one [`TextError`] naming the line,
/// after the strings before it; then the iterator ends.
#[derive(Debug)]
pub struct JsonArray {
    strings: Receiver<Result<String, TextError>>,
}

/// Strings read ahead of the consumer at most.
pub const JSON_ARRAY_QUEUE: usize = 1024;

impl JsonArray {
    /// Start reading `input` (buffered here) on a thread named `streampool-json-array`. The
    /// thread ends at the end of the array, at an error, or once the iterator is dropped and the
    /// next string is read.
    pub fn spawn(input: impl Read + Send + 'static) -> std::io::Result<Self> {
        let (tx, strings) = bounded(JSON_ARRAY_QUEUE);
        std::thread::Builder::new().name("streampool-json-array".into()).spawn(move || {
            let mut de = serde_json::Deserializer::from_reader(std::io::BufReader::new(input));
            let read = serde::Deserializer::deserialize_seq(&mut de, EachString(&tx));
            if let Err(e) = read.and_then(|()| de.end()) {
                // A send error here means nobody listens any more.
                let _ = tx.send(Err(array_error(&e)));
            }
        })?;
        Ok(Self { strings })
    }
}

impl Iterator for JsonArray {
    type Item = Result<String, TextError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.strings.recv().ok()
    }
}

/// Sends each string of a JSON array as it is parsed.
struct EachString<'a>(&'a Sender<Result<String, TextError>>);

impl<'de> serde::de::Visitor<'de> for EachString<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON array of strings")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(text) = seq.next_element::<String>()? {
            if self.0.send(Ok(text)).is_err() {
                return Err(serde::de::Error::custom("the reader was dropped"));
            }
        }
        Ok(())
    }
}

/// A JSON array's parse error as a [`TextError`] (the line from serde_json; its message
/// without the position, which the error states once).
fn array_error(e: &serde_json::Error) -> TextError {
    let line = e.line().max(1);
    let message = e.to_string();
    let message = message.rsplit_once(" at line ").map_or(message.as_str(), |(m, _)| m);
    // serde_json reads bytes: invalid UTF-8 inside a string is its "invalid unicode code point".
    let message = match message {
        "invalid unicode code point" => "not valid UTF-8",
        other => other,
    };
    let reason = format!(
        "expected a JSON array of strings, e.g. [\"first text\", \"second\"]: {message} (column {})",
        e.column()
    );
    match e.io_error_kind() {
        Some(kind) => TextError::Io { line, source: std::io::Error::new(kind, message.to_owned()) },
        None => TextError::Malformed { line, reason },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn array(input: &'static [u8]) -> Vec<Result<String, String>> {
        JsonArray::spawn(input).unwrap().map(|r| r.map_err(|e| e.to_string())).collect()
    }

    #[test]
    fn a_json_array_streams_its_strings_in_order() {
        let got = array(b" [\"a\", \"\",\n \"caf\\u00e9\", \"x y\"] \n");
        assert_eq!(got, [Ok("a".into()), Ok("".into()), Ok("café".into()), Ok("x y".into())]);
        assert!(array(b"[]").is_empty());
    }

    #[test]
    fn a_bad_json_array_is_one_error_after_the_strings_before_it() {
        let got = array(b"[\"a\",\n\"b\",\n 3, \"c\"]");
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[..2], [Ok("a".into()), Ok("b".into())]);
        let e = got[2].as_ref().unwrap_err();
        assert!(e.starts_with("line 3: expected a JSON array of strings"), "{e}");
        for (bad, line) in [
            (&b"{\"a\": 1}"[..], 1),
            (b"[\"unterminated", 1),
            (b"[\"a\",]", 1),
            (b"", 1),
            (b"[\"a\"]\n[\"b\"]", 2),
            (b"[\"a\",\n\"\xff\"]", 2),
        ] {
            let got = JsonArray::spawn(bad).unwrap().last().unwrap();
            let e = got.unwrap_err();
            assert_eq!(e.line(), line, "{e}");
            if bad.contains(&0xff) {
                assert!(e.to_string().contains("not valid UTF-8"), "{e}");
            }
            assert!(e.to_string().contains("expected a JSON array of strings"), "{e}");
        }
    }

    /// Dropping the iterator ends its thread: the next string it reads has nobody to go to.
    #[test]
    fn a_dropped_array_reader_stops() {
        let big: String = format!("[{}\"end\"]", "\"text\",".repeat(10 * JSON_ARRAY_QUEUE));
        let mut texts = JsonArray::spawn(std::io::Cursor::new(big.into_bytes())).unwrap();
        assert_eq!(texts.next().unwrap().unwrap(), "text");
        drop(texts); // the thread's next send fails and it returns; nothing to join, no hang
    }

    fn read(input: &[u8], format: Format) -> Vec<Result<(usize, String), String>> {
        Texts::new(input, format)
            .map(|r| r.map(|t| (t.line, t.text)).map_err(|e| e.to_string()))
            .collect()
    }

    fn jsonl(field: Option<&str>) -> Format {
        Format::JsonLines { field: field.map(str::to_owned) }
    }

    #[test]
    fn json_lines_of_strings_and_objects() {
        let input = b"\"a\"\n\n{\"t\": \"b\", \"n\": 1}\r\n\"c\\nd\"";
        let got = read(input, jsonl(Some("t")));
        let ok = |line, text: &str| Ok((line, text.to_owned()));
        assert_eq!(got, [ok(1, "a"), ok(3, "b"), ok(4, "c\nd")], "blank line 2 skipped");
    }

    #[test]
    fn every_bad_line_is_named_and_the_reader_goes_on() {
        let input =
            b"\"ok\"\n{\"t\": 3}\n{\"u\": \"x\"}\n[1]\n{\"t\": \"x\"}\nnot json\n\xff\"\n\"end\"\n";
        let got = read(input, jsonl(Some("t")));
        assert_eq!(got.len(), 8);
        let errors: Vec<&String> = got.iter().filter_map(|r| r.as_ref().err()).collect();
        assert_eq!(errors.len(), 5, "{got:?}");
        assert!(errors[0].starts_with("line 2: field \"t\" is a number"), "{}", errors[0]);
        assert!(errors[1].starts_with("line 3: no field \"t\""), "{}", errors[1]);
        assert!(errors[2].starts_with("line 4: an array"), "{}", errors[2]);
        assert!(errors[3].starts_with("line 6: not JSON"), "{}", errors[3]);
        assert!(errors[4].starts_with("line 7: not valid UTF-8 (first bad byte at column 1)"));
        assert_eq!(got[4], Ok((5, "x".to_owned())));
        assert_eq!(got[7], Ok((8, "end".to_owned())));
    }

    #[test]
    fn an_object_without_a_field_name_says_what_to_do() {
        let got = read(b"{\"text\": \"a\"}\n", jsonl(None));
        assert!(got[0].as_ref().unwrap_err().contains("--field"), "{got:?}");
    }

    #[test]
    fn plain_text_keeps_every_line_as_it_is() {
        let got = read(b"first\r\n\n  third  \nlast", Format::Text);
        let texts: Vec<&str> = got.iter().map(|r| r.as_ref().unwrap().1.as_str()).collect();
        assert_eq!(texts, ["first", "", "  third  ", "last"]);
        assert!(read(b"", Format::Text).is_empty());
    }

    /// A long input streams: the reader holds one line, whatever the input's size.
    #[test]
    fn a_long_input_streams_line_by_line() {
        struct Lines(usize);
        impl std::io::Read for Lines {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0 == 0 {
                    return Ok(0);
                }
                self.0 -= 1;
                let line = b"\"a short text\"\n";
                buf[..line.len()].copy_from_slice(line);
                Ok(line.len())
            }
        }
        let mut texts = Texts::new(std::io::BufReader::new(Lines(200_000)), jsonl(None));
        let count = texts.by_ref().filter(|r| r.is_ok()).count();
        assert_eq!(count, 200_000);
        assert!(texts.buffer.capacity() < 1024, "one line held at a time");
    }
}
