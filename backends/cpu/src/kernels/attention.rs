//! Masked multi-head self-attention for a batch, BERT style: `softmax(Q K^T / sqrt(d) + mask) V`
//! per (sequence, head), with Q/K/V/output in the `[batch, seq, heads * head_dim]` layout the
//! projection GEMMs produce (heads are strided views, never copied).

use faer::linalg::matmul::matmul as faer_matmul;
use faer::{Accum, MatMut, MatRef, Par};
use streampool_core::AttentionDims;

use super::error::{check_len, check_min_len, prod, KernelError};
use super::math::simd;
use super::matmul::{row_major_mut, Parallelism};
use super::parallel::{run, workers};
use super::softmax::softmax_row;

/// Scratch length [`attention`] needs: one `seq x seq` score block per thread it may use.
pub fn attention_scratch_len(dims: AttentionDims, par: Parallelism) -> usize {
    dims.seq * dims.seq * par.threads()
}

/// `out[b, s, h*d..(h+1)*d] = softmax(Q_bh K_bh^T / sqrt(d) + m_b) V_bh` where `m_b[j]` is
/// `(1 - mask[b, j]) * f32::MIN` (Hugging Face BERT's extended attention mask; masked keys get
/// weight 0, a fully masked row becomes uniform as in PyTorch). `mask` is `[batch, seq]` of 0/1,
/// `None` for no padding. `bias` (MPNet's relative position bias, resolved per distance) is
/// `[heads, 2 * span + 1]`: query `i` and key `j` of head `h` get `bias[h, j - i + span]` added
/// to their score, for sequences of at most `span + 1` tokens. `scratch` needs
/// [`attention_scratch_len`] elements; nothing is allocated. With [`Parallelism::Threads`], the
/// (sequence, head) pairs are shared out between threads.
#[allow(clippy::too_many_arguments)] // q, k, v, mask, bias, out, scratch: the operands of the op
pub fn attention(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    mask: Option<&[f32]>,
    bias: Option<&[f32]>,
    dims: AttentionDims,
    out: &mut [f32],
    scratch: &mut [f32],
    par: Parallelism,
) -> Result<(), KernelError> {
    let grouping = Grouping { kv_heads: dims.heads, scale: 1.0 / (dims.head_dim as f32).sqrt() };
    attention_grouped(q, k, v, mask, bias, dims, grouping, out, scratch, par)
}

/// How keys and values are shared between query heads, and the scores' scale.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Grouping {
    /// Key / value heads: query head `h` reads key and value head `h / (heads / kv_heads)`
    /// (grouped-query attention; `heads` for plain multi-head attention).
    pub kv_heads: usize,
    /// The scores' scale (`1 / sqrt(head_dim)` in BERT; Gemma's `query_pre_attn_scalar^-0.5`).
    pub scale: f32,
}

