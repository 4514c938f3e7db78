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
