//! Embedding lookups: a plain row gather, and BERT's word + position + token-type sum followed by
//! layer norm.

use super::error::{check_len, mul, KernelError};
use super::layer_norm::layer_norm_inplace;

/// `out[i] = table[ids[i]]`, rows of `dim`; `table` is `[vocab, dim]` with `vocab = len / dim`.
/// An id `>= vocab` is an [`KernelError::IdOutOfRange`] and nothing is written.
///
/// ```
/// use streampool_cpu::kernels::{embedding_gather, KernelError};
/// let table = [0.0, 0.5, 1.0, 1.5]; // 2 rows of 2
/// let mut out = [0.0; 4];
/// embedding_gather(&[1, 0], &table, 2, &mut out).unwrap();
/// assert_eq!(out, [1.0, 1.5, 0.0, 0.5]);
/// assert!(matches!(embedding_gather(&[2, 0], &table, 2, &mut out),
///                  Err(KernelError::IdOutOfRange { id: 2, .. })));
/// ```
pub fn embedding_gather(
    ids: &[u32],
    table: &[f32],
    dim: usize,
    out: &mut [f32],
) -> Result<(), KernelError> {
    if dim == 0 || table.len() % dim != 0 {
        return Err(KernelError::Shape(format!(
            "embedding table of {} is not rows of {dim}",
            table.len()
        )));
    }
    let rows = table.len() / dim;
    check_len("embedding out", out.len(), mul(ids.len(), dim)?)?;
    check_ids(ids, rows)?;
    for (o, &id) in out.chunks_exact_mut(dim).zip(ids) {
        let id = id as usize;
        o.copy_from_slice(&table[id * dim..][..dim]);
    }
    Ok(())
}

fn check_ids(ids: &[u32], rows: usize) -> Result<(), KernelError> {
    match ids.iter().position(|&id| id as usize >= rows) {
        Some(position) => Err(KernelError::IdOutOfRange { id: ids[position], position, rows }),
        None => Ok(()),
    }
}

/// The weights of BERT's embedding block.
#[derive(Clone, Copy, Debug)]
pub struct BertEmbeddingWeights<'a> {
    /// `[vocab, dim]`.
    pub word: &'a [f32],
    /// `[max_positions, dim]`.
    pub position: &'a [f32],
    /// `[type_vocab, dim]`.
    pub token_type: &'a [f32],
    /// Layer norm weight, `[dim]`.
    pub gamma: &'a [f32],
    /// Layer norm bias, `[dim]`.
    pub beta: &'a [f32],
    /// Layer norm epsilon (1e-12 for BERT).
    pub eps: f32,
    /// Hidden size.
    pub dim: usize,
}

/// BERT embeddings for `batch` sequences of `seq` tokens: `LayerNorm(word[ids] + position[0..seq] +
/// token_type[type_ids])` into `out[batch, seq, dim]`. `token_type_ids == None` means all zeros
/// (as Hugging Face when none are given). Ids out of range are errors, `seq` beyond the position
/// table too.
pub fn bert_embeddings(
    w: &BertEmbeddingWeights<'_>,
    input_ids: &[u32],
    token_type_ids: Option<&[u32]>,
    batch: usize,
    seq: usize,
    out: &mut [f32],
) -> Result<(), KernelError> {
    let dim = w.dim;
    let tokens = mul(batch, seq)?;
    check_len("bert_embeddings input_ids", input_ids.len(), tokens)?;
    if let Some(t) = token_type_ids {
        check_len("bert_embeddings token_type_ids", t.len(), tokens)?;
        check_ids(t, w.token_type.len() / dim.max(1))?;
    }
    check_len("bert_embeddings out", out.len(), mul(tokens, dim)?)?;
    for (what, table) in [("position", w.position), ("token_type", w.token_type)] {
        if dim == 0 || table.len() % dim != 0 || table.is_empty() {
            return Err(KernelError::Shape(format!(
                "{what} table of {} is not rows of {dim}",
                table.len()
            )));
        }
    }
    if seq > w.position.len() / dim {
        return Err(KernelError::Shape(format!(
            "sequence of {seq} exceeds the {} positions",
            w.position.len() / dim
        )));
    }
    embedding_gather(input_ids, w.word, dim, out)?;
    for (t, row) in out.chunks_exact_mut(dim).enumerate() {
        let pos = &w.position[(t % seq) * dim..][..dim];
        let tt = token_type_ids.map_or(0, |ids| ids[t] as usize);
        let typ = &w.token_type[tt * dim..][..dim];
        for ((o, &p), &ty) in row.iter_mut().zip(pos).zip(typ) {
            *o += p + ty;
        }
    }
    layer_norm_inplace(out, tokens, dim, w.gamma, w.beta, w.eps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bert_embeddings_match_reference() {
        let dim = 4;
        let f = |n: usize, k: f32| (0..n).map(|i| (i as f32 * k).cos()).collect::<Vec<f32>>();
        let (word, pos, typ) = (f(10 * dim, 0.3), f(6 * dim, 0.7), f(2 * dim, 1.1));
        let (gamma, beta) = (f(dim, 0.2), f(dim, 0.9));
        let w = BertEmbeddingWeights {
            word: &word,
            position: &pos,
            token_type: &typ,
            gamma: &gamma,
            beta: &beta,
            eps: 1e-12,
            dim,
        };
        let ids = [3u32, 9, 0, 5, 5, 1];
        let types = [0u32, 0, 1, 0, 1, 1];
        let mut out = vec![0.0; 6 * dim];
        bert_embeddings(&w, &ids, Some(&types), 2, 3, &mut out).unwrap();
        for t in 0..6 {
            let e: Vec<f64> = (0..dim)
                .map(|c| {
                    word[ids[t] as usize * dim + c] as f64
                        + pos[(t % 3) * dim + c] as f64
                        + typ[types[t] as usize * dim + c] as f64
                })
                .collect();
            let mean = e.iter().sum::<f64>() / dim as f64;
            let var = e.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / dim as f64;
            for c in 0..dim {
                let want = (e[c] - mean) / (var + 1e-12).sqrt() * gamma[c] as f64 + beta[c] as f64;
                let got = out[t * dim + c] as f64;
                assert!((got - want).abs() < 1e-5 * (1.0 + want.abs()), "{got} vs {want}");
            }
        }
        let err = bert_embeddings(&w, &[3, 10, 0, 5, 5, 1], None, 2, 3, &mut out).unwrap_err();
        assert_eq!(err, KernelError::IdOutOfRange { id: 10, position: 1, rows: 10 });
        let err = bert_embeddings(&w, &[0; 7], None, 1, 7, &mut [0.0; 28]).unwrap_err();
        assert!(matches!(err, KernelError::Shape(_)));
    }
}
