//! The kernel files of the ops, each compiled with `kernels/common.cuh` in front.

use crate::kernels::Module;

macro_rules! module {
    ($file:literal, [$($f:literal),* $(,)?]) => {
        Module {
            name: $file,
            source: concat!(
                include_str!("../../kernels/common.cuh"),
                include_str!(concat!("../../kernels/", $file))
            ),
            functions: &[$($f),*],
        }
    };
}

pub(crate) const ACTIVATION: Module =
    module!("activation.cu", ["bias_act_f32", "bias_act_f16", "bias_act_bf16"]);

pub(crate) const SPLIT_K: Module = module!(
    "split_k.cu",
    [
        "bias_act_parts_f32",
        "bias_act_parts_f16",
        "bias_act_parts_bf16",
        "add_layer_norm_parts_f32",
        "add_layer_norm_parts_f16",
        "add_layer_norm_parts_bf16",
    ]
);

pub(crate) const TF32X3: Module = module!("tf32x3.cu", ["gemm_tf32x3_parts"]);

pub(crate) const LAYER_NORM: Module = module!(
    "layer_norm.cu",
    [
        "add_layer_norm_f32",
        "add_layer_norm_f16",
        "add_layer_norm_bf16",
        "add_layer_norm_w8_f32",
        "add_layer_norm_w16_f32",
        "add_layer_norm_w32_f32",
        "add_layer_norm_w8_f16",
        "add_layer_norm_w16_f16",
        "add_layer_norm_w32_f16",
        "add_layer_norm_w8_bf16",
        "add_layer_norm_w16_bf16",
        "add_layer_norm_w32_bf16",
    ]
);

pub(crate) const SOFTMAX: Module =
    module!("softmax.cu", ["softmax_mask_f32", "softmax_mask_f16", "softmax_mask_bf16"]);

pub(crate) const ATTENTION: Module = module!(
    "attention.cu",
    [
        "attention_f32_d32",
        "attention_f32_d64",
        "attention_f32_d128",
        "attention_f16_d32",
        "attention_f16_d64",
        "attention_f16_d128",
        "attention_bf16_d32",
        "attention_bf16_d64",
        "attention_bf16_d128",
        "attention_tc_f16_d32",
        "attention_tc_f16_d64",
        "attention_tc_f16_d128",
        "attention_tc_bf16_d32",
        "attention_tc_bf16_d64",
        "attention_tc_bf16_d128",
        "attention_fa_f16_d32",
        "attention_fa_f16_d64",
        "attention_fa_f16_d128",
        "attention_fa_bf16_d32",
        "attention_fa_bf16_d64",
        "attention_fa_bf16_d128",
        "attention_w8_f32_d32",
        "attention_w8_f32_d64",
    ]
);

pub(crate) const EMBEDDING: Module = module!(
    "embedding.cu",
    [
        "embedding_gather_f32",
        "embedding_gather_f16",
        "embedding_gather_bf16",
        "bert_embeddings_f32",
        "bert_embeddings_f16",
        "bert_embeddings_bf16",
    ]
);

pub(crate) const POOLING: Module = module!(
    "pooling.cu",
    [
        "mean_pool_f32",
        "mean_pool_f16",
        "mean_pool_bf16",
        "seq_pool_f32",
        "seq_pool_f16",
        "seq_pool_bf16",
        "l2_normalize_f32",
        "l2_normalize_f16",
        "l2_normalize_bf16",
    ]
);

pub(crate) const STRIDED: Module = module!(
    "strided.cu",
    ["strided_copy_b1", "strided_copy_b2", "strided_copy_b4", "strided_copy_b8"]
);

pub(crate) const CAST: Module =
    module!("cast.cu", ["cast_f32_f16", "cast_f32_bf16", "cast_f16_f32", "cast_bf16_f32"]);

pub(crate) const CONV1D: Module = module!("conv1d.cu", ["conv1d_f32", "conv1d_f16", "conv1d_bf16"]);

pub(crate) const DECODER: Module = module!(
    "decoder.cu",
    [
        "rms_norm_f32",
        "rms_norm_f16",
        "rms_norm_bf16",
        "rotary_f32",
        "rotary_f16",
        "rotary_bf16",
        "mul_f32",
        "mul_f16",
        "mul_bf16",
        "gqa_attention_f32_d1",
        "gqa_attention_f32_d2",
        "gqa_attention_f32_d4",
        "gqa_attention_f32_d8",
        "gqa_attention_f16_d1",
        "gqa_attention_f16_d2",
        "gqa_attention_f16_d4",
        "gqa_attention_f16_d8",
        "gqa_attention_bf16_d1",
        "gqa_attention_bf16_d2",
        "gqa_attention_bf16_d4",
        "gqa_attention_bf16_d8",
    ]
);
