// The ops Gemma-style encoders add: RMS norm (+ residual), rotary positions, element-wise
// product, and grouped-query attention. f32 arithmetic, T storage (f32, f16, bf16).

// out[r] = residual[r] + x[r] * rsqrt(mean(x[r]^2) + eps) * w: one warp per row, rows
// grid-strided; residual may be null.
template <typename T>
__device__ void rms_norm(const T *x, const T *residual, const T *w, T *out, u64 rows, int dim,
                         float eps) {
    const int lane = threadIdx.x & 31;
    const u64 warps = (u64)gridDim.x * (blockDim.x >> 5);
    for (u64 r = (u64)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5); r < rows; r += warps) {
        const T *xr = x + r * dim;
        float ss = 0.0f;
        for (int c = lane; c < dim; c += 32) {
            const float v = to_f(xr[c]);
            ss = fmaf(v, v, ss);
        }
        ss = warp_sum(ss);
        const float inv = rsqrtf(ss / (float)dim + eps);
        for (int c = lane; c < dim; c += 32) {
            float y = to_f(xr[c]) * inv * to_f(w[c]);
            if (residual) y = to_f(from_f<T>(y)) + to_f(residual[r * dim + c]);
            out[r * dim + c] = from_f<T>(y);
        }
    }
}

// Rotate-half rotary embedding: x, out [tokens, heads * hd], token t at position t % seq;
// table [positions, hd] f32: cos in columns < hd / 2, sin after. Grid-stride over
// (token, head, i < hd / 2).
template <typename T>
__device__ void rotary(const T *x, const float *table, T *out, u64 tokens, int seq, int heads,
                       int hd) {
    const int half = hd / 2;
    const u64 n = tokens * heads * half;
    const u64 step = (u64)gridDim.x * blockDim.x;
    for (u64 e = (u64)blockIdx.x * blockDim.x + threadIdx.x; e < n; e += step) {
        const int i = (int)(e % half);
        const u64 th = e / half; // token * heads + head
        const u64 t = th / heads;
        const float *angles = table + (t % seq) * hd;
        const float c = angles[i], s = angles[half + i];
        const u64 at = th * hd;
        const float a = to_f(x[at + i]), b = to_f(x[at + i + half]);
        out[at + i] = from_f<T>(a * c - b * s);
        out[at + i + half] = from_f<T>(b * c + a * s);
    }
}

template <typename T> __device__ void mul(const T *a, const T *b, T *out, u64 n) {
    const u64 step = (u64)gridDim.x * blockDim.x;
    for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step)
        out[i] = from_f<T>(to_f(a[i]) * to_f(b[i]));
}

