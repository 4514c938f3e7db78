// out[r, c] = act(x[r, c] + bias[c]): the tail of a linear layer run as a plain GEMM. `bias` may
// be null; act 0 = identity, 1 = exact GELU, 2 = tanh, 3 = GELU (tanh form). In place when out == x. Grid-stride.

template <typename T>
__device__ __forceinline__ T bias_act_one(T x, const T *bias, u64 c, int act) {
    float v = to_f(x);
    if (bias) v += to_f(bias[c]);
    if (act == 1) v = gelu_erf(v);
    if (act == 2) v = tanhf(v);
    if (act == 3) v = gelu_tanh(v);
    return from_f<T>(v);
}

template <typename T>
__device__ void bias_act(const T *x, const T *bias, T *out, u64 n, u64 cols, int act) {
    const u64 stride = (u64)gridDim.x * blockDim.x;
    const u64 tid = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    // 16 bytes per load and store when rows are whole vectors and x, out are 16-byte aligned:
    // many more bytes in flight per thread (the same arithmetic per element).
    constexpr int V = 16 / sizeof(T);
    if (cols % V == 0 && (((u64)x | (u64)out) & 15) == 0) {
        const u64 nv = n / V, vcols = cols / V;
        const u64 step = stride % vcols;
        u64 c = tid % vcols;
        for (u64 i = tid; i < nv; i += stride) {
            union { uint4 u; T e[V]; } a;
            a.u = reinterpret_cast<const uint4 *>(x)[i];
#pragma unroll
            for (int e = 0; e < V; e++) a.e[e] = bias_act_one(a.e[e], bias, c * V + e, act);
            reinterpret_cast<uint4 *>(out)[i] = a.u;
            c += step;
            if (c >= vcols) c -= vcols;
        }
        return;
    }
    // The bias column of element i, advanced by stride (mod cols) without a 64-bit division
    // per element.
    const u64 step = stride % cols;
    u64 c = tid % cols;
    for (u64 i = tid; i < n; i += stride) {
        out[i] = bias_act_one(x[i], bias, c, act);
        c += step;
        if (c >= cols) c -= cols;
    }
}

#define BIAS_ACT(T, S)                                                                        \
    extern "C" __global__ void bias_act_##S(const T *x, const T *bias, T *out, u64 n, u64 cols, \
                                            int act) {                                        \
        bias_act<T>(x, bias, out, n, cols, act);                                              \
    }
BIAS_ACT(float, f32)
BIAS_ACT(f16_t, f16)
BIAS_ACT(bf16_t, bf16)
