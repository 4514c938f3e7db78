// `contiguous()`: dst[i] (row-major over `shape`) = src[offset + sum_d i_d * strides[d]], up to 6
// dims (unused leading dims have extent 1), for elements of 1, 2, 4 or 8 bytes. Strides may be
// negative or zero; the host has checked that every reachable index lies in src. Grid-stride.

struct StridedParams {
    i64 offset;
    u64 n;
    u64 shape[6];
    i64 strides[6];
};

template <typename T>
__device__ void strided_copy(const T *src, T *dst, StridedParams p) {
    const u64 step = (u64)gridDim.x * blockDim.x;
    for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < p.n; i += step) {
        u64 rest = i;
        i64 at = p.offset;
#pragma unroll
        for (int d = 5; d >= 0; d--) {
            const u64 idx = rest % p.shape[d];
            rest /= p.shape[d];
            at += (i64)idx * p.strides[d];
        }
        dst[i] = src[at];
    }
}

#define STRIDED(T, S)                                                                         \
    extern "C" __global__ void strided_copy_##S(const T *src, T *dst, StridedParams p) {      \
        strided_copy<T>(src, dst, p);                                                         \
    }
STRIDED(unsigned char, b1)
STRIDED(unsigned short, b2)
STRIDED(unsigned int, b4)
STRIDED(unsigned long long, b8)
