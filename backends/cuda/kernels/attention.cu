// Fused masked multi-head self-attention, out = softmax(Q K^T * scale + mask) V, for one head size
// HD (a multiple of 32) per kernel. Q, K, V and out are [batch, seq, ...] rows of `ld_*`
// elements, head h at columns h*HD .. (h+1)*HD (the layout the projection GEMMs write, also a
// fused QKV buffer); mask is [batch, seq] of 1 (token) / 0 (padding), or null; bias, or null, is
// [heads, 2 * span + 1] f32: query i and key j of head h get bias[h][j - i + span] added after
// the scaling (MPNet's relative position bias, resolved per distance on the host).
//
// Grid (query tiles of ROWS, heads, batch); 4 warps per block (8 in the w8 kernels), each
// owning RPW query rows.
// Keys go through shared memory 4096 / HD at a time (all 128 keys of a batch-1 sequence at head
// size 32: one load phase), each thread issuing all of its 16-byte loads before its first shared
// store, so the phase costs one memory latency rather than one per key chunk; the scores are
// then computed 32 keys at a time (one key per lane) with an online softmax (running max and sum
// per row), so any sequence length works with fixed shared memory and the scores never reach
// device memory. A masked key gets (1 - m) * -FLT_MAX added, as Hugging Face BERT; a row whose
// keys are all masked becomes uniform, as in PyTorch.

#define WARPS 4
#define RPW 4 // query rows per warp
#define ROWS (WARPS * RPW)
#define KC 32 // keys per chunk

