// The kernels' parameter blocks and launch geometry, shared by the Metal Shading Language
// source and the host C++ build (the Rust mirror is `streampool_tensor::msl::params`). Every
// field is a 4-byte `uint` or `float`, so the layout is the same in MSL, C++ and Rust.
//
// Binding convention of every entry point: its buffers at indices 0, 1, ... in the order listed
// for it below, bound at offset 0; the parameter block at index SP_PARAMS_INDEX (setBytes).
// Tensors are located by element offsets (`*_off`, in elements of that operand's type) in the
// parameter block, so binding offsets never need alignment. An absent optional operand (`has_*`
// = 0) is bound to the output buffer and never read. Float operands are of the entry's type
// (`_f32`: float, `_f16`: half); masks are f32 (1 token, 0 padding), ids u32, the attention
// bias and the rotary table f32. Arithmetic is f32 in every kernel.
//
// Geometry: every dispatch is 1-D, `groups` threadgroups of `threads` threads.

#define SP_PARAMS_INDEX 8

// Threads per threadgroup of the row kernels (add_layer_norm, bert_embeddings, l2_normalize,
// rms_norm: one threadgroup per row) and of the element-wise kernels (embedding, pool, rotary,
// mul, conv1d, copy_strided: one thread per output element, groups = ceil(count / threads)).
// Row kernels must also work for any multiple of 32 up to this (a pipeline may allow fewer).
#define SP_ROW_THREADS 256
#define SP_ELEMENT_THREADS 256

// linear: output tiles of SP_LINEAR_TILE x SP_LINEAR_TILE, one per threadgroup of
// SP_LINEAR_THREADS threads (4 simdgroups of 32); groups = tiles_n * tiles_m with
// tiles_n = ceil(outputs / TILE), tiles_m = ceil(rows / TILE); group g computes rows
// [(g / tiles_n) * TILE, ...) and outputs [(g % tiles_n) * TILE, ...).
#define SP_LINEAR_TILE 32
#define SP_LINEAR_THREADS 128

// attention: one threadgroup per (sequence b, head h, query i), g = (b * heads + h) * seq + i;
// head_dim at most SP_ATTENTION_MAX_HEAD_DIM; any sequence length.
#define SP_ATTENTION_THREADS 128
#define SP_ATTENTION_MAX_HEAD_DIM 256

// Activation codes (`act`).
#define SP_ACT_IDENTITY 0u
#define SP_ACT_GELU 1u       // exact: x/2 (1 + erf(x / sqrt 2))
#define SP_ACT_TANH 2u
#define SP_ACT_GELU_TANH 3u  // x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))

// Pooling kinds (`kind`).
#define SP_POOL_MEAN 0u
#define SP_POOL_MAX 1u
#define SP_POOL_LAST_TOKEN 2u
#define SP_POOL_WEIGHTED_MEAN 3u

#define SP_MAX_RANK 6

// linear_{f32,f16}: x [rows, inputs], w [outputs, inputs], bias [outputs], out [rows, outputs].
// out = act(x . w^T + bias). Buffers: x, w, bias, out.
struct LinearParams {
    uint rows, inputs, outputs;
    uint x_off, w_off, bias_off, out_off;
    uint has_bias, act;
};

// add_layer_norm_{f32,f16}: out = LayerNorm(x + bias + residual) over rows of `dim`
// (gamma, beta [dim]; biased variance, eps inside the square root). Buffers: x, residual, bias,
// gamma, beta, out.
struct AddLayerNormParams {
    uint rows, dim;
    uint x_off, residual_off, bias_off, gamma_off, beta_off, out_off;
    uint has_residual, has_bias;
    float eps;
};

// bert_embeddings_{f32,f16}: token t = b * seq + s: LayerNorm(word[ids[t]] + position[s] +
// token_type[type_ids[t] or 0]); one threadgroup per token; an id past its table gives a row of
// NaN (a kernel cannot fail its command buffer). Buffers: ids, type_ids, word, position,
// token_type, gamma, beta, out.
struct BertEmbeddingsParams {
    uint batch, seq, dim, vocab, max_positions, type_vocab;
    uint ids_off, type_ids_off, word_off, position_off, token_type_off, gamma_off, beta_off,
        out_off;
    uint has_type_ids;
    float eps;
};

// embedding_{f32,f16}: out[t, :] = table[ids[t], :] (NaN row past the table). Buffers: ids,
// table, out.
struct EmbeddingParams {
    uint tokens, dim, vocab;
    uint ids_off, table_off, out_off;
};

// attention_{f32,f16}: softmax(scale q.k + bias + (1 - mask) * -FLT_MAX) v per sequence,
// head and query, as the CPU backend (a fully masked row becomes uniform). Row t = b * seq + i
// of q starts at q_off + t * ld_q, head h at + h * head_dim (likewise k, v with kv head
// h / (heads / kv_heads), out with ld_out). bias: f32 [heads, 2 * span + 1], key j of query i
// gets bias[h, j - i + span]. Buffers: q, k, v, mask, bias, out.
struct AttentionParams {
    uint batch, seq, heads, kv_heads, head_dim;
    uint ld_q, ld_k, ld_v, ld_out;
    uint q_off, k_off, v_off, mask_off, bias_off, out_off;
    uint has_mask, has_bias, span;
    float scale;
};

// pool_{f32,f16}: hidden [batch, seq, dim] -> out [batch, dim] as `kind` says, over the
// positions where mask [batch, seq] is 1 (all without a mask); one thread per (b, d).
// Buffers: hidden, mask, out.
struct PoolParams {
    uint batch, seq, dim;
    uint hidden_off, mask_off, out_off;
    uint has_mask, kind;
};

// l2_normalize_{f32,f16}: each row of `dim` divided by max(norm, 1e-12); out may be x.
// Buffers: x, out.
struct L2NormalizeParams {
    uint rows, dim;
    uint x_off, out_off;
};

// rms_norm_{f32,f16}: out = residual + x / sqrt(mean(x^2) + eps) * weight. Buffers: x,
// residual, weight, out.
struct RmsNormParams {
    uint rows, dim;
    uint x_off, residual_off, weight_off, out_off;
    uint has_residual;
    float eps;
};

// rotary_{f32,f16}: rotate-half rotary embedding, token s of a sequence at position s; table
// f32 [positions, head_dim] (cos in columns < head_dim / 2, sin after); one thread per
// (token, head, i < head_dim / 2). Buffers: x, table, out.
struct RotaryParams {
    uint batch, seq, heads, head_dim, positions;
    uint x_off, table_off, out_off;
};

// mul_{f32,f16}: out = a * b element-wise. Buffers: a, b, out.
struct MulParams {
    uint count;
    uint a_off, b_off, out_off;
};

// conv1d_{f32,f16}: out[b, o, l] = act(bias[o] + sum over the group's input channels c and
// taps k of x[b, c, l * stride + k * dilation - padding] * w[o, c', k]) (zero padding).
// Buffers: x, w, bias, out.
struct Conv1dParams {
    uint batch, in_channels, length, out_channels, kernel_size, out_length;
    uint stride, padding, dilation, groups;
    uint x_off, w_off, bias_off, out_off;
    uint has_bias, act;
};

// copy_strided_{b16,b32}: dst[i] = src[src_off + sum_d index_d(i) * strides[d]] for the
// row-major index of i in `shape`; elements of 2 (b16) or 4 (b32) bytes. Buffers: src, dst.
struct CopyStridedParams {
    uint rank, count;
    uint src_off, dst_off;
    uint shape[SP_MAX_RANK];
    uint strides[SP_MAX_RANK];
};
