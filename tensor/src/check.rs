//! Argument checks shared by every backend's [`crate::Ops`] implementation: each returns the
//! extents the kernel needs, or the [`OpError`] to hand back before anything is enqueued.

use crate::{DType, LayerNorm, OpError, Ops, Tensor};

/// Extents of a checked [`Ops::linear`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinearDims {
    /// Rows of `x` (all leading dimensions).
    pub rows: usize,
    /// Input features.
    pub inputs: usize,
    /// Output features.
    pub outputs: usize,
}

/// Extents of a `[.., dim]` row-wise op: rows and row length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowDims {
    /// Number of rows (all leading dimensions).
    pub rows: usize,
    /// Row length (last dimension).
    pub dim: usize,
}

/// Extents of a `[batch, seq, dim]` sequence op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeqDims {
    /// Sequences.
    pub batch: usize,
    /// Positions per sequence.
    pub seq: usize,
    /// Features per position.
    pub dim: usize,
}

fn shape_err(op: &'static str, reason: String) -> OpError {
    OpError::Shape { op, reason }
}

/// `t` has dtype `dtype` and is contiguous.
pub fn dense<B: Ops>(
    op: &'static str,
    operand: &'static str,
    t: &Tensor<B>,
    dtype: DType,
) -> Result<(), OpError> {
    if t.dtype() != dtype {
        return Err(OpError::DType { op, operand, expected: dtype, found: t.dtype() });
    }
    if !t.is_contiguous() {
        return Err(OpError::NotContiguous { op, operand });
    }
    Ok(())
}