// WARPS warps (ROWS query rows) per block by default; the f32 kernels of large batches use
// twice as many (each K / V chunk then serves 32 query rows; the same arithmetic per row).
template <typename T, int HD, int W = WARPS>
__device__ void attention(const T *q, u64 ld_q, const T *k, u64 ld_k, const T *v, u64 ld_v,
                          const float *mask, const float *bias, int span, T *out, u64 ld_o,
                          int seq, float scale, int q0) {
    constexpr int D = HD / 32; // output dims per lane
    constexpr int KL = 4096 / HD; // keys per load phase
    __shared__ __align__(16) float q_s[W * RPW][HD]; // rows read as float4 (HD % 32 == 0)
    __shared__ float k_s[KL][HD + 1]; // +1: lanes read k_s[lane][c] without bank conflicts
    __shared__ float v_s[KL][HD];
    __shared__ float m_s[KL];
    __shared__ __align__(16) float p_s[W][KC][RPW]; // a warp's P, read back as float4s

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int h = blockIdx.y, b = blockIdx.z;
    const u64 base = (u64)b * seq;
    const u64 col = (u64)h * HD;
    // This head's biases, indexed by key - query (null: none).
    const float *bias_h = bias ? bias + (u64)h * (2 * span + 1) + span : nullptr;

    __syncthreads(); // a previous call of this block (tc fallback) no longer reads q_s
    for (int i = tid; i < W * RPW * HD; i += W * 32) {
        int r = i / HD, c = i % HD, row = q0 + r;
        q_s[r][c] = row < seq ? to_f(q[(base + row) * ld_q + col + c]) * scale : 0.0f;
    }

    float m_run[RPW], l_run[RPW], acc[RPW][D];
#pragma unroll
    for (int r = 0; r < RPW; r++) {
        m_run[r] = -INFINITY;
        l_run[r] = 0.0f;
#pragma unroll
        for (int d = 0; d < D; d++) acc[r][d] = 0.0f;
    }

    // 16-byte loads when every K / V row start is 16-byte aligned (col is: HD % 32 == 0).
    constexpr int VE = 16 / sizeof(T);             // elements per vector
    constexpr int PER = KL * HD / VE / (W * 32);   // vectors of K (and of V) per thread
    const bool vec = (((u64)k | (u64)v) & 15) == 0 && ld_k % VE == 0 && ld_v % VE == 0;

    for (int k0 = 0; k0 < seq; k0 += KL) {
        __syncthreads(); // the previous keys are no longer read (and q_s is written)
        if (vec) {
            uint4 kv[PER], vv[PER];
#pragma unroll
            for (int p = 0; p < PER; p++) {
                const int i = tid + p * W * 32, key = k0 + i / (HD / VE), c = (i % (HD / VE)) * VE;
                kv[p] = vv[p] = make_uint4(0u, 0u, 0u, 0u);
                if (key < seq) {
                    kv[p] = *reinterpret_cast<const uint4 *>(k + (base + key) * ld_k + col + c);
                    vv[p] = *reinterpret_cast<const uint4 *>(v + (base + key) * ld_v + col + c);
                }
            }
#pragma unroll
            for (int p = 0; p < PER; p++) {
                const int i = tid + p * W * 32, j = i / (HD / VE), c = (i % (HD / VE)) * VE;
                union { uint4 u; T e[VE]; } ku, vu;
                ku.u = kv[p];
                vu.u = vv[p];
#pragma unroll
                for (int e = 0; e < VE; e++) {
                    k_s[j][c + e] = to_f(ku.e[e]);
                    v_s[j][c + e] = to_f(vu.e[e]);
                }
            }
        } else {
            for (int i = tid; i < KL * HD; i += W * 32) {
                int j = i / HD, c = i % HD, key = k0 + j;
                bool in = key < seq;
                k_s[j][c] = in ? to_f(k[(base + key) * ld_k + col + c]) : 0.0f;
                v_s[j][c] = in ? to_f(v[(base + key) * ld_v + col + c]) : 0.0f;
            }
        }
        for (int j = tid; j < KL; j += W * 32) {
            int key = k0 + j;
            m_s[j] = key >= seq ? -INFINITY
                     : mask     ? (1.0f - mask[base + key]) * -3.402823466e38f
                                : 0.0f;
        }
        __syncthreads();

        for (int kc = 0; kc < KL && k0 + kc < seq; kc += KC) {
            // Scores of key `lane` for this warp's rows: the key row goes through registers 32
            // values at a time, the query rows are read as broadcast float4s.
            const bool key_in = k0 + kc + lane < seq;
            float s[RPW];
#pragma unroll
            for (int r = 0; r < RPW; r++) s[r] = 0.0f;
#pragma unroll
            for (int cc = 0; cc < HD; cc += 32) {
                float kr[32];
#pragma unroll
                for (int c = 0; c < 32; c++) kr[c] = k_s[kc + lane][cc + c];
#pragma unroll
                for (int r = 0; r < RPW; r++) {
                    const float4 *qv = reinterpret_cast<const float4 *>(&q_s[warp * RPW + r][cc]);
#pragma unroll
                    for (int c4 = 0; c4 < 8; c4++) {
                        const float4 qq = qv[c4];
                        s[r] = fmaf(qq.x, kr[4 * c4], s[r]);
                        s[r] = fmaf(qq.y, kr[4 * c4 + 1], s[r]);
                        s[r] = fmaf(qq.z, kr[4 * c4 + 2], s[r]);
                        s[r] = fmaf(qq.w, kr[4 * c4 + 3], s[r]);
                    }
                }
            }
            // Online softmax: rescale what was accumulated when the running max grows.
            float p[RPW];
#pragma unroll
            for (int r = 0; r < RPW; r++) {
                const int row = q0 + warp * RPW + r, key = k0 + kc + lane;
                const float rel = bias_h && row < seq && key_in ? bias_h[key - row] : 0.0f;
                const float sc = key_in ? s[r] + rel + m_s[kc + lane] : -INFINITY;
                const float m_new = fmaxf(m_run[r], warp_max(sc)); // finite: chunk 0 has a key
                const float corr = __expf(m_run[r] - m_new);
                p[r] = key_in ? __expf(sc - m_new) : 0.0f;
                l_run[r] = l_run[r] * corr + warp_sum(p[r]);
                m_run[r] = m_new;
#pragma unroll
                for (int d = 0; d < D; d++) acc[r][d] *= corr;
            }
            // acc += P V: each V row is read once from shared memory for all of the warp's rows;
            // key j's probabilities for the warp's rows come back as one broadcast float4.
            static_assert(RPW == 4, "p_s rows are read as float4");
            __syncwarp(); // the warp's lanes are done reading the previous keys' P
            *reinterpret_cast<float4 *>(&p_s[warp][lane][0]) = make_float4(p[0], p[1], p[2], p[3]);
            __syncwarp();
#pragma unroll 4
            for (int j = 0; j < KC; j++) {
                float vr[D];
#pragma unroll
                for (int d = 0; d < D; d++) vr[d] = v_s[kc + j][lane + 32 * d];
                const float4 pv = *reinterpret_cast<const float4 *>(&p_s[warp][j][0]);
                const float pj[RPW] = {pv.x, pv.y, pv.z, pv.w};
#pragma unroll
                for (int r = 0; r < RPW; r++) {
#pragma unroll
                    for (int d = 0; d < D; d++) acc[r][d] = fmaf(pj[r], vr[d], acc[r][d]);
                }
            }
        }
    }

#pragma unroll
    for (int r = 0; r < RPW; r++) {
        const int row = q0 + warp * RPW + r;
        if (row < seq) {
            const float inv = 1.0f / l_run[r];
#pragma unroll
            for (int d = 0; d < D; d++)
                out[(base + row) * ld_o + col + lane + 32 * d] = from_f<T>(acc[r][d] * inv);
        }
    }
}

