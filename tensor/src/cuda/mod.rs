//! [`Ops`] for the CUDA backend: each op is checked with [`crate::check`] (the same checks as
//! the CPU backend), then enqueued on the [`CudaStream`] with the matching
//! `streampool_cuda::ops` function. This `impl` is the single map from op to kernel.
//!
//! Nothing here waits for the device or allocates device memory (outputs are the caller's), so
//! a model's forward pass can later be captured in a CUDA graph; [`Ops::stream_alloc`] takes
//! its memory from the stream's caching pool, in stream order.
//!
//! Errors: argument problems come back as the [`OpError`] of the shared checks; the backend's
//! own validation and launch failures as [`OpError::Backend`]. Failures of enqueued work show
//! up at the stream's next synchronising call (e.g. [`crate::Tensor::to_host`]).
//!
//! Precision: float operands are f32, f16 or bf16 storage (one type per call, the kernels'
//! `Elem`), arithmetic f32 inside the kernels and f32 accumulation in the GEMMs; masks stay
//! f32. f32 GEMMs run without TF32 (`Precision::F32`, matching the CPU backend) unless
//! [`Ops::linear_math`] asks for [`MatMath::Tf32`].

mod decoder;
mod dense;
mod sequence;

use streampool_core::BackendError;
use streampool_core::{Conv1dParams, MatMath};
use streampool_cuda::ops::{Act, Elem, Slice};
use streampool_cuda::{CaptureError, CudaBackend, CudaBuffer, CudaGraph, CudaStream, PinnedBuffer};

use crate::{Activation, BertEmbeddingTables, DType, LayerNorm, OpError, Ops, Tensor};

type T = Tensor<CudaBackend>;

/// The tensor's buffer from its first element (offsets count elements of the tensor's dtype).
fn slice(t: &T) -> Slice<'_> {
    Slice::new(t.buffer(), t.layout().offset())
}

/// [`slice`] of an optional operand.
fn opt_slice(t: Option<&T>) -> Option<Slice<'_>> {
    t.map(slice)
}

/// The kernels' activation code.
fn act(a: Activation) -> Act {
    match a {
        Activation::Identity => Act::Identity,
        Activation::Gelu => Act::Gelu,
        Activation::Tanh => Act::Tanh,
        Activation::GeluTanh => Act::GeluTanh,
    }
}

/// The kernels' storage type for a float tensor (checked by [`crate::check`] to be one of
/// [`Ops::float_dtypes`] before this is asked).
fn elem(t: &T) -> Elem {
    match t.dtype() {
        DType::F16 => Elem::F16,
        DType::BF16 => Elem::Bf16,
        DType::F32 | DType::U32 => Elem::F32,
    }
}

impl Ops for CudaBackend {
    type Staging = PinnedBuffer;
    type Graph = CudaGraph;

    fn stream_alloc(stream: &CudaStream, bytes: usize) -> Result<CudaBuffer, OpError> {
        Ok(stream.alloc(bytes)?)
    }

    fn supports_graphs() -> bool {
        true
    }

    fn staging(backend: &CudaBackend, bytes: usize) -> Result<PinnedBuffer, OpError> {
        Ok(PinnedBuffer::new(backend, bytes)?)
    }

    fn with_staging<R>(
        staging: &PinnedBuffer,
        f: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<R, OpError> {
        Ok(f(staging.lock()?.as_mut_slice::<u8>()))
    }

    fn copy_from_staging(
        stream: &CudaStream,
        src: &PinnedBuffer,
        dst: &CudaBuffer,
    ) -> Result<(), OpError> {
        Ok(stream.copy_from_pinned(dst, src)?)
    }

    fn copy_to_staging(
        stream: &CudaStream,
        src: &CudaBuffer,
        dst: &PinnedBuffer,
    ) -> Result<(), OpError> {
        Ok(stream.copy_to_pinned(src, dst)?)
    }

    fn capture<E: From<OpError>>(
        stream: &CudaStream,
        body: impl FnMut() -> Result<(), E>,
    ) -> Result<CudaGraph, E> {
        match stream.capture_retrying(body) {
            Ok((graph, ())) => Ok(graph),
            Err(CaptureError::Body(e)) => Err(e),
            Err(CaptureError::Invalidated(e) | CaptureError::Driver(e)) => {
                Err(OpError::from(e).into())
            }
            Err(e) => {
                let what = match e {
                    CaptureError::Nested => "graph capture: this thread is already capturing",
                    _ => "graph capture failed",
                };
                Err(OpError::from(BackendError::InvalidArgument(what.into())).into())
            }
        }
    }

    fn replay(stream: &CudaStream, graph: &CudaGraph) -> Result<(), OpError> {
        Ok(stream.replay(graph)?)
    }

    fn same_buffer(a: &CudaBuffer, b: &CudaBuffer) -> bool {
        a.same_as(b)
    }

    fn supports_decoder_ops() -> bool {
        true
    }

    fn float_dtypes() -> &'static [DType] {
        &[DType::F32, DType::F16, DType::BF16]
    }

