// The Metal Shading Language entry points of the model ops (the library's source is dialect.h +
// params.h + ops.h + this file). Never compiled by a Metal compiler: host.cpp runs the same
// kernel bodies (ops.h) on the CPU, which proves their arithmetic, not the Metal API use here.
//
// Each entry binds its buffers at indices 0.. in params.h's order and the parameter block at
// SP_PARAMS_INDEX. Threadgroup kernels declare the body's Shared (threadgroup memory) and Local
// (per-thread state) and run its phases with a threadgroup barrier after each; the phase count
// depends only on the parameters and the group size, so every thread reaches every barrier.

#define SP_THREAD_ARGS                                   \
    uint sp_group [[threadgroup_position_in_grid]],      \
    uint sp_tid [[thread_position_in_threadgroup]],      \
    uint sp_threads [[threads_per_threadgroup]],         \
    uint sp_simd [[simdgroup_index_in_threadgroup]],     \
    uint sp_lane [[thread_index_in_simdgroup]]

// Runs the phases of threadgroup kernel K (a typedef in scope) with parameters P; the
// arguments after P are its buffers.
#define SP_RUN_PHASES(K, P, ...)                                              \
    threadgroup K::Shared sp_shared;                                          \
    K::Local sp_local;                                                        \
    const SpThread sp_th = {sp_group, sp_tid, sp_threads, sp_simd, sp_lane}; \
    const uint sp_phases = K::phases(P, sp_threads);                          \
    for (uint sp_ph = 0; sp_ph < sp_phases; ++sp_ph) {                        \
        K::phase(sp_ph, P, __VA_ARGS__, sp_shared, sp_local, sp_th);          \
        threadgroup_barrier(mem_flags::mem_threadgroup);                      \
    }

// The global index of an element kernel's thread.
#define SP_GID (sp_group * sp_threads + sp_tid)

// linear_{f32,f16}: x, w, bias, out.
#define SP_LINEAR_ENTRY(NAME, T)                                                          \
    kernel void NAME(device const T* x [[buffer(0)]], device const T* w [[buffer(1)]],    \
                     device const T* bias [[buffer(2)]], device T* out [[buffer(3)]],     \
                     constant LinearParams& p [[buffer(SP_PARAMS_INDEX)]], SP_THREAD_ARGS) { \
        typedef SpLinear<T> K;                                                            \
        SP_RUN_PHASES(K, p, x, w, bias, out)                                              \
    }
SP_LINEAR_ENTRY(linear_f32, float)
SP_LINEAR_ENTRY(linear_f16, half)

// add_layer_norm_{f32,f16}: x, residual, bias, gamma, beta, out.
#define SP_ADD_LAYER_NORM_ENTRY(NAME, T)                                                   \
    kernel void NAME(device const T* x [[buffer(0)]], device const T* residual [[buffer(1)]], \
                     device const T* bias [[buffer(2)]], device const T* gamma [[buffer(3)]], \
                     device const T* beta [[buffer(4)]], device T* out [[buffer(5)]],      \
                     constant AddLayerNormParams& p [[buffer(SP_PARAMS_INDEX)]],           \
                     SP_THREAD_ARGS) {                                                     \
        typedef SpAddLayerNorm<T> K;                                                       \
        SP_RUN_PHASES(K, p, x, residual, bias, gamma, beta, out)                           \
    }
SP_ADD_LAYER_NORM_ENTRY(add_layer_norm_f32, float)
SP_ADD_LAYER_NORM_ENTRY(add_layer_norm_f16, half)

// bert_embeddings_{f32,f16}: ids, type_ids, word, position, token_type, gamma, beta, out.
#define SP_BERT_EMBEDDINGS_ENTRY(NAME, T)                                                  \
    kernel void NAME(device const uint* ids [[buffer(0)]],                                 \
                     device const uint* type_ids [[buffer(1)]],                            \
                     device const T* word [[buffer(2)]], device const T* position [[buffer(3)]], \
                     device const T* token_type [[buffer(4)]],                             \
                     device const T* gamma [[buffer(5)]], device const T* beta [[buffer(6)]], \
                     device T* out [[buffer(7)]],                                          \
                     constant BertEmbeddingsParams& p [[buffer(SP_PARAMS_INDEX)]],         \
                     SP_THREAD_ARGS) {                                                     \
        typedef SpBertEmbeddings<T> K;                                                     \
        SP_RUN_PHASES(K, p, ids, type_ids, word, position, token_type, gamma, beta, out)   \
    }