#define ATTENTION(T, S, HD)                                                                   \
    extern "C" __global__ void __launch_bounds__(WARPS * 32)                                 \
        attention_##S##_d##HD(const T *q, u64 ld_q, const T *k, u64 ld_k, const T *v,         \
                              u64 ld_v, const float *mask, const float *bias, int span,       \
                              T *out, u64 ld_o, int seq, float scale) {                       \
        attention<T, HD>(q, ld_q, k, ld_k, v, ld_v, mask, bias, span, out, ld_o, seq, scale,  \
                         blockIdx.x * ROWS);                                                  \
    }
ATTENTION(float, f32, 32)
ATTENTION(float, f32, 64)
ATTENTION(float, f32, 128)
ATTENTION(f16_t, f16, 32)
ATTENTION(f16_t, f16, 64)
ATTENTION(f16_t, f16, 128)
ATTENTION(bf16_t, bf16, 32)
ATTENTION(bf16_t, bf16, 64)
ATTENTION(bf16_t, bf16, 128)

#define ATTENTION_W8(T, S, HD)                                                                \
    extern "C" __global__ void __launch_bounds__(2 * WARPS * 32)                             \
        attention_w8_##S##_d##HD(const T *q, u64 ld_q, const T *k, u64 ld_k, const T *v,      \
                                 u64 ld_v, const float *mask, const float *bias, int span,    \
                                 T *out, u64 ld_o, int seq, float scale) {                    \
        attention<T, HD, 2 * WARPS>(q, ld_q, k, ld_k, v, ld_v, mask, bias, span, out, ld_o,   \
                                    seq, scale, blockIdx.x * 2 * ROWS);                       \
    }
ATTENTION_W8(float, f32, 32)
ATTENTION_W8(float, f32, 64)

// Tensor-core variant for f16 / bf16 (large batches): the same result (f32 accumulation, online
// softmax, the same masking), with Q K^T and P V as mma.sync m16n8k16 products (P rounded to the
// storage type, as flash attention does). Grid (query tiles of TC_ROWS, heads, batch); 4 warps
// per block, each owning 16 query rows; keys stream through shared memory TC_KC at a time, K
// as [key][dim] and V transposed as [dim][key], rows padded by 8 elements (conflict-free
// fragment reads). Before sm_80 (no m16n8k16 mma) a block runs the scalar kernel on its four
// 16-row tiles.

#define TC_ROWS 64
#define TC_KC 32

template <typename T> struct Mma;
template <> struct Mma<f16_t> {
    static __device__ __forceinline__ void run(float (&d)[4], const unsigned (&a)[4],
                                               unsigned b0, unsigned b1) {
#if __CUDA_ARCH__ >= 800
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, "
                     "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
    }
};
template <> struct Mma<bf16_t> {
    static __device__ __forceinline__ void run(float (&d)[4], const unsigned (&a)[4],
                                               unsigned b0, unsigned b1) {
#if __CUDA_ARCH__ >= 800
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, "
                     "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
    }
};

