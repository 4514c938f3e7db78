//! Each op as one kernel launch: checked with [`crate::check`], then the entry point, grid and
//! parameter block of `kernels/params.h`. Called by the `Ops` impl that
//! [`impl_msl_ops!`](crate::impl_msl_ops) writes; public so that macro works in other crates.

use bytemuck::{bytes_of, Pod};
use streampool_core::{Backend, Conv1dParams};

use super::params::{self as p, act, pool as pool_kind};
use super::{entry, Entry};
use super::{Launch, MslKernels};
use crate::{check, Activation, BertEmbeddingTables, DType, LayerNorm, OpError, Ops, PoolKind};

type T<B> = crate::Tensor<B>;

/// How [`grouped_attention`] shares keys and values between query heads, and its scale.
#[derive(Clone, Copy, Debug)]
pub struct Grouping {
    /// Query heads.
    pub heads: usize,
    /// Key / value heads (dividing `heads`).
    pub kv_heads: usize,
    /// The scores' scale.
    pub scale: f32,
}

/// `x` as a kernel's 32-bit count or index.
fn n(op: &'static str, x: usize) -> Result<u32, OpError> {
    u32::try_from(x).map_err(|_| OpError::Unsupported {
        op,
        reason: format!("{x} exceeds the Metal kernels' 32-bit indices"),
    })
}

/// The element offset of `t`, after checking that its whole view lies below 2^32 elements, so
/// every index a kernel computes inside it fits 32 bits.
fn off<B: Ops>(op: &'static str, t: &T<B>) -> Result<u32, OpError> {
    n(op, t.layout().end())?;
    n(op, t.layout().offset())
}

/// [`off`] of an optional operand (0 when absent), and whether it is present.
fn opt_off<B: Ops>(op: &'static str, t: Option<&T<B>>) -> Result<(u32, u32), OpError> {
    t.map_or(Ok((0, 0)), |t| Ok((off(op, t)?, 1)))
}

/// The buffer of an optional operand, or `out`'s when absent (bound, never read).
fn buf_or<'a, B: Ops>(t: Option<&'a T<B>>, out: &'a T<B>) -> &'a B::Buffer {
    t.unwrap_or(out).buffer()
}

fn act_code(a: Activation) -> u32 {
    match a {
        Activation::Identity => act::IDENTITY,
        Activation::Gelu => act::GELU,
        Activation::Tanh => act::TANH,
        Activation::GeluTanh => act::GELU_TANH,
    }
}

/// Enqueue `kernel` over `groups` groups (nothing when there is no work).
fn launch<B: MslKernels, P: Pod>(
    stream: &B::Stream,
    kernel: &'static str,
    [groups, threads]: [usize; 2],
    buffers: &[&<B as Backend>::Buffer],
    params: &P,
) -> Result<(), OpError> {
    if groups == 0 {
        return Ok(());
    }
    B::launch(stream, Launch { kernel, groups, threads, buffers, params: bytes_of(params) })
}

fn element_groups(count: usize) -> [usize; 2] {
    [count.div_ceil(p::ELEMENT_THREADS), p::ELEMENT_THREADS]
}

fn float_entry<B: Ops>(e: Entry, t: &T<B>) -> &'static str {
    e.of(t.dtype())
}

/// [`Ops::linear`]: `linear_*`, one 32 x 32 output tile per threadgroup.
pub fn linear<B: MslKernels + Ops>(
    stream: &B::Stream,
    x: &T<B>,
    w: &T<B>,
    bias: Option<&T<B>>,
    a: Activation,
    out: &T<B>,
) -> Result<(), OpError> {
    const OP: &str = "linear";
    let d = check::linear(x, w, bias, out)?;
    let (bias_off, has_bias) = opt_off(OP, bias)?;
    let params = p::LinearParams {
        rows: n(OP, d.rows)?,
        inputs: n(OP, d.inputs)?,
        outputs: n(OP, d.outputs)?,
        x_off: off(OP, x)?,
        w_off: off(OP, w)?,
        bias_off,
        out_off: off(OP, out)?,
        has_bias,
        act: act_code(a),
    };
    let tiles = d.outputs.div_ceil(p::LINEAR_TILE) * d.rows.div_ceil(p::LINEAR_TILE);
    let buffers = [x.buffer(), w.buffer(), buf_or(bias, out), out.buffer()];
    let kernel = float_entry(entry::LINEAR, x);
    launch::<B, _>(stream, kernel, [tiles, p::LINEAR_THREADS], &buffers, &params)
}

