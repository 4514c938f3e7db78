//! [`Ops`]: the one place where a backend maps each op to its kernel.
//!
//! Every op is submitted to a stream and keeps the core's stream semantics: it runs after the
//! stream's earlier work and before its later work; ordering across streams only through events.
//! Outputs are written into caller-provided tensors, so a model can keep per-slot workspaces
//! and allocate nothing once warm. Each op checks shapes, dtypes, contiguity and aliasing first
//! (with [`crate::check`], shared by all backends) and returns [`OpError`] without enqueueing
//! anything; it never panics on bad input.

use streampool_core::{Backend, Conv1dParams, MatMath};

use crate::{DType, OpError, Tensor};

/// How [`Ops::pool`] pools a sequence (sentence-transformers' pooling modes beside the mean).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoolKind {
    /// The mean over the unmasked positions ([`Ops::mean_pool`]).
    Mean,
    /// The element-wise maximum, padding (mask 0) counted as -1e9 (as sentence-transformers).
    Max,
    /// The last unmasked position of a right-padded sequence (`sum(mask) - 1`).
    LastToken,
    /// The mean weighted by position (1 for the first token), over the unmasked positions.
    WeightedMean,
}

/// Activation fused into the end of an op.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Activation {
    /// None.
    #[default]
    Identity,
    /// Exact (erf) GELU, PyTorch's default `F.gelu`.
    Gelu,
    /// `tanh` (sentence-transformers' `Dense` modules' default activation).
    Tanh,
    /// GELU's tanh approximation, `x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))` (PyTorch's
    /// `gelu(approximate="tanh")`, Gemma's `gelu_pytorch_tanh`).
    GeluTanh,
}

/// Layer-norm parameters: `gamma`, `beta` (`[dim]`) and epsilon.
#[derive(Debug)]
pub struct LayerNorm<'a, B: Backend> {
    /// Scale, `[dim]`.
    pub gamma: &'a Tensor<B>,
    /// Shift, `[dim]`.
    pub beta: &'a Tensor<B>,
    /// Added to the variance.
    pub eps: f32,
}

/// BERT's embedding tables and the layer norm that follows their sum.
#[derive(Debug)]
pub struct BertEmbeddingTables<'a, B: Backend> {
    /// `[vocab, dim]`.
    pub word: &'a Tensor<B>,
    /// `[max_positions, dim]`.
    pub position: &'a Tensor<B>,
    /// `[type_vocab, dim]`.
    pub token_type: &'a Tensor<B>,
    /// The layer norm after the sum.
    pub norm: LayerNorm<'a, B>,
}

/// Ops a backend provides. Float operands (activations, weights, biases, layer-norm parameters)
/// all have one element type per call, one of [`Ops::float_dtypes`] (f32 on every backend; f16
/// and bf16 where the backend has them, arithmetic f32 inside the kernels); masks are f32 and
/// ids u32 whatever that type. Shapes and types are checked before anything is enqueued. Implemented for the CPU backend in this crate (`cpu` module); the CUDA
/// backend implements the same trait with cuBLAS and NVRTC kernels.
pub trait Ops: Backend {
    /// Host memory the device copies from and to in stream order, so that a captured graph can
    /// take its inputs and give its outputs through it (pinned memory on CUDA). [`NoGraphs`] on
    /// a backend without graph replay.
    type Staging: Send + Sync + 'static;

    /// Work captured on one stream by [`Ops::capture`] and replayed there by [`Ops::replay`]
    /// (a CUDA graph). [`NoGraphs`] on a backend without graph replay.
    type Graph: Send + 'static;

    /// Allocate `bytes` for use on `stream` (contents unspecified); stream-ordered where the
    /// backend supports it.
    fn stream_alloc(stream: &Self::Stream, bytes: usize) -> Result<Self::Buffer, OpError>;

    /// Whether two handles refer to the same buffer.
    fn same_buffer(a: &Self::Buffer, b: &Self::Buffer) -> bool;