// Two elements as one 32-bit fragment register: `lo` in the low half.
template <typename T> __device__ __forceinline__ unsigned pack2(float lo, float hi) {
    return (unsigned)from_f<T>(lo).x | ((unsigned)from_f<T>(hi).x << 16);
}
__device__ __forceinline__ unsigned pack_bits(unsigned short lo, unsigned short hi) {
    return (unsigned)lo | ((unsigned)hi << 16);
}

// Shared by the tensor-core kernels, per warp of 16 query rows (r0 = its row g, r1 = r0 + 8):

// Q fragments of rows r0, r1 for all k-steps, straight from global memory; rows past seq are 0.
template <typename T, int KS>
__device__ __forceinline__ void load_q(unsigned (&qa)[KS][4], const T *q, u64 ld_q, u64 base,
                                       u64 col, int r0, int r1, int seq, int t) {
    const T *q0p = q + (base + r0) * ld_q + col, *q1p = q + (base + r1) * ld_q + col;
    const bool in0 = r0 < seq, in1 = r1 < seq;
#pragma unroll
    for (int ks = 0; ks < KS; ks++) {
        const int c = ks * 16 + 2 * t;
        qa[ks][0] = in0 ? pack_bits(q0p[c].x, q0p[c + 1].x) : 0u;
        qa[ks][1] = in1 ? pack_bits(q1p[c].x, q1p[c + 1].x) : 0u;
        qa[ks][2] = in0 ? pack_bits(q0p[c + 8].x, q0p[c + 9].x) : 0u;
        qa[ks][3] = in1 ? pack_bits(q1p[c + 8].x, q1p[c + 9].x) : 0u;
    }
}

// One chunk of the online softmax: the scores s of keys k0 .. (rows r0 in s[.][0..1], r1 in
// s[.][2..3]) scaled, given the chunk's mask terms m (by key - k0) and the distance bias, turned
// into P; the running max (m0, m1) and this lane's sums (l0, l1) updated, o rescaled to match.
template <int NT, int DT>
__device__ __forceinline__ void online_softmax(float (&s)[NT][4], float (&o)[DT][4],
                                               const float *m, const float *bias_h, int k0,
                                               int r0, int r1, int seq, float scale, int t,
                                               float &m0, float &m1, float &l0, float &l1) {
    float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
    for (int n = 0; n < NT; n++) {
        const float ma = m[n * 8 + 2 * t], mb = m[n * 8 + 2 * t + 1];
        if (bias_h) {
            // Keys ka, ka + 1 against rows r0, r1; keys past seq are masked by m already.
            const int ka = k0 + n * 8 + 2 * t;
            const bool a_in = ka < seq, b_in = ka + 1 < seq;
            s[n][0] = fmaf(s[n][0], scale, r0 < seq && a_in ? bias_h[ka - r0] : 0.0f);
            s[n][1] = fmaf(s[n][1], scale, r0 < seq && b_in ? bias_h[ka + 1 - r0] : 0.0f);
            s[n][2] = fmaf(s[n][2], scale, r1 < seq && a_in ? bias_h[ka - r1] : 0.0f);
            s[n][3] = fmaf(s[n][3], scale, r1 < seq && b_in ? bias_h[ka + 1 - r1] : 0.0f);
            s[n][0] += ma;
            s[n][1] += mb;
            s[n][2] += ma;
            s[n][3] += mb;
        } else {
            s[n][0] = fmaf(s[n][0], scale, ma);
            s[n][1] = fmaf(s[n][1], scale, mb);
            s[n][2] = fmaf(s[n][2], scale, ma);
            s[n][3] = fmaf(s[n][3], scale, mb);
        }
        mx0 = fmaxf(mx0, fmaxf(s[n][0], s[n][1]));
        mx1 = fmaxf(mx1, fmaxf(s[n][2], s[n][3]));
    }
#pragma unroll
    for (int off = 1; off < 4; off <<= 1) {
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, off));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, off));
    }
    const float n0 = fmaxf(m0, mx0), n1 = fmaxf(m1, mx1); // finite: chunk 0 has a key
    const float c0 = __expf(m0 - n0), c1 = __expf(m1 - n1);
    m0 = n0;
    m1 = n1;
    float p0 = 0.0f, p1 = 0.0f;