    fn supports_tf32() -> bool {
        true
    }

    fn plan_for_load(stream: &CudaStream, streams: usize) {
        stream.set_gemm_load(streams);
    }

    fn linear(
        stream: &CudaStream,
        x: &T,
        w: &T,
        bias: Option<&T>,
        act: Activation,
        out: &T,
    ) -> Result<(), OpError> {
        dense::linear(stream, x, w, bias, act, MatMath::Exact, out)
    }

    fn linear_math(
        stream: &CudaStream,
        x: &T,
        w: &T,
        bias: Option<&T>,
        act: Activation,
        math: MatMath,
        out: &T,
    ) -> Result<(), OpError> {
        dense::linear(stream, x, w, bias, act, math, out)
    }

    fn linear_add_layer_norm(
        stream: &CudaStream,
        x: &T,
        w: &T,
        math: MatMath,
        bias: Option<&T>,
        residual: Option<&T>,
        norm: LayerNorm<'_, Self>,
        scratch: &T,
        out: &T,
    ) -> Result<(), OpError> {
        dense::linear_add_layer_norm(stream, [x, w], math, bias, residual, norm, scratch, out)
    }

    fn add_layer_norm(
        stream: &CudaStream,
        x: &T,
        residual: Option<&T>,
        bias: Option<&T>,
        norm: LayerNorm<'_, Self>,
        out: &T,
    ) -> Result<(), OpError> {
        dense::add_layer_norm(stream, x, residual, bias, norm, out)
    }

    fn attention(
        stream: &CudaStream,
        q: &T,
        k: &T,
        v: &T,
        mask: Option<&T>,
        heads: usize,
        out: &T,
    ) -> Result<(), OpError> {
        sequence::attention(stream, [q, k, v], mask, heads, out)
    }

    fn attention_qkv(
        stream: &CudaStream,
        qkv: &T,
        mask: Option<&T>,
        bias: Option<&T>,
        heads: usize,
        out: &T,
    ) -> Result<(), OpError> {
        sequence::attention_qkv(stream, qkv, mask, bias, heads, out)
    }

    fn embedding(stream: &CudaStream, ids: &T, table: &T, out: &T) -> Result<(), OpError> {
        sequence::embedding(stream, ids, table, out)
    }

    fn bert_embeddings(
        stream: &CudaStream,
        ids: &T,
        type_ids: Option<&T>,
        tables: BertEmbeddingTables<'_, Self>,
        out: &T,
    ) -> Result<(), OpError> {
        sequence::bert_embeddings(stream, ids, type_ids, tables, out)
    }

    fn conv1d(
        stream: &CudaStream,
        x: &T,
        w: &T,
        bias: Option<&T>,
        params: Conv1dParams,
        act: Activation,
        out: &T,
    ) -> Result<(), OpError> {
        dense::conv1d(stream, [x, w], bias, params, act, out)
    }

    fn mean_pool(
        stream: &CudaStream,
        hidden: &T,
        mask: Option<&T>,
        out: &T,
    ) -> Result<(), OpError> {
        sequence::mean_pool(stream, hidden, mask, out)
    }

    fn pool(
        stream: &CudaStream,
        hidden: &T,
        mask: Option<&T>,
        kind: crate::PoolKind,
        out: &T,
    ) -> Result<(), OpError> {
        sequence::pool(stream, hidden, mask, kind, out)
    }

    fn rms_norm(
        stream: &CudaStream,
        x: &T,
        residual: Option<&T>,
        weight: &T,
        eps: f32,
        out: &T,
    ) -> Result<(), OpError> {
        decoder::rms_norm(stream, x, residual, weight, eps, out)
    }

    fn rotary(stream: &CudaStream, x: &T, table: &T, heads: usize, out: &T) -> Result<(), OpError> {
        decoder::rotary(stream, x, table, heads, out)
    }

    fn mul(stream: &CudaStream, a: &T, b: &T, out: &T) -> Result<(), OpError> {
        decoder::mul(stream, a, b, out)
    }

    fn grouped_attention(
        stream: &CudaStream,
        q: &T,
        k: &T,
        v: &T,
        mask: Option<&T>,
        bias: Option<&T>,
        heads: usize,
        kv_heads: usize,
        scale: f32,
        out: &T,
    ) -> Result<(), OpError> {
        decoder::grouped_attention(stream, [q, k, v], mask, bias, heads, kv_heads, scale, out)
    }

    fn l2_normalize(stream: &CudaStream, x: &T, out: &T) -> Result<(), OpError> {
        dense::l2_normalize(stream, x, out)
    }

    fn copy_strided(stream: &CudaStream, src: &T, dst: &T) -> Result<(), OpError> {
        dense::copy_strided(stream, src, dst)
    }
}
