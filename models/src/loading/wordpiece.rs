//! [`AsciiWordPiece`]: BERT's tokenizer pipeline for ASCII texts, exact and ~40× faster than
//! the tokenizers crate's general one (4.5 µs against 180 µs for a 128-token text).
//!
//! The tokenizers crate runs every text through normalised strings with alignment tracking, a
//! pre-tokenised string of splits and owned tokens, which is what costs.
//! A server tokenises every request on its own threads, so that cost bounds its throughput
//! long before the GPU does. For ASCII, BERT's normaliser (clean text, lowercase; accents and
//! CJK have nothing to act on), pre-tokenizer (whitespace and punctuation) and greedy WordPiece
//! reduce to one pass over bytes and a few vocabulary lookups per word. Everything else (other
//! scripts, added tokens in the text, other pipelines) goes to the tokenizers crate.

use std::collections::HashMap;

use tokenizers::{ModelWrapper, NormalizerWrapper, PreTokenizerWrapper};

use super::Side;

/// BERT's WordPiece pipeline on ASCII texts. Built only for a `tokenizer.json` whose normaliser
/// is `BertNormalizer` with `clean_text`, whose pre-tokenizer is `BertPreTokenizer` and whose
/// model is `WordPiece`; [`AsciiWordPiece::encode`] answers only texts it tokenises exactly as
/// the tokenizers crate does (tests compare the two on the fixtures and on generated texts).
pub(crate) struct AsciiWordPiece {
    /// Every vocabulary entry: the first piece of a word. Keyed by bytes, as words are built
    /// (lowercased) byte by byte.
    starts: HashMap<Box<[u8]>, u32, ahash::RandomState>,
    /// Entries that begin with the continuing-subword prefix (`##`), keyed without it.
    continues: HashMap<Box<[u8]>, u32, ahash::RandomState>,
    unk: u32,
    /// Words longer than this (in characters, which are bytes here) are `[UNK]`.
    max_word: usize,
    lowercase: bool,
    /// Added tokens (`[CLS]`, `[MASK]`...): the tokenizers crate matches them in the raw text
    /// before anything else, so a text that contains one is left to it.
    added: Vec<String>,
    /// The post-processor's tokens around one sequence, with their type ids.
    before: Vec<(u32, u32)>,
    after: Vec<(u32, u32)>,
    /// The sequence's type id.
    type_id: u32,
}

impl AsciiWordPiece {
    /// The fast path for `tokenizer`, or `None` when its pipeline is not BERT's. `tokenizer`
    /// must add special tokens by its post-processor as it encodes (checked on a probe).
    pub(crate) fn new(tokenizer: &tokenizers::Tokenizer) -> Option<Self> {
        let Some(NormalizerWrapper::BertNormalizer(normalizer)) = tokenizer.get_normalizer() else {
            return None;
        };
        // Without `clean_text` control characters stay in words; not worth a second path.
        if !normalizer.clean_text {
            return None;
        }
        if !matches!(tokenizer.get_pre_tokenizer(), Some(PreTokenizerWrapper::BertPreTokenizer(_)))
        {
            return None;
        }
        let ModelWrapper::WordPiece(model) = tokenizer.get_model() else { return None };
        let vocab = tokenizers::Model::get_vocab(model);
        let unk = *vocab.get(&model.unk_token)?;
        let prefix = model.continuing_subword_prefix.as_str();
        let continues = vocab
            .iter()
            .filter_map(|(piece, &id)| Some((piece.strip_prefix(prefix)?.as_bytes().into(), id)))
            .collect();
        let starts = vocab
            .into_iter()
            .map(|(piece, id)| (piece.into_bytes().into_boxed_slice(), id))
            .collect();

        let added = tokenizer.get_added_tokens_decoder();
        // Tokens matched after normalising would need the normalised text; none of BERT's are.
        if added.values().any(|t| t.normalized || t.content.is_empty()) {
            return None;
        }
        let added = added.into_values().map(|t| t.content).collect();

        // Where the post-processor puts its tokens: around the single token of a probe word.
        let probe = tokenizer.encode("a", true).ok()?;
        let special = probe.get_special_tokens_mask();
        let inside = special.iter().position(|&s| s == 0)?;
        if special.iter().filter(|&&s| s == 0).count() != 1 {
            return None;
        }
        let pairs = |range: std::ops::Range<usize>| -> Vec<(u32, u32)> {
            range.map(|i| (probe.get_ids()[i], probe.get_type_ids()[i])).collect()
        };
        Some(Self {
            starts,
            continues,
            unk,
            max_word: model.max_input_chars_per_word,
            lowercase: normalizer.lowercase,
            added,
            before: pairs(0..inside),
            after: pairs(inside + 1..probe.len()),
            type_id: probe.get_type_ids()[inside],
        })
    }

