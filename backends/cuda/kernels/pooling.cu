// Sentence-transformers pooling. `mean_pool`: out[b] = sum_s hidden[b, s] * mask[b, s] /
// max(sum_s mask[b, s], 1e-9) (mask null: every position). Grid (column tiles of 32, batch):
// a block owns 32 columns of one sequence, so even one sequence spreads over dim / 32 blocks.
// threadIdx.x is the column (a warp reads 32 consecutive elements of a token row), threadIdx.y
// a group of tokens (group y sums tokens y, y + blockDim.y, ...: the loads of many rows are in
// flight at once); the groups' partial sums meet in shared memory and are added in group order
// (the same result on every run). The L2 normalisation is `l2_normalize`, after it.
// `l2_normalize`: each row of x divided by max(||row||_2, 1e-12), one block per row.

#define POOL_GROUPS 16 // the largest blockDim.y

template <typename T>
__device__ void mean_pool(const T *hidden, const float *mask, T *out, int seq, int dim) {
    __shared__ float part[POOL_GROUPS][33];
    __shared__ float counts[POOL_GROUPS];
    const u64 b = blockIdx.y;
    const int c = blockIdx.x * 32 + threadIdx.x, g = threadIdx.y, groups = blockDim.y;
    float acc = 0.0f, cnt = 0.0f;
    // hidden * mask for every token, padding included (0 * a finite value is 0, as in
    // sentence-transformers' `token_embeddings * input_mask_expanded`): no branch on the mask,
    // so the loads of several tokens are in flight at once.
#pragma unroll 4
    for (int s = g; s < seq; s += groups) {
        const float m = mask ? mask[b * seq + s] : 1.0f;
        cnt += m;
        if (c < dim) acc = fmaf(to_f(hidden[(b * seq + s) * dim + c]), m, acc);
    }
    part[g][threadIdx.x] = acc;
    if (threadIdx.x == 0) counts[g] = cnt;
    __syncthreads();
    if (g == 0 && c < dim) {
        float sum = 0.0f, n = 0.0f;
        for (int i = 0; i < groups; i++) {
            sum += part[i][threadIdx.x];
            n += counts[i];
        }
        out[b * dim + c] = from_f<T>(sum / fmaxf(n, 1e-9f));
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

// `seq_pool`: the other sentence-transformers poolings, grid and block as `mean_pool`.
// mode 1, max: out[b, c] = max over s of (mask[b, s] == 0 ? -1e9 : hidden[b, s, c]), as
// sentence-transformers sets padding to -1e9 first. mode 2, last token: out[b] = hidden[b, n-1]
// with n = sum_s mask[b, s] (the last unmasked position of a right-padded sequence; the last
// position when mask is null). mode 3, weighted mean: out[b] = sum_s w_s hidden[b, s] / sum_s
// w_s with w_s = (s + 1) * mask[b, s] (positions weighted from 1, right padding).
template <typename T>
__device__ void seq_pool(const T *hidden, const float *mask, T *out, int seq, int dim, int mode) {
    __shared__ float part[POOL_GROUPS][33];
    __shared__ float counts[POOL_GROUPS];
    const u64 b = blockIdx.y;
    const int c = blockIdx.x * 32 + threadIdx.x, g = threadIdx.y, groups = blockDim.y;
    float acc = -3.0e38f, cnt = 0.0f;
    if (mode == 3) acc = 0.0f;
    for (int s = g; s < seq; s += groups) {
        const float m = mask ? mask[b * seq + s] : 1.0f;
        if (mode == 3) {
            const float w = m * (float)(s + 1);
            cnt += w;
            if (c < dim) acc = fmaf(to_f(hidden[(b * seq + s) * dim + c]), w, acc);
        } else {
            cnt += m;
            if (mode == 1 && c < dim) {
                acc = fmaxf(acc, m == 0.0f ? -1e9f : to_f(hidden[(b * seq + s) * dim + c]));
            }
        }
    }
    part[g][threadIdx.x] = acc;
    if (threadIdx.x == 0) counts[g] = cnt;
    __syncthreads();
    if (g == 0 && c < dim) {
        if (mode == 1) {
            float best = part[0][threadIdx.x];
            for (int i = 1; i < groups; i++) best = fmaxf(best, part[i][threadIdx.x]);
            out[b * dim + c] = from_f<T>(best);
        } else if (mode == 3) {
            float sum = 0.0f, n = 0.0f;
            for (int i = 0; i < groups; i++) {
                sum += part[i][threadIdx.x];
                n += counts[i];
            }
            out[b * dim + c] = from_f<T>(sum / fmaxf(n, 1e-9f));
        } else {
            float n = 0.0f;
            for (int i = 0; i < groups; i++) n += counts[i];
            const int last = max((int)n - 1, 0);
            out[b * dim + c] = hidden[(b * seq + last) * dim + c];
        }
    }
}

#define POOLING(T, S)                                                                         \
    extern "C" __global__ void seq_pool_##S(const T *hidden, const float *mask, T *out,       \
                                            int seq, int dim, int mode) {                     \
        seq_pool<T>(hidden, mask, out, seq, dim, mode);                                       \
    }                                                                                         \
    extern "C" __global__ void mean_pool_##S(const T *hidden, const float *mask, T *out,      \
                                             int seq, int dim) {                              \
        mean_pool<T>(hidden, mask, out, seq, dim);                                            \
    }                                                                                         \
    extern "C" __global__ void l2_normalize_##S(const T *x, T *out, int dim) {                \
        l2_normalize<T>(x, out, dim);                                                         \
    }
POOLING(float, f32)
POOLING(f16_t, f16)
POOLING(bf16_t, bf16)
