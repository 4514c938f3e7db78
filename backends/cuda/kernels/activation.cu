// out[r, c] = act(x[r, c] + bias[c]): the tail of a linear layer run as a plain GEMM. `bias` may
// be null; act 0 = identity, 1 = exact GELU, 2 = tanh, 3 = GELU (tanh form). In place when out == x. Grid-stride.

template <int ACT> __device__ __forceinline__ float act_of(float v) {
    if (ACT == 1) return gelu_erf(v);
    if (ACT == 2) return tanhf(v);
    if (ACT == 3) return gelu_tanh(v);
    return v;
}

// The activation is a template parameter (the kernel switches once, not per element), and the
// vector path reads the bias as 16-byte vectors too (one load where there were eight).
template <typename T, int ACT>
__device__ void bias_act(const T *x, const T *bias, T *out, u64 n, u64 cols) {
    const u64 stride = (u64)gridDim.x * blockDim.x;
    const u64 tid = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    // 16 bytes per load and store when rows are whole vectors and x, out are 16-byte aligned:
    // many more bytes in flight per thread (the same arithmetic per element).
    constexpr int V = 16 / sizeof(T);
    if (cols % V == 0 && (((u64)x | (u64)out) & 15) == 0) {
        const bool bias_vec = (((u64)bias) & 15) == 0;
        const u64 nv = n / V, vcols = cols / V;
        const u64 step = stride % vcols;
        u64 c = tid % vcols;
        for (u64 i = tid; i < nv; i += stride) {
            union { uint4 u; T e[V]; } a, bv;
            a.u = reinterpret_cast<const uint4 *>(x)[i];
            if (bias && bias_vec) {
                bv.u = reinterpret_cast<const uint4 *>(bias)[c];
            } else {
#pragma unroll
                for (int e = 0; e < V; e++) bv.e[e] = bias ? bias[c * V + e] : from_f<T>(0.0f);
            }
#pragma unroll
            for (int e = 0; e < V; e++) a.e[e] = from_f<T>(act_of<ACT>(to_f(a.e[e]) + to_f(bv.e[e])));
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
        float v = to_f(x[i]);
        if (bias) v += to_f(bias[c]);
        out[i] = from_f<T>(act_of<ACT>(v));
        c += step;
        if (c >= cols) c -= cols;
    }
}

#define BIAS_ACT(T, S)                                                                        \
    extern "C" __global__ void bias_act_##S(const T *x, const T *bias, T *out, u64 n, u64 cols, \
                                            int act) {                                        \
        switch (act) {                                                                        \
        case 1: bias_act<T, 1>(x, bias, out, n, cols); break;                                 \
        case 2: bias_act<T, 2>(x, bias, out, n, cols); break;                                 \
        case 3: bias_act<T, 3>(x, bias, out, n, cols); break;                                 \
        default: bias_act<T, 0>(x, bias, out, n, cols);                                       \
        }                                                                                     \
    }
BIAS_ACT(float, f32)
BIAS_ACT(f16_t, f16)
BIAS_ACT(bf16_t, bf16)
