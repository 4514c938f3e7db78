//! Sequence ops on CUDA: fused attention, embedding gathers, masked mean pooling.

use streampool_core::AttentionDims;
use streampool_cuda::ops::{self, AttentionLayout, BertEmbeddings, Slice};
use streampool_cuda::{CudaBackend, CudaStream};

use super::{elem, opt_slice, slice, T};
use crate::{check, BertEmbeddingTables, OpError};

pub(super) fn attention(
    stream: &CudaStream,
    [q, k, v]: [&T; 3],
    mask: Option<&T>,
    heads: usize,
    out: &T,
) -> Result<(), OpError> {
    let (d, head_dim) = check::attention(q, k, v, mask, heads, out)?;
    let dims = AttentionDims { batch: d.batch, seq: d.seq, heads, head_dim };
    let layout = AttentionLayout::dense(d.dim);
    let e = elem(q);
    let (q, k, v, m, o) = (slice(q), slice(k), slice(v), opt_slice(mask), slice(out));
    // Scale `None`: 1 / sqrt(head_dim), as BERT.
    Ok(ops::attention(stream, q, k, v, m, o, dims, layout, None, None, e)?)
}

/// Attention reading Q, K and V in place from the fused projection: row stride `3 * hidden`,
/// offsets 0, `hidden` and `2 * hidden` (one kernel, no de-interleaving copy).
pub(super) fn attention_qkv(
    stream: &CudaStream,
    qkv: &T,
    mask: Option<&T>,
    bias: Option<&T>,
    heads: usize,
    out: &T,
) -> Result<(), OpError> {
    let (d, head_dim) = check::attention_qkv(qkv, mask, bias, heads, out)?;
    let dims = AttentionDims { batch: d.batch, seq: d.seq, heads, head_dim };
    let h = d.dim;
    let layout = AttentionLayout { ld_q: 3 * h, ld_k: 3 * h, ld_v: 3 * h, ld_out: h };
    let base = qkv.layout().offset();
    let part = |i: usize| Slice::new(qkv.buffer(), base + i * h);
    let (m, o, e) = (opt_slice(mask), slice(out), elem(qkv));
    let bias = bias.map(|b| (slice(b), check::bias_span(b)));
    Ok(ops::attention(stream, part(0), part(1), part(2), m, o, dims, layout, None, bias, e)?)
}

/// Row gather. An id past the table gives a row of NaN on CUDA (a kernel cannot return an
/// error without failing every stream of the context); models validate ids on the host.
pub(super) fn embedding(stream: &CudaStream, ids: &T, table: &T, out: &T) -> Result<(), OpError> {
    let (tokens, dim) = check::embedding(ids, table, out)?;
    let vocab = table.shape()[0];
    let e = elem(table);
    let (i, t, o) = (slice(ids), slice(table), slice(out));
    Ok(ops::embedding_gather(stream, i, tokens, t, vocab, dim, o, e)?)
}

pub(super) fn bert_embeddings(
    stream: &CudaStream,
    ids: &T,
    type_ids: Option<&T>,
    t: BertEmbeddingTables<'_, CudaBackend>,
    out: &T,
) -> Result<(), OpError> {
    let d = check::bert_embeddings(ids, type_ids, &t, out)?;
    let tables = BertEmbeddings {
        word: slice(t.word),
        vocab: t.word.shape()[0],
        position: slice(t.position),
        max_positions: t.position.shape()[0],
        token_type: slice(t.token_type),
        type_vocab: t.token_type.shape()[0],
        gamma: slice(t.norm.gamma),
        beta: slice(t.norm.beta),
        eps: t.norm.eps,
        dim: d.dim,
    };
    let e = elem(t.word);
    let (i, ti, o) = (slice(ids), opt_slice(type_ids), slice(out));
    Ok(ops::bert_embeddings(stream, i, ti, &tables, d.batch, d.seq, o, e)?)
}

pub(super) fn pool(
    stream: &CudaStream,
    hidden: &T,
    mask: Option<&T>,
    kind: crate::PoolKind,
    out: &T,
) -> Result<(), OpError> {
    let kind = match kind {
        crate::PoolKind::Max => ops::SeqPool::Max,
        crate::PoolKind::LastToken => ops::SeqPool::LastToken,
        crate::PoolKind::WeightedMean => ops::SeqPool::WeightedMean,
        _ => return mean_pool(stream, hidden, mask, out),
    };
    let d = check::mean_pool(hidden, mask, out)?;
    let e = elem(hidden);
    let (h, m, o) = (slice(hidden), opt_slice(mask), slice(out));
    Ok(ops::seq_pool(stream, h, m, d.batch, d.seq, d.dim, kind, o, e)?)
}

pub(super) fn mean_pool(
    stream: &CudaStream,
    hidden: &T,
    mask: Option<&T>,
    out: &T,
) -> Result<(), OpError> {
    let d = check::mean_pool(hidden, mask, out)?;
    let e = elem(hidden);
    let (h, m, o) = (slice(hidden), opt_slice(mask), slice(out));
    Ok(ops::mean_pool(stream, h, m, d.batch, d.seq, d.dim, false, o, e)?)
}
