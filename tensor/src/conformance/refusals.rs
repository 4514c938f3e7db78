//! Bad inputs: every op refuses operands that do not fit with the [`OpError`] that says why,
//! before enqueueing anything, and never panics.

use streampool_core::{Conv1dParams, Device, MatMath, Stream};

use super::harness::Ctx;
use crate::{Activation, BertEmbeddingTables, DType, LayerNorm, OpError, Ops, Tensor};

/// `$call` must return `Err(OpError::$kind { .. })`.
macro_rules! refused {
    ($kind:ident, $what:expr, $call:expr) => {
        match $call {
            Err(e) => assert!(
                matches!(e, OpError::$kind { .. }),
                "{}: refused with {e:?}, expected OpError::{}",
                $what,
                stringify!($kind)
            ),
            Ok(()) => panic!("{}: accepted, expected OpError::{}", $what, stringify!($kind)),
        }
    };
}

/// Every op given operands of the wrong shape, type, layout or aliasing returns the matching
/// [`OpError`]; float types the backend lacks are [`OpError::Unsupported`]. Afterwards the
/// stream has nothing failed on it (nothing was enqueued).
pub fn bad_inputs<B: Ops>(device: &Device<B>) {
    let ctx = Ctx::new(device, DType::F32);
    linear_refusals(&ctx);
    norm_refusals(&ctx);
    sequence_refusals(&ctx);
    embedding_refusals(&ctx);
    other_refusals(&ctx);
    ctx.stream().synchronize().expect("a refused op left the stream failed");
}

/// An f32 tensor of `shape` (zeros).
fn zeros<B: Ops>(ctx: &Ctx<B>, shape: &[usize]) -> Tensor<B> {
    ctx.tensor(&vec![0.0; shape.iter().product()], shape)
}

fn linear_refusals<B: Ops>(ctx: &Ctx<B>) {
    let s = ctx.stream();
    let id = Activation::Identity;
    let (x, w, b) = (zeros(ctx, &[2, 3, 8]), zeros(ctx, &[8, 8]), zeros(ctx, &[8]));
    let out = zeros(ctx, &[2, 3, 8]);
    let (w_in, w_rank, b_len) = (zeros(ctx, &[8, 5]), zeros(ctx, &[64]), zeros(ctx, &[7]));
    refused!(Shape, "linear: w takes 5 features", B::linear(s, &x, &w_in, None, id, &out));
    refused!(Shape, "linear: w of rank 1", B::linear(s, &x, &w_rank, None, id, &out));
    refused!(Shape, "linear: bias of 7", B::linear(s, &x, &w, Some(&b_len), id, &out));
    let out_bad = zeros(ctx, &[2, 3, 7]);
    refused!(Shape, "linear: out of 7", B::linear(s, &x, &w, Some(&b), id, &out_bad));
    refused!(Aliasing, "linear: out is x", B::linear(s, &x, &w, None, id, &x));
    let strided = zeros(ctx, &[2, 8, 3]).transpose(1, 2).expect("a transpose");
    refused!(NotContiguous, "linear: strided x", B::linear(s, &strided, &w, None, id, &out));
    let ids = ctx.u32_tensor(&[0; 48], &[2, 3, 8]);
    refused!(DType, "linear: u32 x", B::linear(s, &ids, &w, None, id, &out));
    // An operand of another float type than x: refused whatever the backend offers.
    let w16 = ctx.tensor_of(DType::F16, &[0.0; 64], &[8, 8]);
    refused!(DType, "linear: f16 w with f32 x", B::linear(s, &x, &w16, None, id, &out));
    // Float types the backend does not offer.
    for dtype in [DType::F16, DType::BF16] {
        if B::float_dtypes().contains(&dtype) {
            continue;
        }
        let t = |shape: &[usize]| ctx.tensor_of(dtype, &vec![0.0; shape.iter().product()], shape);
        let (x, w, out) = (t(&[2, 8]), t(&[8, 8]), t(&[2, 8]));
        let what = format!("linear on {dtype}, which the backend does not offer");
        refused!(Unsupported, what, B::linear(s, &x, &w, None, id, &out));
    }
    if !B::supports_tf32() {
        let tf32 = B::linear_math(s, &x, &w, None, id, MatMath::Tf32, &out);
        refused!(Unsupported, "linear_math: TF32 without support", tf32);
    }
    let tf32 = B::linear_math(s, &x, &w_in, None, id, MatMath::Tf32, &out);
    refused!(Shape, "linear_math: w takes 5 features", tf32);
}