// Grouped-query attention: grid (ceil(seq / 16), heads, batch), 4 warps a block, each warp
// owning R = 4 query rows (so each key and value row it loads serves four queries). Query head h
// reads key / value head h / (heads / kv_heads). Each lane holds D = HD / 32 of a row's
// dimensions; keys are visited one at a time with an online softmax (scores never reach memory).
// Score = q . k * scale + bias[h][key - query + span] (bias may be null) + the padding mask's
// (1 - m) * -FLT_MAX. General (any seq, head sizes 32..256) rather than fast: the BERT kernels
// of attention.cu tile keys in shared memory and use tensor cores.
#define GQA_R 4
template <typename T, int D>
__device__ void gqa_attention(const T *q, const T *k, const T *v, const float *mask,
                              const float *bias, int span, T *out, int seq, int heads,
                              int kv_heads, float scale) {
    constexpr int HD = 32 * D;
    const int lane = threadIdx.x & 31;
    const int row0 = (blockIdx.x * 4 + (threadIdx.x >> 5)) * GQA_R;
    const int h = blockIdx.y, b = blockIdx.z;
    if (row0 >= seq) return;
    const int kvh = h / (heads / kv_heads);
    const u64 ld_q = (u64)heads * HD, ld_kv = (u64)kv_heads * HD;
    const u64 base = (u64)b * seq;
    float qv[GQA_R][D], acc[GQA_R][D], m[GQA_R], l[GQA_R];
#pragma unroll
    for (int r = 0; r < GQA_R; r++) {
        // Rows past seq compute on row0's query (their results are not written).
        const int row = row0 + r < seq ? row0 + r : row0;
        const T *qr = q + (base + row) * ld_q + (u64)h * HD;
#pragma unroll
        for (int d = 0; d < D; d++) {
            qv[r][d] = to_f(qr[lane + 32 * d]) * scale;
            acc[r][d] = 0.0f;
        }
        m[r] = -INFINITY;
        l[r] = 0.0f;
    }
    const float *bias_h = bias ? bias + (u64)h * (2 * span + 1) + span : nullptr;
    for (int j = 0; j < seq; j++) {
        const T *kr = k + (base + j) * ld_kv + (u64)kvh * HD;
        const T *vr = v + (base + j) * ld_kv + (u64)kvh * HD;
        float kk[D], vv[D];
#pragma unroll
        for (int d = 0; d < D; d++) {
            kk[d] = to_f(kr[lane + 32 * d]);
            vv[d] = to_f(vr[lane + 32 * d]);
        }
        const float masked = mask ? (1.0f - mask[base + j]) * -3.402823466e38f : 0.0f;
#pragma unroll
        for (int r = 0; r < GQA_R; r++) {
            float dot = 0.0f;
#pragma unroll
            for (int d = 0; d < D; d++) dot = fmaf(qv[r][d], kk[d], dot);
            float s = warp_sum(dot);
            const int row = row0 + r < seq ? row0 + r : row0;
            if (bias_h) s += bias_h[j - row];
            s += masked;
            const float m_new = fmaxf(m[r], s);
            const float corr = __expf(m[r] - m_new);
            const float p = __expf(s - m_new);
            l[r] = l[r] * corr + p;
            m[r] = m_new;
#pragma unroll
            for (int d = 0; d < D; d++) acc[r][d] = fmaf(p, vv[d], acc[r][d] * corr);
        }
    }
#pragma unroll
    for (int r = 0; r < GQA_R; r++) {
        if (row0 + r >= seq) break;
        T *o = out + (base + row0 + r) * ld_q + (u64)h * HD;
        const float inv = 1.0f / l[r];
#pragma unroll
        for (int d = 0; d < D; d++) o[lane + 32 * d] = from_f<T>(acc[r][d] * inv);
    }
}

#define DECODER(T, S)                                                                         \
    extern "C" __global__ void rms_norm_##S(const T *x, const T *residual, const T *w, T *out,  \
                                            u64 rows, int dim, float eps) {                   \
        rms_norm<T>(x, residual, w, out, rows, dim, eps);                                     \
    }                                                                                         \
    extern "C" __global__ void rotary_##S(const T *x, const float *table, T *out, u64 tokens,  \
                                          int seq, int heads, int hd) {                       \
        rotary<T>(x, table, out, tokens, seq, heads, hd);                                     \
    }                                                                                         \
    extern "C" __global__ void mul_##S(const T *a, const T *b, T *out, u64 n) {               \
        mul<T>(a, b, out, n);                                                                 \
    }
DECODER(float, f32)
DECODER(f16_t, f16)
DECODER(bf16_t, bf16)

#define GQA(T, S, D)                                                                          \
    extern "C" __global__ void __launch_bounds__(128)                                        \
        gqa_attention_##S##_d##D(const T *q, const T *k, const T *v, const float *mask,       \
                                 const float *bias, int span, T *out, int seq, int heads,     \
                                 int kv_heads, float scale) {                                 \
        gqa_attention<T, D>(q, k, v, mask, bias, span, out, seq, heads, kv_heads, scale);    \
    }
GQA(float, f32, 1)
GQA(float, f32, 2)
GQA(float, f32, 4)
GQA(float, f32, 8)
GQA(f16_t, f16, 1)
GQA(f16_t, f16, 2)
GQA(f16_t, f16, 4)
GQA(f16_t, f16, 8)
GQA(bf16_t, bf16, 1)
GQA(bf16_t, bf16, 2)
GQA(bf16_t, bf16, 4)
GQA(bf16_t, bf16, 8)
