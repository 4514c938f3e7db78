// Fused masked multi-head self-attention, out = softmax(Q K^T * scale + mask) V, for one head size
// HD (a multiple of 32) per kernel. Q, K, V and out are [batch, seq, ...] rows of `ld_*`
// elements, head h at columns h*HD .. (h+1)*HD (the layout the projection GEMMs write, also a
// fused QKV buffer); mask is [batch, seq] of 1 (token) / 0 (padding), or null.
//
// Grid (query tiles of ROWS, heads, batch); 4 warps per block, each owning ROWS/4 query rows.
// Keys stream through shared memory in chunks of 32 (one key per lane) with an online softmax
// (running max and sum per row), so any sequence length works with fixed shared memory and the
// scores never reach device memory. A masked key gets (1 - m) * -FLT_MAX added, as Hugging Face
// BERT; a row whose keys are all masked becomes uniform, as in PyTorch.

#define WARPS 4
#define RPW 4 // query rows per warp
#define ROWS (WARPS * RPW)
#define KC 32 // keys per chunk

template <typename T, int HD>
__device__ void attention(const T *q, u64 ld_q, const T *k, u64 ld_k, const T *v, u64 ld_v,
                          const float *mask, T *out, u64 ld_o, int seq, float scale) {
    constexpr int D = HD / 32; // output dims per lane
    __shared__ __align__(16) float q_s[ROWS][HD]; // rows read as float4 (HD % 32 == 0)
    __shared__ float k_s[KC][HD + 1]; // +1: lanes read k_s[lane][c] without bank conflicts
    __shared__ float v_s[KC][HD];
    __shared__ float m_s[KC];

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int h = blockIdx.y, b = blockIdx.z, q0 = blockIdx.x * ROWS;
    const u64 base = (u64)b * seq;
    const u64 col = (u64)h * HD;

    for (int i = tid; i < ROWS * HD; i += WARPS * 32) {
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

    for (int k0 = 0; k0 < seq; k0 += KC) {
        __syncthreads(); // the previous chunk is no longer read (and q_s is written)
        for (int i = tid; i < KC * HD; i += WARPS * 32) {
            int j = i / HD, c = i % HD, key = k0 + j;
            bool in = key < seq;
            k_s[j][c] = in ? to_f(k[(base + key) * ld_k + col + c]) : 0.0f;
            v_s[j][c] = in ? to_f(v[(base + key) * ld_v + col + c]) : 0.0f;
        }
        if (tid < KC) {
            int key = k0 + tid;
            m_s[tid] = key >= seq ? -INFINITY
                       : mask     ? (1.0f - mask[base + key]) * -3.402823466e38f
                                  : 0.0f;
        }
        __syncthreads();

        // Scores of key `lane` for this warp's rows: the key row goes through registers 32
        // values at a time, the query rows are read as broadcast float4s.
        const bool key_in = k0 + lane < seq;
        float s[RPW];
#pragma unroll
        for (int r = 0; r < RPW; r++) s[r] = 0.0f;
#pragma unroll
        for (int cc = 0; cc < HD; cc += 32) {
            float kr[32];
#pragma unroll
            for (int c = 0; c < 32; c++) kr[c] = k_s[lane][cc + c];
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
            const float sc = key_in ? s[r] + m_s[lane] : -INFINITY;
            const float m_new = fmaxf(m_run[r], warp_max(sc)); // finite: chunk 0 has a key
            const float corr = __expf(m_run[r] - m_new);
            p[r] = key_in ? __expf(sc - m_new) : 0.0f;
            l_run[r] = l_run[r] * corr + warp_sum(p[r]);
            m_run[r] = m_new;
#pragma unroll
            for (int d = 0; d < D; d++) acc[r][d] *= corr;
        }
        // acc += P V: each V row is read once from shared memory for all of the warp's rows.
#pragma unroll 4
        for (int j = 0; j < KC; j++) {
            float vr[D];
#pragma unroll
            for (int d = 0; d < D; d++) vr[d] = v_s[j][lane + 32 * d];
#pragma unroll
            for (int r = 0; r < RPW; r++) {
                const float pj = __shfl_sync(0xffffffffu, p[r], j);
#pragma unroll
                for (int d = 0; d < D; d++) acc[r][d] = fmaf(pj, vr[d], acc[r][d]);
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
                              u64 ld_v, const float *mask, T *out, u64 ld_o, int seq,         \
                              float scale) {                                                  \
        attention<T, HD>(q, ld_q, k, ld_k, v, ld_v, mask, out, ld_o, seq, scale);             \
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