/// [`Ops::add_layer_norm`]: `add_layer_norm_*`, one threadgroup per row.
pub fn add_layer_norm<B: MslKernels + Ops>(
    stream: &B::Stream,
    x: &T<B>,
    residual: Option<&T<B>>,
    bias: Option<&T<B>>,
    norm: LayerNorm<'_, B>,
    out: &T<B>,
) -> Result<(), OpError> {
    const OP: &str = "add_layer_norm";
    let d = check::add_layer_norm(x, residual, bias, norm.gamma, norm.beta, out)?;
    let (residual_off, has_residual) = opt_off(OP, residual)?;
    let (bias_off, has_bias) = opt_off(OP, bias)?;
    let params = p::AddLayerNormParams {
        rows: n(OP, d.rows)?,
        dim: n(OP, d.dim)?,
        x_off: off(OP, x)?,
        residual_off,
        bias_off,
        gamma_off: off(OP, norm.gamma)?,
        beta_off: off(OP, norm.beta)?,
        out_off: off(OP, out)?,
        has_residual,
        has_bias,
        eps: norm.eps,
    };
    let buffers = [
        x.buffer(),
        buf_or(residual, out),
        buf_or(bias, out),
        norm.gamma.buffer(),
        norm.beta.buffer(),
        out.buffer(),
    ];
    let kernel = float_entry(entry::ADD_LAYER_NORM, x);
    launch::<B, _>(stream, kernel, [d.rows, p::ROW_THREADS], &buffers, &params)
}

/// [`Ops::attention`]: BERT's scale `1 / sqrt(head_dim)`, keys and values per head.
pub fn attention<B: MslKernels + Ops>(
    stream: &B::Stream,
    [q, k, v]: [&T<B>; 3],
    mask: Option<&T<B>>,
    heads: usize,
    out: &T<B>,
) -> Result<(), OpError> {
    const OP: &str = "attention";
    let (d, head_dim) = check::attention(q, k, v, mask, heads, out)?;
    let scale = 1.0 / (head_dim as f32).sqrt();
    let rows = [d.dim; 4];
    let offs = [off(OP, q)?, off(OP, k)?, off(OP, v)?];
    let grouping = Grouping { heads, kv_heads: heads, scale };
    let shape = Shape { batch: d.batch, seq: d.seq, head_dim, rows, offs };
    attend(OP, stream, [q, k, v], mask, None, grouping, shape, out)
}

/// [`Ops::attention_qkv`]: Q, K and V read in place from the fused projection (row stride
/// `3 * hidden`, offsets 0, `hidden`, `2 * hidden`).
pub fn attention_qkv<B: MslKernels + Ops>(
    stream: &B::Stream,
    qkv: &T<B>,
    mask: Option<&T<B>>,
    bias: Option<&T<B>>,
    heads: usize,
    out: &T<B>,
) -> Result<(), OpError> {
    const OP: &str = "attention_qkv";
    let (d, head_dim) = check::attention_qkv(qkv, mask, bias, heads, out)?;
    let scale = 1.0 / (head_dim as f32).sqrt();
    let h = d.dim;
    let base = off(OP, qkv)?;
    let offs = [base, base + n(OP, h)?, base + n(OP, 2 * h)?];
    let rows = [3 * h, 3 * h, 3 * h, h];
    let grouping = Grouping { heads, kv_heads: heads, scale };
    let shape = Shape { batch: d.batch, seq: d.seq, head_dim, rows, offs };
    attend(OP, stream, [qkv, qkv, qkv], mask, bias, grouping, shape, out)
}

/// [`Ops::grouped_attention`].
pub fn grouped_attention<B: MslKernels + Ops>(
    stream: &B::Stream,
    [q, k, v]: [&T<B>; 3],
    mask: Option<&T<B>>,
    bias: Option<&T<B>>,
    g: Grouping,
    out: &T<B>,
) -> Result<(), OpError> {
    const OP: &str = "grouped_attention";
    let (d, head_dim) = check::grouped_attention(q, k, v, mask, bias, g.heads, g.kv_heads, out)?;
    let kv = g.kv_heads * head_dim;
    let rows = [d.dim, kv, kv, d.dim];
    let offs = [off(OP, q)?, off(OP, k)?, off(OP, v)?];
    let shape = Shape { batch: d.batch, seq: d.seq, head_dim, rows, offs };
    attend(OP, stream, [q, k, v], mask, bias, g, shape, out)
}

