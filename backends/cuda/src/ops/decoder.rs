//! The ops of Gemma-style encoders (`kernels/decoder.cu`): RMS norm, rotary positions,
//! element-wise product, grouped-query attention.

use cudarc::driver::LaunchConfig;
use streampool_core::BackendError;

use super::args::{grid_stride, int, invalid, launch, mul, opt_ptr, ptr, Elem, KArg, Slice};
use super::modules::DECODER;
use crate::stream::CudaStream;

/// `out = residual + x * rsqrt(mean(x^2) + eps) * w` over `rows` dense rows of `dim`
/// (`residual` optional; `w` `[dim]`).
#[allow(clippy::too_many_arguments)] // the operands, the extents, eps and the type
pub fn rms_norm(
    stream: &CudaStream,
    x: Slice<'_>,
    residual: Option<Slice<'_>>,
    w: Slice<'_>,
    rows: usize,
    dim: usize,
    eps: f32,
    out: Slice<'_>,
    elem: Elem,
) -> Result<(), BackendError> {
    let n = mul("rms_norm", rows, dim)?;
    if n == 0 {
        return Ok(());
    }
    let es = elem.size();
    let args = [
        KArg::U64(ptr(stream, x, n, es, "rms_norm x")?),
        KArg::U64(opt_ptr(stream, residual, n, es, "rms_norm residual")?),
        KArg::U64(ptr(stream, w, dim, es, "rms_norm weight")?),
        KArg::U64(ptr(stream, out, n, es, "rms_norm out")?),
        KArg::U64(rows as u64),
        KArg::I32(int("rms_norm dim", dim)?),
        KArg::F32(eps),
    ];
    // Four rows (warps) a block, at most 8 blocks a multiprocessor: the rows are grid-strided.
    let blocks = (rows.div_ceil(4) as u64).clamp(1, u64::from(stream.multiprocessors()) * 8);
    let config = LaunchConfig {
        grid_dim: (blocks as u32, 1, 1),
        block_dim: (128, 1, 1),
        shared_mem_bytes: 0,
    };
    // DECODER lists rms_norm, rotary and mul by type, then gqa_attention by type and size.
    let name = DECODER.functions[elem as usize];
    // SAFETY: rms_norm_T(const T* x, const T* residual, const T* w, T* out, u64 rows, int dim,
    // float eps) takes these seven arguments; warp-rows below `rows` read `dim` elements of x,
    // residual and w and write `dim` of out, inside the ranges checked above.
    unsafe { launch(stream, &DECODER, name, config, &args) }
}

/// Rotary positions: `x`, `out` `[tokens, heads * hd]`, token `t` at position `t % seq`,
/// `table` f32 `[>= seq, hd]` (cos in the first half of a row, sin in the second).
#[allow(clippy::too_many_arguments)] // the operands, the extents and the type
pub fn rotary(
    stream: &CudaStream,
    x: Slice<'_>,
    table: Slice<'_>,
    tokens: usize,
    seq: usize,
    heads: usize,
    hd: usize,
    out: Slice<'_>,
    elem: Elem,
) -> Result<(), BackendError> {
    let n = mul("rotary", tokens, mul("rotary", heads, hd)?)?;
    if n == 0 {
        return Ok(());
    }
    if hd % 2 != 0 || seq == 0 || tokens % seq != 0 {
        return Err(invalid(format!("rotary: head size {hd}, {tokens} tokens of {seq}")));
    }
    let es = elem.size();
    let args = [
        KArg::U64(ptr(stream, x, n, es, "rotary x")?),
        KArg::U64(ptr(stream, table, mul("rotary table", seq, hd)?, 4, "rotary table")?),
        KArg::U64(ptr(stream, out, n, es, "rotary out")?),
        KArg::U64(tokens as u64),
        KArg::I32(int("rotary seq", seq)?),
        KArg::I32(int("rotary heads", heads)?),
        KArg::I32(int("rotary head size", hd)?),
    ];
    let name = DECODER.functions[3 + elem as usize];
    // SAFETY: rotary_T(const T* x, const float* table, T* out, u64 tokens, int seq, int heads,
    // int hd) takes these seven arguments; it reads tokens * heads * hd elements of x and
    // seq * hd of table and writes tokens * heads * hd of out, all checked above.
    unsafe { launch(stream, &DECODER, name, grid_stride(stream, n / 2), &args) }
}