#pragma unroll
    for (int n = 0; n < NT; n++) {
        s[n][0] = __expf(s[n][0] - n0);
        s[n][1] = __expf(s[n][1] - n0);
        s[n][2] = __expf(s[n][2] - n1);
        s[n][3] = __expf(s[n][3] - n1);
        p0 += s[n][0] + s[n][1];
        p1 += s[n][2] + s[n][3];
    }
    l0 = l0 * c0 + p0;
    l1 = l1 * c1 + p1;
#pragma unroll
    for (int d = 0; d < DT; d++) {
        o[d][0] *= c0;
        o[d][1] *= c0;
        o[d][2] *= c1;
        o[d][3] *= c1;
    }
}

// The A fragment of P for keys 16 kk .. +16 (score tiles 2 kk and 2 kk + 1 of the S accumulator
// layout, reused as is), rounded to the storage type.
template <typename T>
__device__ __forceinline__ void p_fragment(unsigned (&pa)[4], const float (&lo)[4],
                                           const float (&hi)[4]) {
    pa[0] = pack2<T>(lo[0], lo[1]);
    pa[1] = pack2<T>(lo[2], lo[3]);
    pa[2] = pack2<T>(hi[0], hi[1]);
    pa[3] = pack2<T>(hi[2], hi[3]);
}

// Rows r0, r1 of the output: o over the rows' sums (l0, l1 summed over the lane quad first);
// rows past seq are not written.
template <typename T, int DT>
__device__ __forceinline__ void store_rows(const float (&o)[DT][4], float l0, float l1, T *out,
                                           u64 ld_o, u64 base, u64 col, int r0, int r1,
                                           int seq, int t) {
#pragma unroll
    for (int off = 1; off < 4; off <<= 1) {
        l0 += __shfl_xor_sync(0xffffffffu, l0, off);
        l1 += __shfl_xor_sync(0xffffffffu, l1, off);
    }
    const float i0 = 1.0f / l0, i1 = 1.0f / l1;
#pragma unroll
    for (int d = 0; d < DT; d++) {
        const int c = d * 8 + 2 * t;
        if (r0 < seq) {
            T *o0 = out + (base + r0) * ld_o + col + c;
            o0[0] = from_f<T>(o[d][0] * i0);
            o0[1] = from_f<T>(o[d][1] * i0);
        }
        if (r1 < seq) {
            T *o1 = out + (base + r1) * ld_o + col + c;
            o1[0] = from_f<T>(o[d][2] * i1);
            o1[1] = from_f<T>(o[d][3] * i1);
        }
    }
}

