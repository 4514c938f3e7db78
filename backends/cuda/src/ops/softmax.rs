//! Row softmax with Hugging Face's additive key mask (for attention that does not fit the fused
//! kernel, e.g. scores from a batched GEMM).

use cudarc::driver::LaunchConfig;
use streampool_core::BackendError;

use super::args::{int, invalid, launch, mul, opt_ptr, ptr, Elem, KArg, Slice};
use super::modules::SOFTMAX;
use crate::stream::CudaStream;

/// `out[r, :] = softmax(x[r, :] * scale + (1 - mask[r / rows_per_mask, :]) * f32::MIN)` over
/// `rows` dense rows of `cols`; `mask` (0/1 f32, `[rows / rows_per_mask, cols]`) is optional.
/// With scores laid out `[batch, heads * seq, seq]`, `rows_per_mask = heads * seq` applies a
/// `[batch, seq]` mask. A row whose keys are all masked becomes uniform (as PyTorch). One warp
/// per row; `out` may be `x`.
#[allow(clippy::too_many_arguments)] // operands, extents, scale and type
pub fn softmax_mask(
    stream: &CudaStream,
    x: Slice<'_>,
    mask: Option<Slice<'_>>,
    rows: usize,
    cols: usize,
    rows_per_mask: usize,
    scale: f32,
    out: Slice<'_>,
    elem: Elem,
) -> Result<(), BackendError> {
    let n = mul("softmax", rows, cols)?;
    if n == 0 {
        return Ok(());
    }
    if rows_per_mask == 0 || rows % rows_per_mask != 0 {
        return Err(invalid(format!("softmax: {rows} rows are not groups of {rows_per_mask}")));
    }
    let es = elem.size();
    let mask_len = mul("softmax mask", rows / rows_per_mask, cols)?;
    let args = [
        KArg::U64(ptr(stream, x, n, es, "softmax x")?),
        KArg::U64(ptr(stream, out, n, es, "softmax out")?),
        KArg::U64(opt_ptr(stream, mask, mask_len, 4, "softmax mask")?),
        KArg::U64(rows as u64),
        KArg::I32(int("softmax cols", cols)?),
        KArg::U64(rows_per_mask as u64),
        KArg::F32(scale),
    ];
    let blocks = u32::try_from(rows.div_ceil(4)).map_err(|_| invalid("softmax: too many rows"))?;
    let config =
        LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (128, 1, 1), shared_mem_bytes: 0 };
    let name = ["softmax_mask_f32", "softmax_mask_f16", "softmax_mask_bf16"][elem as usize];
    // SAFETY: softmax_mask_T(const T* x, T* out, const float* mask, u64 rows, int cols,
    // u64 rows_per_mask, float scale) takes these seven arguments; warp w of the grid handles
    // row w < rows, touching cols elements of x and out and of mask row w / rows_per_mask, all
    // checked above.
    unsafe { launch(stream, &SOFTMAX, name, config, &args) }
}
