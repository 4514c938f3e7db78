//! Sentence-transformers pooling: masked mean over the tokens, fused with L2 normalisation.

use streampool_core::BackendError;

use super::args::{int, launch, mul, opt_ptr, prod, ptr, row_config, Elem, KArg, Slice};
use super::modules::POOLING;
use crate::stream::CudaStream;

/// `out[b] = sum_s hidden[b, s] * mask[b, s] / max(sum_s mask[b, s], 1e-9)`, then, when
/// `normalize`, `out[b] / max(||out[b]||_2, 1e-12)`. `hidden` `[batch, seq, dim]`, `mask`
/// `[batch, seq]` f32 0/1 (`None`: every token), `out` `[batch, dim]`, `dim` at most 8192.
#[allow(clippy::too_many_arguments)] // operands, extents, the normalise flag and type
pub fn mean_pool(
    stream: &CudaStream,
    hidden: Slice<'_>,
    mask: Option<Slice<'_>>,
    batch: usize,
    seq: usize,
    dim: usize,
    normalize: bool,
    out: Slice<'_>,
    elem: Elem,
) -> Result<(), BackendError> {
    let n = mul("mean_pool", batch, dim)?;
    if n == 0 {
        return Ok(());
    }
    let es = elem.size();
    let mut config = row_config(batch, dim, "mean_pool")?;
    // Token groups: as many as fit in 1,024 threads and 48 KiB of partial sums, at most 16.
    let groups =
        (1024 / config.block_dim.0 as usize).min(12_288 / dim).clamp(1, 16).min(seq.max(1));
    config.block_dim.1 = groups as u32;
    config.shared_mem_bytes = (groups * dim * 4) as u32;
    let args = [
        KArg::U64(ptr(
            stream,
            hidden,
            prod("mean_pool", &[batch, seq, dim])?,
            es,
            "mean_pool hidden",
        )?),
        KArg::U64(opt_ptr(stream, mask, mul("mean_pool", batch, seq)?, 4, "mean_pool mask")?),
        KArg::U64(ptr(stream, out, n, es, "mean_pool out")?),
        KArg::I32(int("mean_pool seq", seq)?),
        KArg::I32(int("mean_pool dim", dim)?),
        KArg::I32(i32::from(normalize)),
    ];
    let name = ["mean_pool_f32", "mean_pool_f16", "mean_pool_bf16"][elem as usize];
    // SAFETY: mean_pool_T(const T* hidden, const float* mask, T* out, int seq, int dim,
    // int normalize) takes these six arguments; block b reads hidden[b, 0..seq, 0..dim] and
    // mask[b, 0..seq] and writes out[b, 0..dim], inside the ranges checked above; row_config
    // gives dim <= 8 * threads; the dynamic shared memory holds blockDim.y rows of dim floats
    // (at most 48 KiB: dim <= 8192 gives at least one group).
    unsafe { launch(stream, &POOLING, name, config, &args) }
}

/// Each of `rows` dense rows of `dim` divided by `max(||row||_2, 1e-12)`
/// (`torch.nn.functional.normalize`); `out` may be `x`.
pub fn l2_normalize(
    stream: &CudaStream,
    x: Slice<'_>,
    rows: usize,
    dim: usize,
    out: Slice<'_>,
    elem: Elem,
) -> Result<(), BackendError> {
    let n = mul("l2_normalize", rows, dim)?;
    if n == 0 {
        return Ok(());
    }
    let es = elem.size();
    let config = row_config(rows, dim, "l2_normalize")?;
    let args = [
        KArg::U64(ptr(stream, x, n, es, "l2_normalize x")?),
        KArg::U64(ptr(stream, out, n, es, "l2_normalize out")?),
        KArg::I32(int("l2_normalize dim", dim)?),
    ];
    let name = ["l2_normalize_f32", "l2_normalize_f16", "l2_normalize_bf16"][elem as usize];
    // SAFETY: l2_normalize_T(const T* x, T* out, int dim) takes these three arguments; block r
    // reads and writes row r (dim elements) of x and out, inside the ranges checked above.
    unsafe { launch(stream, &POOLING, name, config, &args) }
}
