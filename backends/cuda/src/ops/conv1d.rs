//! 1-D convolution (PyTorch `nn.Conv1d`) with bias and activation, as a direct kernel.

use cudarc::driver::DeviceRepr;
use streampool_core::{BackendError, Conv1dParams, Conv1dShape};

use super::args::{grid_stride, invalid, launch, opt_ptr, prod, ptr, Act, Elem, KArg, Slice};
use super::modules::CONV1D;
use crate::stream::CudaStream;

/// `ConvParams` of conv1d.cu, passed by value.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConvParams {
    batch: u64,
    cin: u64,
    length: u64,
    cout: u64,
    kernel: u64,
    lout: u64,
    stride: u64,
    padding: u64,
    dilation: u64,
    groups: u64,
    act: i32,
}

// SAFETY: a `repr(C)` struct matching `ConvParams` in conv1d.cu (ten u64 then an int, padded
// to 88 bytes by both compilers); any bit pattern is valid.
unsafe impl DeviceRepr for ConvParams {}

/// `out[b, o, l] = act(bias[o] + sum_{c, t} w[o, c, t] x[b, g cin_g + c, l stride - padding +
/// t dilation])`: `x` `[batch, in, length]`, `w` `[out, in / groups, kernel]`, `bias` `[out]`
/// (optional), `out` `[batch, out, out_len]`, all dense.
#[allow(clippy::too_many_arguments)] // nn.Conv1d's operands, shape, parameters, act and type
pub fn conv1d(
    stream: &CudaStream,
    x: Slice<'_>,
    w: Slice<'_>,
    bias: Option<Slice<'_>>,
    out: Slice<'_>,
    shape: Conv1dShape,
    params: Conv1dParams,
    act: Act,
    elem: Elem,
) -> Result<(), BackendError> {
    let lout = shape.out_len(&params).map_err(|e| invalid(format!("conv1d: {e}")))?;
    let Conv1dShape { batch, in_channels, length, out_channels, kernel } = shape;
    let n = prod("conv1d", &[batch, out_channels, lout])?;
    if n == 0 {
        return Ok(());
    }
    let es = elem.size();
    let cin_g = in_channels / params.groups;
    let p = ConvParams {
        batch: batch as u64,
        cin: in_channels as u64,
        length: length as u64,
        cout: out_channels as u64,
        kernel: kernel as u64,
        lout: lout as u64,
        stride: params.stride as u64,
        padding: params.padding as u64,
        dilation: params.dilation as u64,
        groups: params.groups as u64,
        act: act.code(),
    };
    let args = [
        KArg::U64(ptr(stream, x, prod("conv1d", &[batch, in_channels, length])?, es, "conv1d x")?),
        KArg::U64(ptr(stream, w, prod("conv1d", &[out_channels, cin_g, kernel])?, es, "conv1d w")?),
        KArg::U64(opt_ptr(stream, bias, out_channels, es, "conv1d bias")?),
        KArg::U64(ptr(stream, out, n, es, "conv1d out")?),
        KArg::Conv(p),
    ];
    let name = ["conv1d_f32", "conv1d_f16", "conv1d_bf16"][elem as usize];
    // SAFETY: conv1d_T(const T* x, const T* w, const T* bias, T* out, ConvParams p) takes these
    // five arguments (ConvParams matches the C struct); the kernel reads x only at positions
    // inside [0, length) of channels < in_channels, w rows < out_channels, and writes out[0..n):
    // all checked above.
    unsafe { launch(stream, &CONV1D, name, grid_stride(stream, n), &args) }
}
