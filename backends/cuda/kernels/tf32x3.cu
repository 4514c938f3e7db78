// f32 GEMM at f32 accuracy on tensor cores, for few rows (batch-1 forwards): 3xTF32. Each f32
// operand is split into a TF32 "big" part and the rest ("small");
// a.b = big.big + big.small + small.big (+ small.small, below f32's rounding: dropped), the three
// products on TF32 tensor cores with f32 accumulation: the same error as cuBLAS's f32 SIMT GEMM
// against an f64 reference, in less time at batch-1 shapes (figures: docs/performance.md,
// "Split-K linears"; bench: scripts/peer/gpu/tf32x3/).
//
// gemm_tf32x3_parts: parts[z][r][c] = sum over k in slice z of x[r][k] * w[c][k] — x [m, k] and
// w [n, k] row-major (F.linear's weight), slice z = [z * kslice, (z + 1) * kslice), one [m, n]
// f32 product per slice (gridDim.z slices, m * n elements apart) for a consumer to add up
// (split_k.cu). Requires n % 64 == 0, kslice % 32 == 0, k % 4 == 0, x and w 16-byte aligned;
// rows past m read as zeros and are not written. Grid (n / 64, ceil(m / 32), slices), 128
// threads.
//
// sm_80 and later (mma.sync TF32, cp.async); the body is empty below, where it is never launched.

#define TLD 40 // padded 32-float rows: a warp's 8-byte fragment reads hit distinct banks

// x = big + small: big is x rounded to TF32 (ties away from zero; two integer operations, where
// cvt.rna.tf32.f32 is about seven on sm_90 and the splits bounded the kernel), small the exact
// rest, at most 2^-11 of x, passed as it is: the tensor cores read its top 10 mantissa bits, to
// 2^-21 of x. Finite inputs (an infinity comes out NaN, as the product would anyway).
__device__ __forceinline__ void tf32_split(float x, unsigned &big, unsigned &small) {
    big = (__float_as_uint(x) + 0x1000u) & 0xffffe000u;
    small = __float_as_uint(x - __uint_as_float(big));
}

__device__ __forceinline__ void mma_tf32(float c[4], const unsigned a[4], const unsigned b[2]) {
#if __CUDA_ARCH__ >= 800
    // Not volatile: the compiler may interleave independent products (in program order, each
    // waits for the previous one's result).
    asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, "
        "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}

// 16 bytes global -> shared, asynchronously; zeros when !valid (nothing read).
__device__ __forceinline__ void cp_async16(float *dst, const float *src, bool valid) {
#if __CUDA_ARCH__ >= 800
    unsigned s = (unsigned)__cvta_generic_to_shared(dst);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(s), "l"(src),
                 "r"(valid ? 16 : 0));
#endif
}

__device__ __forceinline__ void cp_async_commit() {
#if __CUDA_ARCH__ >= 800
    asm volatile("cp.async.commit_group;");
#endif
}

template <int N> __device__ __forceinline__ void cp_async_wait() {
#if __CUDA_ARCH__ >= 800
    asm volatile("cp.async.wait_group %0;" ::"n"(N));
#endif
}

