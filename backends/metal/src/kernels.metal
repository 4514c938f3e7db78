// The portable ops of `streampool_core::Stream` in the Metal Shading Language. Compiled at
// first use by `newLibraryWithSource:options:error:` (kernels.rs). Never run on Apple hardware:
// type-checked on the Rust side only, and this source has not been through a Metal compiler.
//
// Every kernel walks its range with a grid-stride loop, so any grid covers any length; lengths
// and offsets are 64-bit so buffers past 4 GiB work.

#include <metal_stdlib>
using namespace metal;

// dst[i] = value for every u32 word.
kernel void fill_u32(device uint *dst [[buffer(0)]],
                     constant ulong &words [[buffer(1)]],
                     constant uint &value [[buffer(2)]],
                     uint index [[thread_position_in_grid]],
                     uint threads [[threads_per_grid]]) {
    for (ulong i = index; i < words; i += threads) {
        dst[i] = value;
    }
}

// buf[i] = buf[i] * mul + add, wrapping (unsigned arithmetic is modular in MSL, as in C++).
kernel void mul_add_u32(device uint *buf [[buffer(0)]],
                        constant ulong &words [[buffer(1)]],
                        constant uint &mul [[buffer(2)]],
                        constant uint &add [[buffer(3)]],
                        uint index [[thread_position_in_grid]],
                        uint threads [[threads_per_grid]]) {
    for (ulong i = index; i < words; i += threads) {
        buf[i] = buf[i] * mul + add;
    }
}

// dst[dst_offset + i] = src[src_offset + i] for i < bytes. Offsets are arguments rather than
// binding offsets, so they need no alignment.
kernel void copy_bytes(device const uchar *src [[buffer(0)]],
                       device uchar *dst [[buffer(1)]],
                       constant ulong &src_offset [[buffer(2)]],
                       constant ulong &dst_offset [[buffer(3)]],
                       constant ulong &bytes [[buffer(4)]],
                       uint index [[thread_position_in_grid]],
                       uint threads [[threads_per_grid]]) {
    for (ulong i = index; i < bytes; i += threads) {
        dst[dst_offset + i] = src[src_offset + i];
    }
}

// Does nothing. Encoded before the signal of an event created with timing, so that the command
// buffer carrying the signal has GPU work and Metal reports its GPUEndTime.
kernel void stamp() {}
