// Row softmax with an optional 0/1 key mask, in place or not: x is [rows, cols]; row r uses mask
// row r / rows_per_mask (so [batch, heads * seq, seq] scores share one [batch, seq] mask). A
// masked score gets (1 - m) * -FLT_MAX added, as Hugging Face's extended attention mask; a row
// with every key masked becomes uniform, as in PyTorch. One warp per row, `scale` applied first.

template <typename T>
__device__ void softmax_mask(const T *x, T *out, const float *mask, u64 rows, int cols,
                             u64 rows_per_mask, float scale) {
    const u64 row = (u64)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    const int lane = threadIdx.x & 31;
    if (row >= rows) return;
    const T *xr = x + row * cols;
    T *orow = out + row * cols;
    const float *m = mask ? mask + (row / rows_per_mask) * cols : nullptr;
    float mx = -INFINITY;
    for (int c = lane; c < cols; c += 32) {
        float s = to_f(xr[c]) * scale;
        if (m) s += (1.0f - m[c]) * -3.402823466e38f;
        mx = fmaxf(mx, s);
    }
    mx = warp_max(mx);
    float sum = 0.0f;
    for (int c = lane; c < cols; c += 32) {
        float s = to_f(xr[c]) * scale;
        if (m) s += (1.0f - m[c]) * -3.402823466e38f;
        sum += __expf(s - mx);
    }
    const float inv = 1.0f / warp_sum(sum);
    for (int c = lane; c < cols; c += 32) {
        float s = to_f(xr[c]) * scale;
        if (m) s += (1.0f - m[c]) * -3.402823466e38f;
        orow[c] = from_f<T>(__expf(s - mx) * inv);
    }
}

#define SOFTMAX(T, S)                                                                         \
    extern "C" __global__ void softmax_mask_##S(const T *x, T *out, const float *mask,        \
                                                u64 rows, int cols, u64 rows_per_mask,        \
                                                float scale) {                                \
        softmax_mask<T>(x, out, mask, rows, cols, rows_per_mask, scale);                      \
    }
SOFTMAX(float, f32)
SOFTMAX(f16_t, f16)
SOFTMAX(bf16_t, bf16)