// Block tile BM x BN, 32-wide K slabs in a STAGES-deep cp.async ring; WM x WN warps each own a
// 16 x (BN / WN) piece of the tile, and KG groups of them take turns over a slab's 8-wide K
// steps (their sums added through shared memory at the end). Within an 8-wide step, fragment
// slots t and t + 4 hold columns 2t and 2t + 1 (the same for x and w, so the sum is unchanged):
// one 8-byte shared load each. A warp's big . big products over a slab are accumulated from
// zero, then added to the running sum with an ordinary f32 add: the tensor cores' accumulation
// is not round-to-nearest, and long chains of it lost accuracy (10x cuBLAS's error at K = 384).
// The cross terms, 2^-11 of the result, accumulate on the tensor cores over the whole slice.
template <int BM, int BN, int WN, int KG, int STAGES>
__device__ __forceinline__ void tf32x3_parts(const float *__restrict__ x,
                                             const float *__restrict__ w,
                                             float *__restrict__ parts, int m, int n, int k,
                                             int kslice, float *smem) {
    constexpr int WM = BM / 16, WARPS = WM * WN * KG, THREADS = WARPS * 32;
    constexpr int NT = BN / WN / 8; // n8 tiles per warp
    constexpr int STAGE = (BM + BN) * TLD;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int g = lane / 4, t = lane % 4; // mma fragment coordinates
    const int kg = warp / (WM * WN), wm = (warp % WM) * 16, wn = (warp / WM % WN) * (BN / WN);
    const int row0 = blockIdx.y * BM, col0 = blockIdx.x * BN, k0 = blockIdx.z * kslice;
    const int steps = kslice / 32;
    auto load = [&](int s) {
        if (s < steps) {
            float *xs = smem + (s % STAGES) * STAGE, *ws = xs + BM * TLD;
            const int kb = k0 + s * 32;
            for (int q = threadIdx.x; q < (BM + BN) * 8; q += THREADS) {
                const int r = q / 8, c = (q % 8) * 4;
                if (r < BM) {
                    const bool ok = row0 + r < m;
                    cp_async16(xs + r * TLD + c, x + (u64)(ok ? row0 + r : 0) * k + kb + c, ok);
                } else {
                    cp_async16(ws + (r - BM) * TLD + c, w + (u64)(col0 + r - BM) * k + kb + c,
                               true);
                }
            }
        }
        cp_async_commit(); // empty groups keep the wait counts uniform
    };
    float acc[NT][4], small[NT][4];
#pragma unroll
    for (int j = 0; j < NT; j++)
#pragma unroll
        for (int e = 0; e < 4; e++)
            acc[j][e] = small[j][e] = 0.0f;
#pragma unroll
    for (int s = 0; s < STAGES - 1; s++)
        load(s);
    for (int s = 0; s < steps; s++) {
        cp_async_wait<STAGES - 2>();
        __syncthreads(); // slab s is in; every warp is done with slab s - 1
        load(s + STAGES - 1);
        const float *a = smem + (s % STAGES) * STAGE, *b = a + BM * TLD;
        float c[NT][4];
#pragma unroll
        for (int j = 0; j < NT; j++)
            c[j][0] = c[j][1] = c[j][2] = c[j][3] = 0.0f;
#pragma unroll
        for (int kk = kg * 8; kk < 32; kk += 8 * KG) {
            unsigned ab[4], as[4];
            const float2 a0 = *reinterpret_cast<const float2 *>(a + (wm + g) * TLD + kk + 2 * t);
            const float2 a1 =
                *reinterpret_cast<const float2 *>(a + (wm + g + 8) * TLD + kk + 2 * t);
            tf32_split(a0.x, ab[0], as[0]);
            tf32_split(a1.x, ab[1], as[1]);
            tf32_split(a0.y, ab[2], as[2]);
            tf32_split(a1.y, ab[3], as[3]);
#pragma unroll
            for (int j = 0; j < NT; j++) {
                const float2 bj =
                    *reinterpret_cast<const float2 *>(b + (wn + j * 8 + g) * TLD + kk + 2 * t);
                unsigned bb[2], bs[2];
                tf32_split(bj.x, bb[0], bs[0]);
                tf32_split(bj.y, bb[1], bs[1]);
                mma_tf32(c[j], ab, bb);
                mma_tf32(small[j], as, bb);
                mma_tf32(small[j], ab, bs);
            }
        }
#pragma unroll
        for (int j = 0; j < NT; j++)
#pragma unroll
            for (int e = 0; e < 4; e++)
                acc[j][e] += c[j][e];
    }
#pragma unroll
    for (int j = 0; j < NT; j++)
#pragma unroll
        for (int e = 0; e < 4; e++)
            acc[j][e] += small[j][e];
    cp_async_wait<0>();
    if (KG > 1) { // groups 1.. hand their sums to group 0 through the (now idle) slabs
        __syncthreads();
        float *red = smem;
        if (kg > 0) {
#pragma unroll
            for (int j = 0; j < NT; j++)
#pragma unroll
                for (int e = 0; e < 4; e++)
                    red[(((kg - 1) * WM * WN + warp % (WM * WN)) * NT * 4 + j * 4 + e) * 32 +
                        lane] = acc[j][e];
        }
        __syncthreads();
        if (kg > 0) return;
        for (int h = 1; h < KG; h++)
#pragma unroll
            for (int j = 0; j < NT; j++)
#pragma unroll
                for (int e = 0; e < 4; e++)
                    acc[j][e] += red[(((h - 1) * WM * WN + warp) * NT * 4 + j * 4 + e) * 32 + lane];
    }
    float *out = parts + (u64)blockIdx.z * m * n;
    const int r = row0 + wm + g;
#pragma unroll
    for (int j = 0; j < NT; j++) {
        const int c = col0 + wn + j * 8 + 2 * t;
        if (r < m)
            *reinterpret_cast<float2 *>(out + (u64)r * n + c) = make_float2(acc[j][0], acc[j][1]);
        if (r + 8 < m)
            *reinterpret_cast<float2 *>(out + (u64)(r + 8) * n + c) =
                make_float2(acc[j][2], acc[j][3]);
    }
}

// The configuration measured best across MiniLM's four batch-1 projections (K split 4 to 8
// ways): 32 x 64 tiles, four warps, three stages (46 KB of shared memory).
extern "C" __global__ void __launch_bounds__(128)
    gemm_tf32x3_parts(const float *__restrict__ x, const float *__restrict__ w,
                      float *__restrict__ parts, int m, int n, int k, int kslice) {
    __shared__ __align__(16) float smem[3 * (32 + 64) * TLD];
    tf32x3_parts<32, 64, 2, 1, 3>(x, w, parts, m, n, k, kslice, smem);
}
