// Direct 1-D convolution, PyTorch nn.Conv1d semantics (stride, zero padding, dilation, groups),
// plus bias and an optional exact GELU: out[b, o, l] = act(bias[o] + sum_{c, t} w[o, c, t] *
// x[b, g * cin_g + c, l * stride - padding + t * dilation]), g = o / cout_g. One thread per
// output element (grid-stride); fine for the small convolutions of embedding models.

struct ConvParams {
    u64 batch, cin, length, cout, kernel, lout;
    u64 stride, padding, dilation, groups;
    int act;
};

template <typename T>
__device__ void conv1d(const T *x, const T *w, const T *bias, T *out, ConvParams p) {
    const u64 n = p.batch * p.cout * p.lout;
    const u64 cin_g = p.cin / p.groups, cout_g = p.cout / p.groups;
    const u64 step = (u64)gridDim.x * blockDim.x;
    for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
        const u64 l = i % p.lout, o = (i / p.lout) % p.cout, b = i / (p.lout * p.cout);
        const u64 g = o / cout_g;
        float acc = bias ? to_f(bias[o]) : 0.0f;
        for (u64 c = 0; c < cin_g; c++) {
            const T *xr = x + (b * p.cin + g * cin_g + c) * p.length;
            const T *wr = w + (o * cin_g + c) * p.kernel;
            for (u64 t = 0; t < p.kernel; t++) {
                const i64 pos = (i64)(l * p.stride + t * p.dilation) - (i64)p.padding;
                if (pos >= 0 && pos < (i64)p.length) acc = fmaf(to_f(wr[t]), to_f(xr[pos]), acc);
            }
        }
        if (p.act == 1) acc = gelu_erf(acc);
        if (p.act == 2) acc = tanhf(acc);
        if (p.act == 3) acc = gelu_tanh(acc);
        out[i] = from_f<T>(acc);
    }
}

#define CONV1D(T, S)                                                                          \
    extern "C" __global__ void conv1d_##S(const T *x, const T *w, const T *bias, T *out,      \
                                          ConvParams p) {                                     \
        conv1d<T>(x, w, bias, out, p);                                                        \
    }
CONV1D(float, f32)
CONV1D(f16_t, f16)
CONV1D(bf16_t, bf16)
