//! Row-wise ops on the CPU: linear (+ fused bias/GELU), layer norm (+ fused residual add),
//! L2 normalisation.

use streampool_cpu::kernels;
use streampool_cpu::CpuStream;

use super::access::{kernel, par, slice_mut, CpuTensor, Reads};
use crate::{check, Activation, LayerNorm, OpError};

pub(super) fn linear(
    stream: &CpuStream,
    x: &CpuTensor,
    w: &CpuTensor,
    bias: Option<&CpuTensor>,
    act: Activation,
    out: &CpuTensor,
) -> Result<(), OpError> {
    let d = check::linear(x, w, bias, out)?;
    let (x, w, bias, out) = (x.clone(), w.clone(), bias.cloned(), out.clone());
    Ok(stream.enqueue(move || {
        let reads = Reads::lock([Some(&x), Some(&w), bias.as_ref()]);
        let (xs, ws, bs) = (reads.f32(&x)?, reads.f32(&w)?, reads.opt_f32(bias.as_ref())?);
        let mut guard = out.buffer().write();
        let o = slice_mut(guard.as_f32_mut(), &out)?;
        let (rows, inputs, outputs) = (d.rows, d.inputs, d.outputs);
        let f = match act {
            Activation::Gelu => kernels::linear_gelu,
            Activation::Identity | Activation::Tanh | Activation::GeluTanh => kernels::linear,
        };
        kernel(f(xs, ws, bs, rows, inputs, outputs, o, par()))?;
        match act {
            Activation::Tanh => kernels::tanh_inplace(o),
            Activation::GeluTanh => kernels::gelu_tanh_inplace(o),
            Activation::Identity | Activation::Gelu => {}
        }
        Ok(())
    })?)
}

pub(super) fn add_layer_norm(
    stream: &CpuStream,
    x: &CpuTensor,
    residual: Option<&CpuTensor>,
    bias: Option<&CpuTensor>,
    norm: LayerNorm<'_, streampool_cpu::CpuBackend>,
    out: &CpuTensor,
) -> Result<(), OpError> {
    let d = check::add_layer_norm(x, residual, bias, norm.gamma, norm.beta, out)?;
    let (x, residual, bias, out) = (x.clone(), residual.cloned(), bias.cloned(), out.clone());
    let (gamma, beta, eps) = (norm.gamma.clone(), norm.beta.clone(), norm.eps);
    Ok(stream.enqueue(move || {
        let reads =
            Reads::lock([Some(&x), residual.as_ref(), bias.as_ref(), Some(&gamma), Some(&beta)]);
        let (xs, bs) = (reads.f32(&x)?, reads.opt_f32(bias.as_ref())?);
        let (g, b) = (reads.f32(&gamma)?, reads.f32(&beta)?);
        let mut guard = out.buffer().write();
        let o = slice_mut(guard.as_f32_mut(), &out)?;
        match reads.opt_f32(residual.as_ref())? {
            Some(r) => kernel(kernels::add_layer_norm(xs, r, bs, d.rows, d.dim, g, b, eps, o)),
            None => {
                o.copy_from_slice(xs);
                if let Some(bias) = bs.filter(|_| d.dim > 0) {
                    for row in o.chunks_exact_mut(d.dim) {
                        row.iter_mut().zip(bias).for_each(|(v, b)| *v += b);
                    }
                }
                kernel(kernels::layer_norm_inplace(o, d.rows, d.dim, g, b, eps))
            }
        }
    })?)
}

pub(super) fn l2_normalize(
    stream: &CpuStream,
    x: &CpuTensor,
    out: &CpuTensor,
) -> Result<(), OpError> {
    let d = check::l2_normalize(x, out)?;
    let (x, out) = (x.clone(), out.clone());
    Ok(stream.enqueue(move || {
        if d.dim == 0 {
            return Ok(());
        }
        if x.buffer().same_as(out.buffer()) {
            let mut guard = out.buffer().write();
            return kernel(kernels::l2_normalize_rows(slice_mut(guard.as_f32_mut(), &out)?, d.dim));
        }
        let reads = Reads::lock([Some(&x)]);
        let mut guard = out.buffer().write();
        let o = slice_mut(guard.as_f32_mut(), &out)?;
        o.copy_from_slice(reads.f32(&x)?);
        kernel(kernels::l2_normalize_rows(o, d.dim))
    })?)
}
