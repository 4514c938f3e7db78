// Embeddings. `embedding_gather`: out[t] = table[ids[t]]. `bert_embeddings`: out[t] =
// LayerNorm(word[ids[t]] + position[t % seq] + token_type[type_ids[t]]), one block per token,
// the row in registers (VPT per thread). An id past its table makes the row NaN (a trap would
// poison the whole context, every stream of it): check ids on the host where that matters.

template <typename T>
__device__ void embedding_gather(const unsigned *ids, const T *table, u64 rows, T *out, int dim) {
    const u64 t = blockIdx.x;
    const unsigned id = ids[t];
    for (int c = threadIdx.x; c < dim; c += blockDim.x)
        out[t * dim + c] = id < rows ? table[(u64)id * dim + c] : from_f<T>(__int_as_float(0x7fc00000));
}

template <typename T>
__device__ void bert_embeddings(const unsigned *ids, const unsigned *type_ids, const T *word,
                                u64 vocab, const T *position, const T *token_type, u64 types,
                                const T *gamma, const T *beta, float eps, T *out, int seq,
                                int dim) {
    __shared__ float scratch[32];
    const u64 t = blockIdx.x;
    const unsigned id = ids[t];
    const unsigned tt = type_ids ? type_ids[t] : 0u;
    const bool ok = id < vocab && tt < types;
    const T *w = word + (u64)(ok ? id : 0) * dim;
    const T *p = position + (t % (u64)seq) * dim;
    const T *ty = token_type + (u64)(ok ? tt : 0) * dim;
    float v[VPT];
#pragma unroll
    for (int i = 0; i < VPT; i++) {
        int c = threadIdx.x + i * blockDim.x;
        v[i] = c < dim ? to_f(w[c]) + to_f(p[c]) + to_f(ty[c]) : 0.0f;
        if (!ok && c < dim) v[i] = __int_as_float(0x7fc00000);
    }
    row_layer_norm<T>(v, dim, gamma, beta, eps, out + t * dim, scratch);
}

#define EMBEDDINGS(T, S)                                                                      \
    extern "C" __global__ void embedding_gather_##S(const unsigned *ids, const T *table,      \
                                                    u64 rows, T *out, int dim) {              \
        embedding_gather<T>(ids, table, rows, out, dim);                                      \
    }                                                                                         \
    extern "C" __global__ void bert_embeddings_##S(                                           \
        const unsigned *ids, const unsigned *type_ids, const T *word, u64 vocab,              \
        const T *position, const T *token_type, u64 types, const T *gamma, const T *beta,     \
        float eps, T *out, int seq, int dim) {                                                \
        bert_embeddings<T>(ids, type_ids, word, vocab, position, token_type, types, gamma,    \
                           beta, eps, out, seq, dim);                                         \
    }
EMBEDDINGS(float, f32)
EMBEDDINGS(f16_t, f16)
EMBEDDINGS(bf16_t, bf16)
