//! The op → kernel map of backends that run streampool's Metal Shading Language kernels
//! (`backends/metal/kernels/`): the Metal backend on Apple GPUs, and the host build of the same
//! kernels that tests their arithmetic on any machine (`streampool-metal-host`).
//!
//! Such a backend implements [`MslKernels`] (how to launch one entry point on a stream) and gets
//! all of [`Ops`](crate::Ops) from [`impl_msl_ops!`](crate::impl_msl_ops): every op is checked
//! with [`crate::check`] (as on every backend), then turned into one [`Launch`] — the entry
//! point for the operands' float type, the 1-D grid and the parameter block of
//! `kernels/params.h` — by the functions of [`ops`]. So the Metal backend and its host test
//! build share everything but the final dispatch.
//!
//! Float operands are f32 or f16 (Metal's `bfloat` needs macOS 14; not offered), arithmetic f32
//! inside the kernels. Indices are 32-bit: an operand whose view ends past 2^32 elements is
//! refused with [`OpError::Unsupported`].

pub mod ops;
pub mod params;

use streampool_core::Backend;

use crate::{DType, OpError};

#[doc(hidden)]
pub use streampool_core as __core;

/// One kernel launch: entry point `kernel` over `groups` 1-D threadgroups of `threads` threads,
/// `buffers` bound at indices 0, 1, ... (offset 0) and `params` (a parameter block of
/// [`params`]) at [`params::PARAMS_INDEX`].
#[derive(Debug)]
pub struct Launch<'a, B: Backend> {
    /// The entry point's name in `kernels/entry.metal`.
    pub kernel: &'static str,
    /// Threadgroups (at least 1).
    pub groups: usize,
    /// Threads per threadgroup.
    pub threads: usize,
    /// The buffers, in the entry point's order; the last one is the output (an absent optional
    /// operand is bound to it, and not read).
    pub buffers: &'a [&'a B::Buffer],
    /// The parameter block's bytes.
    pub params: &'a [u8],
}

/// A backend that runs the MSL kernels: [`impl_msl_ops!`](crate::impl_msl_ops) builds its
/// [`Ops`](crate::Ops) on these three calls.
pub trait MslKernels: Backend {
    /// Enqueue `launch` on `stream`, in stream order.
    fn launch(stream: &Self::Stream, launch: Launch<'_, Self>) -> Result<(), OpError>;

    /// [`Ops::stream_alloc`](crate::Ops::stream_alloc).
    fn stream_alloc(stream: &Self::Stream, bytes: usize) -> Result<Self::Buffer, OpError>;

    /// [`Ops::same_buffer`](crate::Ops::same_buffer).
    fn same_buffer(a: &Self::Buffer, b: &Self::Buffer) -> bool;
}

/// The float types of the MSL kernels.
pub const FLOAT_DTYPES: &[DType] = &[DType::F32, DType::F16];

/// An entry point in both float types.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    f32: &'static str,
    f16: &'static str,
}

impl Entry {
    /// The entry for operands of `dtype` (f32 or f16: [`FLOAT_DTYPES`], checked before).
    pub(crate) fn of(self, dtype: DType) -> &'static str {
        match dtype {
            DType::F16 => self.f16,
            _ => self.f32,
        }
    }
}

macro_rules! entries {
    ($($name:ident = $base:literal;)*) => {$(
        pub(crate) const $name: Entry =
            Entry { f32: concat!($base, "_f32"), f16: concat!($base, "_f16") };
    )*};
}

/// The float kernels' entry points.
pub(crate) mod entry {
    use super::Entry;
    entries! {
        LINEAR = "linear";
        ADD_LAYER_NORM = "add_layer_norm";
        BERT_EMBEDDINGS = "bert_embeddings";
        EMBEDDING = "embedding";
        ATTENTION = "attention";
        POOL = "pool";
        L2_NORMALIZE = "l2_normalize";
        RMS_NORM = "rms_norm";
        ROTARY = "rotary";
        MUL = "mul";
        CONV1D = "conv1d";
    }
    /// Strided copy of 2-byte elements.
    pub(crate) const COPY_STRIDED_B16: &str = "copy_strided_b16";
    /// Strided copy of 4-byte elements.
    pub(crate) const COPY_STRIDED_B32: &str = "copy_strided_b32";
}