template <typename T, int HD>
__device__ void attention_tc(const T *q, u64 ld_q, const T *k, u64 ld_k, const T *v, u64 ld_v,
                             const float *mask, const float *bias, int span, T *out, u64 ld_o,
                             int seq, float scale) {
#if __CUDA_ARCH__ >= 800
    constexpr int KS = HD / 16;    // k-steps of Q K^T
    constexpr int NT = TC_KC / 8;  // key tiles of a chunk
    constexpr int DT = HD / 8;     // output tiles
    constexpr int KP = HD + 8;     // K row pitch (elements)
    constexpr int VP = TC_KC + 8;  // V^T row pitch
    __shared__ __align__(16) unsigned short k_s[TC_KC * KP];
    __shared__ __align__(16) unsigned short v_s[HD * VP];
    __shared__ float m_s[TC_KC];

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int g = lane >> 2, t = lane & 3;
    const int h = blockIdx.y, b = blockIdx.z;
    const u64 base = (u64)b * seq;
    const u64 col = (u64)h * HD;
    const int r0 = blockIdx.x * TC_ROWS + warp * 16 + g, r1 = r0 + 8;
    // This head's biases, indexed by key - query (null: none).
    const float *bias_h = bias ? bias + (u64)h * (2 * span + 1) + span : nullptr;
    // K and V rows as 16-byte vectors when every row start is 16-byte aligned (col * 2 bytes is:
    // HD is a multiple of 8).
    const bool vec = (((u64)k | (u64)v) & 15) == 0 && ((ld_k | ld_v) & 7) == 0;

    // Q fragments (rows r0, r1), straight from global memory; rows past seq are 0.
    unsigned qa[KS][4];
    load_q<T, KS>(qa, q, ld_q, base, col, r0, r1, seq, t);

    float o[DT][4];
#pragma unroll
    for (int d = 0; d < DT; d++) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.0f;
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f; // l: this lane's part

    for (int k0 = 0; k0 < seq; k0 += TC_KC) {
        __syncthreads(); // the previous chunk is no longer read
        if (vec) {
            // 8 elements (16 bytes) per load.
            for (int i = tid; i < TC_KC * HD / 8; i += 128) {
                const int j = i / (HD / 8), c = (i % (HD / 8)) * 8, key = k0 + j;
                uint4 kv = make_uint4(0u, 0u, 0u, 0u), vv = kv;
                if (key < seq) {
                    kv = *reinterpret_cast<const uint4 *>(k + (base + key) * ld_k + col + c);
                    vv = *reinterpret_cast<const uint4 *>(v + (base + key) * ld_v + col + c);
                }
                *reinterpret_cast<uint4 *>(&k_s[j * KP + c]) = kv;
                const unsigned w[4] = {vv.x, vv.y, vv.z, vv.w};
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    v_s[(c + 2 * e) * VP + j] = (unsigned short)(w[e] & 0xffffu);
                    v_s[(c + 2 * e + 1) * VP + j] = (unsigned short)(w[e] >> 16);
                }
            }
        } else {
            for (int i = tid; i < TC_KC * HD; i += 128) {
                const int j = i / HD, c = i % HD, key = k0 + j;
                const bool in = key < seq;
                k_s[j * KP + c] = in ? k[(base + key) * ld_k + col + c].x : (unsigned short)0;
                v_s[c * VP + j] = in ? v[(base + key) * ld_v + col + c].x : (unsigned short)0;
            }
        }
        if (tid < TC_KC) {
            const int key = k0 + tid;
            m_s[tid] = key >= seq ? -INFINITY
                       : mask     ? (1.0f - mask[base + key]) * -3.402823466e38f
                                  : 0.0f;
        }
        __syncthreads();

        float s[NT][4];
#pragma unroll
        for (int n = 0; n < NT; n++) {
            s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
            const unsigned short *kr = &k_s[(n * 8 + g) * KP + 2 * t];
#pragma unroll
            for (int ks = 0; ks < KS; ks++) {
                const unsigned b0 = *reinterpret_cast<const unsigned *>(kr + ks * 16);
                const unsigned b1 = *reinterpret_cast<const unsigned *>(kr + ks * 16 + 8);
                Mma<T>::run(s[n], qa[ks], b0, b1);
            }
        }
        online_softmax<NT, DT>(s, o, m_s, bias_h, k0, r0, r1, seq, scale, t, m0, m1, l0, l1);
        // o += P V, P's accumulator layout reused as the A fragments (16 keys per k-step).
#pragma unroll
        for (int kk = 0; kk < TC_KC / 16; kk++) {
            unsigned pa[4];
            p_fragment<T>(pa, s[2 * kk], s[2 * kk + 1]);
#pragma unroll
            for (int d = 0; d < DT; d++) {
                const unsigned short *vr = &v_s[(d * 8 + g) * VP + kk * 16 + 2 * t];
                const unsigned b0 = *reinterpret_cast<const unsigned *>(vr);
                const unsigned b1 = *reinterpret_cast<const unsigned *>(vr + 8);
                Mma<T>::run(o[d], pa, b0, b1);
            }
        }
    }

    store_rows<T, DT>(o, l0, l1, out, ld_o, base, col, r0, r1, seq, t);
#else
    for (int sub = 0; sub < TC_ROWS / ROWS; sub++)
        attention<T, HD>(q, ld_q, k, ld_k, v, ld_v, mask, bias, span, out, ld_o, seq, scale,
                         blockIdx.x * TC_ROWS + sub * ROWS);
#endif
}

