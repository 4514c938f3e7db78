//! conv1d on the CPU (im2col + GEMM kernel) with a fused activation.

use streampool_core::Conv1dParams;
use streampool_cpu::kernels;
use streampool_cpu::CpuStream;

use super::access::{kernel, par, slice_mut, CpuTensor, Reads};
use crate::{check, Activation, OpError};

pub(super) fn conv1d(
    stream: &CpuStream,
    [x, w]: [&CpuTensor; 2],
    bias: Option<&CpuTensor>,
    params: Conv1dParams,
    act: Activation,
    out: &CpuTensor,
) -> Result<(), OpError> {
    let d = check::conv1d(x, w, bias, &params, out)?;
    let shape = d.shape();
    let (x, w, bias, out) = (x.clone(), w.clone(), bias.cloned(), out.clone());
    Ok(stream.enqueue(move || {
        let reads = Reads::lock([Some(&x), Some(&w), bias.as_ref()]);
        let mut guard = out.buffer().write();
        let o = slice_mut(guard.as_f32_mut(), &out)?;
        let bs = reads.opt_f32(bias.as_ref())?;
        kernel(kernels::conv1d(reads.f32(&x)?, reads.f32(&w)?, bs, o, shape, params, par()))?;
        match act {
            Activation::Gelu => kernels::gelu_erf_inplace(o),
            Activation::Tanh => kernels::tanh_inplace(o),
            Activation::GeluTanh => kernels::gelu_tanh_inplace(o),
            Activation::Identity => {}
        }
        Ok(())
    })?)
}