fn norm_refusals<B: Ops>(ctx: &Ctx<B>) {
    let s = ctx.stream();
    let (x, res, out) = (zeros(ctx, &[3, 8]), zeros(ctx, &[3, 8]), zeros(ctx, &[3, 8]));
    let (g, b, g7) = (zeros(ctx, &[8]), zeros(ctx, &[8]), zeros(ctx, &[7]));
    let norm = || LayerNorm { gamma: &g, beta: &b, eps: 1e-12 };
    let bad_gamma = LayerNorm { gamma: &g7, beta: &b, eps: 1e-12 };
    refused!(
        Shape,
        "add_layer_norm: gamma of 7",
        B::add_layer_norm(s, &x, None, None, bad_gamma, &out)
    );
    let res_bad = zeros(ctx, &[2, 8]);
    refused!(
        Shape,
        "add_layer_norm: residual [2, 8]",
        B::add_layer_norm(s, &x, Some(&res_bad), None, norm(), &out)
    );
    refused!(
        Shape,
        "add_layer_norm: bias of 7",
        B::add_layer_norm(s, &x, None, Some(&g7), norm(), &out)
    );
    refused!(
        Shape,
        "add_layer_norm: out [2, 8]",
        B::add_layer_norm(s, &x, Some(&res), None, norm(), &res_bad)
    );
    refused!(
        Aliasing,
        "add_layer_norm: out is the residual",
        B::add_layer_norm(s, &x, Some(&res), None, norm(), &res)
    );

    let (xi, w, scratch) = (zeros(ctx, &[3, 16]), zeros(ctx, &[8, 16]), zeros(ctx, &[3, 8]));
    let lanl = |x: &Tensor<B>, scratch: &Tensor<B>, out: &Tensor<B>| {
        B::linear_add_layer_norm(s, x, &w, MatMath::Exact, None, Some(&res), norm(), scratch, out)
    };
    refused!(Shape, "linear_add_layer_norm: x of 8 features", lanl(&x, &scratch, &out));
    refused!(Shape, "linear_add_layer_norm: scratch [2, 8]", lanl(&xi, &res_bad, &out));
    refused!(Aliasing, "linear_add_layer_norm: out is the residual", lanl(&xi, &scratch, &res));

    let wide = zeros(ctx, &[3, 9]);
    refused!(Shape, "l2_normalize: out [3, 9]", B::l2_normalize(s, &x, &wide));
    // Out in x's buffer at another offset: neither in place nor apart.
    let both = zeros(ctx, &[2, 3, 8]);
    let (first, second) =
        (both.narrow(0, 0, 1).expect("narrow"), both.narrow(0, 1, 1).expect("narrow"));
    refused!(Aliasing, "l2_normalize: out overlaps x", B::l2_normalize(s, &first, &second));
}

fn sequence_refusals<B: Ops>(ctx: &Ctx<B>) {
    let s = ctx.stream();
    let (q, k, v, out) = (
        zeros(ctx, &[2, 4, 12]),
        zeros(ctx, &[2, 4, 12]),
        zeros(ctx, &[2, 4, 12]),
        zeros(ctx, &[2, 4, 12]),
    );
    let (k_short, mask_bad, q2) =
        (zeros(ctx, &[2, 3, 12]), zeros(ctx, &[2, 5]), zeros(ctx, &[8, 12]));
    refused!(Shape, "attention: 5 heads of width 12", B::attention(s, &q, &k, &v, None, 5, &out));
    refused!(Shape, "attention: 0 heads", B::attention(s, &q, &k, &v, None, 0, &out));
    refused!(Shape, "attention: k of 3 tokens", B::attention(s, &q, &k_short, &v, None, 2, &out));
    refused!(
        Shape,
        "attention: mask [2, 5]",
        B::attention(s, &q, &k, &v, Some(&mask_bad), 2, &out)
    );
    let out2 = zeros(ctx, &[8, 12]);
    refused!(Shape, "attention: q of rank 2", B::attention(s, &q2, &q2, &q2, None, 2, &out2));
    refused!(Aliasing, "attention: out is q", B::attention(s, &q, &k, &v, None, 2, &q));
    let mask_u32 = ctx.u32_tensor(&[1; 8], &[2, 4]);
    refused!(DType, "attention: u32 mask", B::attention(s, &q, &k, &v, Some(&mask_u32), 2, &out));

    let (qkv, qkv_bad) = (zeros(ctx, &[2, 4, 36]), zeros(ctx, &[2, 4, 35]));
    let qkv_op = |bias| B::attention_qkv(s, &qkv, None, Some(bias), 2, &out);
    refused!(Shape, "attention_qkv: qkv of 35", B::attention_qkv(s, &qkv_bad, None, None, 2, &out));
    refused!(Shape, "attention_qkv: 5 heads", B::attention_qkv(s, &qkv, None, None, 5, &out));
    refused!(
        Shape,
        "attention_qkv: mask [2, 5]",
        B::attention_qkv(s, &qkv, Some(&mask_bad), None, 2, &out)
    );
    // Distance biases `[heads, 2 * span + 1]` covering 4 tokens need span >= 3.
    let (b5, b8) = (ctx.f32_tensor(&[0.0; 10], &[2, 5]), ctx.f32_tensor(&[0.0; 16], &[2, 8]));
    let b3h = ctx.f32_tensor(&[0.0; 21], &[3, 7]);
    refused!(Shape, "attention_qkv: bias [2, 5]", qkv_op(&b5));
    refused!(Shape, "attention_qkv: bias [2, 8]", qkv_op(&b8));
    refused!(Shape, "attention_qkv: bias [3, 7]", qkv_op(&b3h));
    let b_u32 = ctx.u32_tensor(&[0; 14], &[2, 7]);
    refused!(DType, "attention_qkv: u32 bias", qkv_op(&b_u32));

    let hidden = zeros(ctx, &[2, 4, 12]);
    let (pooled, pooled_bad) = (zeros(ctx, &[2, 12]), zeros(ctx, &[4, 12]));
    refused!(Shape, "mean_pool: mask [2, 5]", B::mean_pool(s, &hidden, Some(&mask_bad), &pooled));
    refused!(Shape, "mean_pool: out [4, 12]", B::mean_pool(s, &hidden, None, &pooled_bad));
    refused!(Shape, "mean_pool: hidden of rank 2", B::mean_pool(s, &pooled, None, &pooled_bad));

    let p = Conv1dParams::default();
    let (x, w, b) = (zeros(ctx, &[2, 4, 10]), zeros(ctx, &[6, 4, 3]), zeros(ctx, &[6]));
    let out = zeros(ctx, &[2, 6, 8]);
    let id = Activation::Identity;
    let w_long = zeros(ctx, &[6, 4, 11]);
    refused!(
        Shape,
        "conv1d: kernel longer than the input",
        B::conv1d(s, &x, &w_long, None, p, id, &zeros(ctx, &[2, 6, 1]))
    );
    let groups = Conv1dParams { groups: 3, ..p };
    refused!(Shape, "conv1d: 3 groups of 4 channels", B::conv1d(s, &x, &w, None, groups, id, &out));
    let stride0 = Conv1dParams { stride: 0, ..p };
    refused!(Shape, "conv1d: stride 0", B::conv1d(s, &x, &w, None, stride0, id, &out));
    refused!(
        Shape,
        "conv1d: bias of 7",
        B::conv1d(s, &x, &w, Some(&zeros(ctx, &[7])), p, id, &out)
    );
    refused!(
        Shape,
        "conv1d: out of length 9",
        B::conv1d(s, &x, &w, Some(&b), p, id, &zeros(ctx, &[2, 6, 9]))
    );
}