SP_BERT_EMBEDDINGS_ENTRY(bert_embeddings_f32, float)
SP_BERT_EMBEDDINGS_ENTRY(bert_embeddings_f16, half)

// attention_{f32,f16}: q, k, v, mask, bias, out.
#define SP_ATTENTION_ENTRY(NAME, T)                                                        \
    kernel void NAME(device const T* q [[buffer(0)]], device const T* k [[buffer(1)]],     \
                     device const T* v [[buffer(2)]], device const float* mask [[buffer(3)]], \
                     device const float* bias [[buffer(4)]], device T* out [[buffer(5)]],  \
                     constant AttentionParams& p [[buffer(SP_PARAMS_INDEX)]],              \
                     SP_THREAD_ARGS) {                                                     \
        typedef SpAttention<T> K;                                                          \
        SP_RUN_PHASES(K, p, q, k, v, mask, bias, out)                                      \
    }
SP_ATTENTION_ENTRY(attention_f32, float)
SP_ATTENTION_ENTRY(attention_f16, half)

// l2_normalize_{f32,f16}: x, out (out may be x).
#define SP_L2_NORMALIZE_ENTRY(NAME, T)                                                     \
    kernel void NAME(device const T* x [[buffer(0)]], device T* out [[buffer(1)]],         \
                     constant L2NormalizeParams& p [[buffer(SP_PARAMS_INDEX)]],            \
                     SP_THREAD_ARGS) {                                                     \
        typedef SpL2Normalize<T> K;                                                        \
        SP_RUN_PHASES(K, p, x, out)                                                        \
    }
SP_L2_NORMALIZE_ENTRY(l2_normalize_f32, float)
SP_L2_NORMALIZE_ENTRY(l2_normalize_f16, half)

// rms_norm_{f32,f16}: x, residual, weight, out.
#define SP_RMS_NORM_ENTRY(NAME, T)                                                         \
    kernel void NAME(device const T* x [[buffer(0)]], device const T* residual [[buffer(1)]], \
                     device const T* weight [[buffer(2)]], device T* out [[buffer(3)]],    \
                     constant RmsNormParams& p [[buffer(SP_PARAMS_INDEX)]], SP_THREAD_ARGS) { \
        typedef SpRmsNorm<T> K;                                                            \
        SP_RUN_PHASES(K, p, x, residual, weight, out)                                      \
    }
SP_RMS_NORM_ENTRY(rms_norm_f32, float)
SP_RMS_NORM_ENTRY(rms_norm_f16, half)

// embedding_{f32,f16}: ids, table, out.
#define SP_EMBEDDING_ENTRY(NAME, T)                                                        \
    kernel void NAME(device const uint* ids [[buffer(0)]], device const T* table [[buffer(1)]], \
                     device T* out [[buffer(2)]],                                          \
                     constant EmbeddingParams& p [[buffer(SP_PARAMS_INDEX)]], SP_THREAD_ARGS) { \
        SpEmbedding<T>::run(p, ids, table, out, SP_GID);                                   \
    }
SP_EMBEDDING_ENTRY(embedding_f32, float)
SP_EMBEDDING_ENTRY(embedding_f16, half)

// pool_{f32,f16}: hidden, mask, out.
#define SP_POOL_ENTRY(NAME, T)                                                             \
    kernel void NAME(device const T* hidden [[buffer(0)]], device const float* mask [[buffer(1)]], \
                     device T* out [[buffer(2)]],                                          \
                     constant PoolParams& p [[buffer(SP_PARAMS_INDEX)]], SP_THREAD_ARGS) { \
        SpPool<T>::run(p, hidden, mask, out, SP_GID);                                      \
    }
SP_POOL_ENTRY(pool_f32, float)
SP_POOL_ENTRY(pool_f16, half)

