//! Host side of a batch: input checks, length buckets, padding.

use crate::loading::{BertConfig, Encoding};
use crate::ModelError;

/// Sequences run together at most; longer batches are split (after sorting by length, so each
/// chunk pads little).
pub const MAX_BATCH: usize = 32;

/// Padded sequence lengths are multiples of this.
pub const SEQ_BUCKET: usize = 8;

/// The padded length for a longest sequence of `len` tokens: the next multiple of
/// [`SEQ_BUCKET`], at most `max`.
pub fn bucket(len: usize, max: usize) -> usize {
    len.div_ceil(SEQ_BUCKET).max(1).saturating_mul(SEQ_BUCKET).min(max).max(len)
}

/// Checks pre-tokenised inputs against the model's limits.
pub(crate) fn validate(
    encodings: &[Encoding],
    config: &BertConfig,
    max_seq_length: usize,
) -> Result<(), ModelError> {
    if encodings.is_empty() {
        return Err(ModelError::EmptyBatch);
    }
    for (index, e) in encodings.iter().enumerate() {
        let bad = |reason: String| ModelError::InvalidInput { index, reason };
        let n = e.input_ids.len();
        if n == 0 {
            return Err(bad("no tokens (a tokenised text has at least [CLS] and [SEP])".into()));
        }
        if n > max_seq_length {
            return Err(bad(format!("{n} tokens exceed the model's maximum of {max_seq_length}")));
        }
        if e.attention_mask.len() != n || e.token_type_ids.len() != n {
            return Err(bad(format!(
                "input_ids, attention_mask, token_type_ids have lengths {n}, {}, {}",
                e.attention_mask.len(),
                e.token_type_ids.len()
            )));
        }
        if let Some(&id) = e.input_ids.iter().find(|&&id| id as usize >= config.vocab_size) {
            return Err(bad(format!(
                "token id {id} is outside the vocabulary of {}",
                config.vocab_size
            )));
        }
        if let Some(&t) = e.token_type_ids.iter().find(|&&t| t as usize >= config.type_vocab_size) {
            return Err(bad(format!("token type {t} is not below {}", config.type_vocab_size)));
        }
        if e.attention_mask.iter().any(|&m| m > 1) {
            return Err(bad("attention_mask values must be 0 or 1".into()));
        }
    }
    Ok(())
}

/// One padded chunk, ready to upload.
pub(crate) struct Padded {
    /// Positions of the chunk's sequences in the caller's batch.
    pub(crate) order: Vec<usize>,
    /// Padded length.
    pub(crate) seq: usize,
    /// `[order.len(), seq]` ids, padding 0.
    pub(crate) ids: Vec<u32>,
    /// `[order.len(), seq]` segment ids, padding 0.
    pub(crate) type_ids: Vec<u32>,
    /// `[order.len(), seq]` 1.0 for tokens, 0.0 for padding.
    pub(crate) mask: Vec<f32>,
}

/// Splits the batch into chunks of at most [`MAX_BATCH`] sequences of similar length and pads
/// each to its bucket.
pub(crate) fn chunks(encodings: &[Encoding], max_seq_length: usize) -> Vec<Padded> {
    let mut order: Vec<usize> = (0..encodings.len()).collect();
    order.sort_by_key(|&i| encodings[i].len());
    order
        .chunks(MAX_BATCH)
        .map(|chunk| {
            let longest = chunk.iter().map(|&i| encodings[i].len()).max().unwrap_or(1);
            let seq = bucket(longest, max_seq_length);
            let mut p = Padded {
                order: chunk.to_vec(),
                seq,
                ids: vec![0; chunk.len() * seq],
                type_ids: vec![0; chunk.len() * seq],
                mask: vec![0.0; chunk.len() * seq],
            };
            for (row, &i) in chunk.iter().enumerate() {
                let e = &encodings[i];
                let n = e.len();
                p.ids[row * seq..][..n].copy_from_slice(&e.input_ids);
                p.type_ids[row * seq..][..n].copy_from_slice(&e.token_type_ids);
                for (m, &a) in p.mask[row * seq..][..n].iter_mut().zip(&e.attention_mask) {
                    *m = a as f32;
                }
            }
            p
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_round_up_and_cap() {
        assert_eq!(bucket(2, 256), 8);
        assert_eq!(bucket(8, 256), 8);
        assert_eq!(bucket(9, 256), 16);
        assert_eq!(bucket(255, 256), 256);
        assert_eq!(bucket(100, 100), 100);
    }
}
