//! The kernels' parameter blocks: the Rust mirror of `backends/metal/kernels/params.h`, field for
//! field (every field 4 bytes, so `repr(C)` lays them out as MSL and C++ do). The host build of
//! the kernels checks each struct's size against the C++ one (`streampool-metal-host`'s layout
//! test); the ops conformance suite, run through those kernels, checks the fields' meaning.

use bytemuck::{Pod, Zeroable};

/// Buffer index of the parameter block (`SP_PARAMS_INDEX`).
pub const PARAMS_INDEX: usize = 8;
/// Threads per threadgroup of the row kernels (`SP_ROW_THREADS`).
pub const ROW_THREADS: usize = 256;
/// Threads per threadgroup of the element-wise kernels (`SP_ELEMENT_THREADS`).
pub const ELEMENT_THREADS: usize = 256;
/// Output tile edge of `linear` (`SP_LINEAR_TILE`).
pub const LINEAR_TILE: usize = 32;
/// Threads per threadgroup of `linear` (`SP_LINEAR_THREADS`: 4 simdgroups).
pub const LINEAR_THREADS: usize = 128;
/// Threads per threadgroup of `attention` (`SP_ATTENTION_THREADS`).
pub const ATTENTION_THREADS: usize = 128;
/// Largest head size `attention` takes (`SP_ATTENTION_MAX_HEAD_DIM`).
pub const ATTENTION_MAX_HEAD_DIM: usize = 256;
/// Largest rank `copy_strided` takes (`SP_MAX_RANK`).
pub const MAX_RANK: usize = 6;

/// Activation codes (`SP_ACT_*`).
pub mod act {
    /// None.
    pub const IDENTITY: u32 = 0;
    /// Exact (erf) GELU.
    pub const GELU: u32 = 1;
    /// `tanh`.
    pub const TANH: u32 = 2;
    /// GELU's tanh approximation.
    pub const GELU_TANH: u32 = 3;
}

/// Pooling codes (`SP_POOL_*`).
pub mod pool {
    /// Masked mean.
    pub const MEAN: u32 = 0;
    /// Masked maximum.
    pub const MAX: u32 = 1;
    /// The last unmasked position.
    pub const LAST_TOKEN: u32 = 2;
    /// Position-weighted mean.
    pub const WEIGHTED_MEAN: u32 = 3;
}

macro_rules! params {
    ($($(#[$doc:meta])* $name:ident { $($field:ident: $ty:ty),* $(,)? })*) => {$(
        $(#[$doc])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
        #[allow(missing_docs)] // the fields are documented once, in params.h
        pub struct $name { $(pub $field: $ty),* }
    )*};
}

params! {
    /// `linear_*`: buffers x, w, bias, out.
    LinearParams {
        rows: u32, inputs: u32, outputs: u32,
        x_off: u32, w_off: u32, bias_off: u32, out_off: u32,
        has_bias: u32, act: u32,
    }
    /// `add_layer_norm_*`: buffers x, residual, bias, gamma, beta, out.
    AddLayerNormParams {
        rows: u32, dim: u32,
        x_off: u32, residual_off: u32, bias_off: u32, gamma_off: u32, beta_off: u32, out_off: u32,
        has_residual: u32, has_bias: u32,
        eps: f32,
    }
    /// `bert_embeddings_*`: buffers ids, type_ids, word, position, token_type, gamma, beta, out.
    BertEmbeddingsParams {
        batch: u32, seq: u32, dim: u32, vocab: u32, max_positions: u32, type_vocab: u32,
        ids_off: u32, type_ids_off: u32, word_off: u32, position_off: u32, token_type_off: u32,
        gamma_off: u32, beta_off: u32, out_off: u32,
        has_type_ids: u32,
        eps: f32,
    }
    /// `embedding_*`: buffers ids, table, out.
    EmbeddingParams {
        tokens: u32, dim: u32, vocab: u32,
        ids_off: u32, table_off: u32, out_off: u32,
    }
    /// `attention_*`: buffers q, k, v, mask, bias, out.
    AttentionParams {
        batch: u32, seq: u32, heads: u32, kv_heads: u32, head_dim: u32,
        ld_q: u32, ld_k: u32, ld_v: u32, ld_out: u32,
        q_off: u32, k_off: u32, v_off: u32, mask_off: u32, bias_off: u32, out_off: u32,
        has_mask: u32, has_bias: u32, span: u32,
        scale: f32,
    }
    /// `pool_*`: buffers hidden, mask, out.
    PoolParams {
        batch: u32, seq: u32, dim: u32,
        hidden_off: u32, mask_off: u32, out_off: u32,
        has_mask: u32, kind: u32,
    }
    /// `l2_normalize_*`: buffers x, out.
    L2NormalizeParams {
        rows: u32, dim: u32,
        x_off: u32, out_off: u32,
    }
    /// `rms_norm_*`: buffers x, residual, weight, out.
    RmsNormParams {
        rows: u32, dim: u32,
        x_off: u32, residual_off: u32, weight_off: u32, out_off: u32,
        has_residual: u32,
        eps: f32,
    }
    /// `rotary_*`: buffers x, table, out.
    RotaryParams {
        batch: u32, seq: u32, heads: u32, head_dim: u32, positions: u32,
        x_off: u32, table_off: u32, out_off: u32,
    }
    /// `mul_*`: buffers a, b, out.
    MulParams {
        count: u32,
        a_off: u32, b_off: u32, out_off: u32,
    }
    /// `conv1d_*`: buffers x, w, bias, out.
    Conv1dParams {
        batch: u32, in_channels: u32, length: u32, out_channels: u32, kernel_size: u32,
        out_length: u32,
        stride: u32, padding: u32, dilation: u32, groups: u32,
        x_off: u32, w_off: u32, bias_off: u32, out_off: u32,
        has_bias: u32, act: u32,
    }
    /// `copy_strided_*`: buffers src, dst.
    CopyStridedParams {
        rank: u32, count: u32,
        src_off: u32, dst_off: u32,
        shape: [u32; MAX_RANK],
        strides: [u32; MAX_RANK],
    }
}
