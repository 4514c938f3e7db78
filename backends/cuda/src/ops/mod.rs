//! What a transformer forward needs, as backend-level functions: each takes the stream, buffers
//! with element offsets ([`Slice`]) and shapes, validates everything (device, ranges, shapes)
//! before enqueueing, enqueues the work on the stream and returns. Nothing here allocates device
//! memory or waits for the device, so a sequence of these calls can later be captured in a CUDA
//! graph. Outputs are caller-provided; arguments are in elements of the op's [`Elem`] type.
//!
//! - GEMM through cuBLAS on the stream's own handle ([`gemm`], [`gemm_f32`]; row-major, with
//!   transposes, strided-batched), f32 without TF32 by default, TF32 on request
//!   ([`streampool_core::MatMath`]), f16/bf16 inputs with f32 accumulation; [`linear`] = GEMM + bias + GELU
//!   (bias alone: one cuBLASLt launch with the bias epilogue); [`linear_add_layer_norm`] =
//!   linear + residual + layer norm. At batch-1 sizes, while few streams share the GPU, f32
//!   linears are split along K and the next kernel adds up the parts (`split_k`).
//! - CUDA C kernels (`kernels/*.cu`, NVRTC at first use, cached on disk), f32 arithmetic with
//!   f32/f16/bf16 storage: [`bias_act`], [`add_layer_norm`], [`softmax_mask`], fused
//!   [`attention`], [`bert_embeddings`], [`embedding_gather`], [`mean_pool`] (+ L2),
//!   [`l2_normalize`], [`strided_copy`], [`cast`], [`conv1d`]; for Gemma-style encoders
//!   [`rms_norm`], [`rotary`], [`mul_elementwise`], [`gqa_attention`].
//!
//! Semantics follow PyTorch (and `streampool_cpu::kernels`): biased variance inside the layer
//! norm, exact (erf) GELU, Hugging Face's additive attention mask.

mod args;
mod attention;
mod cast;
mod conv1d;
mod decoder;
mod embedding;
mod gemm;
mod linear;
pub(crate) mod lt;
mod modules;
mod norm;
mod pooling;
mod softmax;
mod split_k;
mod strided;

pub use args::{Act, Elem, Slice};
pub use attention::{attention, AttentionLayout};
pub use cast::cast;
pub use conv1d::conv1d;
pub use decoder::{gqa_attention, mul_elementwise, rms_norm, rotary};
pub use embedding::{bert_embeddings, embedding_gather, BertEmbeddings};
pub use gemm::{gemm, gemm_f32, MatArg};
pub use linear::{bias_act, linear};
pub use lt::lt_launches;
pub use norm::{add_layer_norm, layer_norm, LayerNormArgs, WARP_ROWS};
pub use pooling::{l2_normalize, mean_pool, seq_pool, SeqPool};
pub use softmax::softmax_mask;
pub use split_k::{linear_add_layer_norm, split_k_launches, tf32x3_launches};
pub use strided::{strided_copy, MAX_DIMS};
