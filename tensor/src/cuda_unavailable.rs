//! [`Ops`] for the stand-in `CudaBackend` of a build without the `cuda` feature: no value of it
//! exists, so no method can be called; it lets code generic over backends name the CUDA backend
//! without `cfg` (opening it fails with `BackendError::Unavailable`).

use streampool_core::Conv1dParams;
use streampool_cuda::{CudaBackend, CudaBuffer, CudaStream};

use crate::{Activation, BertEmbeddingTables, LayerNorm, NoGraphs, OpError, Ops};

type T = crate::Tensor<CudaBackend>;

impl Ops for CudaBackend {
    type Staging = NoGraphs;
    type Graph = NoGraphs;

    fn stream_alloc(stream: &CudaStream, _: usize) -> Result<CudaBuffer, OpError> {
        stream.unreachable()
    }

    fn same_buffer(a: &CudaBuffer, _: &CudaBuffer) -> bool {
        a.unreachable()
    }

    fn linear(
        stream: &CudaStream,
        _: &T,
        _: &T,
        _: Option<&T>,
        _: Activation,
        _: &T,
    ) -> Result<(), OpError> {
        stream.unreachable()
    }

    fn add_layer_norm(
        stream: &CudaStream,
        _: &T,
        _: Option<&T>,
        _: Option<&T>,
        _: LayerNorm<'_, Self>,
        _: &T,
    ) -> Result<(), OpError> {
        stream.unreachable()
    }

    fn attention(
        stream: &CudaStream,
        _: &T,
        _: &T,
        _: &T,
        _: Option<&T>,
        _: usize,
        _: &T,
    ) -> Result<(), OpError> {
        stream.unreachable()
    }

    fn attention_qkv(
        stream: &CudaStream,
        _: &T,
        _: Option<&T>,
        _: Option<&T>,
        _: usize,
        _: &T,
    ) -> Result<(), OpError> {
        stream.unreachable()
    }

    fn embedding(stream: &CudaStream, _: &T, _: &T, _: &T) -> Result<(), OpError> {
        stream.unreachable()
    }

    fn bert_embeddings(
        stream: &CudaStream,
        _: &T,
        _: Option<&T>,
        _: BertEmbeddingTables<'_, Self>,
        _: &T,
    ) -> Result<(), OpError> {
        stream.unreachable()
    }

    fn conv1d(
        stream: &CudaStream,
        _: &T,
        _: &T,
        _: Option<&T>,
        _: Conv1dParams,
        _: Activation,
        _: &T,
    ) -> Result<(), OpError> {
        stream.unreachable()
    }

    fn mean_pool(stream: &CudaStream, _: &T, _: Option<&T>, _: &T) -> Result<(), OpError> {
        stream.unreachable()
    }

    fn l2_normalize(stream: &CudaStream, _: &T, _: &T) -> Result<(), OpError> {
        stream.unreachable()
    }

    fn copy_strided(stream: &CudaStream, _: &T, _: &T) -> Result<(), OpError> {
        stream.unreachable()
    }
}