    /// The ids of `text` with the special tokens, at most `max_length` in all (dropping `side`
    /// of the text's tokens), and whether any were dropped; `None` when the text is not ASCII or
    /// holds an added token, which the tokenizers crate must handle.
    pub(crate) fn encode(
        &self,
        text: &str,
        max_length: usize,
        side: Side,
    ) -> Option<(super::Encoding, bool)> {
        if !text.is_ascii() || self.added.iter().any(|t| text.contains(t.as_str())) {
            return None;
        }
        let mut ids = Vec::with_capacity(text.len() / 3 + self.before.len() + self.after.len());
        ids.extend(self.before.iter().map(|&(id, _)| id));
        let mut word = Vec::with_capacity(32);
        for &b in text.as_bytes() {
            match b {
                b' ' | b'\t' | b'\n' | b'\r' => self.word(&mut word, &mut ids),
                // Control characters (Cc) other than the three above are dropped by clean_text.
                0..=0x1f | 0x7f => {}
                _ if b.is_ascii_punctuation() => {
                    self.word(&mut word, &mut ids);
                    word.push(b);
                    self.word(&mut word, &mut ids);
                }
                _ if self.lowercase => word.push(b.to_ascii_lowercase()),
                _ => word.push(b),
            }
        }
        self.word(&mut word, &mut ids);

        let room = max_length.saturating_sub(self.before.len() + self.after.len());
        let tokens = ids.len() - self.before.len();
        let dropped = tokens > room;
        if dropped {
            match side {
                Side::Right => ids.truncate(self.before.len() + room),
                Side::Left => {
                    ids.drain(self.before.len()..self.before.len() + tokens - room);
                }
            }
        }
        let mut type_ids: Vec<u32> = self.before.iter().map(|&(_, t)| t).collect();
        type_ids.resize(ids.len(), self.type_id);
        ids.extend(self.after.iter().map(|&(id, _)| id));
        type_ids.extend(self.after.iter().map(|&(_, t)| t));
        let encoding = super::Encoding {
            attention_mask: vec![1; ids.len()],
            input_ids: ids,
            token_type_ids: type_ids,
            pool_from: 0,
        };
        Some((encoding, dropped))
    }

    /// Appends the WordPiece ids of `word` (ASCII, no whitespace or punctuation) and empties it:
    /// greedy longest match first, the whole word `[UNK]` when some part matches nothing.
    fn word(&self, word: &mut Vec<u8>, ids: &mut Vec<u32>) {
        if word.is_empty() {
            return;
        }
        let bytes = word.as_slice();
        let mark = ids.len();
        let mut start = 0;
        if bytes.len() <= self.max_word {
            while start < bytes.len() {
                let vocab = if start == 0 { &self.starts } else { &self.continues };
                let found = (start + 1..=bytes.len())
                    .rev()
                    .find_map(|end| Some((end, vocab.get(&bytes[start..end])?)));
                let Some((end, &id)) = found else { break };
                ids.push(id);
                start = end;
            }
        }
        if start < bytes.len() {
            ids.truncate(mark);
            ids.push(self.unk);
        }
        word.clear();
    }
}
