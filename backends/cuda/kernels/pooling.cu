// Sentence-transformers pooling. `mean_pool`: out[b] = sum_s hidden[b, s] * mask[b, s] /
// max(sum_s mask[b, s], 1e-9) (mask null: every position), then, when `normalize`, divided by
// max(||out[b]||_2, 1e-12). One block per sequence, threads over the hidden dimension (coalesced
// reads of each token row), the pooled row in registers (VPT per thread).
// `l2_normalize`: each row of x divided by max(||row||_2, 1e-12), one block per row.

template <typename T>
__device__ void mean_pool(const T *hidden, const float *mask, T *out, int seq, int dim,
                          int normalize) {
    __shared__ float scratch[32];
    const u64 b = blockIdx.x;
    float count = 0.0f;
    float acc[VPT];
#pragma unroll
    for (int i = 0; i < VPT; i++) acc[i] = 0.0f;
    for (int s = 0; s < seq; s++) {
        const float m = mask ? mask[b * seq + s] : 1.0f;
        count += m;
        if (m == 0.0f) continue;
        const T *row = hidden + (b * seq + s) * dim;
#pragma unroll
        for (int i = 0; i < VPT; i++) {
            int c = threadIdx.x + i * blockDim.x;
            if (c < dim) acc[i] = fmaf(to_f(row[c]), m, acc[i]);
        }
    }
    const float inv_count = 1.0f / fmaxf(count, 1e-9f);
    float sq = 0.0f;
#pragma unroll
    for (int i = 0; i < VPT; i++) {
        acc[i] *= inv_count;
        sq += acc[i] * acc[i]; // 0 past dim
    }
    float scale = 1.0f;
    if (normalize) scale = 1.0f / fmaxf(sqrtf(block_sum(sq, scratch)), 1e-12f);
#pragma unroll
    for (int i = 0; i < VPT; i++) {
        int c = threadIdx.x + i * blockDim.x;
        if (c < dim) out[b * dim + c] = from_f<T>(acc[i] * scale);
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
