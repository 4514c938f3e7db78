//! PyTorch's `F.linear` followed by an activation. With a bias and no activation, or GELU's tanh
//! form (also standing in for exact GELU in f16 / bf16: `CudaOptions::tanh_gelu`): one cuBLASLt
//! matmul with the bias or bias + GELU epilogue ([`super::lt`]). Otherwise a cuBLAS GEMM, then
//! one fused bias + activation pass (skipped when there is neither), where GELU is exact (erf).
//! At batch-1 sizes in f32, while few streams share the GPU: the GEMM split along K, its parts
//! added up by the bias + activation pass ([`super::split_k`]).

use streampool_core::BackendError;
use streampool_core::{GemmDims, MatMath};

use super::args::{grid_stride, int, launch, mul, opt_ptr, ptr, Act, Elem, KArg, Slice};
use super::gemm::{gemm, MatArg};
use super::lt;
use super::modules::ACTIVATION;
use crate::stream::CudaStream;

/// `out[r, c] = act(x[r, c] + bias[c])` over `rows` rows of `cols` (`bias` `[cols]`, optional).
/// `out` may be `x` itself (in place).
#[allow(clippy::too_many_arguments)] // operands, extents and the element type
pub fn bias_act(
    stream: &CudaStream,
    x: Slice<'_>,
    bias: Option<Slice<'_>>,
    act: Act,
    rows: usize,
    cols: usize,
    out: Slice<'_>,
    elem: Elem,
) -> Result<(), BackendError> {
    let n = mul("bias_act", rows, cols)?;
    if n == 0 {
        return Ok(());
    }
    let es = elem.size();
    let px = ptr(stream, x, n, es, "bias_act x")?;
    let pb = opt_ptr(stream, bias, cols, es, "bias_act bias")?;
    let po = ptr(stream, out, n, es, "bias_act out")?;
    let name = ["bias_act_f32", "bias_act_f16", "bias_act_bf16"][elem as usize];
    let args = [
        KArg::U64(px),
        KArg::U64(pb),
        KArg::U64(po),
        KArg::U64(n as u64),
        KArg::U64(cols as u64),
        KArg::I32(act.code()),
    ];
    // A thread per 16-byte vector on the kernel's vector path (rows of whole vectors, x and out
    // 16-byte aligned), else per element: no blocks without work, which concurrent forwards
    // would wait behind (docs/performance.md, "Row kernels").
    let vector = 16 / es;
    let vectorized = cols % vector == 0 && (px | po) % 16 == 0;
    let threads = if vectorized { n.div_ceil(vector) } else { n };
    // SAFETY: bias_act_T(const T*, const T*, T*, u64 n, u64 cols, int act) takes these six
    // arguments; x and out hold n elements, bias (or null) cols, all checked above; the kernel
    // is a grid-stride loop, correct for any grid.
    unsafe { launch(stream, &ACTIVATION, name, grid_stride(stream, threads), &args) }
}

/// `out[rows, out_features] = act(x[rows, in_features] . w[out_features, in_features]^T + bias)`,
/// all dense row-major of `elem` (arithmetic f32; TF32 products for f32 with
/// [`MatMath::Tf32`]). With a bias and [`Act::Identity`] (or [`Act::GeluTanh`], or
/// [`Act::Gelu`] in f16 / bf16 under [`crate::CudaOptions::tanh_gelu`]): one cuBLASLt launch
/// (GEMM + bias or bias + GELU epilogue, plans cached per stream and shape, the stream's cuBLAS
/// workspace), falling back to the two launches below where cuBLASLt is absent or has no
/// algorithm. Otherwise a GEMM with `beta = 0`, then [`bias_act`] in place when there is a bias or an activation. Before all
/// that, where the split-K path (`ops/split_k.rs`) applies: split along K, the parts (and bias,
/// activation) added up by one pass.
#[allow(clippy::too_many_arguments)] // F.linear's operands, its extents, activation and types
pub fn linear(
    stream: &CudaStream,
    x: Slice<'_>,
    w: Slice<'_>,
    bias: Option<Slice<'_>>,
    act: Act,
    rows: usize,
    in_features: usize,
    out_features: usize,
    out: Slice<'_>,
    elem: Elem,
    precision: MatMath,
) -> Result<(), BackendError> {
    int("linear in_features", in_features)?;
    // Check the bias before the GEMM is enqueued: an error must leave nothing enqueued.
    opt_ptr(stream, bias, out_features, elem.size(), "linear bias")?;
    let shape = [rows, in_features, out_features];
    if super::split_k::linear_act(stream, [x, w], bias, act, shape, out, elem, precision)? {
        return Ok(());
    }
    let dims = GemmDims { batch: 1, m: rows, n: out_features, k: in_features };
    let a = MatArg { at: x, ld: in_features, transposed: false, batch_stride: 0 };
    let b = MatArg { at: w, ld: in_features, transposed: true, batch_stride: 0 };
    let c = MatArg { at: out, ld: out_features, transposed: false, batch_stride: 0 };
    if let Some(bias) = bias {
        // GELU in the GEMM's epilogue where cuBLASLt's (tanh) GELU is the model's, and in
        // f16 / bf16 for exact GELU too, unless the options say otherwise.
        let gelu = act == Act::GeluTanh
            || (act == Act::Gelu && elem != Elem::F32 && stream.shared.tanh_gelu);
        if (act == Act::Identity || gelu)
            && lt::matmul_bias(stream, dims, a, b, c, bias, elem, precision, gelu)?
        {
            return Ok(());
        }
    }
    gemm(stream, dims, 1.0, a, b, 0.0, c, elem, elem, precision)?;
    if bias.is_some() || act != Act::Identity {
        bias_act(stream, out, bias, act, rows, out_features, out, elem)?;
    }
    Ok(())
}