// An entry point KIND_S_dHD of THREADS threads per block for the device function attention_KIND.
#define ATTENTION_ENTRY(KIND, THREADS, T, S, HD)                                              \
    extern "C" __global__ void __launch_bounds__(THREADS)                                    \
        attention_##KIND##_##S##_d##HD(const T *q, u64 ld_q, const T *k, u64 ld_k,            \
                                       const T *v, u64 ld_v, const float *mask,               \
                                       const float *bias, int span, T *out, u64 ld_o,         \
                                       int seq, float scale) {                                \
        attention_##KIND<T, HD>(q, ld_q, k, ld_k, v, ld_v, mask, bias, span, out, ld_o, seq,  \
                                scale);                                                       \
    }
#define ATTENTION_TC(T, S, HD) ATTENTION_ENTRY(tc, 128, T, S, HD)
ATTENTION_TC(f16_t, f16, 32)
ATTENTION_TC(f16_t, f16, 64)
ATTENTION_TC(f16_t, f16, 128)
ATTENTION_TC(bf16_t, bf16, 32)
ATTENTION_TC(bf16_t, bf16, 64)
ATTENTION_TC(bf16_t, bf16, 128)

// Flash-style tensor-core attention for f16 / bf16 (large batches) when K and V rows are 16-byte
// aligned: the arithmetic of attention_tc (mma.sync m16n8k16, f32 accumulation, online softmax,
// P rounded to the storage type, the same masking and bias), with the data movement of
// FlashAttention-2: K and V chunks of FA_KC keys copied to shared memory by cp.async, two
// stages deep, so the next chunk loads while this one is computed; V kept as [key][dim] and read
// transposed by ldmatrix.trans (no transposing stores); K fragments by ldmatrix. Rows padded by
// 8 elements: ldmatrix's 8 row addresses then fall on distinct banks. Grid (query tiles of
// FA_ROWS, heads, batch), FA_WARPS warps of 16 query rows each. 4 warps, not 8: with 8 a
// 128-token sequence's K and V are read once per head instead of twice, yet the kernel ran
// slower (fewer blocks in flight; docs/performance.md).

#define FA_WARPS 4
#define FA_ROWS (16 * FA_WARPS)

__device__ __forceinline__ unsigned smem_addr(const void *p) {
    unsigned r;
    asm("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }" : "=r"(r) : "l"(p));
    return r;
}
// 16 bytes global -> shared, bypassing L1; zero-filled when `in` is false (nothing is read).
__device__ __forceinline__ void cp_async16(void *dst, const void *src, bool in) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(smem_addr(dst)), "l"(src),
                 "r"(in ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;"); }
template <int N> __device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;" ::"n"(N));
}
__device__ __forceinline__ void ldsm_x4(unsigned (&r)[4], const unsigned short *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldsm_x4_t(unsigned (&r)[4], const unsigned short *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p)));
}

