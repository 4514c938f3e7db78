//! Attention on a fused QKV projection for the CPU backend: each row of `qkv` is split into dense
//! Q, K and V in the worker thread's scratch, then the ordinary attention kernel runs on them
//! (correct first; warm calls allocate nothing).

use streampool_cpu::kernels::{self, AttentionDims};
use streampool_cpu::CpuStream;

use super::access::{kernel, par, slice_mut, with_scratch, CpuTensor, Reads};
use crate::{check, OpError};

pub(super) fn attention_qkv(
    stream: &CpuStream,
    qkv: &CpuTensor,
    mask: Option<&CpuTensor>,
    bias: Option<&CpuTensor>,
    heads: usize,
    out: &CpuTensor,
) -> Result<(), OpError> {
    let (d, head_dim) = check::attention_qkv(qkv, mask, bias, heads, out)?;
    let dims = AttentionDims { batch: d.batch, seq: d.seq, heads, head_dim };
    let (qkv, mask, bias, out) = (qkv.clone(), mask.cloned(), bias.cloned(), out.clone());
    Ok(stream.enqueue(move || {
        let reads = Reads::lock([Some(&qkv), mask.as_ref(), bias.as_ref()]);
        let (src, ms) = (reads.f32(&qkv)?, reads.opt_f32(mask.as_ref())?);
        let bs = reads.opt_f32(bias.as_ref())?;
        let mut guard = out.buffer().write();
        let o = slice_mut(guard.as_f32_mut(), &out)?;
        let h = d.dim;
        let n = d.batch * d.seq * h;
        with_scratch(3 * n + kernels::attention_scratch_len(dims, par()), |scratch| {
            let (q, rest) = scratch.split_at_mut(n);
            let (k, rest) = rest.split_at_mut(n);
            let (v, s) = rest.split_at_mut(n);
            if h > 0 {
                let dst =
                    q.chunks_exact_mut(h).zip(k.chunks_exact_mut(h)).zip(v.chunks_exact_mut(h));
                for (row, ((q, k), v)) in src.chunks_exact(3 * h).zip(dst) {
                    q.copy_from_slice(&row[..h]);
                    k.copy_from_slice(&row[h..2 * h]);
                    v.copy_from_slice(&row[2 * h..]);
                }
            }
            kernel(kernels::attention(q, k, v, ms, bs, dims, o, s, par()))
        })
    })?)
}