fn embedding_refusals<B: Ops>(ctx: &Ctx<B>) {
    let s = ctx.stream();
    let (ids, table, out) =
        (ctx.u32_tensor(&[0; 6], &[2, 3]), zeros(ctx, &[10, 4]), zeros(ctx, &[2, 3, 4]));
    let float_ids = zeros(ctx, &[2, 3]);
    refused!(DType, "embedding: f32 ids", B::embedding(s, &float_ids, &table, &out));
    refused!(Shape, "embedding: table of rank 1", B::embedding(s, &ids, &zeros(ctx, &[40]), &out));
    refused!(
        Shape,
        "embedding: out [2, 3, 5]",
        B::embedding(s, &ids, &table, &zeros(ctx, &[2, 3, 5]))
    );

    let (position, token_type) = (zeros(ctx, &[2, 4]), zeros(ctx, &[2, 4]));
    let (g, b) = (zeros(ctx, &[4]), zeros(ctx, &[4]));
    let tables = |position| BertEmbeddingTables {
        word: &table,
        position,
        token_type: &token_type,
        norm: LayerNorm { gamma: &g, beta: &b, eps: 1e-12 },
    };
    refused!(
        Shape,
        "bert_embeddings: 3 tokens, 2 positions",
        B::bert_embeddings(s, &ids, None, tables(&position), &out)
    );
    let positions = zeros(ctx, &[8, 4]);
    let ids1 = ctx.u32_tensor(&[0; 6], &[6]);
    refused!(
        Shape,
        "bert_embeddings: ids of rank 1",
        B::bert_embeddings(s, &ids1, None, tables(&positions), &out)
    );
    refused!(
        Shape,
        "bert_embeddings: type ids [6]",
        B::bert_embeddings(s, &ids, Some(&ids1), tables(&positions), &out)
    );
    let narrow_positions = zeros(ctx, &[8, 3]);
    refused!(
        Shape,
        "bert_embeddings: position table of width 3",
        B::bert_embeddings(s, &ids, None, tables(&narrow_positions), &out)
    );
}

fn other_refusals<B: Ops>(ctx: &Ctx<B>) {
    let s = ctx.stream();
    let src = zeros(ctx, &[3, 4]).transpose(0, 1).expect("a transpose");
    refused!(Shape, "copy_strided: dst [3, 4]", B::copy_strided(s, &src, &zeros(ctx, &[3, 4])));
    let ids = ctx.u32_tensor(&[0; 12], &[4, 3]);
    refused!(DType, "copy_strided: u32 dst", B::copy_strided(s, &src, &ids));
    let dst_strided = zeros(ctx, &[3, 4]).transpose(0, 1).expect("a transpose");
    refused!(NotContiguous, "copy_strided: strided dst", B::copy_strided(s, &src, &dst_strided));
}
