//! Host side of a batch: input checks, length buckets, padding.

use crate::loading::{BertConfig, Encoding};
use crate::ModelError;

/// Sequences run together at most; longer batches are split (after sorting by length, so each
/// chunk pads little). A chunk also holds at most [`MAX_TOKENS`] padded tokens.
pub const MAX_BATCH: usize = 512;

/// Padded tokens (rows x padded length) of one chunk at most: the bound on a slot's activation
/// memory. A token's activations take `8 * hidden + intermediate` elements plus 12 bytes of
/// inputs (MiniLM: 4,608 elements, 18.4 kB in f32, 9.2 kB in f16 / bf16), so a workspace (and each
/// graph-mode entry) holds at most about 604 MB in f32, 302 MB in f16 / bf16; small batches
/// take only what their bucket needs. 32,768 tokens is 256 sequences of 128 tokens: GEMMs of
/// 32,768 rows, which the GPU runs at full speed.
pub const MAX_TOKENS: usize = 32_768;

/// Rows of a chunk padded to `seq` tokens at most: the largest power of two (so that graph mode's
/// row buckets, powers of two, stay within [`MAX_TOKENS`]) with `rows * seq <= MAX_TOKENS`, at
/// most [`MAX_BATCH`], at least 1.
pub fn max_rows(seq: usize) -> usize {
    let fit = (MAX_TOKENS / seq.max(1)).clamp(1, MAX_BATCH);
    1 << fit.ilog2()
}

/// Graph mode's padded sequence lengths are multiples of this (a graph per length would be too
/// many); eager mode pads a chunk to its longest sequence, however long.
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
        if let Some(&t) = e.token_type_ids.iter().find(|&&t| t as usize >= config.token_types()) {
            return Err(bad(format!("token type {t} is not below {}", config.token_types())));
        }
        if e.attention_mask.iter().any(|&m| m > 1) {
            return Err(bad("attention_mask values must be 0 or 1".into()));
        }
        if e.pool_from >= n {
            return Err(bad(format!(
                "the prompt's {} tokens leave none of the {n} to pool",
                e.pool_from
            )));
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
    /// `mask` with each sequence's first `pool_from` tokens 0.0 as well, built only when some
    /// sequence has such tokens ([`Padded::pooled`] reads it).
    pool_mask: Option<Vec<f32>>,
}

impl Padded {
    /// `[order.len(), seq]` 1.0 where a token is pooled: `mask` less the prompt tokens that
    /// [`Encoding::pool_from`] leaves out.
    pub(crate) fn pooled(&self) -> &[f32] {
        self.pool_mask.as_deref().unwrap_or(&self.mask)
    }
}

/// How a chunk's length is padded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SeqPad {
    /// To its longest sequence (eager mode).
    Longest,
    /// To the next multiple of [`SEQ_BUCKET`] (graph mode: [`bucket`]).
    Bucket,
}

impl SeqPad {
    /// The padded length of a chunk whose longest sequence has `len` tokens.
    pub(crate) fn len(self, len: usize, max_seq_length: usize) -> usize {
        match self {
            Self::Longest => len.max(1),
            Self::Bucket => bucket(len, max_seq_length),
        }
    }
}

/// Splits the batch into chunks of sequences of similar length, each of at most
/// [`max_rows`] of its padded length, and pads each as `pad` says.
pub(crate) fn chunks(encodings: &[Encoding], max_seq_length: usize, pad: SeqPad) -> Vec<Padded> {
    let mut order: Vec<usize> = (0..encodings.len()).collect();
    order.sort_by_key(|&i| encodings[i].len());
    // Ascending lengths: a chunk's last sequence sets its bucket, so a chunk grows while the
    // next sequence's bucket still allows that many rows.
    let mut groups = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len()
            && end - start < max_rows(pad.len(encodings[order[end]].len(), max_seq_length))
        {
            end += 1;
        }
        groups.push(&order[start..end]);
        start = end;
    }
    groups
        .into_iter()
        .map(|chunk| {
            let longest = chunk.iter().map(|&i| encodings[i].len()).max().unwrap_or(1);
            let seq = pad.len(longest, max_seq_length);
            let mut p = Padded {
                order: chunk.to_vec(),
                seq,
                ids: vec![0; chunk.len() * seq],
                type_ids: vec![0; chunk.len() * seq],
                mask: vec![0.0; chunk.len() * seq],
                pool_mask: None,
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
            if chunk.iter().any(|&i| encodings[i].pool_from > 0) {
                let mut pooled = p.mask.clone();
                for (row, &i) in chunk.iter().enumerate() {
                    pooled[row * seq..][..encodings[i].pool_from].fill(0.0);
                }
                p.pool_mask = Some(pooled);
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

    #[test]
    fn rows_are_powers_of_two_within_the_token_budget() {
        assert_eq!(max_rows(8), MAX_BATCH);
        assert_eq!(max_rows(64), MAX_BATCH);
        assert_eq!(max_rows(128), 256);
        assert_eq!(max_rows(256), 128);
        assert_eq!(max_rows(200), 128);
        assert_eq!(max_rows(1 << 20), 1);
        for seq in 1..=512 {
            let r = max_rows(seq);
            assert!(r.is_power_of_two() && r <= MAX_BATCH && (r * seq <= MAX_TOKENS || r == 1));
        }
    }

    #[test]
    fn chunks_respect_the_budget_and_keep_every_sequence() {
        let enc = |n: usize| Encoding {
            input_ids: vec![1; n],
            attention_mask: vec![1; n],
            token_type_ids: vec![0; n],
            pool_from: 0,
        };
        let lens: Vec<usize> = (0..1200).map(|i| 2 + (i * 37) % 255).collect();
        let encodings: Vec<Encoding> = lens.iter().map(|&n| enc(n)).collect();
        let all = chunks(&encodings, 256, SeqPad::Bucket);
        let mut seen: Vec<usize> = all.iter().flat_map(|c| c.order.clone()).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..lens.len()).collect::<Vec<_>>());
        for c in &all {
            assert!(c.order.len() <= max_rows(c.seq), "{} rows of {}", c.order.len(), c.seq);
            assert!(c.order.iter().all(|&i| lens[i] <= c.seq));
            assert_eq!(c.ids.len(), c.order.len() * c.seq);
        }
        // 512 sequences of 128 tokens: two chunks of 256.
        let same: Vec<Encoding> = (0..512).map(|_| enc(128)).collect();
        let c = chunks(&same, 256, SeqPad::Bucket);
        assert_eq!(c.iter().map(|c| c.order.len()).collect::<Vec<_>>(), [256, 256]);
    }
}
