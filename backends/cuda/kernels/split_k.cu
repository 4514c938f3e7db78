// Consumers of a split-K linear. The GEMM wrote `nparts` (at most MAX_PARTS) f32 partial
// products of one [rows, cols] result, `stride` elements apart: element i of the product is
// sum_p parts[p * stride + i]. These kernels add the parts up, in part order (the same sum on
// every run), as they read them, so no reduction pass of its own runs between the GEMM and them.
//
// bias_act_parts: out[r, c] = act(sum + bias[c]) (bias may be null; act 0 identity, 1 exact
// GELU, 2 tanh, 3 GELU's tanh form), four consecutive elements per thread (cols % 4 == 0, parts 16-byte aligned,
// stride % 4 == 0), grid-stride.
// add_layer_norm_parts: out[r] = LayerNorm(sum[r] + bias + residual[r]) * gamma + beta, one
// block per row as add_layer_norm (rows dim apart; bias and residual may be null).

#define MAX_PARTS 8

template <typename T>
__device__ void bias_act_parts(const float *parts, u64 stride, int nparts, const T *bias, T *out,
                               u64 n, u64 cols, int act) {
    const u64 step = (u64)gridDim.x * blockDim.x;
    for (u64 q = (u64)blockIdx.x * blockDim.x + threadIdx.x; q < n / 4; q += step) {
        float4 v[MAX_PARTS];
#pragma unroll
        for (int p = 0; p < MAX_PARTS; p++)
            if (p < nparts) v[p] = reinterpret_cast<const float4 *>(parts + p * stride)[q];
        float4 s = v[0];
#pragma unroll
        for (int p = 1; p < MAX_PARTS; p++)
            if (p < nparts) {
                s.x += v[p].x;
                s.y += v[p].y;
                s.z += v[p].z;
                s.w += v[p].w;
            }
        const u64 i = 4 * q, c = i % cols;
        float r[4] = {s.x, s.y, s.z, s.w};
#pragma unroll
        for (int e = 0; e < 4; e++) {
            float t = r[e];
            if (bias) t += to_f(bias[c + e]);
            if (act == 1) t = gelu_erf(t);
            if (act == 2) t = tanhf(t);
            if (act == 3) t = gelu_tanh(t);
            out[i + e] = from_f<T>(t);
        }
    }
}

template <typename T>
__device__ void add_layer_norm_parts(const float *parts, u64 stride, int nparts,
                                     const T *residual, const T *bias, const T *gamma,
                                     const T *beta, T *out, int dim, float eps) {
    __shared__ float scratch[32];
    const u64 row = blockIdx.x;
    // Every part's loads are issued before the first add (unrolled over MAX_PARTS): one memory
    // latency for the row, not one per part.
    float v[VPT];
#pragma unroll
    for (int i = 0; i < VPT; i++) {
        const int c = threadIdx.x + i * blockDim.x;
        float x[MAX_PARTS];
#pragma unroll
        for (int p = 0; p < MAX_PARTS; p++)
            x[p] = c < dim && p < nparts ? parts[p * stride + row * dim + c] : 0.0f;
        float a = x[0];
#pragma unroll
        for (int p = 1; p < MAX_PARTS; p++)
            if (p < nparts) a += x[p];
        if (c < dim) {
            if (residual) a += to_f(residual[row * dim + c]);
            if (bias) a += to_f(bias[c]);
        }
        v[i] = a;
    }
    row_layer_norm<T>(v, dim, gamma, beta, eps, out + row * dim, scratch);
}

#define SPLIT_K(T, S)                                                                         \
    extern "C" __global__ void bias_act_parts_##S(const float *parts, u64 stride, int nparts, \
                                                  const T *bias, T *out, u64 n, u64 cols,     \
                                                  int act) {                                  \
        bias_act_parts<T>(parts, stride, nparts, bias, out, n, cols, act);                    \
    }                                                                                         \
    extern "C" __global__ void add_layer_norm_parts_##S(                                      \
        const float *parts, u64 stride, int nparts, const T *residual, const T *bias,         \
        const T *gamma, const T *beta, T *out, int dim, float eps) {                          \
        add_layer_norm_parts<T>(parts, stride, nparts, residual, bias, gamma, beta, out, dim, \
                                eps);                                                         \
    }
SPLIT_K(float, f32)
SPLIT_K(f16_t, f16)
SPLIT_K(bf16_t, bf16)