/// `impl Ops for $backend` on its [`MslKernels`]: every op through [`msl::ops`](ops), no graph
/// replay, f32 and f16, the decoder ops included.
#[macro_export]
macro_rules! impl_msl_ops {
    ($backend:ty) => {
        impl $crate::Ops for $backend {
            type Staging = $crate::NoGraphs;
            type Graph = $crate::NoGraphs;

            fn stream_alloc(
                stream: &Self::Stream,
                bytes: usize,
            ) -> ::std::result::Result<Self::Buffer, $crate::OpError> {
                <Self as $crate::msl::MslKernels>::stream_alloc(stream, bytes)
            }

            fn same_buffer(a: &Self::Buffer, b: &Self::Buffer) -> bool {
                <Self as $crate::msl::MslKernels>::same_buffer(a, b)
            }

            fn float_dtypes() -> &'static [$crate::DType] {
                $crate::msl::FLOAT_DTYPES
            }

            fn supports_decoder_ops() -> bool {
                true
            }

            fn linear(
                stream: &Self::Stream,
                x: &$crate::Tensor<Self>,
                w: &$crate::Tensor<Self>,
                bias: ::std::option::Option<&$crate::Tensor<Self>>,
                act: $crate::Activation,
                out: &$crate::Tensor<Self>,
            ) -> ::std::result::Result<(), $crate::OpError> {
                $crate::msl::ops::linear(stream, x, w, bias, act, out)
            }

            fn add_layer_norm(
                stream: &Self::Stream,
                x: &$crate::Tensor<Self>,
                residual: ::std::option::Option<&$crate::Tensor<Self>>,
                bias: ::std::option::Option<&$crate::Tensor<Self>>,
                norm: $crate::LayerNorm<'_, Self>,
                out: &$crate::Tensor<Self>,
            ) -> ::std::result::Result<(), $crate::OpError> {
                $crate::msl::ops::add_layer_norm(stream, x, residual, bias, norm, out)
            }

            fn attention(
                stream: &Self::Stream,
                q: &$crate::Tensor<Self>,
                k: &$crate::Tensor<Self>,
                v: &$crate::Tensor<Self>,
                mask: ::std::option::Option<&$crate::Tensor<Self>>,
                heads: usize,
                out: &$crate::Tensor<Self>,
            ) -> ::std::result::Result<(), $crate::OpError> {
                $crate::msl::ops::attention(stream, [q, k, v], mask, heads, out)
            }

            fn attention_qkv(
                stream: &Self::Stream,
                qkv: &$crate::Tensor<Self>,
                mask: ::std::option::Option<&$crate::Tensor<Self>>,
                bias: ::std::option::Option<&$crate::Tensor<Self>>,
                heads: usize,
                out: &$crate::Tensor<Self>,
            ) -> ::std::result::Result<(), $crate::OpError> {
                $crate::msl::ops::attention_qkv(stream, qkv, mask, bias, heads, out)
            }

            fn embedding(
                stream: &Self::Stream,
                ids: &$crate::Tensor<Self>,
                table: &$crate::Tensor<Self>,
                out: &$crate::Tensor<Self>,
            ) -> ::std::result::Result<(), $crate::OpError> {
                $crate::msl::ops::embedding(stream, ids, table, out)
            }

            fn bert_embeddings(
                stream: &Self::Stream,
                ids: &$crate::Tensor<Self>,
                type_ids: ::std::option::Option<&$crate::Tensor<Self>>,
                tables: $crate::BertEmbeddingTables<'_, Self>,
                out: &$crate::Tensor<Self>,
            ) -> ::std::result::Result<(), $crate::OpError> {
                $crate::msl::ops::bert_embeddings(stream, ids, type_ids, tables, out)
            }

            fn conv1d(
                stream: &Self::Stream,
                x: &$crate::Tensor<Self>,
                w: &$crate::Tensor<Self>,
                bias: ::std::option::Option<&$crate::Tensor<Self>>,
                params: $crate::msl::__core::Conv1dParams,
                act: $crate::Activation,
                out: &$crate::Tensor<Self>,
            ) -> ::std::result::Result<(), $crate::OpError> {
                $crate::msl::ops::conv1d(stream, [x, w], bias, params, act, out)
            }

            fn mean_pool(
                stream: &Self::Stream,
                hidden: &$crate::Tensor<Self>,
                mask: ::std::option::Option<&$crate::Tensor<Self>>,
                out: &$crate::Tensor<Self>,
            ) -> ::std::result::Result<(), $crate::OpError> {
                $crate::msl::ops::pool(stream, hidden, mask, $crate::PoolKind::Mean, out)
            }

            fn pool(
                stream: &Self::Stream,
                hidden: &$crate::Tensor<Self>,
                mask: ::std::option::Option<&$crate::Tensor<Self>>,
                kind: $crate::PoolKind,
                out: &$crate::Tensor<Self>,
            ) -> ::std::result::Result<(), $crate::OpError> {
                $crate::msl::ops::pool(stream, hidden, mask, kind, out)
            }

            fn rms_norm(
                stream: &Self::Stream,
                x: &$crate::Tensor<Self>,
                residual: ::std::option::Option<&$crate::Tensor<Self>>,
                weight: &$crate::Tensor<Self>,
                eps: f32,
                out: &$crate::Tensor<Self>,
            ) -> ::std::result::Result<(), $crate::OpError> {
                $crate::msl::ops::rms_norm(stream, x, residual, weight, eps, out)
            }

            fn rotary(
                stream: &Self::Stream,
                x: &$crate::Tensor<Self>,
                table: &$crate::Tensor<Self>,
                heads: usize,
                out: &$crate::Tensor<Self>,
            ) -> ::std::result::Result<(), $crate::OpError> {
                $crate::msl::ops::rotary(stream, x, table, heads, out)
            }

            fn mul(
                stream: &Self::Stream,
                a: &$crate::Tensor<Self>,
                b: &$crate::Tensor<Self>,
                out: &$crate::Tensor<Self>,
            ) -> ::std::result::Result<(), $crate::OpError> {
                $crate::msl::ops::mul(stream, a, b, out)
            }

            fn grouped_attention(
                stream: &Self::Stream,
                q: &$crate::Tensor<Self>,
                k: &$crate::Tensor<Self>,
                v: &$crate::Tensor<Self>,
                mask: ::std::option::Option<&$crate::Tensor<Self>>,
                bias: ::std::option::Option<&$crate::Tensor<Self>>,
                heads: usize,
                kv_heads: usize,
                scale: f32,
                out: &$crate::Tensor<Self>,
            ) -> ::std::result::Result<(), $crate::OpError> {
                let grouping = $crate::msl::ops::Grouping { heads, kv_heads, scale };
                $crate::msl::ops::grouped_attention(stream, [q, k, v], mask, bias, grouping, out)
            }

            fn l2_normalize(
                stream: &Self::Stream,
                x: &$crate::Tensor<Self>,
                out: &$crate::Tensor<Self>,
            ) -> ::std::result::Result<(), $crate::OpError> {
                $crate::msl::ops::l2_normalize(stream, x, out)
            }

            fn copy_strided(
                stream: &Self::Stream,
                src: &$crate::Tensor<Self>,
                dst: &$crate::Tensor<Self>,
            ) -> ::std::result::Result<(), $crate::OpError> {
                $crate::msl::ops::copy_strided(stream, src, dst)
            }
        }
    };
}
