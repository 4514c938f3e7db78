// out[r, c] = act(x[r, c] + bias[c]): the tail of a linear layer run as a plain GEMM. `bias` may
// be null; act 0 = identity, 1 = exact GELU. In place when out == x. Grid-stride.

template <typename T>
__device__ void bias_act(const T *x, const T *bias, T *out, u64 n, u64 cols, int act) {
    const u64 stride = (u64)gridDim.x * blockDim.x;
    u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    // The bias column of element i, advanced by stride (mod cols) without a 64-bit division
    // per element.
    const u64 step = stride % cols;
    u64 c = i % cols;
    for (; i < n; i += stride) {
        float v = to_f(x[i]);
        if (bias) v += to_f(bias[c]);
        if (act == 1) v = gelu_erf(v);
        out[i] = from_f<T>(v);
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
