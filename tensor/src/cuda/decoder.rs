//! The ops of Gemma-style encoders on CUDA (`streampool_cuda::ops::{rms_norm, rotary,
//! mul_elementwise, gqa_attention}`).

use streampool_cuda::ops;
use streampool_cuda::CudaStream;

use super::{elem, opt_slice, slice, T};
use crate::{check, OpError};

pub(super) fn rms_norm(
    stream: &CudaStream,
    x: &T,
    residual: Option<&T>,
    weight: &T,
    eps: f32,
    out: &T,
) -> Result<(), OpError> {
    let d = check::rms_norm(x, residual, weight, out)?;
    let (xs, r, w, o) = (slice(x), opt_slice(residual), slice(weight), slice(out));
    Ok(ops::rms_norm(stream, xs, r, w, d.rows, d.dim, eps, o, elem(x))?)
}

pub(super) fn rotary(
    stream: &CudaStream,
    x: &T,
    table: &T,
    heads: usize,
    out: &T,
) -> Result<(), OpError> {
    let (d, hd) = check::rotary(x, table, heads, out)?;
    let tokens = d.batch * d.seq;
    let (xs, t, o) = (slice(x), slice(table), slice(out));
    Ok(ops::rotary(stream, xs, t, tokens, d.seq, heads, hd, o, elem(x))?)
}

pub(super) fn mul(stream: &CudaStream, a: &T, b: &T, out: &T) -> Result<(), OpError> {
    let n = check::mul(a, b, out)?;
    Ok(ops::mul_elementwise(stream, slice(a), slice(b), n, slice(out), elem(a))?)
}

#[allow(clippy::too_many_arguments)] // the attention's operands, its grouping and scale
pub(super) fn grouped_attention(
    stream: &CudaStream,
    [q, k, v]: [&T; 3],
    mask: Option<&T>,
    bias: Option<&T>,
    heads: usize,
    kv_heads: usize,
    scale: f32,
    out: &T,
) -> Result<(), OpError> {
    let (d, hd) = check::grouped_attention(q, k, v, mask, bias, heads, kv_heads, out)?;
    let bias = bias.map(|b| (slice(b), check::bias_span(b)));
    let dims = [d.batch, d.seq, heads, kv_heads, hd];
    let qkv = [slice(q), slice(k), slice(v)];
    Ok(ops::gqa_attention(stream, qkv, opt_slice(mask), bias, dims, scale, slice(out), elem(q))?)
}
