//! Cases of the ops Gemma-style encoders add: RMS norm (+ residual), rotary positions,
//! element-wise product, grouped-query attention with a scale and a sliding window. A backend
//! without them ([`Ops::supports_decoder_ops`] false) answers [`OpError::Unsupported`], which
//! passes with a line on stderr; any other answer is checked against the f64 reference.

use streampool_core::Device;

use super::harness::{each_dtype, Ctx};
use super::reference::{self as r, QkvLayout};
use crate::{OpError, Ops, Tensor};

/// `result` of `op` compared with `want`, or an `Unsupported` refusal reported and accepted.
#[track_caller]
fn check_or_unsupported<B: Ops>(
    ctx: &Ctx<B>,
    what: &str,
    result: Result<(), OpError>,
    out: &Tensor<B>,
    want: &[f64],
) {
    match result {
        Ok(()) => ctx.check(what, out, want),
        Err(OpError::Unsupported { .. }) if !B::supports_decoder_ops() => {
            eprintln!("{what}: not implemented by this backend")
        }
        Err(e) => panic!("{what}: {e}"),
    }
}

/// [`Ops::rms_norm`] with and without a residual, on Gemma's widths and an odd one.
pub fn rms_norm<B: Ops>(device: &Device<B>) {
    each_dtype(device, |ctx| {
        for (seed, &(shape, eps)) in (1..).zip(&[(&[2, 5, 64][..], 1e-6), (&[3, 7][..], 1e-5)]) {
            let dim = *shape.last().expect("rank >= 1");
            let (x, xt) = ctx.random(shape, seed * 10);
            let (w, wt) = ctx.random(&[dim], seed * 10 + 1);
            let (res, rt) = ctx.random(shape, seed * 10 + 2);
            for residual in [false, true] {
                let out = ctx.empty(shape);
                let rt = residual.then_some(&rt);
                let result = B::rms_norm(ctx.stream(), &xt, rt, &wt, eps as f32, &out);
                let want: Vec<f64> = x
                    .chunks_exact(dim)
                    .enumerate()
                    .flat_map(|(row, xr)| {
                        let ms = xr.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / dim as f64;
                        let inv = 1.0 / (ms + eps).sqrt();
                        let res = &res;
                        xr.iter().zip(&w).enumerate().map(move |(c, (&v, &g))| {
                            let add = if residual { res[row * dim + c] as f64 } else { 0.0 };
                            add + v as f64 * inv * g as f64
                        })
                    })
                    .collect();
                let what = format!("rms_norm {shape:?}, residual {residual}");
                check_or_unsupported(ctx, &what, result, &out, &want);
            }
        }
    });
}

/// [`Ops::rotary`]: `[batch, seq, heads * head_dim]` rotated by a table of more positions than
/// the sequence has.
pub fn rotary<B: Ops>(device: &Device<B>) {
    each_dtype(device, |ctx| {
        let (batch, seq, heads, head_dim, positions) = (2, 9, 3, 8, 12);
        let half = head_dim / 2;
        let table: Vec<f32> = (0..positions)
            .flat_map(|p| {
                let angle = move |i: usize| p as f64 / 10_000f64.powf(2.0 * i as f64 / 8.0);
                let cos = (0..half).map(move |i| angle(i).cos() as f32);
                let sin = (0..half).map(move |i| angle(i).sin() as f32);
                cos.chain(sin)
            })
            .collect();
        let tt = ctx.f32_tensor(&table, &[positions, head_dim]);
        let shape = [batch, seq, heads * head_dim];
        let (x, xt) = ctx.random(&shape, 5);
        let out = ctx.empty(&shape);
        let result = B::rotary(ctx.stream(), &xt, &tt, heads, &out);
        let mut want = vec![0.0f64; x.len()];
        for (token, (row, o)) in x
            .chunks_exact(heads * head_dim)
            .zip(want.chunks_exact_mut(heads * head_dim))
            .enumerate()
        {
            let angles = &table[(token % seq) * head_dim..][..head_dim];
            for (xh, oh) in row.chunks_exact(head_dim).zip(o.chunks_exact_mut(head_dim)) {
                for i in 0..half {
                    let (c, s) = (angles[i] as f64, angles[half + i] as f64);
                    let (a, b) = (xh[i] as f64, xh[i + half] as f64);
                    oh[i] = a * c - b * s;
                    oh[i + half] = b * c + a * s;
                }
            }
        }
        check_or_unsupported(ctx, "rotary [2, 9, 3 x 8]", result, &out, &want);
    });
}

