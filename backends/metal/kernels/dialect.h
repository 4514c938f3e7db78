// The dialect shared by the Metal Shading Language build and the host C++17 build of the
// kernels (dialect.h + params.h + ops.h + entry.metal is the Metal library's source; host.cpp
// includes dialect.h, params.h and ops.h). These kernels have never been through a Metal
// compiler: the host build proves their arithmetic and phase structure, not their use of the
// Metal API.
//
// Kernel bodies use only what is defined here: address-space macros on every pointer and
// reference, float math through sp_* functions, `half` loaded and stored through explicit
// conversions (the host `half` has no arithmetic, so every computation is float, as on the GPU),
// and 8x8 float simdgroup matrices.

#ifndef SP_DIALECT_H
#define SP_DIALECT_H

#ifdef __METAL_VERSION__

#include <metal_stdlib>
using namespace metal;

#define SP_DEVICE device
#define SP_THREADGROUP threadgroup
#define SP_THREAD thread
#define SP_CONSTANT constant

// Metal compiles with fast math by default: the precise:: forms keep exp/tanh/sqrt to their
// documented accuracy, which the host build's std:: functions stand in for.
inline float sp_exp(float x) { return precise::exp(x); }
inline float sp_tanh(float x) { return precise::tanh(x); }
inline float sp_sqrt(float x) { return precise::sqrt(x); }
inline float sp_rsqrt(float x) { return precise::rsqrt(x); }
inline float sp_fabs(float x) { return fabs(x); }
inline float sp_fma(float a, float b, float c) { return fma(a, b, c); }

#define SP_FLT_MAX FLT_MAX
#define SP_NAN NAN

// A zero 8x8 matrix (the constructor taking one value makes a diagonal one).
inline simdgroup_float8x8 sp_simd_zero() { return make_filled_simdgroup_matrix<float, 8, 8>(0.0f); }

#else  // host C++17

#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#define SP_DEVICE
#define SP_THREADGROUP
#define SP_THREAD
// Metal's constant address space is read-only.
#define SP_CONSTANT const

typedef uint32_t uint;
typedef uint16_t ushort;

inline float sp_exp(float x) { return std::exp(x); }
inline float sp_tanh(float x) { return std::tanh(x); }
inline float sp_sqrt(float x) { return std::sqrt(x); }
inline float sp_rsqrt(float x) { return 1.0f / std::sqrt(x); }
inline float sp_fabs(float x) { return std::fabs(x); }
inline float sp_fma(float a, float b, float c) { return std::fma(a, b, c); }

#define SP_FLT_MAX FLT_MAX
#define SP_NAN NAN

// IEEE binary16 storage. Conversions are explicit and there is no arithmetic, so a kernel that
// would compute in half on the GPU does not compile here.
struct half {
    uint16_t bits;

    half() = default;

    // Round to nearest, ties to even; subnormals, infinities and NaN (quiet, payload kept where
    // it fits) as the GPU converts.
    explicit half(float f) {
        uint32_t x;
        std::memcpy(&x, &f, 4);
        const uint32_t sign = (x >> 16) & 0x8000u;
        const uint32_t ax = x & 0x7fffffffu;
        uint32_t h;
        if (ax >= 0x7f800000u) {
            h = ax == 0x7f800000u ? 0x7c00u : (0x7e00u | ((ax >> 13) & 0x3ffu));
        } else if (ax >= 0x477ff000u) {
            h = 0x7c00u;  // 65520 and up round to infinity
        } else if (ax >= 0x38800000u) {
            // Normal: rebias the exponent (127 -> 15) and round off 13 mantissa bits.
            h = (ax - 0x38000000u + 0xfffu + ((ax >> 13) & 1u)) >> 13;
        } else {
            // Below 2^-14: a subnormal half, in units of 2^-24. Up to 2^-25 rounds to zero.
            const uint32_t e = ax >> 23;
            if (e < 102u) {
                h = 0;
            } else {
                const uint32_t mant = (ax & 0x7fffffu) | 0x800000u;
                const uint32_t shift = 126u - e;  // 14..24
                uint32_t q = mant >> shift;
                const uint32_t rem = mant & ((1u << shift) - 1u);
                const uint32_t halfway = 1u << (shift - 1u);
                if (rem > halfway || (rem == halfway && (q & 1u))) {
                    q += 1u;  // may carry into the smallest normal, which encodes right
                }
                h = q;
            }
        }
        bits = static_cast<uint16_t>(sign | h);
    }