/// `out` shares no buffer with any of `inputs`.
pub fn no_alias<B: Ops>(
    op: &'static str,
    out: &Tensor<B>,
    inputs: &[(&'static str, Option<&Tensor<B>>)],
) -> Result<(), OpError> {
    for (operand, t) in inputs {
        if let Some(t) = t {
            if B::same_buffer(out.buffer(), t.buffer()) {
                return Err(OpError::Aliasing { op, operand });
            }
        }
    }
    Ok(())
}

/// The float element type of a call, taken from its first float operand `t`: one of
/// [`Ops::float_dtypes`] (an f16 / bf16 operand on a backend without them is
/// [`OpError::Unsupported`]; a non-float one is [`OpError::DType`]).
pub fn float_type<B: Ops>(
    op: &'static str,
    operand: &'static str,
    t: &Tensor<B>,
) -> Result<DType, OpError> {
    let found = t.dtype();
    if B::float_dtypes().contains(&found) {
        return Ok(found);
    }
    match found {
        DType::F32 | DType::F16 | DType::BF16 => Err(OpError::Unsupported {
            op,
            reason: format!(
                "{operand} is {found}; this backend's ops take {:?}",
                B::float_dtypes().iter().map(ToString::to_string).collect::<Vec<_>>()
            ),
        }),
        DType::U32 => Err(OpError::DType { op, operand, expected: DType::F32, found }),
    }
}

/// `t` has exactly `shape`.
pub fn shape_is<B: Ops>(
    op: &'static str,
    operand: &'static str,
    t: &Tensor<B>,
    shape: &[usize],
) -> Result<(), OpError> {
    if t.shape() != shape {
        return Err(shape_err(
            op,
            format!("{operand} has shape {:?}, expected {shape:?}", t.shape()),
        ));
    }
    Ok(())
}

/// Rows and last dimension of a `[.., dim]` tensor of rank >= 1.
pub fn rows<B: Ops>(
    op: &'static str,
    operand: &'static str,
    t: &Tensor<B>,
) -> Result<RowDims, OpError> {
    match t.shape().split_last() {
        Some((&dim, lead)) => Ok(RowDims { rows: lead.iter().product(), dim }),
        None => Err(shape_err(op, format!("{operand} must have at least one dimension"))),
    }
}

/// Extents of a rank-3 tensor.
pub fn seq<B: Ops>(
    op: &'static str,
    operand: &'static str,
    t: &Tensor<B>,
) -> Result<SeqDims, OpError> {
    match *t.shape() {
        [batch, seq, dim] => Ok(SeqDims { batch, seq, dim }),
        ref s => Err(shape_err(op, format!("{operand} must be [batch, seq, dim], got {s:?}"))),
    }
}

/// Checks [`Ops::linear`]'s operands.
pub fn linear<B: Ops>(
    x: &Tensor<B>,
    w: &Tensor<B>,
    bias: Option<&Tensor<B>>,
    out: &Tensor<B>,
) -> Result<LinearDims, OpError> {
    const OP: &str = "linear";
    let dt = float_type(OP, "x", x)?;
    for (name, t) in [("x", Some(x)), ("w", Some(w)), ("bias", bias), ("out", Some(out))] {
        if let Some(t) = t {
            dense(OP, name, t, dt)?;
        }
    }
    no_alias(OP, out, &[("x", Some(x)), ("w", Some(w)), ("bias", bias)])?;
    let xd = rows(OP, "x", x)?;
    let [outputs, inputs] = *w.shape() else {
        return Err(shape_err(OP, format!("w must be [out, in], got {:?}", w.shape())));
    };
    if xd.dim != inputs {
        return Err(shape_err(OP, format!("x has {} features, w expects {inputs}", xd.dim)));
    }
    if let Some(b) = bias {
        shape_is(OP, "bias", b, &[outputs])?;
    }
    let mut expected = x.shape().to_vec();
    *expected.last_mut().expect("rank >= 1 checked above") = outputs;
    shape_is(OP, "out", out, &expected)?;
    Ok(LinearDims { rows: xd.rows, inputs, outputs })
}

/// Checks a layer norm's `gamma`/`beta` against `dim` and the call's float type `dtype`.
pub fn norm_params<B: Ops>(
    op: &'static str,
    gamma: &Tensor<B>,
    beta: &Tensor<B>,
    dim: usize,
    dtype: DType,
) -> Result<(), OpError> {
    for (name, t) in [("gamma", gamma), ("beta", beta)] {
        dense(op, name, t, dtype)?;
        shape_is(op, name, t, &[dim])?;
    }
    Ok(())
}

/// Checks [`Ops::add_layer_norm`]'s operands.
pub fn add_layer_norm<B: Ops>(
    x: &Tensor<B>,
    residual: Option<&Tensor<B>>,
    bias: Option<&Tensor<B>>,
    gamma: &Tensor<B>,
    beta: &Tensor<B>,
    out: &Tensor<B>,
) -> Result<RowDims, OpError> {
    const OP: &str = "add_layer_norm";
    let dt = float_type(OP, "x", x)?;
    for (name, t) in [("x", Some(x)), ("residual", residual), ("bias", bias), ("out", Some(out))] {
        if let Some(t) = t {
            dense(OP, name, t, dt)?;
        }
    }
    no_alias(OP, out, &[("x", Some(x)), ("residual", residual), ("bias", bias)])?;
    let d = rows(OP, "x", x)?;
    if let Some(r) = residual {
        shape_is(OP, "residual", r, x.shape())?;
    }
    if let Some(b) = bias {
        shape_is(OP, "bias", b, &[d.dim])?;
    }
    norm_params(OP, gamma, beta, d.dim, dt)?;
    shape_is(OP, "out", out, x.shape())?;
    Ok(d)
}

/// Checks [`Ops::linear_add_layer_norm`]'s operands: the linear into `scratch`, the layer norm
/// from `scratch` into `out`, and `out` apart from `x` and `w`.
pub fn linear_add_layer_norm<B: Ops>(
    x: &Tensor<B>,
    w: &Tensor<B>,
    bias: Option<&Tensor<B>>,
    residual: Option<&Tensor<B>>,
    norm: &LayerNorm<'_, B>,
    scratch: &Tensor<B>,
    out: &Tensor<B>,
) -> Result<LinearDims, OpError> {
    let d = linear(x, w, None, scratch)?;
    add_layer_norm(scratch, residual, bias, norm.gamma, norm.beta, out)?;
    no_alias("linear_add_layer_norm", out, &[("x", Some(x)), ("w", Some(w))])?;
    Ok(d)
}

/// Checks [`Ops::attention`]'s operands; returns the extents and the head size.
pub fn attention<B: Ops>(
    q: &Tensor<B>,
    k: &Tensor<B>,
    v: &Tensor<B>,
    mask: Option<&Tensor<B>>,
    heads: usize,
    out: &Tensor<B>,
) -> Result<(SeqDims, usize), OpError> {
    const OP: &str = "attention";
    let dt = float_type(OP, "q", q)?;
    for (name, t) in [("q", q), ("k", k), ("v", v), ("out", out)] {
        dense(OP, name, t, dt)?;
    }
    if let Some(m) = mask {
        dense(OP, "mask", m, DType::F32)?;
    }
    no_alias(OP, out, &[("q", Some(q)), ("k", Some(k)), ("v", Some(v)), ("mask", mask)])?;
    let d = seq(OP, "q", q)?;
    for (name, t) in [("k", k), ("v", v), ("out", out)] {
        shape_is(OP, name, t, q.shape())?;
    }
    if let Some(m) = mask {
        shape_is(OP, "mask", m, &[d.batch, d.seq])?;
    }
    if heads == 0 || d.dim % heads != 0 {
        return Err(shape_err(OP, format!("width {} is not divisible into {heads} heads", d.dim)));
    }
    Ok((d, d.dim / heads))
}

/// Checks [`Ops::attention_qkv`]'s operands; returns the extents of `out` and the head size.
pub fn attention_qkv<B: Ops>(
    qkv: &Tensor<B>,
    mask: Option<&Tensor<B>>,
    bias: Option<&Tensor<B>>,
    heads: usize,
    out: &Tensor<B>,
) -> Result<(SeqDims, usize), OpError> {
    const OP: &str = "attention_qkv";
    let dt = float_type(OP, "qkv", qkv)?;
    dense(OP, "qkv", qkv, dt)?;
    dense(OP, "out", out, dt)?;
    if let Some(m) = mask {
        dense(OP, "mask", m, DType::F32)?;
    }
    if let Some(b) = bias {
        dense(OP, "bias", b, DType::F32)?;
    }
    no_alias(OP, out, &[("qkv", Some(qkv)), ("mask", mask), ("bias", bias)])?;
    let d = seq(OP, "out", out)?;
    let width = d.dim.checked_mul(3).ok_or_else(|| shape_err(OP, "3 * width overflows".into()))?;
    shape_is(OP, "qkv", qkv, &[d.batch, d.seq, width])?;
    if let Some(m) = mask {
        shape_is(OP, "mask", m, &[d.batch, d.seq])?;
    }
    if heads == 0 || d.dim % heads != 0 {
        return Err(shape_err(OP, format!("width {} is not divisible into {heads} heads", d.dim)));
    }
    if let Some(b) = bias {
        let span = match *b.shape() {
            [h, width] if h == heads && width % 2 == 1 => width / 2,
            _ => {
                return Err(shape_err(
                    OP,
                    format!("bias must be [{heads}, 2 * span + 1], got {:?}", b.shape()),
                ))
            }
        };
        if span + 1 < d.seq {
            return Err(shape_err(
                OP,
                format!("bias spans distances up to {span}: too short for {} tokens", d.seq),
            ));
        }
    }
    Ok((d, d.dim / heads))
}

/// The distance a [`Ops::attention_qkv`] bias `[heads, 2 * span + 1]` is centred on (`span`);
/// call after [`attention_qkv`] has checked it.
pub fn bias_span<B: Ops>(bias: &Tensor<B>) -> usize {
    bias.shape().get(1).map_or(0, |w| w / 2)
}

/// Checks [`Ops::embedding`]'s operands; returns (ids, dim).
pub fn embedding<B: Ops>(
    ids: &Tensor<B>,
    table: &Tensor<B>,
    out: &Tensor<B>,
) -> Result<(usize, usize), OpError> {
    const OP: &str = "embedding";
    dense(OP, "ids", ids, DType::U32)?;
    let dt = float_type(OP, "table", table)?;
    dense(OP, "table", table, dt)?;
    dense(OP, "out", out, dt)?;
    no_alias(OP, out, &[("ids", Some(ids)), ("table", Some(table))])?;
    let [_, dim] = *table.shape() else {
        return Err(shape_err(OP, format!("table must be [vocab, dim], got {:?}", table.shape())));
    };
    let mut expected = ids.shape().to_vec();
    expected.push(dim);
    shape_is(OP, "out", out, &expected)?;
    Ok((ids.numel(), dim))
}

/// Checks [`Ops::bert_embeddings`]'s operands.
pub fn bert_embeddings<B: Ops>(
    ids: &Tensor<B>,
    type_ids: Option<&Tensor<B>>,
    tables: &crate::BertEmbeddingTables<'_, B>,
    out: &Tensor<B>,
) -> Result<SeqDims, OpError> {
    const OP: &str = "bert_embeddings";
    dense(OP, "ids", ids, DType::U32)?;
    if let Some(t) = type_ids {
        dense(OP, "type_ids", t, DType::U32)?;
        shape_is(OP, "type_ids", t, ids.shape())?;
    }
    let dt = float_type(OP, "word", tables.word)?;
    dense(OP, "out", out, dt)?;
    let [batch, seq] = *ids.shape() else {
        return Err(shape_err(OP, format!("ids must be [batch, seq], got {:?}", ids.shape())));
    };
    let d = rows(OP, "word", tables.word)?;
    for (name, t) in
        [("word", tables.word), ("position", tables.position), ("token_type", tables.token_type)]
    {
        dense(OP, name, t, dt)?;
        if t.rank() != 2 || t.shape()[1] != d.dim {
            return Err(shape_err(
                OP,
                format!("{name} table must be [n, {}], got {:?}", d.dim, t.shape()),
            ));
        }
        no_alias(OP, out, &[(name, Some(t))])?;
    }
    if seq > tables.position.shape()[0] {
        return Err(shape_err(
            OP,
            format!("{seq} positions exceed the position table's {}", tables.position.shape()[0]),
        ));
    }
    norm_params(OP, tables.norm.gamma, tables.norm.beta, d.dim, dt)?;
    shape_is(OP, "out", out, &[batch, seq, d.dim])?;
    Ok(SeqDims { batch, seq, dim: d.dim })
}

/// Extents of a checked [`Ops::conv1d`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvDims {
    /// Batch.
    pub batch: usize,
    /// Input channels.
    pub in_channels: usize,
    /// Input length.
    pub length: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Kernel taps.
    pub kernel: usize,
    /// Output length.
    pub out_len: usize,
}

impl ConvDims {
    /// The extents the backends' conv1d kernels take (all but the output length).
    pub fn shape(&self) -> streampool_core::Conv1dShape {
        streampool_core::Conv1dShape {
            batch: self.batch,
            in_channels: self.in_channels,
            length: self.length,
            out_channels: self.out_channels,
            kernel: self.kernel,
        }
    }
}

/// Checks [`Ops::conv1d`]'s operands.
pub fn conv1d<B: Ops>(
    x: &Tensor<B>,
    w: &Tensor<B>,
    bias: Option<&Tensor<B>>,
    params: &streampool_core::Conv1dParams,
    out: &Tensor<B>,
) -> Result<ConvDims, OpError> {
    const OP: &str = "conv1d";
    let dt = float_type(OP, "x", x)?;
    for (name, t) in [("x", Some(x)), ("w", Some(w)), ("bias", bias), ("out", Some(out))] {
        if let Some(t) = t {
            dense(OP, name, t, dt)?;
        }
    }
    no_alias(OP, out, &[("x", Some(x)), ("w", Some(w)), ("bias", bias)])?;
    let [batch, in_channels, length] = *x.shape() else {
        return Err(shape_err(
            OP,
            format!("x must be [batch, channels, length], got {:?}", x.shape()),
        ));
    };
    let [out_channels, cin_g, kernel] = *w.shape() else {
        return Err(shape_err(
            OP,
            format!("w must be [out, in / groups, kernel], got {:?}", w.shape()),
        ));
    };
    let g = params.groups;
    if g == 0 || in_channels % g != 0 || out_channels % g != 0 || cin_g != in_channels / g {
        return Err(shape_err(
            OP,
            format!("w {:?} does not fit {in_channels} input channels in {g} groups", w.shape()),
        ));
    }
    if let Some(b) = bias {
        shape_is(OP, "bias", b, &[out_channels])?;
    }
    let out_len = params.out_len(length, kernel).ok_or_else(|| {
        shape_err(
            OP,
            format!("{params:?} with kernel {kernel} leaves no output for length {length}"),
        )
    })?;
    shape_is(OP, "out", out, &[batch, out_channels, out_len])?;
    Ok(ConvDims { batch, in_channels, length, out_channels, kernel, out_len })
}

/// Checks [`Ops::mean_pool`]'s operands.
pub fn mean_pool<B: Ops>(
    hidden: &Tensor<B>,
    mask: Option<&Tensor<B>>,
    out: &Tensor<B>,
) -> Result<SeqDims, OpError> {
    const OP: &str = "mean_pool";
    let dt = float_type(OP, "hidden", hidden)?;
    dense(OP, "hidden", hidden, dt)?;
    dense(OP, "out", out, dt)?;
    if let Some(m) = mask {
        dense(OP, "mask", m, DType::F32)?;
    }
    no_alias(OP, out, &[("hidden", Some(hidden)), ("mask", mask)])?;
    let d = seq(OP, "hidden", hidden)?;
    if let Some(m) = mask {
        shape_is(OP, "mask", m, &[d.batch, d.seq])?;
    }
    shape_is(OP, "out", out, &[d.batch, d.dim])?;
    Ok(d)
}

/// Checks [`Ops::l2_normalize`]'s operands (in place allowed when `out` is exactly `x`).
pub fn l2_normalize<B: Ops>(x: &Tensor<B>, out: &Tensor<B>) -> Result<RowDims, OpError> {
    const OP: &str = "l2_normalize";
    let dt = float_type(OP, "x", x)?;
    dense(OP, "x", x, dt)?;
    dense(OP, "out", out, dt)?;
    let d = rows(OP, "x", x)?;
    shape_is(OP, "out", out, x.shape())?;
    if B::same_buffer(x.buffer(), out.buffer()) && x.layout().offset() != out.layout().offset() {
        return Err(OpError::Aliasing { op: OP, operand: "x (in place needs out == x)" });
    }
    Ok(d)
}

/// Checks [`Ops::copy_strided`]'s operands.
pub fn copy_strided<B: Ops>(src: &Tensor<B>, dst: &Tensor<B>) -> Result<(), OpError> {
    const OP: &str = "copy_strided";
    dense(OP, "dst", dst, src.dtype())?;
    shape_is(OP, "dst", dst, src.shape())?;
    no_alias(OP, dst, &[("src", Some(src))])
}

/// Checks [`Ops::rms_norm`]'s operands.
pub fn rms_norm<B: Ops>(
    x: &Tensor<B>,
    residual: Option<&Tensor<B>>,
    weight: &Tensor<B>,
    out: &Tensor<B>,
) -> Result<RowDims, OpError> {
    const OP: &str = "rms_norm";
    let dt = float_type(OP, "x", x)?;
    for (name, t) in [("x", Some(x)), ("residual", residual), ("weight", Some(weight))] {
        if let Some(t) = t {
            dense(OP, name, t, dt)?;
        }
    }
    dense(OP, "out", out, dt)?;
    no_alias(OP, out, &[("x", Some(x)), ("residual", residual), ("weight", Some(weight))])?;
    let d = rows(OP, "x", x)?;
    if let Some(r) = residual {
        shape_is(OP, "residual", r, x.shape())?;
    }
    shape_is(OP, "weight", weight, &[d.dim])?;
    shape_is(OP, "out", out, x.shape())?;
    Ok(d)
}

/// Checks [`Ops::rotary`]'s operands; returns the extents and the head size.
pub fn rotary<B: Ops>(
    x: &Tensor<B>,
    table: &Tensor<B>,
    heads: usize,
    out: &Tensor<B>,
) -> Result<(SeqDims, usize), OpError> {
    const OP: &str = "rotary";
    let dt = float_type(OP, "x", x)?;
    dense(OP, "x", x, dt)?;
    dense(OP, "out", out, dt)?;
    dense(OP, "table", table, DType::F32)?;
    no_alias(OP, out, &[("x", Some(x)), ("table", Some(table))])?;
    let d = seq(OP, "x", x)?;
    shape_is(OP, "out", out, x.shape())?;
    if heads == 0 || d.dim % heads != 0 || (d.dim / heads) % 2 != 0 {
        return Err(shape_err(OP, format!("width {} is not {heads} heads of an even size", d.dim)));
    }
    let head_dim = d.dim / heads;
    match *table.shape() {
        [positions, w] if w == head_dim && positions >= d.seq => Ok((d, head_dim)),
        _ => Err(shape_err(
            OP,
            format!("table must be [positions >= {}, {head_dim}], got {:?}", d.seq, table.shape()),
        )),
    }
}

/// Checks [`Ops::mul`]'s operands; returns the element count.
pub fn mul<B: Ops>(a: &Tensor<B>, b: &Tensor<B>, out: &Tensor<B>) -> Result<usize, OpError> {
    const OP: &str = "mul";
    let dt = float_type(OP, "a", a)?;
    for (name, t) in [("a", a), ("b", b), ("out", out)] {
        dense(OP, name, t, dt)?;
    }
    no_alias(OP, out, &[("a", Some(a)), ("b", Some(b))])?;
    shape_is(OP, "b", b, a.shape())?;
    shape_is(OP, "out", out, a.shape())?;
    Ok(a.numel())
}

/// Checks [`Ops::grouped_attention`]'s operands; returns the extents of `q` and the head size.
#[allow(clippy::too_many_arguments)] // the op's operands and its grouping
pub fn grouped_attention<B: Ops>(
    q: &Tensor<B>,
    k: &Tensor<B>,
    v: &Tensor<B>,
    mask: Option<&Tensor<B>>,
    bias: Option<&Tensor<B>>,
    heads: usize,
    kv_heads: usize,
    out: &Tensor<B>,
) -> Result<(SeqDims, usize), OpError> {
    const OP: &str = "grouped_attention";
    let dt = float_type(OP, "q", q)?;
    for (name, t) in [("q", q), ("k", k), ("v", v), ("out", out)] {
        dense(OP, name, t, dt)?;
    }
    for (name, t) in [("mask", mask), ("bias", bias)] {
        if let Some(t) = t {
            dense(OP, name, t, DType::F32)?;
        }
    }
    let inputs = [("q", Some(q)), ("k", Some(k)), ("v", Some(v)), ("mask", mask), ("bias", bias)];
    no_alias(OP, out, &inputs)?;
    let d = seq(OP, "q", q)?;
    shape_is(OP, "out", out, q.shape())?;
    if heads == 0 || kv_heads == 0 || d.dim % heads != 0 || heads % kv_heads != 0 {
        return Err(shape_err(
            OP,
            format!("width {} in {heads} heads sharing {kv_heads} kv heads", d.dim),
        ));
    }
    let head_dim = d.dim / heads;
    for (name, t) in [("k", k), ("v", v)] {
        shape_is(OP, name, t, &[d.batch, d.seq, kv_heads * head_dim])?;
    }
    if let Some(m) = mask {
        shape_is(OP, "mask", m, &[d.batch, d.seq])?;
    }
    if let Some(b) = bias {
        match *b.shape() {
            [h, width] if h == heads && width % 2 == 1 && width / 2 + 1 >= d.seq => {}
            _ => {
                return Err(shape_err(
                    OP,
                    format!(
                        "bias must be [{heads}, 2 * span + 1] with span + 1 >= {}, got {:?}",
                        d.seq,
                        b.shape()
                    ),
                ))
            }
        }
    }
    Ok((d, head_dim))
}