/// Where an attention's operands lie: extents, row strides (q, k, v, out) and the element
/// offsets of q, k and v.
struct Shape {
    batch: usize,
    seq: usize,
    head_dim: usize,
    rows: [usize; 4],
    offs: [u32; 3],
}

/// The one attention kernel behind the three attention ops: a threadgroup per (sequence, head,
/// query).
#[allow(clippy::too_many_arguments)] // the three ops' operands, their grouping and placement
fn attend<B: MslKernels + Ops>(
    op: &'static str,
    stream: &B::Stream,
    [q, k, v]: [&T<B>; 3],
    mask: Option<&T<B>>,
    bias: Option<&T<B>>,
    g: Grouping,
    s: Shape,
    out: &T<B>,
) -> Result<(), OpError> {
    if s.head_dim > p::ATTENTION_MAX_HEAD_DIM {
        return Err(OpError::Unsupported {
            op,
            reason: format!(
                "head size {} exceeds the Metal kernel's {}",
                s.head_dim,
                p::ATTENTION_MAX_HEAD_DIM
            ),
        });
    }
    let (mask_off, has_mask) = opt_off(op, mask)?;
    let (bias_off, has_bias) = opt_off(op, bias)?;
    let span = bias.map_or(0, |b| check::bias_span(b));
    let [ld_q, ld_k, ld_v, ld_out] = s.rows;
    let [q_off, k_off, v_off] = s.offs;
    let params = p::AttentionParams {
        batch: n(op, s.batch)?,
        seq: n(op, s.seq)?,
        heads: n(op, g.heads)?,
        kv_heads: n(op, g.kv_heads)?,
        head_dim: n(op, s.head_dim)?,
        ld_q: n(op, ld_q)?,
        ld_k: n(op, ld_k)?,
        ld_v: n(op, ld_v)?,
        ld_out: n(op, ld_out)?,
        q_off,
        k_off,
        v_off,
        mask_off,
        bias_off,
        out_off: off(op, out)?,
        has_mask,
        has_bias,
        span: n(op, span)?,
        scale: g.scale,
    };
    let groups = s.batch * g.heads * s.seq;
    let buffers =
        [q.buffer(), k.buffer(), v.buffer(), buf_or(mask, out), buf_or(bias, out), out.buffer()];
    let kernel = float_entry(entry::ATTENTION, q);
    launch::<B, _>(stream, kernel, [groups, p::ATTENTION_THREADS], &buffers, &params)
}

/// [`Ops::embedding`]: a thread per output element; an id past the table gives a row of NaN.
pub fn embedding<B: MslKernels + Ops>(
    stream: &B::Stream,
    ids: &T<B>,
    table: &T<B>,
    out: &T<B>,
) -> Result<(), OpError> {
    const OP: &str = "embedding";
    let (tokens, dim) = check::embedding(ids, table, out)?;
    let params = p::EmbeddingParams {
        tokens: n(OP, tokens)?,
        dim: n(OP, dim)?,
        vocab: n(OP, table.shape()[0])?,
        ids_off: off(OP, ids)?,
        table_off: off(OP, table)?,
        out_off: off(OP, out)?,
    };
    let buffers = [ids.buffer(), table.buffer(), out.buffer()];
    let kernel = float_entry(entry::EMBEDDING, table);
    launch::<B, _>(stream, kernel, element_groups(tokens * dim), &buffers, &params)
}

