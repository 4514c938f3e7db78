//! Row-wise and dense ops on CUDA: linear (cuBLAS + fused bias/GELU), residual add + layer norm,
//! L2 normalisation, conv1d, strided copy.

use streampool_core::{Conv1dParams, MatMath};
use streampool_cuda::ops::{self, LayerNormArgs};
use streampool_cuda::CudaStream;

use super::{act, elem, opt_slice, slice, T};
use crate::{check, Activation, DType, LayerNorm, OpError};

#[allow(clippy::too_many_arguments)] // linear's operands and the math mode
pub(super) fn linear(
    stream: &CudaStream,
    x: &T,
    w: &T,
    bias: Option<&T>,
    a: Activation,
    math: MatMath,
    out: &T,
) -> Result<(), OpError> {
    let d = check::linear(x, w, bias, out)?;
    let e = elem(x);
    // Exact: full f32 products (no TF32), as the CPU backend and PyTorch's default; f16 / bf16
    // operands always run on tensor cores with f32 accumulation.
    let p = precision("linear", math, x.dtype())?;
    let (x, w, bias, o) = (slice(x), slice(w), opt_slice(bias), slice(out));
    Ok(ops::linear(stream, x, w, bias, act(a), d.rows, d.inputs, d.outputs, o, e, p)?)
}

/// `math`, checked for `dtype` operands (TF32 only for f32).
fn precision(op: &'static str, math: MatMath, dtype: DType) -> Result<MatMath, OpError> {
    match math {
        MatMath::Tf32 if dtype != DType::F32 => Err(OpError::Unsupported {
            op,
            reason: format!("TF32 math needs f32 operands, got {dtype}"),
        }),
        math => Ok(math),
    }
}

#[allow(clippy::too_many_arguments)] // the fused op's operands, math mode and scratch
pub(super) fn linear_add_layer_norm(
    stream: &CudaStream,
    [x, w]: [&T; 2],
    math: MatMath,
    bias: Option<&T>,
    residual: Option<&T>,
    norm: LayerNorm<'_, streampool_cuda::CudaBackend>,
    scratch: &T,
    out: &T,
) -> Result<(), OpError> {
    let d = check::linear_add_layer_norm(x, w, bias, residual, &norm, scratch, out)?;
    let p = precision("linear_add_layer_norm", math, x.dtype())?;
    let args = LayerNormArgs { gamma: slice(norm.gamma), beta: slice(norm.beta), eps: norm.eps };
    let (r, b) = (opt_slice(residual), opt_slice(bias));
    let shape = [d.rows, d.inputs, d.outputs];
    let (e, s, o) = (elem(x), slice(scratch), slice(out));
    Ok(ops::linear_add_layer_norm(stream, slice(x), slice(w), b, r, args, shape, s, o, e, p)?)
}

pub(super) fn add_layer_norm(
    stream: &CudaStream,
    x: &T,
    residual: Option<&T>,
    bias: Option<&T>,
    norm: LayerNorm<'_, streampool_cuda::CudaBackend>,
    out: &T,
) -> Result<(), OpError> {
    let d = check::add_layer_norm(x, residual, bias, norm.gamma, norm.beta, out)?;
    let args = LayerNormArgs { gamma: slice(norm.gamma), beta: slice(norm.beta), eps: norm.eps };
    let e = elem(x);
    let (x, r, b, o) = (slice(x), opt_slice(residual), opt_slice(bias), slice(out));
    Ok(ops::add_layer_norm(stream, x, r, b, args, d.rows, d.dim, o, e)?)
}

pub(super) fn l2_normalize(stream: &CudaStream, x: &T, out: &T) -> Result<(), OpError> {
    let d = check::l2_normalize(x, out)?;
    Ok(ops::l2_normalize(stream, slice(x), d.rows, d.dim, slice(out), elem(x))?)
}

pub(super) fn conv1d(
    stream: &CudaStream,
    [x, w]: [&T; 2],
    bias: Option<&T>,
    p: Conv1dParams,
    a: Activation,
    out: &T,
) -> Result<(), OpError> {
    let d = check::conv1d(x, w, bias, &p, out)?;
    let shape = d.shape();
    let e = elem(x);
    let (x, w, b, o) = (slice(x), slice(w), opt_slice(bias), slice(out));
    Ok(ops::conv1d(stream, x, w, b, o, shape, p, act(a), e)?)
}

pub(super) fn copy_strided(stream: &CudaStream, src: &T, dst: &T) -> Result<(), OpError> {
    check::copy_strided(src, dst)?;
    let l = src.layout();
    let mut strides = [0isize; crate::MAX_RANK];
    for (s, &v) in strides.iter_mut().zip(l.strides()) {
        *s = isize::try_from(v).map_err(|_| OpError::Shape {
            op: "copy_strided",
            reason: format!("stride {v} exceeds isize"),
        })?;
    }
    let strides = &strides[..l.rank()];
    let size = src.dtype().size();
    Ok(ops::strided_copy(stream, slice(src), l.shape(), strides, slice(dst), size)?)
}
