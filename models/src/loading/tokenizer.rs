//! [`Tokenizer`]: `tokenizer.json` with sentence-transformers' truncation and no padding.

use std::path::Path;

use tokenizers::{PostProcessor, TruncationDirection, TruncationParams, TruncationStrategy};

use super::wordpiece::AsciiWordPiece;
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
    /// Leading tokens the pooling leaves out (attention still sees them): a prompt's, for a
    /// model whose pooling has `include_prompt: false`; 0 otherwise.
    pub pool_from: usize,
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

impl From<&tokenizers::Encoding> for Encoding {
    fn from(e: &tokenizers::Encoding) -> Self {
        Self {
            input_ids: e.get_ids().to_vec(),
            attention_mask: e.get_attention_mask().to_vec(),
            token_type_ids: e.get_type_ids().to_vec(),
            pool_from: 0,
        }
    }
}

/// A WordPiece tokenizer that truncates like sentence-transformers: to `max_seq_length` tokens
/// including `[CLS]` and `[SEP]`, dropping the end of the text, and never pads.
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    max_seq_length: usize,
    /// `inner` truncating from the left, made on first use (few callers want it, and a large
    /// vocabulary's tokenizer takes tens of MB).
    left: std::sync::OnceLock<tokenizers::Tokenizer>,
    /// BERT's pipeline for ASCII texts, where `inner` is BERT's (`None` otherwise, or when
    /// turned off by [`Tokenizer::without_fast_path`]).
    fast: Option<AsciiWordPiece>,
}

/// Which end of a text too long for the model is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Side {
    /// Keep the beginning (sentence-transformers' way).
    #[default]
    Right,
    /// Keep the end.
    Left,
}

