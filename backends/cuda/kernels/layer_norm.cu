// out[r] = LayerNorm(x[r] + bias + residual[r]) * gamma + beta: one block per row, the row in
// registers (VPT values per thread), warp-shuffle block reductions. `bias` and `residual` may be
// null. Rows are `ld_*` elements apart, so views into wider buffers work.

template <typename T>
__device__ void add_layer_norm(const T *x, u64 ld_x, const T *residual, u64 ld_r, const T *bias,
                               const T *gamma, const T *beta, T *out, u64 ld_o, int dim,
                               float eps) {
    __shared__ float scratch[32];
    const u64 row = blockIdx.x;
    const T *xr = x + row * ld_x;
    const T *rr = residual ? residual + row * ld_r : nullptr;
    float v[VPT];
#pragma unroll
    for (int i = 0; i < VPT; i++) {
        int c = threadIdx.x + i * blockDim.x;
        float a = 0.0f;
        if (c < dim) {
            a = to_f(xr[c]);
            if (rr) a += to_f(rr[c]);
            if (bias) a += to_f(bias[c]);
        }
        v[i] = a;
    }
    row_layer_norm<T>(v, dim, gamma, beta, eps, out + row * ld_o, scratch);
}

#define ADD_LN(T, S)                                                                          \
    extern "C" __global__ void add_layer_norm_##S(const T *x, u64 ld_x, const T *residual,    \
                                                  u64 ld_r, const T *bias, const T *gamma,    \
                                                  const T *beta, T *out, u64 ld_o, int dim,   \
                                                  float eps) {                                \
        add_layer_norm<T>(x, ld_x, residual, ld_r, bias, gamma, beta, out, ld_o, dim, eps);   \
    }
ADD_LN(float, f32)
ADD_LN(f16_t, f16)
ADD_LN(bf16_t, bf16)

// Many rows of at most 32 * WV elements (WV = 8, 16 or 32): one warp per row, each lane holding
// WV elements in registers, warp shuffles for both reductions (no block barrier); blockDim.x /
// 32 rows per block. The same two-pass arithmetic as above. Rows of whole 8-byte vectors (every
// pointer 8-byte aligned) are read and written a vector at a time: lane l holds vectors l,
// l + 32, ...; else elements l, l + 32, .... Faster than a block per row on large batches;
// slower on a few hundred rows (fewer blocks in flight), see norm.rs.
template <typename T, int WV>
__device__ void add_layer_norm_warp(const T *x, const T *residual, const T *bias,
                                    const T *gamma, const T *beta, T *out, u64 rows, int dim,
                                    float eps) {
    constexpr int VW = 8 / sizeof(T); // elements per 8-byte vector
    typedef union { uint2 u; T e[VW]; } Vec;
    const int lane = threadIdx.x & 31;
    const u64 row = (u64)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (row >= rows) return; // whole warps leave: the shuffles below stay warp-uniform
    const T *xr = x + row * dim;
    const T *rr = residual ? residual + row * dim : nullptr;
    T *o = out + row * dim;
    const bool vec = dim % VW == 0 &&
                     (((u64)x | (u64)residual | (u64)bias | (u64)gamma | (u64)beta | (u64)out) &
                      7) == 0;
    // The column of v[i]: compile-time arithmetic once the loops are unrolled.
#define LN_COL(i) (vec ? (((i) / VW) * 32 + lane) * VW + (i) % VW : lane + 32 * (i))
    float v[WV], s = 0.0f;
    if (vec) {
#pragma unroll
        for (int j = 0; j < WV / VW; j++) {
            const int c = (j * 32 + lane) * VW;
            Vec a, r, b;
            if (c < dim) {
                a.u = *reinterpret_cast<const uint2 *>(xr + c);
                if (rr) r.u = *reinterpret_cast<const uint2 *>(rr + c);
                if (bias) b.u = *reinterpret_cast<const uint2 *>(bias + c);
            }
#pragma unroll
            for (int e = 0; e < VW; e++) {
                float t = 0.0f;
                if (c < dim) {
                    t = to_f(a.e[e]);
                    if (rr) t += to_f(r.e[e]);
                    if (bias) t += to_f(b.e[e]);
                }
                v[j * VW + e] = t;
                s += t;
            }
        }
    } else {
#pragma unroll
        for (int i = 0; i < WV; i++) {
            const int c = lane + 32 * i;
            float t = 0.0f;
            if (c < dim) {
                t = to_f(xr[c]);
                if (rr) t += to_f(rr[c]);
                if (bias) t += to_f(bias[c]);
            }
            v[i] = t;
            s += t;
        }
    }
    const float mean = warp_sum(s) / (float)dim;
    float q = 0.0f;
#pragma unroll
    for (int i = 0; i < WV; i++) {
        const float d = LN_COL(i) < dim ? v[i] - mean : 0.0f;
        q += d * d;
    }
    const float inv = rsqrtf(warp_sum(q) / (float)dim + eps);
    if (vec) {
#pragma unroll
        for (int j = 0; j < WV / VW; j++) {
            const int c = (j * 32 + lane) * VW;
            if (c < dim) {
                Vec g, bt, y;
                g.u = *reinterpret_cast<const uint2 *>(gamma + c);
                bt.u = *reinterpret_cast<const uint2 *>(beta + c);
#pragma unroll
                for (int e = 0; e < VW; e++)
                    y.e[e] = from_f<T>((v[j * VW + e] - mean) * inv * to_f(g.e[e]) + to_f(bt.e[e]));
                *reinterpret_cast<uint2 *>(o + c) = y.u;
            }
        }
    } else {
#pragma unroll
        for (int i = 0; i < WV; i++) {
            const int c = lane + 32 * i;
            if (c < dim) o[c] = from_f<T>((v[i] - mean) * inv * to_f(gamma[c]) + to_f(beta[c]));
        }
    }
#undef LN_COL
}

#define ADD_LN_WARP(T, S, WV)                                                                 \
    extern "C" __global__ void add_layer_norm_w##WV##_##S(                                    \
        const T *x, const T *residual, const T *bias, const T *gamma, const T *beta, T *out,  \
        u64 rows, int dim, float eps) {                                                       \
        add_layer_norm_warp<T, WV>(x, residual, bias, gamma, beta, out, rows, dim, eps);      \
    }
ADD_LN_WARP(float, f32, 8)
ADD_LN_WARP(float, f32, 16)
ADD_LN_WARP(float, f32, 32)
ADD_LN_WARP(f16_t, f16, 8)
ADD_LN_WARP(f16_t, f16, 16)
ADD_LN_WARP(f16_t, f16, 32)
ADD_LN_WARP(bf16_t, bf16, 8)
ADD_LN_WARP(bf16_t, bf16, 16)
ADD_LN_WARP(bf16_t, bf16, 32)
