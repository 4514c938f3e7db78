//! Fused masked multi-head self-attention (no scores in device memory): `kernels/attention.cu`.

use cudarc::driver::LaunchConfig;
use streampool_core::{AttentionDims, BackendError};

use super::args::{int, invalid, launch, mul, opt_ptr, ptr, Elem, KArg, Slice};
use super::modules::ATTENTION;
use crate::stream::CudaStream;

/// Row strides (elements) of Q, K, V and the output: token `t` of sequence `b` is row
/// `b * seq + t`, head `h` its columns `h * head_dim ..`. Dense `[batch, seq, heads * head_dim]`
/// tensors have `heads * head_dim` everywhere ([`AttentionLayout::dense`]); a fused QKV
/// projection `[batch, seq, 3 * hidden]` has `3 * hidden` for Q, K and V, with the slices' offsets
/// 0, hidden and 2 * hidden.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttentionLayout {
    /// Row stride of Q.
    pub ld_q: usize,
    /// Row stride of K.
    pub ld_k: usize,
    /// Row stride of V.
    pub ld_v: usize,
    /// Row stride of the output.
    pub ld_out: usize,
}

impl AttentionLayout {
    /// Every operand dense with rows of `hidden`.
    pub fn dense(hidden: usize) -> Self {
        Self { ld_q: hidden, ld_k: hidden, ld_v: hidden, ld_out: hidden }
    }
}

/// Query rows per block (`ROWS` in attention.cu).
const ROWS: usize = 16;

/// Query rows per block of the tensor-core kernels, plain and flash-style (`TC_ROWS` and
/// `FA_ROWS` in attention.cu).
const TC_ROWS: usize = 64;

/// Query rows per block of the 8-warp f32 kernels (head size 32 or 64; `2 * ROWS` in
/// attention.cu).
const W8_ROWS: usize = 32;

/// Blocks from which f16 / bf16 attention takes the tensor-core kernels (f32 with head size 32
/// or 64: the 8-warp kernels): about one block per
/// multiprocessor of a large GPU. Below that (batch 1 at 128 tokens: 24 blocks) the scalar
/// kernel's four times as many blocks of 16 rows finish sooner.
const TC_MIN_BLOCKS: usize = 128;