/// One token of a text, as `POST /tokenize` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// Vocabulary id.
    pub id: u32,
    /// The token's text in the vocabulary.
    pub text: String,
    /// Whether the tokenizer added it (`[CLS]`, `</s>`...).
    pub special: bool,
    /// Its span in the input, in characters (`None` for added tokens).
    pub span: Option<(usize, usize)>,
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
        let fast = AsciiWordPiece::new(&inner);
        Ok(Self { inner, max_seq_length, left: std::sync::OnceLock::new(), fast })
    }

    /// This tokenizer with every text going through the tokenizers crate, to compare with the
    /// ASCII fast path (which gives the same ids, ~40× sooner) or to measure it.
    pub fn without_fast_path(mut self) -> Self {
        self.fast = None;
        self
    }

    /// Whether ASCII texts take the fast path (the tokenizer is BERT's WordPiece pipeline).
    pub fn has_fast_path(&self) -> bool {
        self.fast.is_some()
    }

    /// The truncation length, special tokens included.
    pub fn max_seq_length(&self) -> usize {
        self.max_seq_length
    }

    /// Tokenizes each text (with `[CLS]`/`[SEP]`); empty and whitespace-only texts give
    /// `[CLS] [SEP]`. Texts are tokenised in parallel (the tokenizers crate's thread pool).
    ///
    /// A text much longer than the model can read is first cut to a byte bound
    /// ([`Tokenizer::byte_bound`]), so that a 10 MB text costs what a page costs, with the
    /// same tokens: the cut falls at whitespace, and the pre-tokenizer splits words at whitespace
    /// (the normaliser works per character), so the prefix's tokens are the text's first
    /// tokens. When the prefix yields fewer than `max_seq_length` tokens (a text of mostly
    /// whitespace or dropped characters) the bound doubles until it does, or the whole text is
    /// read.
    pub fn encode_batch(&self, texts: &[&str]) -> Result<Vec<Encoding>, LoadError> {
        let mut bound = self.byte_bound();
        let cut: Vec<&str> = texts.iter().map(|t| prefix_at_whitespace(t, bound)).collect();
        let mut encodings = self.encode_exactly(&cut)?;
        // Texts whose prefix ran short of the limit, with the longer prefix to read next.
        let mut short: Vec<usize> = (0..texts.len())
            .filter(|&i| cut[i].len() < texts[i].len() && encodings[i].len() < self.max_seq_length)
            .collect();
        while !short.is_empty() {
            bound = bound.saturating_mul(2);
            let longer: Vec<&str> =
                short.iter().map(|&i| prefix_at_whitespace(texts[i], bound)).collect();
            let again = self.encode_exactly(&longer)?;
            let mut still = Vec::new();
            for ((i, text), encoding) in short.into_iter().zip(longer).zip(again) {
                let done = text.len() == texts[i].len() || encoding.len() >= self.max_seq_length;
                encodings[i] = encoding;
                if !done {
                    still.push(i);
                }
            }
            short = still;
        }
        Ok(encodings)
    }

    /// Bytes of a text read at first: 16 per token of `max_seq_length` (English averages 4 to
    /// 5 bytes a token), at least 1 KiB.
    pub fn byte_bound(&self) -> usize {
        self.max_seq_length.saturating_mul(16).max(1024)
    }

    /// `texts` tokenised as they are: by the fast path where it can, the rest by the tokenizers
    /// crate (in parallel on its thread pool).
    fn encode_exactly(&self, texts: &[&str]) -> Result<Vec<Encoding>, LoadError> {
        let mut encodings: Vec<Option<Encoding>> = match &self.fast {
            Some(fast) => texts
                .iter()
                .map(|t| fast.encode(t, self.max_seq_length, Side::Right).map(|(e, _)| e))
                .collect(),
            None => vec![None; texts.len()],
        };
        let rest: Vec<usize> = (0..texts.len()).filter(|&i| encodings[i].is_none()).collect();
        if !rest.is_empty() {
            let slow = self
                .inner
                .encode_batch(rest.iter().map(|&i| texts[i]).collect(), true)
                .map_err(|e| LoadError::Tokenize { reason: e.to_string() })?;
            for (i, e) in rest.into_iter().zip(&slow) {
                encodings[i] = Some(Encoding::from(e));
            }
        }
        Ok(encodings.into_iter().flatten().collect())
    }

    /// The tokens of `prompt` that sentence-transformers leaves out of the pooling when the
    /// pooling has `include_prompt: false`: the prompt tokenised alone, less its trailing special
    /// token (`[SEP]`, `</s>`) if it ends with one, so the leading `[CLS]` counts.
    pub fn prompt_length(&self, prompt: &str) -> Result<usize, LoadError> {
        let e = self
            .inner
            .encode(prompt, true)
            .map_err(|e| LoadError::Tokenize { reason: e.to_string() })?;
        let (ids, special) = (e.get_ids(), e.get_special_tokens_mask());
        Ok(ids.len() - usize::from(special.last() == Some(&1)))
    }

    /// Tokenizes one text, dropping `side` when it is too long, and says whether anything was
    /// dropped. The text is read from that side up to the byte bound, as in
    /// [`Tokenizer::encode_batch`] (doubling the bound while the part read runs short).
    pub fn encode_side(&self, text: &str, side: Side) -> Result<(Encoding, bool), LoadError> {
        let mut bound = self.byte_bound();
        loop {
            let part = match side {
                Side::Right => prefix_at_whitespace(text, bound),
                Side::Left => suffix_at_whitespace(text, bound),
            };
            let (encoding, dropped) = self.encode_part(part, side)?;
            let cut = part.len() < text.len();
            if !cut || encoding.len() >= self.max_seq_length {
                return Ok((encoding, cut || dropped));
            }
            bound = bound.saturating_mul(2);
        }
    }

    /// `part` tokenised as it is, dropping `side` past the limit, and whether anything was
    /// dropped: by the fast path where it can, else by the tokenizers crate.
    fn encode_part(&self, part: &str, side: Side) -> Result<(Encoding, bool), LoadError> {
        if let Some(done) =
            self.fast.as_ref().and_then(|f| f.encode(part, self.max_seq_length, side))
        {
            return Ok(done);
        }
        let tokenizer = match side {
            Side::Right => &self.inner,
            Side::Left => self.left.get_or_init(|| {
                let mut left = self.inner.clone();
                let params = self
                    .inner
                    .get_truncation()
                    .cloned()
                    .map(|t| TruncationParams { direction: TruncationDirection::Left, ..t });
                // Setting the truncation `from_file` already set cannot fail.
                let _ = left.with_truncation(params);
                left
            }),
        };
        let e = tokenizer
            .encode(part, true)
            .map_err(|e| LoadError::Tokenize { reason: e.to_string() })?;
        Ok((Encoding::from(&e), !e.get_overflowing().is_empty()))
    }

    /// The tokens the model reads of `text` (truncated as [`Tokenizer::encode`] does), with or
    /// without the special tokens.
    pub fn tokens(&self, text: &str, add_special_tokens: bool) -> Result<Vec<Token>, LoadError> {
        let part = prefix_at_whitespace(text, self.byte_bound());
        let e = self
            .inner
            .encode_char_offsets(part, add_special_tokens)
            .map_err(|e| LoadError::Tokenize { reason: e.to_string() })?;
        let tokens = e.get_ids().iter().zip(e.get_tokens()).zip(e.get_special_tokens_mask());
        Ok(tokens
            .zip(e.get_offsets())
            .map(|(((&id, text), &special), &(start, stop))| Token {
                id,
                text: text.clone(),
                special: special == 1,
                span: (special == 0).then_some((start, stop)),
            })
            .collect())
    }

    /// Size of the vocabulary, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Tokenizes one text; see [`Tokenizer::encode_batch`].
    pub fn encode(&self, text: &str) -> Result<Encoding, LoadError> {
        let mut batch = self.encode_batch(&[text])?;
        batch.pop().ok_or_else(|| LoadError::Tokenize { reason: "no encoding returned".into() })
    }
}

