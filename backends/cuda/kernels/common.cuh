// Shared by every kernel file of `ops` (prepended to each source by src/ops/modules.rs): element
// types, conversions and block reductions. Self-contained (no CUDA headers), so NVRTC needs no
// include path. f16 and bf16 are stored as 16-bit words; all arithmetic is f32.

typedef unsigned long long u64;
typedef long long i64;
#define INFINITY __int_as_float(0x7f800000)

struct f16_t { unsigned short x; };
struct bf16_t { unsigned short x; };

__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ float to_f(f16_t v) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(v.x));
    return f;
}
__device__ __forceinline__ float to_f(bf16_t v) { return __uint_as_float(((unsigned)v.x) << 16); }

template <typename T> __device__ __forceinline__ T from_f(float v);
template <> __device__ __forceinline__ float from_f<float>(float v) { return v; }
template <> __device__ __forceinline__ f16_t from_f<f16_t>(float v) {
    f16_t h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h.x) : "f"(v));
    return h;
}
// Round to nearest even; NaN stays a (quiet) NaN.
template <> __device__ __forceinline__ bf16_t from_f<bf16_t>(float v) {
    unsigned u = __float_as_uint(v);
    bf16_t b;
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        b.x = (unsigned short)((u >> 16) | 0x40u);
    } else {
        b.x = (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    }
    return b;
}

// Exact GELU (erf form), PyTorch's default.
__device__ __forceinline__ float gelu_erf(float x) {
    return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
}

// GELU's tanh approximation (PyTorch's `gelu(x, approximate="tanh")`, Gemma's activation).
__device__ __forceinline__ float gelu_tanh(float x) {
    const float k = 0.7978845608028654f; // sqrt(2 / pi)
    return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Sum over the block (blockDim.x * blockDim.y a multiple of 32, at most 1024; threads numbered
// x first); every thread gets the result. `scratch` holds 32 floats of shared memory; safe to
// call repeatedly with the same scratch.
__device__ __forceinline__ float block_sum(float v, float *scratch) {
    const int t = threadIdx.y * blockDim.x + threadIdx.x;
    const int lane = t & 31, warp = t >> 5, warps = (blockDim.x * blockDim.y) >> 5;
    v = warp_sum(v);
    __syncthreads(); // scratch may still be read by a previous call
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < warps ? scratch[lane] : 0.0f;
    return warp_sum(v);
}

// Values per thread of the row kernels (layer norm, embeddings, pooling): a row of `dim` is held
// in registers, element `threadIdx.x + i * blockDim.x` in v[i]; so dim <= VPT * blockDim.x.
#define VPT 8

// Layer norm of a row held as v[VPT] (see VPT), two passes over registers (mean, then the biased
// variance of the deviations), PyTorch semantics; writes gamma/beta-scaled values to out.
template <typename T>
__device__ __forceinline__ void row_layer_norm(float (&v)[VPT], int dim, const T *gamma,
                                               const T *beta, float eps, T *out,
                                               float *scratch) {
    // gamma and beta are loaded first, so their memory latency overlaps the row's and the two
    // reductions' instead of following them (the barriers keep later loads from moving up).
    float g[VPT], bt[VPT];
#pragma unroll
    for (int i = 0; i < VPT; i++) {
        int c = threadIdx.x + i * blockDim.x;
        g[i] = c < dim ? to_f(gamma[c]) : 0.0f;
        bt[i] = c < dim ? to_f(beta[c]) : 0.0f;
    }
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < VPT; i++) s += v[i]; // elements past dim hold 0
    const float mean = block_sum(s, scratch) / (float)dim;
    float q = 0.0f;
#pragma unroll
    for (int i = 0; i < VPT; i++) {
        int c = threadIdx.x + i * blockDim.x;
        float d = c < dim ? v[i] - mean : 0.0f;
        q += d * d;
    }
    const float inv = rsqrtf(block_sum(q, scratch) / (float)dim + eps);
#pragma unroll
    for (int i = 0; i < VPT; i++) {
        int c = threadIdx.x + i * blockDim.x;
        if (c < dim) out[c] = from_f<T>((v[i] - mean) * inv * g[i] + bt[i]);
    }
}

