//! Layer normalisation over the last dimension, fused with BERT's residual and bias adds.

use streampool_core::BackendError;

use super::args::{int, launch, mul, opt_ptr, ptr, row_config, Elem, KArg, Slice};
use super::modules::LAYER_NORM;
use crate::stream::CudaStream;

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
/// 8192): one block per row, the row in registers, two-pass mean and biased variance. `bias`
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
    let config = row_config(rows, dim, "add_layer_norm")?;
    let args = [
        KArg::U64(ptr(stream, x, n, es, "add_layer_norm x")?),
        KArg::U64(dim as u64),
        KArg::U64(opt_ptr(stream, residual, n, es, "add_layer_norm residual")?),
        KArg::U64(dim as u64),
        KArg::U64(opt_ptr(stream, bias, dim, es, "add_layer_norm bias")?),
        KArg::U64(ptr(stream, norm.gamma, dim, es, "layer_norm gamma")?),
        KArg::U64(ptr(stream, norm.beta, dim, es, "layer_norm beta")?),
        KArg::U64(ptr(stream, out, n, es, "add_layer_norm out")?),
        KArg::U64(dim as u64),
        KArg::I32(int("add_layer_norm dim", dim)?),
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
