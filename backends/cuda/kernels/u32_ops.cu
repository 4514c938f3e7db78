// Portable u32 work items of the `Stream` trait. Compiled by NVRTC at first use, for the device's
// own architecture (see src/compile.rs). Grid-stride loops: any grid size covers any length.

extern "C" __global__ void fill_u32(unsigned int *dst, unsigned long long n, unsigned int value) {
    unsigned long long stride = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += stride) {
        dst[i] = value;
    }
}

// buf[i] = buf[i] * mul + add, wrapping (unsigned arithmetic is modular in C++).
extern "C" __global__ void mul_add_u32(unsigned int *buf, unsigned long long n, unsigned int mul,
                                       unsigned int add) {
    unsigned long long stride = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += stride) {
        buf[i] = buf[i] * mul + add;
    }
}