/// [`Ops::bert_embeddings`]: gather, sum and layer norm, one threadgroup per token.
pub fn bert_embeddings<B: MslKernels + Ops>(
    stream: &B::Stream,
    ids: &T<B>,
    type_ids: Option<&T<B>>,
    t: BertEmbeddingTables<'_, B>,
    out: &T<B>,
) -> Result<(), OpError> {
    const OP: &str = "bert_embeddings";
    let d = check::bert_embeddings(ids, type_ids, &t, out)?;
    let (type_ids_off, has_type_ids) = opt_off(OP, type_ids)?;
    let params = p::BertEmbeddingsParams {
        batch: n(OP, d.batch)?,
        seq: n(OP, d.seq)?,
        dim: n(OP, d.dim)?,
        vocab: n(OP, t.word.shape()[0])?,
        max_positions: n(OP, t.position.shape()[0])?,
        type_vocab: n(OP, t.token_type.shape()[0])?,
        ids_off: off(OP, ids)?,
        type_ids_off,
        word_off: off(OP, t.word)?,
        position_off: off(OP, t.position)?,
        token_type_off: off(OP, t.token_type)?,
        gamma_off: off(OP, t.norm.gamma)?,
        beta_off: off(OP, t.norm.beta)?,
        out_off: off(OP, out)?,
        has_type_ids,
        eps: t.norm.eps,
    };
    let buffers = [
        ids.buffer(),
        buf_or(type_ids, out),
        t.word.buffer(),
        t.position.buffer(),
        t.token_type.buffer(),
        t.norm.gamma.buffer(),
        t.norm.beta.buffer(),
        out.buffer(),
    ];
    let kernel = float_entry(entry::BERT_EMBEDDINGS, t.word);
    launch::<B, _>(stream, kernel, [d.batch * d.seq, p::ROW_THREADS], &buffers, &params)
}

/// [`Ops::conv1d`]: a thread per output element.
pub fn conv1d<B: MslKernels + Ops>(
    stream: &B::Stream,
    [x, w]: [&T<B>; 2],
    bias: Option<&T<B>>,
    c: Conv1dParams,
    a: Activation,
    out: &T<B>,
) -> Result<(), OpError> {
    const OP: &str = "conv1d";
    let d = check::conv1d(x, w, bias, &c, out)?;
    let (bias_off, has_bias) = opt_off(OP, bias)?;
    let params = p::Conv1dParams {
        batch: n(OP, d.batch)?,
        in_channels: n(OP, d.in_channels)?,
        length: n(OP, d.length)?,
        out_channels: n(OP, d.out_channels)?,
        kernel_size: n(OP, d.kernel)?,
        out_length: n(OP, d.out_len)?,
        stride: n(OP, c.stride)?,
        padding: n(OP, c.padding)?,
        dilation: n(OP, c.dilation)?,
        groups: n(OP, c.groups)?,
        x_off: off(OP, x)?,
        w_off: off(OP, w)?,
        bias_off,
        out_off: off(OP, out)?,
        has_bias,
        act: act_code(a),
    };
    let count = d.batch * d.out_channels * d.out_len;
    let buffers = [x.buffer(), w.buffer(), buf_or(bias, out), out.buffer()];
    let kernel = float_entry(entry::CONV1D, x);
    launch::<B, _>(stream, kernel, element_groups(count), &buffers, &params)
}

/// [`Ops::pool`] (every kind) and [`Ops::mean_pool`]: a thread per (sequence, column).
pub fn pool<B: MslKernels + Ops>(
    stream: &B::Stream,
    hidden: &T<B>,
    mask: Option<&T<B>>,
    kind: PoolKind,
    out: &T<B>,
) -> Result<(), OpError> {
    const OP: &str = "pool";
    let d = check::mean_pool(hidden, mask, out)?;
    let kind = match kind {
        PoolKind::Mean => pool_kind::MEAN,
        PoolKind::Max => pool_kind::MAX,
        PoolKind::LastToken => pool_kind::LAST_TOKEN,
        PoolKind::WeightedMean => pool_kind::WEIGHTED_MEAN,
    };
    let (mask_off, has_mask) = opt_off(OP, mask)?;
    let params = p::PoolParams {
        batch: n(OP, d.batch)?,
        seq: n(OP, d.seq)?,
        dim: n(OP, d.dim)?,
        hidden_off: off(OP, hidden)?,
        mask_off,
        out_off: off(OP, out)?,
        has_mask,
        kind,
    };
    let buffers = [hidden.buffer(), buf_or(mask, out), out.buffer()];
    let kernel = float_entry(entry::POOL, hidden);
    launch::<B, _>(stream, kernel, element_groups(d.batch * d.dim), &buffers, &params)
}

/// [`Ops::l2_normalize`]: a threadgroup per row; `out` may be `x`.
pub fn l2_normalize<B: MslKernels + Ops>(
    stream: &B::Stream,
    x: &T<B>,
    out: &T<B>,
) -> Result<(), OpError> {
    const OP: &str = "l2_normalize";
    let d = check::l2_normalize(x, out)?;
    let params = p::L2NormalizeParams {
        rows: n(OP, d.rows)?,
        dim: n(OP, d.dim)?,
        x_off: off(OP, x)?,
        out_off: off(OP, out)?,
    };
    let buffers = [x.buffer(), out.buffer()];
    let kernel = float_entry(entry::L2_NORMALIZE, x);
    launch::<B, _>(stream, kernel, [d.rows, p::ROW_THREADS], &buffers, &params)
}