/// `text` up to the first whitespace at or after byte `bound` (the whole text when it is not
/// longer, or has no whitespace past the bound: a word is never cut).
fn prefix_at_whitespace(text: &str, bound: usize) -> &str {
    if text.len() <= bound {
        return text;
    }
    // Whitespace is never inside a multi-byte character's bytes, so scanning bytes from any
    // offset finds only character boundaries; `char_indices` keeps that explicit.
    let start = (0..=bound).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
    match text[start..].char_indices().find(|(_, c)| c.is_whitespace()) {
        Some((offset, _)) => &text[..start + offset],
        None => text,
    }
}

/// `text` from the last whitespace at or before `bound` bytes from its end (the whole text when
/// it is not longer, or has no whitespace there: a word is never cut).
fn suffix_at_whitespace(text: &str, bound: usize) -> &str {
    if text.len() <= bound {
        return text;
    }
    let end = (text.len() - bound..text.len()).find(|&i| text.is_char_boundary(i)).unwrap_or(0);
    match text[..end].char_indices().rev().find(|(_, c)| c.is_whitespace()) {
        Some((offset, c)) => &text[offset + c.len_utf8()..],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::{prefix_at_whitespace, suffix_at_whitespace};

    #[test]
    fn suffixes_start_at_whitespace_and_never_cut_a_word() {
        assert_eq!(suffix_at_whitespace("short", 16), "short");
        assert_eq!(suffix_at_whitespace("one two three", 5), "three");
        assert_eq!(suffix_at_whitespace("one two three", 6), "two three");
        assert_eq!(suffix_at_whitespace("onetwothree", 3), "onetwothree");
        assert_eq!(suffix_at_whitespace("x y\u{3000}éé", 3), "éé");
    }

    #[test]
    fn prefixes_end_at_whitespace_and_never_cut_a_word() {
        assert_eq!(prefix_at_whitespace("short", 16), "short");
        assert_eq!(prefix_at_whitespace("one two three", 5), "one two");
        assert_eq!(prefix_at_whitespace("one two three", 3), "one");
        assert_eq!(prefix_at_whitespace("onetwothree", 3), "onetwothree");
        // Multi-byte characters around the bound: the cut is at a whitespace boundary.
        assert_eq!(prefix_at_whitespace("éé ü\u{3000}x y", 3), "éé");
        assert_eq!(prefix_at_whitespace("éé\u{3000}x y", 5), "éé");
        assert_eq!(prefix_at_whitespace("ééé x", 3), "ééé");
    }
}
