// Element type conversions: f32 -> f16 / bf16 (round to nearest even), f16 / bf16 -> f32.
// Grid-stride.

template <typename S, typename D>
__device__ void cast(const S *src, D *dst, u64 n) {
    const u64 step = (u64)gridDim.x * blockDim.x;
    for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step)
        dst[i] = from_f<D>(to_f(src[i]));
}

#define CAST(S, SN, D, DN)                                                                    \
    extern "C" __global__ void cast_##SN##_##DN(const S *src, D *dst, u64 n) {                \
        cast<S, D>(src, dst, n);                                                              \
    }
CAST(float, f32, f16_t, f16)
CAST(float, f32, bf16_t, bf16)
CAST(f16_t, f16, float, f32)
CAST(bf16_t, bf16, float, f32)
