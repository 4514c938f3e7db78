//! Masked multi-head self-attention for a batch, BERT style: `softmax(Q K^T / sqrt(d) + mask) V`
//! per (sequence, head), with Q/K/V/output in the `[batch, seq, heads * head_dim]` layout the
//! projection GEMMs produce (heads are strided views, never copied).

use faer::linalg::matmul::matmul as faer_matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

use super::error::{check_len, check_min_len, prod, KernelError};
use super::math::simd;
use super::matmul::{row_major_mut, Parallelism};
use super::softmax::softmax_row;

/// Extents of an attention call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttentionDims {
    /// Sequences in the batch.
    pub batch: usize,
    /// Tokens per sequence (queries and keys).
    pub seq: usize,
    /// Attention heads.
    pub heads: usize,
    /// Size of one head; the model width is `heads * head_dim`.
    pub head_dim: usize,
}

/// Scratch length [`attention`] needs: one `seq x seq` score block.
pub fn attention_scratch_len(dims: AttentionDims) -> usize {
    dims.seq * dims.seq
}

/// `out[b, s, h*d..(h+1)*d] = softmax(Q_bh K_bh^T / sqrt(d) + m_b) V_bh` where `m_b[j]` is
/// `(1 - mask[b, j]) * f32::MIN` (Hugging Face BERT's extended attention mask; masked keys get
/// weight 0, a fully masked row becomes uniform as in PyTorch). `mask` is `[batch, seq]` of 0/1,
/// `None` for no padding. `scratch` needs [`attention_scratch_len`] elements; nothing is allocated.
/// With [`Parallelism::Threads`], query rows are split across threads.
#[allow(clippy::too_many_arguments)] // q, k, v, mask, out, scratch: the operands of the op
pub fn attention(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    mask: Option<&[f32]>,
    dims: AttentionDims,
    out: &mut [f32],
    scratch: &mut [f32],
    par: Parallelism,
) -> Result<(), KernelError> {
    let AttentionDims { batch, seq, heads, head_dim } = dims;
    let hidden = heads * head_dim;
    let len = prod(&[batch, seq, heads, head_dim])?;
    check_len("attention q", q.len(), len)?;
    check_len("attention k", k.len(), len)?;
    check_len("attention v", v.len(), len)?;
    check_len("attention out", out.len(), len)?;
    if let Some(m) = mask {
        check_len("attention mask", m.len(), batch * seq)?;
    }
    check_min_len("attention scratch", scratch.len(), attention_scratch_len(dims))?;
    if len == 0 {
        return Ok(());
    }
    let scale = 1.0 / (head_dim as f32).sqrt();
    let threads = par.threads().min(seq);
    let rows_per = seq.div_ceil(threads);
    let block = seq * hidden;
    for b in 0..batch {
        let (qb, kb, vb) =
            (&q[b * block..][..block], &k[b * block..][..block], &v[b * block..][..block]);
        let mb = mask.map(|m| &m[b * seq..][..seq]);
        let ob = &mut out[b * block..][..block];
        let task = |(i, (o, s)): (usize, (&mut [f32], &mut [f32]))| {
            let rows = o.len() / hidden;
            let q_rows = &qb[i * rows_per * hidden..][..rows * hidden];
            let scores = &mut s[..rows * seq];
            rows_attention(q_rows, kb, vb, mb, dims, scale, o, scores);
        };
        let chunks = ob.chunks_mut(rows_per * hidden).zip(scratch.chunks_mut(rows_per * seq));
        if threads > 1 {
            chunks.enumerate().par_bridge().for_each(task);
        } else {
            chunks.enumerate().for_each(task);
        }
    }
    Ok(())
}

/// All heads for a block of query rows of one sequence. `q`/`out`: `[rows, hidden]`; `k`/`v`:
/// `[seq, hidden]`; `scores`: `[rows, seq]`.
#[allow(clippy::too_many_arguments)]
fn rows_attention(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    mask: Option<&[f32]>,
    dims: AttentionDims,
    scale: f32,
    out: &mut [f32],
    scores: &mut [f32],
) {
    let AttentionDims { seq, heads, head_dim: d, .. } = dims;
    let hidden = heads * d;
    let rows = out.len() / hidden;
    for h in 0..heads {
        let qh = MatRef::from_row_major_slice_with_stride(&q[h * d..], rows, d, hidden);
        let kh = MatRef::from_row_major_slice_with_stride(&k[h * d..], seq, d, hidden);
        let vh = MatRef::from_row_major_slice_with_stride(&v[h * d..], seq, d, hidden);
        {
            let s = MatMut::from_row_major_slice_mut(scores, rows, seq);
            faer_matmul(s, Accum::Replace, qh, kh.transpose(), scale, Par::Seq);
        }
        simd!([scores: &'a mut [f32] = scores, seq: usize = seq, mask: Option<&'a [f32]> = mask] {
            masked_softmax_rows(scores, seq, mask)
        });
        let p = MatRef::from_row_major_slice(&*scores, rows, seq);
        let oh = row_major_mut(&mut out[h * d..], rows, d, hidden);
        faer_matmul(oh, Accum::Replace, p, vh, 1.0, Par::Seq);
    }
}