/// [`Ops::rms_norm`]: a threadgroup per row.
pub fn rms_norm<B: MslKernels + Ops>(
    stream: &B::Stream,
    x: &T<B>,
    residual: Option<&T<B>>,
    weight: &T<B>,
    eps: f32,
    out: &T<B>,
) -> Result<(), OpError> {
    const OP: &str = "rms_norm";
    let d = check::rms_norm(x, residual, weight, out)?;
    let (residual_off, has_residual) = opt_off(OP, residual)?;
    let params = p::RmsNormParams {
        rows: n(OP, d.rows)?,
        dim: n(OP, d.dim)?,
        x_off: off(OP, x)?,
        residual_off,
        weight_off: off(OP, weight)?,
        out_off: off(OP, out)?,
        has_residual,
        eps,
    };
    let buffers = [x.buffer(), buf_or(residual, out), weight.buffer(), out.buffer()];
    let kernel = float_entry(entry::RMS_NORM, x);
    launch::<B, _>(stream, kernel, [d.rows, p::ROW_THREADS], &buffers, &params)
}

/// [`Ops::rotary`]: a thread per rotated pair.
pub fn rotary<B: MslKernels + Ops>(
    stream: &B::Stream,
    x: &T<B>,
    table: &T<B>,
    heads: usize,
    out: &T<B>,
) -> Result<(), OpError> {
    const OP: &str = "rotary";
    let (d, head_dim) = check::rotary(x, table, heads, out)?;
    let params = p::RotaryParams {
        batch: n(OP, d.batch)?,
        seq: n(OP, d.seq)?,
        heads: n(OP, heads)?,
        head_dim: n(OP, head_dim)?,
        positions: n(OP, table.shape()[0])?,
        x_off: off(OP, x)?,
        table_off: off(OP, table)?,
        out_off: off(OP, out)?,
    };
    let pairs = d.batch * d.seq * d.dim / 2;
    let buffers = [x.buffer(), table.buffer(), out.buffer()];
    let kernel = float_entry(entry::ROTARY, x);
    launch::<B, _>(stream, kernel, element_groups(pairs), &buffers, &params)
}

/// [`Ops::mul`]: a thread per element.
pub fn mul<B: MslKernels + Ops>(
    stream: &B::Stream,
    a: &T<B>,
    b: &T<B>,
    out: &T<B>,
) -> Result<(), OpError> {
    const OP: &str = "mul";
    let count = check::mul(a, b, out)?;
    let params = p::MulParams {
        count: n(OP, count)?,
        a_off: off(OP, a)?,
        b_off: off(OP, b)?,
        out_off: off(OP, out)?,
    };
    let buffers = [a.buffer(), b.buffer(), out.buffer()];
    let kernel = float_entry(entry::MUL, a);
    launch::<B, _>(stream, kernel, element_groups(count), &buffers, &params)
}

/// [`Ops::copy_strided`]: a thread per element, 2- or 4-byte elements.
pub fn copy_strided<B: MslKernels + Ops>(
    stream: &B::Stream,
    src: &T<B>,
    dst: &T<B>,
) -> Result<(), OpError> {
    const OP: &str = "copy_strided";
    check::copy_strided(src, dst)?;
    let l = src.layout();
    let mut shape = [1u32; p::MAX_RANK];
    let mut strides = [0u32; p::MAX_RANK];
    for (i, (&extent, &stride)) in l.shape().iter().zip(l.strides()).enumerate() {
        shape[i] = n(OP, extent)?;
        strides[i] = n(OP, stride)?;
    }
    let count = src.numel();
    let params = p::CopyStridedParams {
        rank: n(OP, l.rank())?,
        count: n(OP, count)?,
        src_off: off(OP, src)?,
        dst_off: off(OP, dst)?,
        shape,
        strides,
    };
    let kernel = match src.dtype() {
        DType::F16 | DType::BF16 => entry::COPY_STRIDED_B16,
        DType::F32 | DType::U32 => entry::COPY_STRIDED_B32,
    };
    let buffers = [src.buffer(), dst.buffer()];
    launch::<B, _>(stream, kernel, element_groups(count), &buffers, &params)
}