/// [`attention`] with grouped keys and values and any scale: `k` and `v` are `[batch, seq,
/// kv_heads * head_dim]`, `q` and `out` `[batch, seq, heads * head_dim]`; `heads` a multiple of
/// `kv_heads`.
#[allow(clippy::too_many_arguments)] // q, k, v, mask, bias, out, scratch: the operands of the op
pub fn attention_grouped(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    mask: Option<&[f32]>,
    bias: Option<&[f32]>,
    dims: AttentionDims,
    grouping: Grouping,
    out: &mut [f32],
    scratch: &mut [f32],
    par: Parallelism,
) -> Result<(), KernelError> {
    let AttentionDims { batch, seq, heads, head_dim } = dims;
    let Grouping { kv_heads, scale } = grouping;
    if kv_heads == 0 || heads % kv_heads != 0 {
        return Err(KernelError::Shape(format!("{heads} heads do not share {kv_heads} kv heads")));
    }
    let hidden = heads * head_dim;
    let kv_hidden = kv_heads * head_dim;
    let len = prod(&[batch, seq, heads, head_dim])?;
    let kv_len = prod(&[batch, seq, kv_heads, head_dim])?;
    check_len("attention q", q.len(), len)?;
    check_len("attention k", k.len(), kv_len)?;
    check_len("attention v", v.len(), kv_len)?;
    check_len("attention out", out.len(), len)?;
    if let Some(m) = mask {
        check_len("attention mask", m.len(), batch * seq)?;
    }
    check_min_len("attention scratch", scratch.len(), attention_scratch_len(dims, par))?;
    // Each head's row of the bias and the distance it is centred on.
    let width = match bias {
        Some(t) if heads > 0 => {
            let width = t.len() / heads;
            if t.len() % heads != 0 || width % 2 == 0 || width / 2 + 1 < seq {
                return Err(KernelError::Shape(format!(
                    "attention bias of {} values is not [{heads}, 2 * span + 1] with span + 1 >= \
                     {seq}",
                    t.len()
                )));
            }
            width
        }
        _ => 0,
    };
    if len == 0 {
        return Ok(());
    }
    let group = heads / kv_heads;
    let flops = 4.0 * (batch * heads) as f64 * (seq * seq * head_dim) as f64;
    let par = if flops < 1.0e6 { Parallelism::Sequential } else { par };
    // One task per (sequence, head): its output is a `[seq, head_dim]` column block of the
    // sequence's `[seq, hidden]` rows, split off as a disjoint faer view.
    let mut tasks = Vec::with_capacity(batch * heads);
    for (b, ob) in out.chunks_exact_mut(seq * hidden).enumerate() {
        let mut rest = row_major_mut(ob, seq, hidden, hidden);
        for h in 0..heads {
            let take = if h + 1 == heads { hidden - h * head_dim } else { head_dim };
            let (oh, tail) = rest.split_at_col_mut(take);
            tasks.push((b, h, oh));
            rest = tail;
        }
    }
    let n = workers(par, tasks.len());
    let scratches: Vec<&mut [f32]> = scratch.chunks_exact_mut(seq * seq).take(n).collect();
    run(scratches, tasks.into_iter(), |scores, (b, h, oh)| {
        let at = b * seq * hidden + h * head_dim;
        let kv_at = b * seq * kv_hidden + (h / group) * head_dim;
        let view = |t, ld| MatRef::from_row_major_slice_with_stride(t, seq, head_dim, ld);
        let qh = view(&q[at..], hidden);
        let (kh, vh) = (view(&k[kv_at..], kv_hidden), view(&v[kv_at..], kv_hidden));
        let mb = mask.map(|m| &m[b * seq..][..seq]);
        let bh = bias.map(|t| &t[h * width..][..width]);
        head_attention([qh, kh, vh], mb, bh, scale, oh, scores);
    });
    Ok(())
}

