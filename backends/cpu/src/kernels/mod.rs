//! CPU compute kernels: plain functions over slices, run by the tensor layer inside stream work.
//!
//! f32 compute, row-major, safe code only. Every kernel validates its slice lengths against the
//! shape it is given and returns [`KernelError`] instead of panicking. GEMMs go through faer;
//! element-wise loops are compiled for AVX2/AVX-512 at run time through pulp's safe dispatch.
//! Threading is the caller's choice ([`Parallelism`]); nothing here spawns threads of its own
//! beyond rayon's global pool.

mod activation;
mod attention;
mod conv1d;
mod convert;
mod embedding;
mod error;
mod layer_norm;
mod linear;
mod math;
mod matmul;
mod parallel;
mod pooling;
mod softmax;
mod strided;

pub use activation::{
    bias_gelu_inplace, gelu_erf, gelu_erf_inplace, gelu_tanh_inplace, tanh_inplace,
};
pub use attention::{attention, attention_grouped, attention_scratch_len, Grouping};
pub use conv1d::conv1d;
pub use convert::{
    bf16_le_bytes_to_f32, bf16_to_f32, f16_le_bytes_to_f32, f16_to_f32, f32_to_bf16, f32_to_f16,
};
pub use embedding::{bert_embeddings, embedding_gather, BertEmbeddingWeights};
pub use error::KernelError;
pub use layer_norm::{add_layer_norm, layer_norm, layer_norm_inplace};
pub use linear::{linear, linear_gelu};
pub use matmul::{matmul, GemmDims, MatLayout, MatView, MatViewMut, Parallelism};
pub use pooling::{l2_normalize_rows, last_token_pool, max_pool, mean_pool, weighted_mean_pool};
pub use softmax::softmax_rows;
pub use strided::strided_copy;
// Defined once in the core (shared with the CUDA ops and the tensor layer); re-exported here
// under their old paths.
pub use streampool_core::{AttentionDims, Conv1dParams, Conv1dShape};
