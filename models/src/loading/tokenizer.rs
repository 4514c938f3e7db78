//! [`Tokenizer`]: `tokenizer.json` with sentence-transformers' truncation and no padding.

use std::path::Path;

use tokenizers::{PostProcessor, TruncationDirection, TruncationParams, TruncationStrategy};

use super::LoadError;

/// One tokenized text, unpadded: all three vectors have the same length, at most
/// `max_seq_length`, starting with `[CLS]` and ending with `[SEP]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoding {
    /// Vocabulary ids.
    pub input_ids: Vec<u32>,
    /// 1 for every token (no padding here; the model code pads batches with 0).
    pub attention_mask: Vec<u32>,
    /// Segment ids (0 for single sentences).
    pub token_type_ids: Vec<u32>,
}

impl Encoding {
    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.input_ids.len()
    }

    /// Whether there are no tokens (never the case for a BERT tokenizer, which adds specials).
    pub fn is_empty(&self) -> bool {
        self.input_ids.is_empty()
    }
}

/// A WordPiece tokenizer that truncates like sentence-transformers: to `max_seq_length` tokens
/// including `[CLS]` and `[SEP]`, dropping the end of the text, and never pads.
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    max_seq_length: usize,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer").field("max_seq_length", &self.max_seq_length).finish()
    }
}

impl Tokenizer {
    /// Loads `tokenizer.json` and replaces its own truncation and padding settings (the
    /// all-MiniLM-L6-v2 file says truncate and pad to 128) by truncation to `max_seq_length`
    /// and no padding.
    ///
    /// Errors: [`LoadError::FileMissing`], [`LoadError::TokenizerLoad`] for a broken file,
    /// [`LoadError::InvalidConfig`] when `max_seq_length` cannot hold `[CLS]` and `[SEP]`.
    pub fn from_file(path: &Path, max_seq_length: usize) -> Result<Self, LoadError> {
        if !path.is_file() {
            return Err(LoadError::FileMissing { path: path.to_path_buf() });
        }
        let mut inner = tokenizers::Tokenizer::from_file(path).map_err(|e| {
            LoadError::TokenizerLoad { path: path.to_path_buf(), reason: e.to_string() }
        })?;
        // `with_truncation` subtracts the special tokens from `max_length` without checking.
        let specials = inner.get_post_processor().map_or(0, |p| p.added_tokens(false));
        if max_seq_length <= specials {
            return Err(LoadError::InvalidConfig {
                path: path.to_path_buf(),
                reason: format!(
                    "max_seq_length {max_seq_length} leaves no room beside {specials} specials"
                ),
            });
        }
        let truncation = TruncationParams {
            direction: TruncationDirection::Right,
            max_length: max_seq_length,
            strategy: TruncationStrategy::LongestFirst,
            stride: 0,
        };
        inner.with_truncation(Some(truncation)).map_err(|e| LoadError::TokenizerLoad {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        inner.with_padding(None);
        Ok(Self { inner, max_seq_length })
    }

    /// The truncation length, special tokens included.
    pub fn max_seq_length(&self) -> usize {
        self.max_seq_length
    }

    /// Tokenizes each text (with `[CLS]`/`[SEP]`); empty and whitespace-only texts give
    /// `[CLS] [SEP]`.
    pub fn encode_batch(&self, texts: &[&str]) -> Result<Vec<Encoding>, LoadError> {
        let encodings = self
            .inner
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| LoadError::Tokenize { reason: e.to_string() })?;
        Ok(encodings
            .into_iter()
            .map(|e| Encoding {
                input_ids: e.get_ids().to_vec(),
                attention_mask: e.get_attention_mask().to_vec(),
                token_type_ids: e.get_type_ids().to_vec(),
            })
            .collect())
    }

    /// Tokenizes one text; see [`Tokenizer::encode_batch`].
    pub fn encode(&self, text: &str) -> Result<Encoding, LoadError> {
        let mut batch = self.encode_batch(&[text])?;
        batch.pop().ok_or_else(|| LoadError::Tokenize { reason: "no encoding returned".into() })
    }
}
