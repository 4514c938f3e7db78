// Sentence-transformers pooling. `mean_pool`: out[b] = sum_s hidden[b, s] * mask[b, s] /
// max(sum_s mask[b, s], 1e-9) (mask null: every position), then, when `normalize`, divided by
// max(||out[b]||_2, 1e-12). One block per sequence: threadIdx.x over the hidden dimension
// (coalesced reads of each token row, VPT values per thread), threadIdx.y over groups of tokens
// (group y sums tokens y, y + blockDim.y, ...: the loads of a sequence's rows overlap instead of
// running one token after another); the groups' partial sums meet in dynamic shared memory
// (blockDim.y * dim floats), added in group order (the same result on every run).
// `l2_normalize`: each row of x divided by max(||row||_2, 1e-12), one block per row.

template <typename T>
__device__ void mean_pool(const T *hidden, const float *mask, T *out, int seq, int dim,
                          int normalize) {
    extern __shared__ float part[]; // [blockDim.y][dim]
    __shared__ float scratch[32];
    const u64 b = blockIdx.x;
    const int nt = blockDim.x * blockDim.y, t = threadIdx.y * blockDim.x + threadIdx.x;
    float cnt = 0.0f;
    for (int s = t; s < seq; s += nt) cnt += mask ? mask[b * seq + s] : 1.0f;
    float acc[VPT];
#pragma unroll
    for (int i = 0; i < VPT; i++) acc[i] = 0.0f;
    // hidden * mask for every token, padding included (0 * a finite value is 0, as in
    // sentence-transformers' `token_embeddings * input_mask_expanded`): no branch on the mask,
    // so the loads of several tokens are in flight at once.
#pragma unroll 4
    for (int s = threadIdx.y; s < seq; s += blockDim.y) {
        const float m = mask ? mask[b * seq + s] : 1.0f;
        const T *row = hidden + (b * seq + s) * dim;
#pragma unroll
        for (int i = 0; i < VPT; i++) {
            int c = threadIdx.x + i * blockDim.x;
            if (c < dim) acc[i] = fmaf(to_f(row[c]), m, acc[i]);
        }
    }
#pragma unroll
    for (int i = 0; i < VPT; i++) {
        int c = threadIdx.x + i * blockDim.x;
        if (c < dim) part[threadIdx.y * dim + c] = acc[i];
    }
    // block_sum synchronises the block: every partial sum is in `part` after it.
    const float inv_count = 1.0f / fmaxf(block_sum(cnt, scratch), 1e-9f);
    // Thread t finishes columns t, t + nt, ... (nt >= blockDim.x, so at most VPT of them).
    float r[VPT], sq = 0.0f;
#pragma unroll
    for (int i = 0; i < VPT; i++) {
        int c = t + i * nt;
        float v = 0.0f;
        if (c < dim) {
            for (int g = 0; g < (int)blockDim.y; g++) v += part[g * dim + c];
            v *= inv_count;
        }
        r[i] = v;
        sq += v * v;
    }
    float scale = 1.0f;
    if (normalize) scale = 1.0f / fmaxf(sqrtf(block_sum(sq, scratch)), 1e-12f);
#pragma unroll
    for (int i = 0; i < VPT; i++) {
        int c = t + i * nt;
        if (c < dim) out[b * dim + c] = from_f<T>(r[i] * scale);
    }
}

template <typename T>
__device__ void l2_normalize(const T *x, T *out, int dim) {
    __shared__ float scratch[32];
    const u64 r = blockIdx.x;
    float v[VPT], sq = 0.0f;
#pragma unroll
    for (int i = 0; i < VPT; i++) {
        int c = threadIdx.x + i * blockDim.x;
        v[i] = c < dim ? to_f(x[r * dim + c]) : 0.0f;
        sq += v[i] * v[i];
    }
    const float scale = 1.0f / fmaxf(sqrtf(block_sum(sq, scratch)), 1e-12f);
#pragma unroll
    for (int i = 0; i < VPT; i++) {
        int c = threadIdx.x + i * blockDim.x;
        if (c < dim) out[r * dim + c] = from_f<T>(v[i] * scale);
    }
}

#define POOLING(T, S)                                                                         \
    extern "C" __global__ void mean_pool_##S(const T *hidden, const float *mask, T *out,      \
                                             int seq, int dim, int normalize) {               \
        mean_pool<T>(hidden, mask, out, seq, dim, normalize);                                 \
    }                                                                                         \
    extern "C" __global__ void l2_normalize_##S(const T *x, T *out, int dim) {                \
        l2_normalize<T>(x, out, dim);                                                         \
    }
POOLING(float, f32)
POOLING(f16_t, f16)
POOLING(bf16_t, bf16)