/// `out[i] = a[i] * b[i]` for `n` elements.
pub fn mul_elementwise(
    stream: &CudaStream,
    a: Slice<'_>,
    b: Slice<'_>,
    n: usize,
    out: Slice<'_>,
    elem: Elem,
) -> Result<(), BackendError> {
    if n == 0 {
        return Ok(());
    }
    let es = elem.size();
    let args = [
        KArg::U64(ptr(stream, a, n, es, "mul a")?),
        KArg::U64(ptr(stream, b, n, es, "mul b")?),
        KArg::U64(ptr(stream, out, n, es, "mul out")?),
        KArg::U64(n as u64),
    ];
    let name = DECODER.functions[6 + elem as usize];
    // SAFETY: mul_T(const T* a, const T* b, T* out, u64 n) takes these four arguments; n
    // elements of each, checked above.
    unsafe { launch(stream, &DECODER, name, grid_stride(stream, n), &args) }
}

/// Grouped-query attention: `q`, `out` `[batch, seq, heads * hd]`, `k`, `v` `[batch, seq,
/// kv_heads * hd]`; scores `q . k * scale + bias[h, key - query + span] + mask`, `bias` (f32
/// `[heads, 2 * span + 1]`, `seq <= span + 1`) and `mask` (`[batch, seq]`) optional. Head sizes
/// 32, 64, 128 and 256.
#[allow(clippy::too_many_arguments)] // the attention's operands, extents, grouping and type
pub fn gqa_attention(
    stream: &CudaStream,
    [q, k, v]: [Slice<'_>; 3],
    mask: Option<Slice<'_>>,
    bias: Option<(Slice<'_>, usize)>,
    [batch, seq, heads, kv_heads, hd]: [usize; 5],
    scale: f32,
    out: Slice<'_>,
    elem: Elem,
) -> Result<(), BackendError> {
    let d = match hd {
        32 => 0,
        64 => 1,
        128 => 2,
        256 => 3,
        _ => return Err(invalid(format!("gqa_attention: head size {hd} is not 32, 64, 128, 256"))),
    };
    if kv_heads == 0 || heads % kv_heads != 0 {
        return Err(invalid(format!("gqa_attention: {heads} heads over {kv_heads} kv heads")));
    }
    let tokens = mul("gqa_attention", batch, seq)?;
    if tokens == 0 || heads == 0 {
        return Ok(());
    }
    let es = elem.size();
    let nq = mul("gqa_attention", tokens, heads * hd)?;
    let nkv = mul("gqa_attention", tokens, kv_heads * hd)?;
    let (bias, span) = match bias {
        Some((_, span)) if span + 1 < seq => {
            return Err(invalid(format!("gqa_attention: bias span {span} short of {seq} tokens")))
        }
        Some((b, span)) => {
            let len = mul("gqa_attention bias", heads, 2 * span + 1)?;
            (ptr(stream, b, len, 4, "gqa_attention bias")?, int("gqa_attention span", span)?)
        }
        None => (0, 0),
    };
    let args = [
        KArg::U64(ptr(stream, q, nq, es, "gqa_attention q")?),
        KArg::U64(ptr(stream, k, nkv, es, "gqa_attention k")?),
        KArg::U64(ptr(stream, v, nkv, es, "gqa_attention v")?),
        KArg::U64(opt_ptr(stream, mask, tokens, 4, "gqa_attention mask")?),
        KArg::U64(bias),
        KArg::I32(span),
        KArg::U64(ptr(stream, out, nq, es, "gqa_attention out")?),
        KArg::I32(int("gqa_attention seq", seq)?),
        KArg::I32(int("gqa_attention heads", heads)?),
        KArg::I32(int("gqa_attention kv heads", kv_heads)?),
        KArg::F32(scale),
    ];
    let dim3 = |n: usize, what: &str| {
        u32::try_from(n)
            .ok()
            .filter(|&n| n <= 65_535)
            .ok_or_else(|| invalid(format!("gqa_attention: {what} {n} > 65535")))
    };
    // 4 warps a block, 4 query rows a warp (`GQA_R` in decoder.cu).
    let tiles = u32::try_from(seq.div_ceil(16)).map_err(|_| invalid("gqa_attention: seq"))?;
    let config = LaunchConfig {
        grid_dim: (tiles, dim3(heads, "heads")?, dim3(batch, "batch")?),
        block_dim: (128, 1, 1),
        shared_mem_bytes: 0,
    };
    // SAFETY: gqa_attention_T_dD(const T* q, const T* k, const T* v, const float* mask,
    // const float* bias, int span, T* out, int seq, int heads, int kv_heads, float scale) takes
    // these eleven arguments; a warp of block (tile, h, b) reads rows row < seq of sequence b of
    // q and writes them of out (heads * hd wide), reads every row of sequence b of k and v
    // (kv_heads * hd wide), mask[b*seq ..], and bias[h * (2 span + 1) + span + key - row] for
    // key, row < seq <= span + 1: all inside the ranges checked above. No shared memory.
    unsafe { launch(stream, &DECODER, DECODER.functions[9 + 4 * elem as usize + d], config, &args) }
}