    explicit operator float() const {
        const uint32_t sign = static_cast<uint32_t>(bits & 0x8000u) << 16;
        const uint32_t e = (bits >> 10) & 0x1fu;
        const uint32_t m = bits & 0x3ffu;
        uint32_t x;
        if (e == 0) {
            // Zero or subnormal: m * 2^-24 is exact in float.
            float f = static_cast<float>(m) * 5.9604644775390625e-8f;
            std::memcpy(&x, &f, 4);
            x |= sign;
        } else if (e == 31) {
            x = sign | 0x7f800000u | (m << 13);
        } else {
            x = sign | ((e + 112u) << 23) | (m << 13);
        }
        float f;
        std::memcpy(&f, &x, 4);
        return f;
    }
};

// The whole 8x8 matrix (row-major) in one object. In MSL the 32 lanes of a simdgroup each hold
// a share of it, so on the host a simdgroup phase runs once per simdgroup (see host.cpp).
struct simdgroup_float8x8 {
    float v[64];
};

inline simdgroup_float8x8 sp_simd_zero() {
    simdgroup_float8x8 m;
    for (int i = 0; i < 64; ++i) {
        m.v[i] = 0.0f;
    }
    return m;
}

// m[r][c] = src[r * elements_per_row + c].
inline void simdgroup_load(simdgroup_float8x8& m, const float* src, size_t elements_per_row) {
    for (int r = 0; r < 8; ++r) {
        for (int c = 0; c < 8; ++c) {
            m.v[r * 8 + c] = src[r * elements_per_row + c];
        }
    }
}

inline void simdgroup_store(const simdgroup_float8x8& m, float* dst, size_t elements_per_row) {
    for (int r = 0; r < 8; ++r) {
        for (int c = 0; c < 8; ++c) {
            dst[r * elements_per_row + c] = m.v[r * 8 + c];
        }
    }
}

// d = a * b + c (d may be c).
inline void simdgroup_multiply_accumulate(simdgroup_float8x8& d, const simdgroup_float8x8& a,
                                          const simdgroup_float8x8& b,
                                          const simdgroup_float8x8& c) {
    simdgroup_float8x8 r;
    for (int i = 0; i < 8; ++i) {
        for (int j = 0; j < 8; ++j) {
            float s = c.v[i * 8 + j];
            for (int k = 0; k < 8; ++k) {
                s += a.v[i * 8 + k] * b.v[k * 8 + j];
            }
            r.v[i * 8 + j] = s;
        }
    }
    d = r;
}

#endif  // __METAL_VERSION__

// min and max written out, the same in both builds (NaN-free operands assumed).
inline uint sp_umin(uint a, uint b) { return a < b ? a : b; }
inline float sp_fmax(float a, float b) { return a > b ? a : b; }

// erf(x) for both builds (MSL has none): below |x| = 0.75 its Maclaurin series to x^17
// (truncation under 1e-9), above it Numerical Recipes' erfc approximation (relative error under
// 1.2e-7), so that erf is within about 1.3e-7 absolute everywhere in float arithmetic (the CPU
// backend's Abramowitz-Stegun 7.1.26 form is within 3.3e-7 near 0.5).
inline float sp_erf(float x) {
    const float a = sp_fabs(x);
    if (a < 0.75f) {
        const float x2 = x * x;
        float s = sp_fma(1.0f / 685440.0f, x2, -1.0f / 75600.0f);
        s = sp_fma(s, x2, 1.0f / 9360.0f);
        s = sp_fma(s, x2, -1.0f / 1320.0f);
        s = sp_fma(s, x2, 1.0f / 216.0f);
        s = sp_fma(s, x2, -1.0f / 42.0f);
        s = sp_fma(s, x2, 1.0f / 10.0f);
        s = sp_fma(s, x2, -1.0f / 3.0f);
        s = sp_fma(s, x2, 1.0f);
        return s * x * 1.1283791670955126f;  // 2 / sqrt(pi)
    }
    const float t = 1.0f / sp_fma(0.5f, a, 1.0f);
    float r = sp_fma(t, 0.17087277f, -0.82215223f);
    r = sp_fma(t, r, 1.48851587f);
    r = sp_fma(t, r, -1.13520398f);
    r = sp_fma(t, r, 0.27886807f);
    r = sp_fma(t, r, -0.18628806f);
    r = sp_fma(t, r, 0.09678418f);
    r = sp_fma(t, r, 0.37409196f);
    r = sp_fma(t, r, 1.00002368f);
    r = sp_fma(t, r, -1.26551223f);
    const float y = 1.0f - t * sp_exp(sp_fma(-a, a, r));
    return x < 0.0f ? -y : y;
}

#endif  // SP_DIALECT_H
