//! The parameter blocks the op map writes (`streampool_tensor::msl::params`) have the size of
//! the kernels' C++ structs (`kernels/params.h`), entry point by entry point.

use std::mem::size_of;

use streampool_metal_host::params_size;
use streampool_tensor::msl::params::*;

#[test]
fn every_entry_point_takes_the_parameter_block_rust_writes() {
    let blocks = [
        ("linear", size_of::<LinearParams>()),
        ("add_layer_norm", size_of::<AddLayerNormParams>()),
        ("bert_embeddings", size_of::<BertEmbeddingsParams>()),
        ("embedding", size_of::<EmbeddingParams>()),
        ("attention", size_of::<AttentionParams>()),
        ("pool", size_of::<PoolParams>()),
        ("l2_normalize", size_of::<L2NormalizeParams>()),
        ("rms_norm", size_of::<RmsNormParams>()),
        ("rotary", size_of::<RotaryParams>()),
        ("mul", size_of::<MulParams>()),
        ("conv1d", size_of::<Conv1dParams>()),
    ];
    for (base, size) in blocks {
        for suffix in ["f32", "f16"] {
            let kernel = format!("{base}_{suffix}");
            assert_eq!(params_size(&kernel), Some(size), "{kernel}");
        }
    }
    for kernel in ["copy_strided_b16", "copy_strided_b32"] {
        assert_eq!(params_size(kernel), Some(size_of::<CopyStridedParams>()), "{kernel}");
    }
    assert_eq!(params_size("no_such_kernel"), None);
}
