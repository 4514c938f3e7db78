//! Sentence-transformers pooling: masked mean, max or last token over the tokens, then L2
//! normalisation.

use cudarc::driver::LaunchConfig;
use streampool_core::BackendError;

use super::args::{int, invalid, launch, mul, opt_ptr, prod, ptr, row_config, Elem, KArg, Slice};
use super::modules::POOLING;
use crate::stream::CudaStream;

/// Token groups per block of the mean pool (`POOL_GROUPS` in pooling.cu).
const POOL_GROUPS: usize = 16;

/// The operands of a pooling kernel: `hidden` `[batch, seq, dim]`, `mask` `[batch, seq]` f32,
/// `out` `[batch, dim]`.
struct Pool<'a> {
    hidden: Slice<'a>,
    mask: Option<Slice<'a>>,
    batch: usize,
    seq: usize,
    dim: usize,
    out: Slice<'a>,
    elem: Elem,
}

impl Pool<'_> {
    /// The launch shape shared by the pooling kernels (a block of 32 columns by up to
    /// `POOL_GROUPS` token groups per 32 columns of a sequence) and their first five arguments
    /// (hidden, mask, out, seq, dim), after checking every extent; `None` when there is nothing
    /// to compute.
    fn launch_args(
        &self,
        stream: &CudaStream,
        op: &str,
    ) -> Result<Option<(LaunchConfig, Vec<KArg>)>, BackendError> {
        let Self { hidden, mask, batch, seq, dim, out, elem } = *self;
        let n = mul(op, batch, dim)?;
        if n == 0 {
            return Ok(None);
        }
        let es = elem.size();
        let sequences = u32::try_from(batch)
            .ok()
            .filter(|&b| b <= 65_535)
            .ok_or_else(|| invalid(format!("{op}: batch {batch} > 65535")))?;
        let tiles = u32::try_from(dim.div_ceil(32)).map_err(|_| invalid(format!("{op}: dim")))?;
        let config = LaunchConfig {
            grid_dim: (tiles, sequences, 1),
            block_dim: (32, seq.clamp(1, POOL_GROUPS) as u32, 1),
            shared_mem_bytes: 0,
        };
        let args = vec![
            KArg::U64(ptr(
                stream,
                hidden,
                prod(op, &[batch, seq, dim])?,
                es,
                &format!("{op} hidden"),
            )?),
            KArg::U64(opt_ptr(stream, mask, mul(op, batch, seq)?, 4, &format!("{op} mask"))?),
            KArg::U64(ptr(stream, out, n, es, &format!("{op} out"))?),
            KArg::I32(int(&format!("{op} seq"), seq)?),
            KArg::I32(int(&format!("{op} dim"), dim)?),
        ];
        Ok(Some((config, args)))
    }
}

/// `out[b] = sum_s hidden[b, s] * mask[b, s] / max(sum_s mask[b, s], 1e-9)`, then, when
/// `normalize`, `out[b] / max(||out[b]||_2, 1e-12)` ([`l2_normalize`], a second launch).
/// `hidden` `[batch, seq, dim]`, `mask` `[batch, seq]` f32 0/1 (`None`: every token), `out`
/// `[batch, dim]`; `batch` at most 65,535 (and `dim` at most 8192 with `normalize`).
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
    if normalize {
        // The normalisation's limit, checked before anything is enqueued.
        row_config(batch, dim, "mean_pool")?;
    }
    let pool = Pool { hidden, mask, batch, seq, dim, out, elem };
    let Some((config, args)) = pool.launch_args(stream, "mean_pool")? else { return Ok(()) };
    let name = ["mean_pool_f32", "mean_pool_f16", "mean_pool_bf16"][elem as usize];
    // SAFETY: mean_pool_T(const T* hidden, const float* mask, T* out, int seq, int dim) takes
    // these five arguments; block (tile, b) reads hidden[b, 0..seq, tile*32 .. tile*32+31] and
    // mask[b, 0..seq] and writes out[b, the same columns], columns past dim skipped: inside the
    // ranges `launch_args` checked; blockDim.y <= POOL_GROUPS, the rows of its static shared
    // memory.
    unsafe { launch(stream, &POOLING, name, config, &args) }?;
    if normalize {
        l2_normalize(stream, out, batch, dim, out, elem)?;
    }
    Ok(())
}

/// The poolings other than the mean ([`SeqPool`]), grid and block as [`mean_pool`]'s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeqPool {
    /// `out[b, c] = max_s (mask[b, s] == 0 ? -1e9 : hidden[b, s, c])`.
    Max = 1,
    /// `out[b] = hidden[b, n - 1]`, `n = sum_s mask[b, s]` (the last position when no mask).
    LastToken = 2,
    /// `out[b] = sum_s w_s hidden[b, s] / sum_s w_s`, `w_s = (s + 1) * mask[b, s]`.
    WeightedMean = 3,
}

/// `out[b]` pooled from `hidden[b]` as `kind` says; operands as [`mean_pool`]'s.
#[allow(clippy::too_many_arguments)] // operands, extents, the kind and type
pub fn seq_pool(
    stream: &CudaStream,
    hidden: Slice<'_>,
    mask: Option<Slice<'_>>,
    batch: usize,
    seq: usize,
    dim: usize,
    kind: SeqPool,
    out: Slice<'_>,
    elem: Elem,
) -> Result<(), BackendError> {
    if seq == 0 {
        return Ok(());
    }
    let pool = Pool { hidden, mask, batch, seq, dim, out, elem };
    let Some((config, mut args)) = pool.launch_args(stream, "seq_pool")? else { return Ok(()) };
    args.push(KArg::I32(kind as i32));
    let name = ["seq_pool_f32", "seq_pool_f16", "seq_pool_bf16"][elem as usize];
    // SAFETY: seq_pool_T(const T* hidden, const float* mask, T* out, int seq, int dim, int mode)
    // takes these six arguments; block (tile, b) reads hidden[b, 0..seq, its 32 columns] and
    // mask[b, 0..seq] (the last-token row index is clamped to 0..seq) and writes out[b, the same
    // columns], columns past dim skipped: inside the ranges `launch_args` checked; blockDim.y <=
    // POOL_GROUPS, the rows of its static shared memory.
    unsafe { launch(stream, &POOLING, name, config, &args) }?;
    Ok(())
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