    /// Element types the float operands of this backend's ops may have (all of one call's
    /// float operands share one). f32 only unless the backend says more.
    fn float_dtypes() -> &'static [DType] {
        &[DType::F32]
    }

    /// Whether this backend implements [`Ops::rms_norm`], [`Ops::rotary`], [`Ops::mul`] and
    /// [`Ops::grouped_attention`] (the ops of Gemma-style encoders). False unless it says so.
    fn supports_decoder_ops() -> bool {
        false
    }

    /// Whether [`Ops::linear_math`] takes [`MatMath::Tf32`].
    fn supports_tf32() -> bool {
        false
    }

    /// A hint for the ops that follow on `stream`: `streams` streams (the caller's included)
    /// are running work on the device at the same time, so kernels may be chosen for a share
    /// of it (the CUDA backend plans its GEMMs so). Results are the same whatever the hint;
    /// the default ignores it.
    fn plan_for_load(stream: &Self::Stream, streams: usize) {
        let _ = (stream, streams);
    }

    /// Whether this backend captures and replays graphs ([`Ops::capture`], [`Ops::replay`],
    /// [`Ops::staging`] and the staging copies). When it does not (the default), those calls
    /// return [`OpError::Unsupported`].
    fn supports_graphs() -> bool {
        false
    }

    /// `bytes` of zeroed host staging memory on `backend`'s device.
    fn staging(backend: &Self, bytes: usize) -> Result<Self::Staging, OpError> {
        let _ = (backend, bytes);
        Err(no_graphs("staging"))
    }

    /// Host access to `staging`: waits until the device work enqueued so far that uses it
    /// (copies, replays of graphs that copy from or to it) has completed, then calls `f` on its
    /// bytes. Enqueueing work that uses it while `f` runs fails instead of racing with the host.
    fn with_staging<R>(
        staging: &Self::Staging,
        f: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<R, OpError> {
        let _ = (staging, f);
        Err(no_graphs("with_staging"))
    }

    /// Enqueue a copy of all of `src` into `dst` (the same size in bytes). Inside a capture the
    /// copy becomes part of the graph, repeated at every replay.
    fn copy_from_staging(
        stream: &Self::Stream,
        src: &Self::Staging,
        dst: &Self::Buffer,
    ) -> Result<(), OpError> {
        let _ = (stream, src, dst);
        Err(no_graphs("copy_from_staging"))
    }

    /// Enqueue a copy of all of `src` into `dst` (the same size in bytes); read it with
    /// [`Ops::with_staging`], which waits for the copy.
    fn copy_to_staging(
        stream: &Self::Stream,
        src: &Self::Buffer,
        dst: &Self::Staging,
    ) -> Result<(), OpError> {
        let _ = (stream, src, dst);
        Err(no_graphs("copy_to_staging"))
    }

    /// Capture the work `body` enqueues on `stream` (nothing runs) into a graph that
    /// [`Ops::replay`] runs on that stream. The rules of the captured work: run it eagerly once
    /// first (kernels load at first use); every buffer it uses is allocated before and outlives
    /// the graph; inside `body` no allocation, free, synchronisation or host copy other than
    /// the staging copies; enqueue from the calling thread only (enforced on CUDA: while the
    /// capture runs, other threads' submissions to `stream`, and everyone's synchronisations
    /// and pageable host copies on it, fail with `BackendError::StreamCapturing`, the capture
    /// undisturbed). A capture the driver
    /// invalidates is captured again a few times. Whatever happens, `stream` works eagerly
    /// again afterwards.
    fn capture<E: From<OpError>>(
        stream: &Self::Stream,
        body: impl FnMut() -> Result<(), E>,
    ) -> Result<Self::Graph, E> {
        let _ = (stream, body);
        Err(no_graphs("capture").into())
    }

    /// Enqueue one run of `graph` on `stream`, the stream it was captured on.
    fn replay(stream: &Self::Stream, graph: &Self::Graph) -> Result<(), OpError> {
        let _ = (stream, graph);
        Err(no_graphs("replay"))
    }

    /// [`Ops::linear`] with the products computed as `math` says. The default runs
    /// [`MatMath::Exact`] as [`Ops::linear`] and refuses [`MatMath::Tf32`] with
    /// [`OpError::Unsupported`] (after the usual checks).
    #[allow(clippy::too_many_arguments)] // linear's operands and the math mode
    fn linear_math(
        stream: &Self::Stream,
        x: &Tensor<Self>,
        w: &Tensor<Self>,
        bias: Option<&Tensor<Self>>,
        act: Activation,
        math: MatMath,
        out: &Tensor<Self>,
    ) -> Result<(), OpError> {
        match math {
            MatMath::Exact => Self::linear(stream, x, w, bias, act, out),
            MatMath::Tf32 => {
                crate::check::linear(x, w, bias, out)?;
                Err(OpError::Unsupported {
                    op: "linear",
                    reason: "TF32 math is not available on this backend".into(),
                })
            }
        }
    }

    /// `out[.., o] = act(sum_i x[.., i] * w[o, i] + bias[o])`: PyTorch's `F.linear` followed by
    /// `act`. `x` `[.., in]`, `w` `[out, in]`, `bias` `[out]`, `out` `[.., out]`, all contiguous.
    fn linear(
        stream: &Self::Stream,
        x: &Tensor<Self>,
        w: &Tensor<Self>,
        bias: Option<&Tensor<Self>>,
        act: Activation,
        out: &Tensor<Self>,
    ) -> Result<(), OpError>;

    /// `out = LayerNorm(x + bias + residual)` over the last dimension; `x`, `residual`, `out`
    /// `[.., dim]` contiguous, `bias` `[dim]`.
    fn add_layer_norm(
        stream: &Self::Stream,
        x: &Tensor<Self>,
        residual: Option<&Tensor<Self>>,
        bias: Option<&Tensor<Self>>,
        norm: LayerNorm<'_, Self>,
        out: &Tensor<Self>,
    ) -> Result<(), OpError>;

    /// `out = LayerNorm(x . w^T + bias + residual)`: a linear without bias (products as `math`
    /// says) whose result, with `bias` and `residual` added, is layer-normalised (BERT's
    /// projection + residual block). `scratch` (`[.., out]`, like `out`) may receive the linear's
    /// result. The default is [`Ops::linear_math`] into `scratch`, then [`Ops::add_layer_norm`]
    /// (all operands checked first, so a bad one enqueues nothing); a backend may fuse the two
    /// (CUDA, at batch-1 sizes: the GEMM split along K, the layer norm adding up its parts).
    #[allow(clippy::too_many_arguments)] // the fused op's operands, math mode and scratch
    fn linear_add_layer_norm(
        stream: &Self::Stream,
        x: &Tensor<Self>,
        w: &Tensor<Self>,
        math: MatMath,
        bias: Option<&Tensor<Self>>,
        residual: Option<&Tensor<Self>>,
        norm: LayerNorm<'_, Self>,
        scratch: &Tensor<Self>,
        out: &Tensor<Self>,
    ) -> Result<(), OpError> {
        crate::check::linear_add_layer_norm(x, w, bias, residual, &norm, scratch, out)?;
        Self::linear_math(stream, x, w, None, Activation::Identity, math, scratch)?;
        Self::add_layer_norm(stream, scratch, residual, bias, norm, out)
    }

    /// Masked multi-head self-attention `softmax(Q K^T / sqrt(d) + mask) V` per sequence and
    /// head. `q`, `k`, `v`, `out`: `[batch, seq, heads * head_dim]`; `mask`: `[batch, seq]` of
    /// 1 (token) / 0 (padding: gets no weight).
    fn attention(
        stream: &Self::Stream,
        q: &Tensor<Self>,
        k: &Tensor<Self>,
        v: &Tensor<Self>,
        mask: Option<&Tensor<Self>>,
        heads: usize,
        out: &Tensor<Self>,
    ) -> Result<(), OpError>;

    /// [`Ops::attention`] on a fused QKV projection: row `t` of `qkv` `[batch, seq, 3 * hidden]`
    /// holds token `t`'s query, key and value side by side (columns `0..hidden`,
    /// `hidden..2 * hidden`, `2 * hidden..`), as one [`Ops::linear`] with the three weights
    /// (and biases) concatenated along the output dimension produces; `out` `[batch, seq,
    /// hidden]`, `mask` as in [`Ops::attention`].
    ///
    /// `bias`, f32 `[heads, 2 * span + 1]`, adds a score that depends only on how far a key is
    /// from its query (MPNet's relative position bias, its buckets resolved per distance): head
    /// `h`, query `i`, key `j` get `bias[h, j - i + span]` after the scaling; sequences of at
    /// most `span + 1` tokens.
    fn attention_qkv(
        stream: &Self::Stream,
        qkv: &Tensor<Self>,
        mask: Option<&Tensor<Self>>,
        bias: Option<&Tensor<Self>>,
        heads: usize,
        out: &Tensor<Self>,
    ) -> Result<(), OpError>;

    /// Row gather: `out[.., :] = table[ids[..], :]`; `ids` u32, `table` `[vocab, dim]`. An id
    /// past the table fails the stream's work (reported by its next synchronising call).
    fn embedding(
        stream: &Self::Stream,
        ids: &Tensor<Self>,
        table: &Tensor<Self>,
        out: &Tensor<Self>,
    ) -> Result<(), OpError>;

    /// BERT embeddings: `LayerNorm(word[ids] + position[0..seq] + token_type[type_ids])`;
    /// `ids`, `type_ids` (u32, zeros when `None`): `[batch, seq]`; `out` `[batch, seq, dim]`.
    fn bert_embeddings(
        stream: &Self::Stream,
        ids: &Tensor<Self>,
        type_ids: Option<&Tensor<Self>>,
        tables: BertEmbeddingTables<'_, Self>,
        out: &Tensor<Self>,
    ) -> Result<(), OpError>;

    /// `out = act(conv1d(x, w) + bias)`: `x` `[batch, in, length]`, `w` `[out, in / groups,
    /// kernel]`, `bias` `[out]`, `out` `[batch, out, out_len]`.
    #[allow(clippy::too_many_arguments)] // nn.Conv1d's operands, its parameters and the activation
    fn conv1d(
        stream: &Self::Stream,
        x: &Tensor<Self>,
        w: &Tensor<Self>,
        bias: Option<&Tensor<Self>>,
        params: Conv1dParams,
        act: Activation,
        out: &Tensor<Self>,
    ) -> Result<(), OpError>;

    /// Mean over the sequence of `hidden` `[batch, seq, dim]` into `out` `[batch, dim]`, counting
    /// only positions where `mask` `[batch, seq]` is 1 (all when `None`), as sentence-transformers.
    fn mean_pool(
        stream: &Self::Stream,
        hidden: &Tensor<Self>,
        mask: Option<&Tensor<Self>>,
        out: &Tensor<Self>,
    ) -> Result<(), OpError>;

    /// `hidden` `[batch, seq, dim]` pooled over the sequence into `out` `[batch, dim]` as `kind`
    /// says, over the positions where `mask` `[batch, seq]` is 1 (all when `None`). Default: the
    /// mean through [`Ops::mean_pool`], any other kind [`OpError::Unsupported`].
    fn pool(
        stream: &Self::Stream,
        hidden: &Tensor<Self>,
        mask: Option<&Tensor<Self>>,
        kind: PoolKind,
        out: &Tensor<Self>,
    ) -> Result<(), OpError> {
        match kind {
            PoolKind::Mean => Self::mean_pool(stream, hidden, mask, out),
            other => Err(OpError::Unsupported {
                op: "pool",
                reason: format!("{other:?} pooling is not implemented by this backend"),
            }),
        }
    }

    /// RMS norm over the last dimension, then an optional residual: `out = residual + x /
    /// sqrt(mean(x^2) + eps) * weight` (`x`, `residual`, `out` `[.., dim]`, `weight` `[dim]`),
    /// computed in f32 whatever the storage type (Gemma's norm, its `1 + w` gain folded into
    /// `weight` by the model). Default: [`OpError::Unsupported`].
    fn rms_norm(
        stream: &Self::Stream,
        x: &Tensor<Self>,
        residual: Option<&Tensor<Self>>,
        weight: &Tensor<Self>,
        eps: f32,
        out: &Tensor<Self>,
    ) -> Result<(), OpError> {
        crate::check::rms_norm(x, residual, weight, out)?;
        let _ = (stream, eps);
        Err(unsupported("rms_norm"))
    }

    /// Rotary position embedding, rotate-half form (Llama, Gemma): `x` and `out` `[batch, seq,
    /// heads * head_dim]`; token `t` of a sequence is at position `t`; `table` f32 `[positions,
    /// head_dim]` holds `cos(p * f_i)` in columns `i < head_dim / 2` and `sin(p * f_i)` in
    /// column `head_dim / 2 + i`. For each head, with `h = head_dim / 2`: `out[i] = x[i] cos_i -
    /// x[i + h] sin_i` and `out[i + h] = x[i + h] cos_i + x[i] sin_i`. Default:
    /// [`OpError::Unsupported`].
    fn rotary(
        stream: &Self::Stream,
        x: &Tensor<Self>,
        table: &Tensor<Self>,
        heads: usize,
        out: &Tensor<Self>,
    ) -> Result<(), OpError> {
        crate::check::rotary(x, table, heads, out)?;
        let _ = stream;
        Err(unsupported("rotary"))
    }

    /// Element-wise product `out = a * b` (a gated feed-forward's `act(gate) * up`), all of one
    /// shape, contiguous. Default: [`OpError::Unsupported`].
    fn mul(
        stream: &Self::Stream,
        a: &Tensor<Self>,
        b: &Tensor<Self>,
        out: &Tensor<Self>,
    ) -> Result<(), OpError> {
        crate::check::mul(a, b, out)?;
        let _ = stream;
        Err(unsupported("mul"))
    }

    /// [`Ops::attention`] with keys and values shared by groups of query heads and a given
    /// scale: `q`, `out` `[batch, seq, heads * head_dim]`, `k`, `v` `[batch, seq, kv_heads *
    /// head_dim]` (query head `h` reads key / value head `h / (heads / kv_heads)`); scores are
    /// `q . k * scale`, plus `bias` as in [`Ops::attention_qkv`] (a sliding window is a bias of
    /// `-1e30` beyond it), plus the mask. Default: [`OpError::Unsupported`].
    #[allow(clippy::too_many_arguments)] // the attention's operands, its grouping and scale
    fn grouped_attention(
        stream: &Self::Stream,
        q: &Tensor<Self>,
        k: &Tensor<Self>,
        v: &Tensor<Self>,
        mask: Option<&Tensor<Self>>,
        bias: Option<&Tensor<Self>>,
        heads: usize,
        kv_heads: usize,
        scale: f32,
        out: &Tensor<Self>,
    ) -> Result<(), OpError> {
        crate::check::grouped_attention(q, k, v, mask, bias, heads, kv_heads, out)?;
        let _ = (stream, scale);
        Err(unsupported("grouped_attention"))
    }

    /// Each row of the last dimension divided by `max(norm, 1e-12)`; `out` may be `x` itself.
    fn l2_normalize(
        stream: &Self::Stream,
        x: &Tensor<Self>,
        out: &Tensor<Self>,
    ) -> Result<(), OpError>;

    /// Gather any view `src` into the contiguous `dst` of the same shape and dtype (any dtype).
    fn copy_strided(
        stream: &Self::Stream,
        src: &Tensor<Self>,
        dst: &Tensor<Self>,
    ) -> Result<(), OpError>;
}

/// The [`Ops::Staging`] and [`Ops::Graph`] of a backend without graph replay: no value exists.
#[derive(Debug)]
pub enum NoGraphs {}

/// The error of an op this backend does not implement (yet).
fn unsupported(op: &'static str) -> OpError {
    OpError::Unsupported { op, reason: "not implemented by this backend".into() }
}

/// The error of a graph call on a backend without graph replay.
fn no_graphs(op: &'static str) -> OpError {
    OpError::Unsupported { op, reason: "this backend does not capture or replay graphs".into() }
}
