//! Layer normalisation over the last dimension, fused with BERT's residual and bias adds.

use streampool_core::BackendError;

use cudarc::driver::LaunchConfig;

use super::args::{int, invalid, launch, mul, opt_ptr, ptr, row_config, Elem, KArg, Slice};
use super::modules::LAYER_NORM;
use crate::stream::CudaStream;

/// Rows from which the warp-per-row kernels run (rows of at most 1,024): at batch-1 sizes a
/// warp per row leaves too few blocks in flight and is slower than a block per row; large
/// batches run faster a warp per row (docs/performance.md, "Row kernels").
pub const WARP_ROWS: usize = 2048;

/// The layer norm's parameters: `gamma`, `beta` (`[dim]`, of the op's element type) and `eps`.
#[derive(Clone, Copy, Debug)]
pub struct LayerNormArgs<'a> {
    /// Scale, `[dim]`.
    pub gamma: Slice<'a>,
    /// Shift, `[dim]`.
    pub beta: Slice<'a>,
    /// Added to the variance (1e-12 for BERT).
    pub eps: f32,
}

/// `out[r] = LayerNorm(x[r] + bias + residual[r])` for `rows` dense rows of `dim` (at most
/// 8192): the row in registers, two-pass mean and biased variance; one block per row, or, from
/// [`WARP_ROWS`] rows of at most 1,024, one warp per row (shuffles only, four rows per block).
/// `bias`
/// (`[dim]`) and `residual` (`[rows, dim]`) are optional; `out` may be `x` or `residual`.
#[allow(clippy::too_many_arguments)] // the operands of the fused op, the norm and the extents
pub fn add_layer_norm(
    stream: &CudaStream,
    x: Slice<'_>,
    residual: Option<Slice<'_>>,
    bias: Option<Slice<'_>>,
    norm: LayerNormArgs<'_>,
    rows: usize,
    dim: usize,
    out: Slice<'_>,
    elem: Elem,
) -> Result<(), BackendError> {
    let n = mul("add_layer_norm", rows, dim)?;
    if n == 0 {
        return Ok(());
    }
    let es = elem.size();
    let px = ptr(stream, x, n, es, "add_layer_norm x")?;
    let pr = opt_ptr(stream, residual, n, es, "add_layer_norm residual")?;
    let pb = opt_ptr(stream, bias, dim, es, "add_layer_norm bias")?;
    let pg = ptr(stream, norm.gamma, dim, es, "layer_norm gamma")?;
    let pbeta = ptr(stream, norm.beta, dim, es, "layer_norm beta")?;
    let po = ptr(stream, out, n, es, "add_layer_norm out")?;
    let dim_arg = int("add_layer_norm dim", dim)?;
    let width = [8, 16, 32].into_iter().position(|wv| dim <= 32 * wv);
    if let (Some(width), true) = (width, rows >= WARP_ROWS) {
        const ROWS_PER_BLOCK: usize = 4;
        let blocks = u32::try_from(rows.div_ceil(ROWS_PER_BLOCK))
            .map_err(|_| invalid(format!("add_layer_norm: {rows} rows")))?;
        let config = LaunchConfig {
            grid_dim: (blocks, 1, 1),
            block_dim: (32 * ROWS_PER_BLOCK as u32, 1, 1),
            shared_mem_bytes: 0,
        };
        let args = [
            KArg::U64(px),
            KArg::U64(pr),
            KArg::U64(pb),
            KArg::U64(pg),
            KArg::U64(pbeta),
            KArg::U64(po),
            KArg::U64(rows as u64),
            KArg::I32(dim_arg),
            KArg::F32(norm.eps),
        ];
        // LAYER_NORM lists the three block kernels, then the warp kernels by type and width.
        let name = LAYER_NORM.functions[3 + elem as usize * 3 + width];
        // SAFETY: add_layer_norm_wWV_T(const T* x, const T* residual, const T* bias,
        // const T* gamma, const T* beta, T* out, u64 rows, int dim, float eps) takes these nine
        // arguments; warp w of block b handles row 4b + w < rows, reading/writing dim elements
        // of x, residual and out (rows * dim, checked above) and dim of bias/gamma/beta, with
        // dim <= 32 * WV (the registers each lane holds).
        return unsafe { launch(stream, &LAYER_NORM, name, config, &args) };
    }
    let config = row_config(rows, dim, "add_layer_norm")?;
    let args = [
        KArg::U64(px),
        KArg::U64(dim as u64),
        KArg::U64(pr),
        KArg::U64(dim as u64),
        KArg::U64(pb),
        KArg::U64(pg),
        KArg::U64(pbeta),
        KArg::U64(po),
        KArg::U64(dim as u64),
        KArg::I32(dim_arg),
        KArg::F32(norm.eps),
    ];
    let name = ["add_layer_norm_f32", "add_layer_norm_f16", "add_layer_norm_bf16"][elem as usize];
    // SAFETY: add_layer_norm_T(const T* x, u64 ld_x, const T* residual, u64 ld_r, const T* bias,
    // const T* gamma, const T* beta, T* out, u64 ld_o, int dim, float eps) takes these eleven
    // arguments; one block per row reads/writes rows*dim elements (dim apart) of x, residual and
    // out and dim of bias/gamma/beta, all checked above; row_config gives dim <= 8 * threads.
    unsafe { launch(stream, &LAYER_NORM, name, config, &args) }
}

/// `out[r] = LayerNorm(x[r])`: [`add_layer_norm`] without the adds.
pub fn layer_norm(
    stream: &CudaStream,
    x: Slice<'_>,
    norm: LayerNormArgs<'_>,
    rows: usize,
    dim: usize,
    out: Slice<'_>,
    elem: Elem,
) -> Result<(), BackendError> {
    add_layer_norm(stream, x, None, None, norm, rows, dim, out, elem)
}