template <typename T, int HD>
__device__ void attention_fa(const T *q, u64 ld_q, const T *k, u64 ld_k, const T *v, u64 ld_v,
                             const float *mask, const float *bias, int span, T *out, u64 ld_o,
                             int seq, float scale) {
#if __CUDA_ARCH__ >= 800
    // Keys per chunk: 64, or 32 at head size 128 (two stages of K and V stay under 48 KB).
    constexpr int CK = HD > 64 ? 32 : 64;
    constexpr int KS = HD / 16; // k-steps of Q K^T
    constexpr int NT = CK / 8;  // key tiles of a chunk
    constexpr int DT = HD / 8;  // output tiles
    constexpr int P = HD + 8;   // K and V row pitch (elements)
    constexpr int VECS = CK * HD / 8; // 16-byte vectors of a chunk's K (and of its V)
    __shared__ __align__(128) unsigned short k_s[2][CK * P];
    __shared__ __align__(128) unsigned short v_s[2][CK * P];
    __shared__ float m_s[2][CK];

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int g = lane >> 2, t = lane & 3;
    const int h = blockIdx.y, b = blockIdx.z;
    const u64 base = (u64)b * seq;
    const u64 col = (u64)h * HD;
    const int r0 = blockIdx.x * FA_ROWS + warp * 16 + g, r1 = r0 + 8;
    const float *bias_h = bias ? bias + (u64)h * (2 * span + 1) + span : nullptr;

    // Chunk `k0` into stage `st`: K and V by cp.async (keys past seq zero-filled), the mask
    // terms by plain stores (seen by all after the __syncthreads before the chunk is read).
    auto load = [&](int st, int k0) {
        for (int i = tid; i < VECS; i += 32 * FA_WARPS) {
            const int j = i / (HD / 8), c = (i % (HD / 8)) * 8, key = k0 + j;
            const bool in = key < seq;
            const u64 row = base + (in ? key : 0);
            cp_async16(&k_s[st][j * P + c], k + row * ld_k + col + c, in);
            cp_async16(&v_s[st][j * P + c], v + row * ld_v + col + c, in);
        }
        if (tid < CK) {
            const int key = k0 + tid;
            m_s[st][tid] = key >= seq ? -INFINITY
                           : mask     ? (1.0f - mask[base + key]) * -3.402823466e38f
                                      : 0.0f;
        }
        cp_async_commit();
    };
    load(0, 0);

    // Q fragments (rows r0, r1) straight from global memory while chunk 0 is in flight.
    unsigned qa[KS][4];
    load_q<T, KS>(qa, q, ld_q, base, col, r0, r1, seq, t);

    float o[DT][4];
#pragma unroll
    for (int d = 0; d < DT; d++) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.0f;
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f; // l: this lane's part

    const int chunks = (seq + CK - 1) / CK;
    for (int ch = 0; ch < chunks; ch++) {
        const int st = ch & 1, k0 = ch * CK;
        if (ch + 1 < chunks) {
            load(st ^ 1, k0 + CK); // stage st ^ 1 was last read before the previous barrier
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();
        const unsigned short *ks_ = k_s[st], *vs_ = v_s[st];

        float s[NT][4];
#pragma unroll
        for (int n = 0; n < NT; n++) {
            s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
            for (int p = 0; p < KS / 2; p++) {
                // Keys n*8 .. +8, dims p*32 .. +32: b0, b1 of k-steps 2p and 2p + 1.
                unsigned f[4];
                ldsm_x4(f, ks_ + (n * 8 + (lane & 7)) * P + p * 32 + (lane >> 3) * 8);
                Mma<T>::run(s[n], qa[2 * p], f[0], f[1]);
                Mma<T>::run(s[n], qa[2 * p + 1], f[2], f[3]);
            }
        }
        online_softmax<NT, DT>(s, o, m_s[st], bias_h, k0, r0, r1, seq, scale, t, m0, m1, l0,
                               l1);
#pragma unroll
        for (int kk = 0; kk < CK / 16; kk++) {
            unsigned pa[4];
            p_fragment<T>(pa, s[2 * kk], s[2 * kk + 1]);
#pragma unroll
            for (int d = 0; d < DT; d += 2) {
                // Keys kk*16 .. +16 (two 8-key halves), dims d*8 .. +16: b0, b1 of tiles d, d+1.
                unsigned f[4];
                ldsm_x4_t(f, vs_ + (kk * 16 + (lane & 15)) * P + (d + (lane >> 4)) * 8);
                Mma<T>::run(o[d], pa, f[0], f[1]);
                Mma<T>::run(o[d + 1], pa, f[2], f[3]);
            }
        }
        __syncthreads(); // every warp is done with stage st before it is refilled
    }

    store_rows<T, DT>(o, l0, l1, out, ld_o, base, col, r0, r1, seq, t);
#endif
    // Below sm_80 (no cp.async, ldmatrix or m16n8k16) attention.rs never launches this kernel.
}

#define ATTENTION_FA(T, S, HD) ATTENTION_ENTRY(fa, 32 * FA_WARPS, T, S, HD)
ATTENTION_FA(f16_t, f16, 32)
ATTENTION_FA(f16_t, f16, 64)
ATTENTION_FA(f16_t, f16, 128)
ATTENTION_FA(bf16_t, bf16, 32)
ATTENTION_FA(bf16_t, bf16, 64)
ATTENTION_FA(bf16_t, bf16, 128)