/// One (sequence, head): `out = softmax(scale * q k^T + bias + mask) v`, with the scores in
/// `scores`; `bias` is the head's row of distance biases.
fn head_attention(
    [q, k, v]: [MatRef<'_, f32>; 3],
    mask: Option<&[f32]>,
    bias: Option<&[f32]>,
    scale: f32,
    out: MatMut<'_, f32>,
    scores: &mut [f32],
) {
    let seq = k.nrows();
    let scores = &mut scores[..seq * seq];
    {
        let s = MatMut::from_row_major_slice_mut(scores, seq, seq);
        faer_matmul(s, Accum::Replace, q, k.transpose(), scale, Par::Seq);
    }
    if let Some(bias) = bias {
        // Row `i` adds the distances `-i .. seq - i`, centred at the middle of the row.
        let span = bias.len() / 2;
        for (i, row) in scores.chunks_exact_mut(seq).enumerate() {
            row.iter_mut().zip(&bias[span - i..]).for_each(|(s, b)| *s += b);
        }
    }
    simd!([scores: &'a mut [f32] = scores, seq: usize = seq, mask: Option<&'a [f32]> = mask] {
        masked_softmax_rows(scores, seq, mask)
    });
    let p = MatRef::from_row_major_slice(&*scores, seq, seq);
    faer_matmul(out, Accum::Replace, p, v, 1.0, Par::Seq);
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

    /// `bias`: `[heads, 2 * span + 1]` and its span.
    fn reference(
        [q, k, v]: [&[f32]; 3],
        mask: &[f32],
        bias: Option<(&[f32], usize)>,
        dims: AttentionDims,
    ) -> Vec<f64> {
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
                            let rel = bias.map_or(0.0, |(t, span)| {
                                t[h * (2 * span + 1) + span + j - i] as f64
                            });
                            dot / (d as f64).sqrt()
                                + rel
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
        // Big enough (> 1 MFLOP) to be shared out between threads.
        let dims = AttentionDims { batch: 2, seq: 70, heads: 4, head_dim: 16 };
        let n = 2 * 70 * 64;
        let (q, k, v) = (data(n, 0.31), data(n, 0.17), data(n, 0.53));
        let mut mask = vec![1.0f32; 140];
        for m in &mut mask[70 + 61..] {
            *m = 0.0; // second sequence: 9 padding tokens
        }
        let want = reference([&q, &k, &v], &mask, None, dims);
        for par in [Parallelism::Sequential, Parallelism::Threads(2), Parallelism::Threads(4)] {
            let mut out = vec![f32::NAN; n];
            let mut scratch = vec![0.0; attention_scratch_len(dims, par)];
            attention(&q, &k, &v, Some(&mask), None, dims, &mut out, &mut scratch, par).unwrap();
            for (g, w) in out.iter().zip(&want) {
                assert!((*g as f64 - w).abs() < 1e-5 * (1.0 + w.abs()), "{par:?}: {g} vs {w}");
            }
        }
        let ones = vec![1.0f32; 140];
        let want = reference([&q, &k, &v], &ones, None, dims);
        let mut out = vec![0.0; n];
        let seq = Parallelism::Sequential;
        let mut scratch = vec![0.0; attention_scratch_len(dims, seq)];
        attention(&q, &k, &v, None, None, dims, &mut out, &mut scratch, seq).unwrap();
        for (g, w) in out.iter().zip(&want) {
            assert!((*g as f64 - w).abs() < 1e-5 * (1.0 + w.abs()));
        }
        let err =
            attention(&q, &k, &v, None, None, dims, &mut out, &mut scratch[..10], seq).unwrap_err();
        assert!(matches!(err, KernelError::Length { what: "attention scratch", .. }));
    }

    #[test]
    fn adds_the_distance_bias() {
        let dims = AttentionDims { batch: 2, seq: 9, heads: 3, head_dim: 8 };
        let n = 2 * 9 * 24;
        let (q, k, v) = (data(n, 0.31), data(n, 0.17), data(n, 0.53));
        let mut mask = vec![1.0f32; 18];
        mask[9 + 6..].fill(0.0);
        // Spans wider than needed are fine: only the middle `2 * seq - 1` values are read.
        for span in [8, 11] {
            let bias = data(3 * (2 * span + 1), 0.71);
            let want = reference([&q, &k, &v], &mask, Some((&bias, span)), dims);
            let seq = Parallelism::Sequential;
            let mut scratch = vec![0.0; attention_scratch_len(dims, seq)];
            let mut out = vec![f32::NAN; n];
            attention(&q, &k, &v, Some(&mask), Some(&bias), dims, &mut out, &mut scratch, seq)
                .unwrap();
            for (g, w) in out.iter().zip(&want) {
                assert!((*g as f64 - w).abs() < 1e-5 * (1.0 + w.abs()), "span {span}: {g} vs {w}");
            }
        }
        // Too narrow for 9 tokens, or an even width: refused.
        let mut out = vec![0.0; n];
        let mut scratch = vec![0.0; attention_scratch_len(dims, Parallelism::Sequential)];
        for len in [3 * 15, 3 * 18] {
            let bias = vec![0.0; len];
            let err = attention(
                &q,
                &k,
                &v,
                None,
                Some(&bias),
                dims,
                &mut out,
                &mut scratch,
                Parallelism::Sequential,
            )
            .unwrap_err();
            assert!(matches!(err, KernelError::Shape(_)), "{err}");
        }
    }
}