/// Adds the additive mask to each score row and takes its softmax.
#[inline(always)]
fn masked_softmax_rows(scores: &mut [f32], seq: usize, mask: Option<&[f32]>) {
    for row in scores.chunks_exact_mut(seq) {
        if let Some(m) = mask {
            for (sv, &mv) in row.iter_mut().zip(m) {
                *sv += (1.0 - mv) * f32::MIN;
            }
        }
        softmax_row(row);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, k: f32) -> Vec<f32> {
        (0..n).map(|i| (i as f32 * k).sin()).collect()
    }

    fn reference(q: &[f32], k: &[f32], v: &[f32], mask: &[f32], dims: AttentionDims) -> Vec<f64> {
        let AttentionDims { batch, seq, heads, head_dim: d } = dims;
        let hid = heads * d;
        let mut out = vec![0.0f64; batch * seq * hid];
        for b in 0..batch {
            for h in 0..heads {
                for i in 0..seq {
                    let at =
                        |t: &[f32], s: usize, c: usize| t[(b * seq + s) * hid + h * d + c] as f64;
                    let sc: Vec<f64> = (0..seq)
                        .map(|j| {
                            let dot: f64 = (0..d).map(|c| at(q, i, c) * at(k, j, c)).sum();
                            dot / (d as f64).sqrt()
                                + (1.0 - mask[b * seq + j] as f64) * f32::MIN as f64
                        })
                        .collect();
                    let m = sc.iter().cloned().fold(f64::MIN, f64::max);
                    let e: Vec<f64> = sc.iter().map(|s| (s - m).exp()).collect();
                    let z: f64 = e.iter().sum();
                    for c in 0..d {
                        out[(b * seq + i) * hid + h * d + c] =
                            (0..seq).map(|j| e[j] / z * at(v, j, c)).sum::<f64>();
                    }
                }
            }
        }
        out
    }

    #[test]
    fn matches_reference_with_padding() {
        let dims = AttentionDims { batch: 2, seq: 9, heads: 3, head_dim: 8 };
        let n = 2 * 9 * 24;
        let (q, k, v) = (data(n, 0.31), data(n, 0.17), data(n, 0.53));
        let mut mask = vec![1.0f32; 18];
        for m in &mut mask[9 + 6..] {
            *m = 0.0; // second sequence: 3 padding tokens
        }
        let want = reference(&q, &k, &v, &mask, dims);
        for par in [Parallelism::Sequential, Parallelism::Threads(2), Parallelism::Threads(4)] {
            let mut out = vec![f32::NAN; n];
            let mut scratch = vec![0.0; attention_scratch_len(dims)];
            attention(&q, &k, &v, Some(&mask), dims, &mut out, &mut scratch, par).unwrap();
            for (g, w) in out.iter().zip(&want) {
                assert!((*g as f64 - w).abs() < 1e-5 * (1.0 + w.abs()), "{par:?}: {g} vs {w}");
            }
        }
        let ones = vec![1.0f32; 18];
        let want = reference(&q, &k, &v, &ones, dims);
        let mut out = vec![0.0; n];
        let mut scratch = vec![0.0; attention_scratch_len(dims)];
        attention(&q, &k, &v, None, dims, &mut out, &mut scratch, Parallelism::Sequential).unwrap();
        for (g, w) in out.iter().zip(&want) {
            assert!((*g as f64 - w).abs() < 1e-5 * (1.0 + w.abs()));
        }
        let err = attention(
            &q,
            &k,
            &v,
            None,
            dims,
            &mut out,
            &mut scratch[..10],
            Parallelism::Sequential,
        )
        .unwrap_err();
        assert!(matches!(err, KernelError::Length { what: "attention scratch", .. }));
    }
}