/// `out = softmax(Q K^T * scale + mask) V` for each sequence and head, in one kernel: a block
/// per 16 queries of a (sequence, head); keys stream through shared memory 32 at a time with an
/// online softmax, so any `seq` works. `mask` is `[batch, seq]` f32 of 1 (token) / 0 (padding:
/// gets `f32::MIN` added, as Hugging Face BERT; a row of only padding becomes uniform).
/// `scale`: `None` for `1 / sqrt(head_dim)`. `dims.head_dim` must be 32, 64 or 128.
///
/// `bias`: `None`, or f32 `[heads, 2 * span + 1]` and `span`: query `i` and key `j` of head `h`
/// get `bias[h, j - i + span]` added to their scaled score (MPNet's relative position bias, its
/// buckets resolved per distance); `seq` may be at most `span + 1`.
///
/// f16 / bf16 with at least `TC_MIN_BLOCKS` (128) blocks of 64 queries (large batches) run a
/// tensor-core variant instead: blocks of 64 queries, Q K^T and P V as `mma.sync` products with
/// f32 accumulation (P rounded to the storage type), the same online softmax and masking. Where
/// K and V rows are 16-byte aligned (always, for the models' buffers) it is the flash-style
/// kernel: K / V chunks copied by `cp.async` two stages deep and read by `ldmatrix`. f32
/// with head size 32 or 64 and at least `TC_MIN_BLOCKS` blocks of 32 queries runs blocks of 8
/// warps (32 queries per K / V chunk in shared memory), each row computed exactly as with 4.
#[allow(clippy::too_many_arguments)] // q, k, v, mask, out, extents, layout, scale, type
pub fn attention(
    stream: &CudaStream,
    q: Slice<'_>,
    k: Slice<'_>,
    v: Slice<'_>,
    mask: Option<Slice<'_>>,
    out: Slice<'_>,
    dims: AttentionDims,
    layout: AttentionLayout,
    scale: Option<f32>,
    bias: Option<(Slice<'_>, usize)>,
    elem: Elem,
) -> Result<(), BackendError> {
    let AttentionDims { batch, seq, heads, head_dim } = dims;
    let d = match head_dim {
        32 => 0,
        64 => 1,
        128 => 2,
        _ => return Err(invalid(format!("attention: head_dim {head_dim} is not 32, 64 or 128"))),
    };
    let tokens = mul("attention", batch, seq)?;
    if tokens == 0 || heads == 0 {
        return Ok(());
    }
    let width = mul("attention", heads, head_dim)?;
    let (bias, span) = match bias {
        Some((_, span)) if span + 1 < seq => {
            return Err(invalid(format!("attention: bias span {span} is short of {seq} tokens")))
        }
        Some((b, span)) => {
            let len = mul("attention bias", heads, mul("attention bias", 2, span)? + 1)?;
            (ptr(stream, b, len, 4, "attention bias")?, int("attention bias span", span)?)
        }
        None => (0, 0),
    };
    let es = elem.size();
    let operand = |s: Slice<'_>, ld: usize, what: &str| {
        if ld < width {
            return Err(invalid(format!("{what}: row stride {ld} below heads * head_dim {width}")));
        }
        // Rows 0..tokens-1, each reaching `width` elements from its start.
        ptr(stream, s, mul(what, tokens - 1, ld)? + width, es, what)
    };
    let (pk, pv) =
        (operand(k, layout.ld_k, "attention k")?, operand(v, layout.ld_v, "attention v")?);
    // The flash-style kernels copy K and V rows as 16-byte vectors by cp.async and read them by
    // ldmatrix: sm_80 and later (below, they are empty).
    let flash = stream.shared.flash_attention
        && stream.shared.compute_capability.0 >= 8
        && (pk | pv) % 16 == 0
        && (layout.ld_k * es) % 16 == 0
        && (layout.ld_v * es) % 16 == 0;
    let args = [
        KArg::U64(operand(q, layout.ld_q, "attention q")?),
        KArg::U64(layout.ld_q as u64),
        KArg::U64(pk),
        KArg::U64(layout.ld_k as u64),
        KArg::U64(pv),
        KArg::U64(layout.ld_v as u64),
        KArg::U64(opt_ptr(stream, mask, tokens, 4, "attention mask")?),
        KArg::U64(bias),
        KArg::I32(span),
        KArg::U64(operand(out, layout.ld_out, "attention out")?),
        KArg::U64(layout.ld_out as u64),
        KArg::I32(int("attention seq", seq)?),
        KArg::F32(scale.unwrap_or(1.0 / (head_dim as f32).sqrt())),
    ];
    let dim3 = |n: usize, what: &str| {
        u32::try_from(n)
            .ok()
            .filter(|&n| n <= 65_535)
            .ok_or_else(|| invalid(format!("attention: {what} {n} > 65535")))
    };
    let tc = elem != Elem::F32
        && mul("attention", mul("attention", batch, heads)?, seq.div_ceil(TC_ROWS))?
            >= TC_MIN_BLOCKS;
    let w8 = elem == Elem::F32
        && head_dim <= 64
        && mul("attention", mul("attention", batch, heads)?, seq.div_ceil(W8_ROWS))?
            >= TC_MIN_BLOCKS;
    let rows = if tc {
        TC_ROWS
    } else if w8 {
        W8_ROWS
    } else {
        ROWS
    };
    let tiles = u32::try_from(seq.div_ceil(rows)).map_err(|_| invalid("attention: seq"))?;
    let config = LaunchConfig {
        grid_dim: (tiles, dim3(heads, "heads")?, dim3(batch, "batch")?),
        block_dim: (if w8 { 256 } else { 128 }, 1, 1),
        shared_mem_bytes: 0,
    };
    const NAMES: [[&str; 3]; 3] = [
        ["attention_f32_d32", "attention_f32_d64", "attention_f32_d128"],
        ["attention_f16_d32", "attention_f16_d64", "attention_f16_d128"],
        ["attention_bf16_d32", "attention_bf16_d64", "attention_bf16_d128"],
    ];
    const TC_NAMES: [[&str; 3]; 2] = [
        ["attention_tc_f16_d32", "attention_tc_f16_d64", "attention_tc_f16_d128"],
        ["attention_tc_bf16_d32", "attention_tc_bf16_d64", "attention_tc_bf16_d128"],
    ];
    const FA_NAMES: [[&str; 3]; 2] = [
        ["attention_fa_f16_d32", "attention_fa_f16_d64", "attention_fa_f16_d128"],
        ["attention_fa_bf16_d32", "attention_fa_bf16_d64", "attention_fa_bf16_d128"],
    ];
    let name = if tc && flash {
        FA_NAMES[elem as usize - 1][d]
    } else if tc {
        TC_NAMES[elem as usize - 1][d]
    } else if w8 {
        ["attention_w8_f32_d32", "attention_w8_f32_d64"][d]
    } else {
        NAMES[elem as usize][d]
    };
    // SAFETY: attention_T_dHD, attention_tc_T_dHD, attention_fa_T_dHD and
    // attention_w8_f32_dHD(const T* q, u64 ld_q,
    // const T* k, u64 ld_k, const T* v, u64 ld_v, const float* mask, const float* bias, int span,
    // T* out, u64 ld_o, int seq, float scale) takes these thirteen arguments; block (tile, h, b)
    // reads rows b*seq .. b*seq+seq-1, columns h*HD .. h*HD+HD-1 < width of q, k, v (ld apart),
    // mask[b*seq ..] and, for query and key rows below seq <= span + 1, bias[h * (2 * span + 1) +
    // span + key - query] (inside the heads * (2 * span + 1) checked above), and
    // writes the same of out: all inside the ranges checked above (query rows past seq of the last
    // tile are neither read nor written; the fa kernels' 16-byte copies start at K / V row
    // starts plus h * HD elements, 16-byte aligned as checked in `flash`, and keys past
    // seq are zero-filled without a read). The kernels' shared memory is static (at most 43 KB:
    // HD = 128 with 4 warps); the grid and block match the kernel's rows and threads per block (`rows`;
    // 256 threads for w8, with head_dim 32 or 64 and so d < 2).
    unsafe { launch(stream, &ATTENTION, name, config, &args) }
}