/// [`Ops::mul`].
pub fn mul<B: Ops>(device: &Device<B>) {
    each_dtype(device, |ctx| {
        let shape = [3, 5, 17];
        let ((a, at), (b, bt)) = (ctx.random(&shape, 1), ctx.random(&shape, 2));
        let out = ctx.empty(&shape);
        let result = B::mul(ctx.stream(), &at, &bt, &out);
        let want: Vec<f64> = a.iter().zip(&b).map(|(&x, &y)| x as f64 * y as f64).collect();
        check_or_unsupported(ctx, "mul [3, 5, 17]", result, &out, &want);
    });
}

/// [`Ops::grouped_attention`]: query heads sharing key / value heads (4 over 2, 3 over 1), a
/// scale of its own, padding, and a sliding window of 3 positions either way as a bias; heads
/// of 32 and of 256 (EmbeddingGemma's).
pub fn grouped_attention<B: Ops>(device: &Device<B>) {
    each_dtype(device, |ctx| {
        let cases = [(4, 2, None, 32), (3, 1, Some(3), 32), (3, 1, Some(3), 256)];
        for (seed, &(heads, kv_heads, window, head_dim)) in (1..).zip(&cases) {
            let (batch, seq, scale) = (2, 11, 0.09f32);
            let (q, qt) = ctx.random(&[batch, seq, heads * head_dim], seed * 10);
            let (k, kt) = ctx.random(&[batch, seq, kv_heads * head_dim], seed * 10 + 1);
            let (v, vt) = ctx.random(&[batch, seq, kv_heads * head_dim], seed * 10 + 2);
            let lengths = [seq, 6];
            let mask: Vec<f32> = lengths
                .iter()
                .flat_map(|&n| (0..seq).map(move |s| if s < n { 1.0 } else { 0.0 }))
                .collect();
            let mt = ctx.f32_tensor(&mask, &[batch, seq]);
            let span = seq - 1;
            let bias: Option<Vec<f32>> = window.map(|w: usize| {
                let row = (0..2 * span + 1).map(|d| if d.abs_diff(span) < w { 0.0 } else { -1e30 });
                row.collect::<Vec<f32>>().repeat(heads)
            });
            let bt = bias.as_ref().map(|b| ctx.f32_tensor(b, &[heads, 2 * span + 1]));
            let out = ctx.empty(&[batch, seq, heads * head_dim]);
            let result = B::grouped_attention(
                ctx.stream(),
                &qt,
                &kt,
                &vt,
                Some(&mt),
                bt.as_ref(),
                heads,
                kv_heads,
                scale,
                &out,
            );
            // The reference per query head, its key / value head's columns expanded.
            let group = heads / kv_heads;
            let expand = |t: &[f32]| -> Vec<f32> {
                t.chunks_exact(kv_heads * head_dim)
                    .flat_map(|row| {
                        (0..heads).flat_map(move |h| {
                            row[(h / group) * head_dim..][..head_dim].iter().copied()
                        })
                    })
                    .collect()
            };
            let (ke, ve) = (expand(&k), expand(&v));
            // `r::attention` scales by 1 / sqrt(head_dim): pre-scale q to get `scale`.
            let qs: Vec<f32> = q.iter().map(|&x| x * scale * (head_dim as f32).sqrt()).collect();
            let at = QkvLayout { ld: heads * head_dim, q: 0, k: 0, v: 0 };
            let dims = [batch, seq, heads, head_dim];
            let want = r::attention([&qs, &ke, &ve], at, Some(&mask), bias.as_deref(), dims);
            let what =
                format!("grouped_attention {heads} heads over {kv_heads}, window {window:?}");
            check_or_unsupported(ctx, &what, result, &out, &want);
        }
    });
}