// rotary_{f32,f16}: x, table, out.
#define SP_ROTARY_ENTRY(NAME, T)                                                           \
    kernel void NAME(device const T* x [[buffer(0)]], device const float* table [[buffer(1)]], \
                     device T* out [[buffer(2)]],                                          \
                     constant RotaryParams& p [[buffer(SP_PARAMS_INDEX)]], SP_THREAD_ARGS) { \
        SpRotary<T>::run(p, x, table, out, SP_GID);                                        \
    }
SP_ROTARY_ENTRY(rotary_f32, float)
SP_ROTARY_ENTRY(rotary_f16, half)

// mul_{f32,f16}: a, b, out.
#define SP_MUL_ENTRY(NAME, T)                                                              \
    kernel void NAME(device const T* a [[buffer(0)]], device const T* b [[buffer(1)]],     \
                     device T* out [[buffer(2)]],                                          \
                     constant MulParams& p [[buffer(SP_PARAMS_INDEX)]], SP_THREAD_ARGS) {  \
        SpMul<T>::run(p, a, b, out, SP_GID);                                               \
    }
SP_MUL_ENTRY(mul_f32, float)
SP_MUL_ENTRY(mul_f16, half)

// conv1d_{f32,f16}: x, w, bias, out.
#define SP_CONV1D_ENTRY(NAME, T)                                                           \
    kernel void NAME(device const T* x [[buffer(0)]], device const T* w [[buffer(1)]],     \
                     device const T* bias [[buffer(2)]], device T* out [[buffer(3)]],      \
                     constant Conv1dParams& p [[buffer(SP_PARAMS_INDEX)]], SP_THREAD_ARGS) { \
        SpConv1d<T>::run(p, x, w, bias, out, SP_GID);                                      \
    }
SP_CONV1D_ENTRY(conv1d_f32, float)
SP_CONV1D_ENTRY(conv1d_f16, half)

// copy_strided_{b16,b32}: src, dst; elements copied as bits.
#define SP_COPY_STRIDED_ENTRY(NAME, E)                                                     \
    kernel void NAME(device const E* src [[buffer(0)]], device E* dst [[buffer(1)]],       \
                     constant CopyStridedParams& p [[buffer(SP_PARAMS_INDEX)]],            \
                     SP_THREAD_ARGS) {                                                     \
        SpCopyStrided<E>::run(p, src, dst, SP_GID);                                        \
    }
SP_COPY_STRIDED_ENTRY(copy_strided_b16, ushort)
SP_COPY_STRIDED_ENTRY(copy_strided_b32, uint)

// The portable ops of streampool_core::Stream (no model op uses them).

// dst[i] = value for every u32 word.
kernel void fill_u32(device uint *dst [[buffer(0)]],
                     constant ulong &words [[buffer(1)]],
                     constant uint &value [[buffer(2)]],
                     uint index [[thread_position_in_grid]],
                     uint threads [[threads_per_grid]]) {
    for (ulong i = index; i < words; i += threads) {
        dst[i] = value;
    }
}

// buf[i] = buf[i] * mul + add, wrapping (unsigned arithmetic is modular in MSL, as in C++).
kernel void mul_add_u32(device uint *buf [[buffer(0)]],
                        constant ulong &words [[buffer(1)]],
                        constant uint &mul [[buffer(2)]],
                        constant uint &add [[buffer(3)]],
                        uint index [[thread_position_in_grid]],
                        uint threads [[threads_per_grid]]) {
    for (ulong i = index; i < words; i += threads) {
        buf[i] = buf[i] * mul + add;
    }
}

// dst[dst_offset + i] = src[src_offset + i] for i < bytes. Offsets are arguments rather than
// binding offsets, so they need no alignment.
kernel void copy_bytes(device const uchar *src [[buffer(0)]],
                       device uchar *dst [[buffer(1)]],
                       constant ulong &src_offset [[buffer(2)]],
                       constant ulong &dst_offset [[buffer(3)]],
                       constant ulong &bytes [[buffer(4)]],
                       uint index [[thread_position_in_grid]],
                       uint threads [[threads_per_grid]]) {
    for (ulong i = index; i < bytes; i += threads) {
        dst[dst_offset + i] = src[src_offset + i];
    }
}

// Does nothing. Encoded before the signal of an event created with timing, so that the command
// buffer carrying the signal has GPU work and Metal reports its GPUEndTime.
kernel void stamp() {}
