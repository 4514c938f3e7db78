//! The ops Gemma-style encoders add on the CPU: RMS norm, rotary positions, element-wise
//! product and grouped-query attention. Plain loops (the norm and rotary in f64), the attention
//! through the same kernel as BERT's.

use streampool_core::AttentionDims;
use streampool_cpu::kernels::{self, Grouping};
use streampool_cpu::CpuStream;

use super::access::{kernel, par, slice_mut, with_scratch, CpuTensor, Reads};
use crate::{check, OpError};

pub(super) fn rms_norm(
    stream: &CpuStream,
    x: &CpuTensor,
    residual: Option<&CpuTensor>,
    weight: &CpuTensor,
    eps: f32,
    out: &CpuTensor,
) -> Result<(), OpError> {
    let d = check::rms_norm(x, residual, weight, out)?;
    let (x, residual, weight, out) = (x.clone(), residual.cloned(), weight.clone(), out.clone());
    Ok(stream.enqueue(move || {
        let reads = Reads::lock([Some(&x), residual.as_ref(), Some(&weight)]);
        let (xs, rs, ws) = (reads.f32(&x)?, reads.opt_f32(residual.as_ref())?, reads.f32(&weight)?);
        let mut guard = out.buffer().write();
        let o = slice_mut(guard.as_f32_mut(), &out)?;
        if d.dim == 0 {
            return Ok(());
        }
        for (r, (row, o)) in xs.chunks_exact(d.dim).zip(o.chunks_exact_mut(d.dim)).enumerate() {
            let ms = row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / d.dim as f64;
            let inv = 1.0 / (ms + eps as f64).sqrt();
            let res = rs.map(|rs| &rs[r * d.dim..][..d.dim]);
            for (c, (o, &v)) in o.iter_mut().zip(row).enumerate() {
                let y = ((v as f64 * inv) as f32) * ws[c];
                *o = res.map_or(y, |res| res[c] + y);
            }
        }
        Ok(())
    })?)
}

pub(super) fn rotary(
    stream: &CpuStream,
    x: &CpuTensor,
    table: &CpuTensor,
    heads: usize,
    out: &CpuTensor,
) -> Result<(), OpError> {
    let (d, head_dim) = check::rotary(x, table, heads, out)?;
    let (x, table, out) = (x.clone(), table.clone(), out.clone());
    Ok(stream.enqueue(move || {
        let reads = Reads::lock([Some(&x), Some(&table)]);
        let (xs, t) = (reads.f32(&x)?, reads.f32(&table)?);
        let mut guard = out.buffer().write();
        let o = slice_mut(guard.as_f32_mut(), &out)?;
        let half = head_dim / 2;
        for (token, (row, o)) in xs.chunks_exact(d.dim).zip(o.chunks_exact_mut(d.dim)).enumerate() {
            let angles = &t[(token % d.seq) * head_dim..][..head_dim];
            let (cos, sin) = angles.split_at(half);
            for (x, o) in row.chunks_exact(head_dim).zip(o.chunks_exact_mut(head_dim)) {
                for i in 0..half {
                    // As PyTorch: x * cos + rotate_half(x) * sin, each product rounded.
                    o[i] = x[i] * cos[i] + (-x[i + half]) * sin[i];
                    o[i + half] = x[i + half] * cos[i] + x[i] * sin[i];
                }
            }
        }
        Ok(())
    })?)
}

pub(super) fn mul(
    stream: &CpuStream,
    a: &CpuTensor,
    b: &CpuTensor,
    out: &CpuTensor,
) -> Result<(), OpError> {
    check::mul(a, b, out)?;
    let (a, b, out) = (a.clone(), b.clone(), out.clone());
    Ok(stream.enqueue(move || {
        let reads = Reads::lock([Some(&a), Some(&b)]);
        let (xs, ys) = (reads.f32(&a)?, reads.f32(&b)?);
        let mut guard = out.buffer().write();
        let o = slice_mut(guard.as_f32_mut(), &out)?;
        o.iter_mut().zip(xs.iter().zip(ys)).for_each(|(o, (x, y))| *o = x * y);
        Ok(())
    })?)
}

#[allow(clippy::too_many_arguments)] // the attention's operands, its grouping and scale
pub(super) fn grouped_attention(
    stream: &CpuStream,
    [q, k, v]: [&CpuTensor; 3],
    mask: Option<&CpuTensor>,
    bias: Option<&CpuTensor>,
    heads: usize,
    kv_heads: usize,
    scale: f32,
    out: &CpuTensor,
) -> Result<(), OpError> {
    let (d, head_dim) = check::grouped_attention(q, k, v, mask, bias, heads, kv_heads, out)?;
    let dims = AttentionDims { batch: d.batch, seq: d.seq, heads, head_dim };
    let grouping = Grouping { kv_heads, scale };
    let (q, k, v) = (q.clone(), k.clone(), v.clone());
    let (mask, bias, out) = (mask.cloned(), bias.cloned(), out.clone());
    Ok(stream.enqueue(move || {
        let reads = Reads::lock([Some(&q), Some(&k), Some(&v), mask.as_ref(), bias.as_ref()]);
        let (qs, ks, vs) = (reads.f32(&q)?, reads.f32(&k)?, reads.f32(&v)?);
        let (ms, bs) = (reads.opt_f32(mask.as_ref())?, reads.opt_f32(bias.as_ref())?);
        let mut guard = out.buffer().write();
        let o = slice_mut(guard.as_f32_mut(), &out)?;
        with_scratch(kernels::attention_scratch_len(dims, par()), |s| {
            kernel(kernels::attention_grouped(qs, ks, vs, ms, bs, dims, grouping, o, s, par()))
        })
    })?)
}
