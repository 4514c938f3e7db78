//! [`Ops`] for the CPU backend: each op is checked, then enqueued on the [`CpuStream`] as one
//! work item that locks its buffers and calls the matching `streampool_cpu::kernels` function.
//! This `impl` is the single map from op to kernel.

mod access;
mod conv;
mod copy;
mod decoder;
mod dense;
mod qkv;
mod sequence;

use streampool_core::Conv1dParams;
use streampool_cpu::{CpuBackend, CpuBuffer, CpuStream};

use crate::{Activation, BertEmbeddingTables, LayerNorm, NoGraphs, OpError, Ops, Tensor};

type T = Tensor<CpuBackend>;

impl Ops for CpuBackend {
    type Staging = NoGraphs;
    type Graph = NoGraphs;

    fn stream_alloc(_stream: &CpuStream, bytes: usize) -> Result<CpuBuffer, OpError> {
        Ok(CpuBuffer::zeroed(bytes))
    }

    fn same_buffer(a: &CpuBuffer, b: &CpuBuffer) -> bool {
        a.same_as(b)
    }

    fn supports_decoder_ops() -> bool {
        true
    }

    fn linear(
        stream: &CpuStream,
        x: &T,
        w: &T,
        bias: Option<&T>,
        act: Activation,
        out: &T,
    ) -> Result<(), OpError> {
        dense::linear(stream, x, w, bias, act, out)
    }

    fn add_layer_norm(
        stream: &CpuStream,
        x: &T,
        residual: Option<&T>,
        bias: Option<&T>,
        norm: LayerNorm<'_, Self>,
        out: &T,
    ) -> Result<(), OpError> {
        dense::add_layer_norm(stream, x, residual, bias, norm, out)
    }

    fn attention(
        stream: &CpuStream,
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
        stream: &CpuStream,
        qkv: &T,
        mask: Option<&T>,
        bias: Option<&T>,
        heads: usize,
        out: &T,
    ) -> Result<(), OpError> {
        qkv::attention_qkv(stream, qkv, mask, bias, heads, out)
    }

    fn embedding(stream: &CpuStream, ids: &T, table: &T, out: &T) -> Result<(), OpError> {
        sequence::embedding(stream, ids, table, out)
    }

    fn bert_embeddings(
        stream: &CpuStream,
        ids: &T,
        type_ids: Option<&T>,
        tables: BertEmbeddingTables<'_, Self>,
        out: &T,
    ) -> Result<(), OpError> {
        sequence::bert_embeddings(stream, ids, type_ids, tables, out)
    }

    fn conv1d(
        stream: &CpuStream,
        x: &T,
        w: &T,
        bias: Option<&T>,
        params: Conv1dParams,
        act: Activation,
        out: &T,
    ) -> Result<(), OpError> {
        conv::conv1d(stream, [x, w], bias, params, act, out)
    }

    fn mean_pool(stream: &CpuStream, hidden: &T, mask: Option<&T>, out: &T) -> Result<(), OpError> {
        sequence::mean_pool(stream, hidden, mask, out)
    }

    fn pool(
        stream: &CpuStream,
        hidden: &T,
        mask: Option<&T>,
        kind: crate::PoolKind,
        out: &T,
    ) -> Result<(), OpError> {
        sequence::pool(stream, hidden, mask, kind, out)
    }

    fn rms_norm(
        stream: &CpuStream,
        x: &T,
        residual: Option<&T>,
        weight: &T,
        eps: f32,
        out: &T,
    ) -> Result<(), OpError> {
        decoder::rms_norm(stream, x, residual, weight, eps, out)
    }

    fn rotary(stream: &CpuStream, x: &T, table: &T, heads: usize, out: &T) -> Result<(), OpError> {
        decoder::rotary(stream, x, table, heads, out)
    }

    fn mul(stream: &CpuStream, a: &T, b: &T, out: &T) -> Result<(), OpError> {
        decoder::mul(stream, a, b, out)
    }

    fn grouped_attention(
        stream: &CpuStream,
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

    fn l2_normalize(stream: &CpuStream, x: &T, out: &T) -> Result<(), OpError> {
        dense::l2_normalize(stream, x, out)
    }

    fn copy_strided(stream: &CpuStream, src: &T, dst: &T) -> Result<(), OpError> {
        copy::copy_strided(stream, src, dst)
    }
}
