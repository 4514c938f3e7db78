//! Cases of the sequence ops: attention (separate and fused QKV), embeddings, conv1d, mean
//! pooling.

use streampool_core::{Conv1dParams, Device};

use super::harness::{each_dtype, Ctx};
use super::reference::{self as r, BertTables, QkvLayout};
use crate::{Activation, BertEmbeddingTables, LayerNorm, OpError, Ops, PoolKind, Tensor};

/// An attention case: `[batch, seq, heads, head_dim]` and the tokens of each sequence (the
/// rest is padding), or `None` for no mask.
type AttentionCase = ([usize; 4], Option<&'static [usize]>);

/// MiniLM's attention (12 heads of 32) at batch 1..4 up to 128 tokens, padded and not, and odd
/// batches, lengths and head counts at the head sizes every backend takes (32, 64, 128).
const ATTENTION: [AttentionCase; 5] = [
    ([4, 128, 12, 32], Some(&[128, 100, 37, 1])),
    ([1, 128, 12, 32], None),
    ([1, 1, 12, 32], None),
    ([3, 7, 3, 32], Some(&[7, 3, 5])),
    ([2, 33, 2, 64], Some(&[33, 17])),
];

/// Large enough for CUDA's tensor-core (f16, bf16) and 8-warp (f32) attention kernels, which
/// take over from 128 blocks of 64 (32) queries: checked with the distance bias too.
const ATTENTION_LARGE: AttentionCase =
    ([8, 128, 12, 64], Some(&[128, 100, 64, 1, 128, 77, 128, 3]));

/// A head size a backend may refuse: computed right, or refused with an [`OpError`] (CUDA's
/// fused kernel takes 32, 64 and 128 only).
const ODD_HEAD: AttentionCase = ([3, 5, 2, 5], Some(&[5, 2, 4]));

/// Checks `result` of `case`: `Ok` is compared with `want`; an `Err` is a failure unless `case`
/// is [`ODD_HEAD`], which a backend may refuse.
#[track_caller]
fn check_attention<B: Ops>(
    ctx: &Ctx<B>,
    op: &str,
    case: AttentionCase,
    result: Result<(), OpError>,
    out: &Tensor<B>,
    want: &[f64],
) {
    let (dims, lengths) = case;
    match result {
        Ok(()) => ctx.check(&format!("{op} {dims:?}, lengths {lengths:?}"), out, want),
        Err(e) if case == ODD_HEAD => eprintln!("{op} {dims:?}: head size refused: {e}"),
        Err(e) => panic!("{op} {dims:?}: {e}"),
    }
}

/// A `[batch, seq]` mask of 1 for the first `lengths[b]` tokens of sequence `b`, 0 after.
fn mask(lengths: &[usize], seq: usize) -> Vec<f32> {
    lengths.iter().flat_map(|&n| (0..seq).map(move |s| if s < n { 1.0 } else { 0.0 })).collect()
}

/// The mask of a case, on the host and on the device.
fn mask_of<B: Ops>(
    ctx: &Ctx<B>,
    lengths: Option<&[usize]>,
    batch: usize,
    seq: usize,
) -> Option<(Vec<f32>, Tensor<B>)> {
    lengths.map(|l| {
        let m = mask(l, seq);
        let t = ctx.f32_tensor(&m, &[batch, seq]);
        (m, t)
    })
}

/// [`Ops::attention`] against the reference, masked and not.
pub fn attention<B: Ops>(device: &Device<B>) {
    each_dtype(device, |ctx| {
        for (seed, &case) in (1..).zip(ATTENTION.iter().chain([&ODD_HEAD])) {
            let ([batch, seq, heads, head_dim], lengths) = case;
            let shape = [batch, seq, heads * head_dim];
            let (q, qt) = ctx.random(&shape, seed * 10);
            let (k, kt) = ctx.random(&shape, seed * 10 + 1);
            let (v, vt) = ctx.random(&shape, seed * 10 + 2);
            let m = mask_of(ctx, lengths, batch, seq);
            let out = ctx.empty(&shape);
            let result =
                B::attention(ctx.stream(), &qt, &kt, &vt, m.as_ref().map(|m| &m.1), heads, &out);
            let at = QkvLayout { ld: shape[2], q: 0, k: 0, v: 0 };
            let want = r::attention([&q, &k, &v], at, m.as_ref().map(|m| &m.0[..]), None, case.0);
            check_attention(ctx, "attention", case, result, &out, &want);
        }
    });
}

/// [`Ops::attention_qkv`] on a fused `[batch, seq, 3 * hidden]` projection, without and with
/// a distance bias (MPNet's relative positions), whose span is the sequence's or wider.
pub fn attention_qkv<B: Ops>(device: &Device<B>) {
    each_dtype(device, |ctx| {
        let cases = ATTENTION.iter().chain([&ATTENTION_LARGE, &ODD_HEAD]);
        for (seed, &case) in (1..).zip(cases) {
            let ([batch, seq, heads, head_dim], lengths) = case;
            let hidden = heads * head_dim;
            let (qkv, qkvt) = ctx.random(&[batch, seq, 3 * hidden], seed * 10);
            let m = mask_of(ctx, lengths, batch, seq);
            let at = QkvLayout { ld: 3 * hidden, q: 0, k: hidden, v: 2 * hidden };
            for span in [None, Some(seq - 1), Some(seq + 6)] {
                let bias = span.map(|span| {
                    let width = 2 * span + 1;
                    let b: Vec<f32> =
                        (0..heads * width).map(|i| ((i * 37 % 23) as f32 - 11.0) * 0.25).collect();
                    let t = ctx.f32_tensor(&b, &[heads, width]);
                    (b, t)
                });
                let out = ctx.empty(&[batch, seq, hidden]);
                let result = B::attention_qkv(
                    ctx.stream(),
                    &qkvt,
                    m.as_ref().map(|m| &m.1),
                    bias.as_ref().map(|b| &b.1),
                    heads,
                    &out,
                );
                let (ms, bs) = (m.as_ref().map(|m| &m.0[..]), bias.as_ref().map(|b| &b.0[..]));
                let want = r::attention([&qkv, &qkv, &qkv], at, ms, bs, case.0);
                let op = format!("attention_qkv (bias span {span:?})");
                check_attention(ctx, &op, case, result, &out, &want);
            }
        }
    });
}

/// Deterministic ids below `vocab`, the first and last row included.
fn ids(n: usize, vocab: usize, seed: u32) -> Vec<u32> {
    (0..n as u32)
        .map(|i| match i {
            0 => 0,
            1 => vocab as u32 - 1,
            _ => (i.wrapping_mul(7919).wrapping_add(seed * 13)) % vocab as u32,
        })
        .collect()
}

/// [`Ops::embedding`]: ids of rank 1 and 2 gathered from tables of MiniLM's width and odd ones.
pub fn embedding<B: Ops>(device: &Device<B>) {
    each_dtype(device, |ctx| {
        let cases: [(&[usize], usize, usize); 3] =
            [(&[4, 128], 1000, 384), (&[3, 7], 50, 33), (&[5], 2, 3)];
        for (seed, &(id_shape, vocab, dim)) in (1..).zip(&cases) {
            let id = ids(id_shape.iter().product(), vocab, seed);
            let idt = ctx.u32_tensor(&id, id_shape);
            let (table, tt) = ctx.random(&[vocab, dim], seed as u64);
            let out_shape: Vec<usize> = id_shape.iter().copied().chain([dim]).collect();
            let out = ctx.empty(&out_shape);
            B::embedding(ctx.stream(), &idt, &tt, &out)
                .unwrap_or_else(|e| panic!("embedding {id_shape:?} of [{vocab}, {dim}]: {e}"));
            let want = r::embedding(&id, &table, dim);
            ctx.check(&format!("embedding {id_shape:?} of [{vocab}, {dim}]"), &out, &want);
        }
    });
}

/// [`Ops::bert_embeddings`] with and without token types: MiniLM's sizes (positions 512, two
/// types, width 384) at batch 4 of 128 tokens, and an odd case whose sequence fills the position
/// table.
pub fn bert_embeddings<B: Ops>(device: &Device<B>) {
    each_dtype(device, |ctx| {
        // (batch, seq, vocab, positions, types, dim)
        for (seed, &(batch, seq, vocab, positions, types, dim)) in
            (1..).zip(&[(4, 128, 1000, 512, 2, 384), (3, 9, 50, 9, 3, 33)])
        {
            let id = ids(batch * seq, vocab, seed);
            let type_id: Vec<u32> =
                (0..(batch * seq) as u32).map(|i| (i * 5 + 1) % types as u32).collect();
            let (idt, tyt) =
                (ctx.u32_tensor(&id, &[batch, seq]), ctx.u32_tensor(&type_id, &[batch, seq]));
            let seed = seed as u64 * 10;
            let (word, wt) = ctx.random(&[vocab, dim], seed);
            let (position, pt) = ctx.random(&[positions, dim], seed + 1);
            let (token_type, tt) = ctx.random(&[types, dim], seed + 2);
            let [(gamma, gt), (beta, bt)] = ctx.norm_params(dim, seed + 3);
            let out = ctx.empty(&[batch, seq, dim]);
            let host = BertTables {
                word: &word,
                position: &position,
                token_type: &token_type,
                gamma: &gamma,
                beta: &beta,
                eps: 1e-12,
            };
            for with_types in [true, false] {
                let tables = BertEmbeddingTables {
                    word: &wt,
                    position: &pt,
                    token_type: &tt,
                    norm: LayerNorm { gamma: &gt, beta: &bt, eps: 1e-12 },
                };
                let types_t = with_types.then_some(&tyt);
                B::bert_embeddings(ctx.stream(), &idt, types_t, tables, &out)
                    .unwrap_or_else(|e| panic!("bert_embeddings [{batch}, {seq}]: {e}"));
                let want = r::bert_embeddings(&id, with_types.then_some(&type_id[..]), host, seq);
                let what =
                    format!("bert_embeddings [{batch}, {seq}] width {dim}, types {with_types}");
                ctx.check(&what, &out, &want);
            }
        }
    });
}

/// [`Ops::conv1d`]: plain, strided + padded + dilated + grouped with GELU, depthwise, and a
/// one-tap kernel without bias.
pub fn conv1d<B: Ops>(device: &Device<B>) {
    let p = |stride, padding, dilation, groups| Conv1dParams { stride, padding, dilation, groups };
    // ([batch, cin, length, cout, kernel], params, bias, act)
    let cases = [
        ([2, 4, 16, 6, 3], p(1, 0, 1, 1), true, Activation::Identity),
        ([3, 4, 17, 6, 3], p(2, 1, 2, 2), true, Activation::Gelu),
        ([1, 8, 9, 8, 5], p(1, 2, 1, 8), true, Activation::Identity),
        ([2, 3, 5, 7, 1], p(1, 0, 1, 1), false, Activation::Gelu),
        ([2, 3, 9, 4, 3], p(1, 1, 1, 1), true, Activation::Tanh),
        ([1, 2, 7, 3, 2], p(1, 0, 1, 1), true, Activation::GeluTanh),
        ([1, 16, 64, 32, 7], p(3, 3, 1, 4), true, Activation::Identity),
    ];
    each_dtype(device, |ctx| {
        for (seed, &(dims, params, bias, act)) in (1..).zip(&cases) {
            let [batch, cin, length, cout, kernel] = dims;
            let out_len = params.out_len(length, kernel).expect("a case with an output");
            let (x, xt) = ctx.random(&[batch, cin, length], seed * 10);
            let (w, wt) = ctx.random(&[cout, cin / params.groups, kernel], seed * 10 + 1);
            let (b, bt) = ctx.random(&[cout], seed * 10 + 2);
            let out = ctx.empty(&[batch, cout, out_len]);
            B::conv1d(ctx.stream(), &xt, &wt, bias.then_some(&bt), params, act, &out)
                .unwrap_or_else(|e| panic!("conv1d {dims:?} {params:?}: {e}"));
            let want = r::conv1d(&x, &w, bias.then_some(&b[..]), dims, params, act);
            ctx.check(&format!("conv1d {dims:?} {params:?} bias {bias} {act:?}"), &out, &want);
        }
    });
}

/// [`Ops::pool`]: max, last-token and weighted-mean pooling, with and without a mask, against
/// the references.
pub fn pool<B: Ops>(device: &Device<B>) {
    let cases: [([usize; 3], Option<&[usize]>); 3] =
        [([4, 40, 96], Some(&[40, 25, 3, 1])), ([3, 7, 33], Some(&[7, 1, 4])), ([2, 5, 3], None)];
    each_dtype(device, |ctx| {
        for kind in [PoolKind::Max, PoolKind::LastToken, PoolKind::WeightedMean, PoolKind::Mean] {
            for (seed, &(dims, lengths)) in (1..).zip(&cases) {
                let [batch, seq, dim] = dims;
                let (hidden, ht) = ctx.random(&dims, seed);
                let m = mask_of(ctx, lengths, batch, seq);
                let out = ctx.empty(&[batch, dim]);
                B::pool(ctx.stream(), &ht, m.as_ref().map(|m| &m.1), kind, &out)
                    .unwrap_or_else(|e| panic!("pool {kind:?} {dims:?}: {e}"));
                let mask = m.as_ref().map(|m| &m.0[..]);
                let want = match kind {
                    PoolKind::Max => r::max_pool(&hidden, mask, dims),
                    PoolKind::LastToken => r::last_token_pool(&hidden, mask, dims),
                    PoolKind::WeightedMean => r::weighted_mean_pool(&hidden, mask, dims),
                    _ => r::mean_pool(&hidden, mask, dims),
                };
                ctx.check(&format!("pool {kind:?} {dims:?}, lengths {lengths:?}"), &out, &want);
            }
        }
    });
}

/// [`Ops::mean_pool`] over MiniLM's output at batch 4 of 128 tokens (padded), an odd masked
/// case, and no mask.
pub fn mean_pool<B: Ops>(device: &Device<B>) {
    let cases: [([usize; 3], Option<&[usize]>); 3] = [
        ([4, 128, 384], Some(&[128, 100, 37, 1])),
        ([3, 7, 33], Some(&[7, 1, 4])),
        ([2, 5, 3], None),
    ];
    each_dtype(device, |ctx| {
        for (seed, &(dims, lengths)) in (1..).zip(&cases) {
            let [batch, seq, dim] = dims;
            let (hidden, ht) = ctx.random(&dims, seed);
            let m = mask_of(ctx, lengths, batch, seq);
            let out = ctx.empty(&[batch, dim]);
            B::mean_pool(ctx.stream(), &ht, m.as_ref().map(|m| &m.1), &out)
                .unwrap_or_else(|e| panic!("mean_pool {dims:?}: {e}"));
            let want = r::mean_pool(&hidden, m.as_ref().map(|m| &m.0[..]), dims);
            ctx.check(&format!("mean_pool {dims:?}, lengths {lengths:?}"), &out, &want);
        }
    });
}
