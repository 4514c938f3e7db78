//! Sequence ops on the CPU: embeddings, attention, mean pooling.

use streampool_cpu::kernels::{self, AttentionDims, BertEmbeddingWeights};
use streampool_cpu::{CpuBackend, CpuStream};

use super::access::{kernel, par, slice_mut, with_scratch, CpuTensor, Reads};
use crate::{check, BertEmbeddingTables, OpError};

pub(super) fn attention(
    stream: &CpuStream,
    [q, k, v]: [&CpuTensor; 3],
    mask: Option<&CpuTensor>,
    heads: usize,
    out: &CpuTensor,
) -> Result<(), OpError> {
    let (d, head_dim) = check::attention(q, k, v, mask, heads, out)?;
    let dims = AttentionDims { batch: d.batch, seq: d.seq, heads, head_dim };
    let (q, k, v, mask, out) = (q.clone(), k.clone(), v.clone(), mask.cloned(), out.clone());
    Ok(stream.enqueue(move || {
        let reads = Reads::lock([Some(&q), Some(&k), Some(&v), mask.as_ref()]);
        let (qs, ks, vs) = (reads.f32(&q)?, reads.f32(&k)?, reads.f32(&v)?);
        let ms = reads.opt_f32(mask.as_ref())?;
        let mut guard = out.buffer().write();
        let o = slice_mut(guard.as_f32_mut(), &out)?;
        with_scratch(kernels::attention_scratch_len(dims, par()), |s| {
            kernel(kernels::attention(qs, ks, vs, ms, None, dims, o, s, par()))
        })
    })?)
}

pub(super) fn embedding(
    stream: &CpuStream,
    ids: &CpuTensor,
    table: &CpuTensor,
    out: &CpuTensor,
) -> Result<(), OpError> {
    let (_, dim) = check::embedding(ids, table, out)?;
    let (ids, table, out) = (ids.clone(), table.clone(), out.clone());
    Ok(stream.enqueue(move || {
        let reads = Reads::lock([Some(&ids), Some(&table)]);
        let mut guard = out.buffer().write();
        let o = slice_mut(guard.as_f32_mut(), &out)?;
        kernel(kernels::embedding_gather(reads.u32(&ids)?, reads.f32(&table)?, dim, o))
    })?)
}

pub(super) fn bert_embeddings(
    stream: &CpuStream,
    ids: &CpuTensor,
    type_ids: Option<&CpuTensor>,
    tables: BertEmbeddingTables<'_, CpuBackend>,
    out: &CpuTensor,
) -> Result<(), OpError> {
    let d = check::bert_embeddings(ids, type_ids, &tables, out)?;
    let (ids, type_ids, out) = (ids.clone(), type_ids.cloned(), out.clone());
    let (word, position, token_type) =
        (tables.word.clone(), tables.position.clone(), tables.token_type.clone());
    let (gamma, beta, eps) = (tables.norm.gamma.clone(), tables.norm.beta.clone(), tables.norm.eps);
    Ok(stream.enqueue(move || {
        let reads = Reads::lock([
            Some(&ids),
            type_ids.as_ref(),
            Some(&word),
            Some(&position),
            Some(&token_type),
            Some(&gamma),
            Some(&beta),
        ]);
        let w = BertEmbeddingWeights {
            word: reads.f32(&word)?,
            position: reads.f32(&position)?,
            token_type: reads.f32(&token_type)?,
            gamma: reads.f32(&gamma)?,
            beta: reads.f32(&beta)?,
            eps,
            dim: d.dim,
        };
        let types = type_ids.as_ref().map(|t| reads.u32(t)).transpose()?;
        let mut guard = out.buffer().write();
        let o = slice_mut(guard.as_f32_mut(), &out)?;
        kernel(kernels::bert_embeddings(&w, reads.u32(&ids)?, types, d.batch, d.seq, o))
    })?)
}

pub(super) fn pool(
    stream: &CpuStream,
    hidden: &CpuTensor,
    mask: Option<&CpuTensor>,
    kind: crate::PoolKind,
    out: &CpuTensor,
) -> Result<(), OpError> {
    let pool = match kind {
        crate::PoolKind::Max => kernels::max_pool,
        crate::PoolKind::LastToken => kernels::last_token_pool,
        crate::PoolKind::WeightedMean => kernels::weighted_mean_pool,
        _ => return mean_pool(stream, hidden, mask, out),
    };
    let d = check::mean_pool(hidden, mask, out)?;
    let (hidden, mask, out) = (hidden.clone(), mask.cloned(), out.clone());
    Ok(stream.enqueue(move || {
        let reads = Reads::lock([Some(&hidden), mask.as_ref()]);
        let h = reads.f32(&hidden)?;
        let m = reads.opt_f32(mask.as_ref())?;
        let mut guard = out.buffer().write();
        let o = slice_mut(guard.as_f32_mut(), &out)?;
        kernel(pool(h, m, d.batch, d.seq, d.dim, o))
    })?)
}

pub(super) fn mean_pool(
    stream: &CpuStream,
    hidden: &CpuTensor,
    mask: Option<&CpuTensor>,
    out: &CpuTensor,
) -> Result<(), OpError> {
    let d = check::mean_pool(hidden, mask, out)?;
    let (hidden, mask, out) = (hidden.clone(), mask.cloned(), out.clone());
    Ok(stream.enqueue(move || {
        let reads = Reads::lock([Some(&hidden), mask.as_ref()]);
        let h = reads.f32(&hidden)?;
        let mut guard = out.buffer().write();
        let o = slice_mut(guard.as_f32_mut(), &out)?;
        match reads.opt_f32(mask.as_ref())? {
            Some(m) => kernel(kernels::mean_pool(h, m, d.batch, d.seq, d.dim, o)),
            None => {
                mean_all(h, d.seq, d.dim, o);
                Ok(())
            }
        }
    })?)
}

/// Unmasked mean over the middle dimension of `[batch, seq, dim]` (the kernel needs a mask).
fn mean_all(hidden: &[f32], seq: usize, dim: usize, out: &mut [f32]) {
    if dim == 0 {
        return;
    }
    let scale = 1.0 / seq.max(1) as f32;
    for (o, block) in out.chunks_exact_mut(dim).zip(hidden.chunks_exact((seq * dim).max(1))) {
        o.fill(0.0);
        for row in block.chunks_exact(dim) {
            o.iter_mut().zip(row).for_each(|(a, &v)| *a += v);
        }
        o.iter_mut().for_each(|a| *a *= scale);
    }
}
