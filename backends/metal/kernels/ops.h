// The kernels' bodies, written once for the Metal Shading Language build (entry.metal) and the
// host C++17 build (host.cpp), templated on the storage type T (float or half). Never compiled by
// a Metal compiler: the host build checks the arithmetic and the phase structure, not the Metal
// API use. Semantics: the CPU backend's (see params.h for each op); arithmetic is f32.
//
// The phase model. A threadgroup kernel K has `Shared` (its threadgroup memory), `Local`
// (per-thread state kept across barriers), `phases(p, threads)` and `phase(ph, ...)`, which does
// phase ph for one thread. The MSL entry runs every phase in every thread with a threadgroup
// barrier after each; the host runs each phase for all threads of a group before the next
// (which the barrier guarantees on the GPU). A phase for which `per_simdgroup` is true uses
// simdgroup matrices: on the GPU all 32 lanes call it, on the host it runs once per simdgroup
// (lane 0 with its Local), since the host matrix holds all 64 values. Nothing may depend on
// work done by another thread in the same phase.
//
// Element kernels (K::run) are single-phase, one thread per output element, no shared memory.

#ifndef SP_OPS_H
#define SP_OPS_H

// Where a thread is: 1-D dispatch.
struct SpThread {
    uint group;    // threadgroup index in the grid
    uint tid;      // thread index in its threadgroup
    uint threads;  // threads per threadgroup
    uint simd;     // simdgroup index in the threadgroup
    uint lane;     // lane in the simdgroup
};

// Per-thread state of kernels that keep none across barriers.
struct SpNoLocal {
    uint unused;
};

// act(v) for the SP_ACT_* codes.
inline float sp_activate(uint act, float v) {
    if (act == SP_ACT_GELU) {
        return 0.5f * v * (1.0f + sp_erf(v * 0.70710678118654752f));
    }
    if (act == SP_ACT_TANH) {
        return sp_tanh(v);
    }
    if (act == SP_ACT_GELU_TANH) {
        const float k = 0.79788456080286536f;  // sqrt(2 / pi)
        return 0.5f * v * (1.0f + sp_tanh(k * (v + 0.044715f * v * v * v)));
    }
    return v;
}

// First level of the block reductions: thread t < 32 folds part[t], part[t + 32], ... (n
// entries, one per thread) into red[t]. The second level is sp_sum_red / sp_max_red, which
// every thread then runs itself in the next phase: the same sums in the same order, so every
// thread gets the same value without another barrier.
inline void sp_fold_sum(SP_THREADGROUP const float* part, uint n, SP_THREADGROUP float* red,
                        uint t) {
    if (t < 32) {
        float s = 0.0f;
        for (uint i = t; i < n; i += 32) {
            s += part[i];
        }
        red[t] = s;
    }
}

inline float sp_sum_red(SP_THREADGROUP const float* red, uint n) {
    const uint m = sp_umin(n, 32u);
    float s = 0.0f;
    for (uint i = 0; i < m; ++i) {
        s += red[i];
    }
    return s;
}

inline float sp_max_red(SP_THREADGROUP const float* red, uint n) {
    const uint m = sp_umin(n, 32u);
    float s = -SP_FLT_MAX;
    for (uint i = 0; i < m; ++i) {
        s = sp_fmax(s, red[i]);
    }
    return s;
}

// ---------------------------------------------------------------------------------------------
// linear: out = act(x . w^T + bias). One 32x32 output tile per group of 128 threads; simdgroup
// s owns the 16x16 quarter (s / 2, s % 2) as 2x2 8x8 accumulators. Per K-step of 32: a
// per-thread phase stages x's tile and w's tile transposed (zero past rows, inputs, outputs),
// then a simdgroup phase multiplies them. Then the accumulators go to a C tile (simdgroup phase)
// and a per-thread epilogue adds the bias, applies act and stores with bounds checks.

// Row stride of the transposed w tile: padded by 4 so its rows keep 16-byte alignment for
// simdgroup_load (an odd stride would spread the transposed stores over all 32 banks, but would
// leave rows misaligned, which simdgroup_load is not documented to accept).
#define SP_LINEAR_LDW (SP_LINEAR_TILE + 4)

template <typename T>
struct SpLinear {
    struct Shared {
        float x[SP_LINEAR_TILE * SP_LINEAR_TILE];  // [row][k]
        float w[SP_LINEAR_TILE * SP_LINEAR_LDW];   // [k][output]
        float c[SP_LINEAR_TILE * SP_LINEAR_TILE];  // [row][output]
    };
    struct Local {
        simdgroup_float8x8 acc[4];  // [row half][column half] of the simdgroup's quarter
    };

    // K-steps; at least one, so that the accumulators are zeroed and stored when inputs = 0.
    static uint steps(SP_CONSTANT LinearParams& p) {
        const uint s = (p.inputs + SP_LINEAR_TILE - 1) / SP_LINEAR_TILE;
        return s == 0 ? 1u : s;
    }
    static uint phases(SP_CONSTANT LinearParams& p, uint threads) {
        (void)threads;
        return 2 * steps(p) + 2;
    }
    static bool per_simdgroup(uint ph, SP_CONSTANT LinearParams& p, uint threads) {
        (void)threads;
        const uint s = steps(p);
        return ph < 2 * s ? (ph & 1u) != 0 : ph == 2 * s;
    }

    static void phase(uint ph, SP_CONSTANT LinearParams& p, SP_DEVICE const T* x,
                      SP_DEVICE const T* w, SP_DEVICE const T* bias, SP_DEVICE T* out,
                      SP_THREADGROUP Shared& sh, SP_THREAD Local& lo, SpThread th) {
        const uint tile = SP_LINEAR_TILE;
        const uint tiles_n = (p.outputs + tile - 1) / tile;
        if (tiles_n == 0) {
            return;
        }
        const uint row0 = (th.group / tiles_n) * tile;
        const uint col0 = (th.group % tiles_n) * tile;
        const uint s = steps(p);
        if (ph < 2 * s && (ph & 1u) == 0) {
            // Stage K-step ph / 2: consecutive threads read consecutive k (coalesced).
            const uint k0 = (ph / 2) * tile;
            for (uint e = th.tid; e < tile * tile; e += th.threads) {
                const uint r = e / tile;
                const uint k = e % tile;
                const bool kin = k0 + k < p.inputs;
                float xv = 0.0f;
                if (kin && row0 + r < p.rows) {
                    xv = float(x[p.x_off + (row0 + r) * p.inputs + k0 + k]);
                }
                sh.x[r * tile + k] = xv;
                float wv = 0.0f;  // here r is the output
                if (kin && col0 + r < p.outputs) {
                    wv = float(w[p.w_off + (col0 + r) * p.inputs + k0 + k]);
                }
                sh.w[k * SP_LINEAR_LDW + r] = wv;
            }
        } else if (ph < 2 * s) {
            // Simdgroup phase: the quarter's 16x16 += x[16 x 32] . w^T[32 x 16].
            if (th.simd >= 4) {
                return;
            }
            if (ph == 1) {
                for (uint i = 0; i < 4; ++i) {
                    lo.acc[i] = sp_simd_zero();
                }
            }
            const uint qr = (th.simd / 2) * 16;
            const uint qc = (th.simd % 2) * 16;
            for (uint kk = 0; kk < tile; kk += 8) {
                simdgroup_float8x8 a0;
                simdgroup_float8x8 a1;
                simdgroup_float8x8 b0;
                simdgroup_float8x8 b1;
                simdgroup_load(a0, &sh.x[qr * tile + kk], tile);
                simdgroup_load(a1, &sh.x[(qr + 8) * tile + kk], tile);
                simdgroup_load(b0, &sh.w[kk * SP_LINEAR_LDW + qc], SP_LINEAR_LDW);
                simdgroup_load(b1, &sh.w[kk * SP_LINEAR_LDW + qc + 8], SP_LINEAR_LDW);
                simdgroup_multiply_accumulate(lo.acc[0], a0, b0, lo.acc[0]);
                simdgroup_multiply_accumulate(lo.acc[1], a0, b1, lo.acc[1]);
                simdgroup_multiply_accumulate(lo.acc[2], a1, b0, lo.acc[2]);
                simdgroup_multiply_accumulate(lo.acc[3], a1, b1, lo.acc[3]);
            }
        } else if (ph == 2 * s) {
            // Simdgroup phase: accumulators to the C tile.
            if (th.simd >= 4) {
                return;
            }
            const uint qr = (th.simd / 2) * 16;
            const uint qc = (th.simd % 2) * 16;
            simdgroup_store(lo.acc[0], &sh.c[qr * tile + qc], tile);
            simdgroup_store(lo.acc[1], &sh.c[qr * tile + qc + 8], tile);
            simdgroup_store(lo.acc[2], &sh.c[(qr + 8) * tile + qc], tile);
            simdgroup_store(lo.acc[3], &sh.c[(qr + 8) * tile + qc + 8], tile);
        } else {
            // Epilogue: consecutive threads write consecutive outputs.
            for (uint e = th.tid; e < tile * tile; e += th.threads) {
                const uint r = e / tile;
                const uint n = e % tile;
                if (row0 + r < p.rows && col0 + n < p.outputs) {
                    float v = sh.c[e];
                    if (p.has_bias != 0) {
                        v += float(bias[p.bias_off + col0 + n]);
                    }
                    out[p.out_off + (row0 + r) * p.outputs + col0 + n] = T(sp_activate(p.act, v));
                }
            }
        }
    }
};

// ---------------------------------------------------------------------------------------------
// Row kernels: one group per row, threads striding over it; values are recomputed from the
// inputs in each phase (no limit on the row's length). Threads past SP_ROW_THREADS (a dispatch
// outside the contract) idle.

struct SpRowShared {
    float part[SP_ROW_THREADS];  // one partial per thread
    float red[32];               // first fold of the partials
};

struct SpRowLocal {
    float mean;
};

// add_layer_norm: out = LayerNorm(x + bias + residual), two-pass mean and biased variance.
// Phases: partial sums | fold | mean, partial squared deviations | fold | normalise.
template <typename T>
struct SpAddLayerNorm {
    typedef SpRowShared Shared;
    typedef SpRowLocal Local;

    static uint phases(SP_CONSTANT AddLayerNormParams& p, uint threads) {
        (void)p;
        (void)threads;
        return 5;
    }
    static bool per_simdgroup(uint ph, SP_CONSTANT AddLayerNormParams& p, uint threads) {
        (void)ph;
        (void)p;
        (void)threads;
        return false;
    }

    // x + bias + residual at column c of the row starting at element `row` (the CPU's order).
    static float value(SP_CONSTANT AddLayerNormParams& p, SP_DEVICE const T* x,
                       SP_DEVICE const T* residual, SP_DEVICE const T* bias, uint row, uint c) {
        float v = float(x[p.x_off + row + c]);
        if (p.has_bias != 0) {
            v += float(bias[p.bias_off + c]);
        }
        if (p.has_residual != 0) {
            v += float(residual[p.residual_off + row + c]);
        }
        return v;
    }

    static void phase(uint ph, SP_CONSTANT AddLayerNormParams& p, SP_DEVICE const T* x,
                      SP_DEVICE const T* residual, SP_DEVICE const T* bias,
                      SP_DEVICE const T* gamma, SP_DEVICE const T* beta, SP_DEVICE T* out,
                      SP_THREADGROUP Shared& sh, SP_THREAD Local& lo, SpThread th) {
        const uint n = sp_umin(th.threads, SP_ROW_THREADS);
        const uint t = th.tid;
        if (t >= n || th.group >= p.rows) {
            return;
        }
        const uint row = th.group * p.dim;
        const float count = float(p.dim);
        if (ph == 0) {
            float s = 0.0f;
            for (uint c = t; c < p.dim; c += n) {
                s += value(p, x, residual, bias, row, c);
            }
            sh.part[t] = s;
        } else if (ph == 1 || ph == 3) {
            sp_fold_sum(sh.part, n, sh.red, t);
        } else if (ph == 2) {
            lo.mean = sp_sum_red(sh.red, n) / count;
            float s = 0.0f;
            for (uint c = t; c < p.dim; c += n) {
                const float d = value(p, x, residual, bias, row, c) - lo.mean;
                s += d * d;
            }
            sh.part[t] = s;
        } else {
            const float var = sp_sum_red(sh.red, n) / count;
            const float inv = 1.0f / sp_sqrt(var + p.eps);
            for (uint c = t; c < p.dim; c += n) {
                const float v = value(p, x, residual, bias, row, c);
                const float y = (v - lo.mean) * inv * float(gamma[p.gamma_off + c]) +
                                float(beta[p.beta_off + c]);
                out[p.out_off + row + c] = T(y);
            }
        }
    }
};

// bert_embeddings: LayerNorm(word[id] + position[s] + token_type[type]) per token, phases as
// add_layer_norm; an id, type or position past its table gives a row of NaN.
template <typename T>
struct SpBertEmbeddings {
    typedef SpRowShared Shared;
    typedef SpRowLocal Local;

    static uint phases(SP_CONSTANT BertEmbeddingsParams& p, uint threads) {
        (void)p;
        (void)threads;
        return 5;
    }
    static bool per_simdgroup(uint ph, SP_CONSTANT BertEmbeddingsParams& p, uint threads) {
        (void)ph;
        (void)p;
        (void)threads;
        return false;
    }

    static void phase(uint ph, SP_CONSTANT BertEmbeddingsParams& p, SP_DEVICE const uint* ids,
                      SP_DEVICE const uint* type_ids, SP_DEVICE const T* word,
                      SP_DEVICE const T* position, SP_DEVICE const T* token_type,
                      SP_DEVICE const T* gamma, SP_DEVICE const T* beta, SP_DEVICE T* out,
                      SP_THREADGROUP Shared& sh, SP_THREAD Local& lo, SpThread th) {
        const uint n = sp_umin(th.threads, SP_ROW_THREADS);
        const uint t = th.tid;
        if (t >= n || p.seq == 0 || th.group >= p.batch * p.seq) {
            return;
        }
        const uint token = th.group;
        const uint s = token % p.seq;
        const uint id = ids[p.ids_off + token];
        const uint ty = p.has_type_ids != 0 ? type_ids[p.type_ids_off + token] : 0u;
        const uint dim = p.dim;
        const uint orow = p.out_off + token * dim;
        if (id >= p.vocab || ty >= p.type_vocab || s >= p.max_positions) {
            if (ph == 4) {
                for (uint c = t; c < dim; c += n) {
                    out[orow + c] = T(SP_NAN);
                }
            }
            return;
        }
        const uint wrow = p.word_off + id * dim;
        const uint prow = p.position_off + s * dim;
        const uint trow = p.token_type_off + ty * dim;
        const float count = float(dim);
        // word + (position + type), the CPU's order.
#define SP_BERT_VALUE(c) \
    (float(word[wrow + (c)]) + (float(position[prow + (c)]) + float(token_type[trow + (c)])))
        if (ph == 0) {
            float acc = 0.0f;
            for (uint c = t; c < dim; c += n) {
                acc += SP_BERT_VALUE(c);
            }
            sh.part[t] = acc;
        } else if (ph == 1 || ph == 3) {
            sp_fold_sum(sh.part, n, sh.red, t);
        } else if (ph == 2) {
            lo.mean = sp_sum_red(sh.red, n) / count;
            float acc = 0.0f;
            for (uint c = t; c < dim; c += n) {
                const float d = SP_BERT_VALUE(c) - lo.mean;
                acc += d * d;
            }
            sh.part[t] = acc;
        } else {
            const float var = sp_sum_red(sh.red, n) / count;
            const float inv = 1.0f / sp_sqrt(var + p.eps);
            for (uint c = t; c < dim; c += n) {
                const float y = (SP_BERT_VALUE(c) - lo.mean) * inv *
                                    float(gamma[p.gamma_off + c]) +
                                float(beta[p.beta_off + c]);
                out[orow + c] = T(y);
            }
        }
#undef SP_BERT_VALUE
    }
};

// l2_normalize: x / max(||x||, 1e-12). Phases: partial sums of squares | fold | divide. In
// place (out == x) is safe: each element is read and written by the same thread, and the last
// reads of x by other threads come before the barrier ahead of the writes.
template <typename T>
struct SpL2Normalize {
    typedef SpRowShared Shared;
    typedef SpNoLocal Local;

    static uint phases(SP_CONSTANT L2NormalizeParams& p, uint threads) {
        (void)p;
        (void)threads;
        return 3;
    }
    static bool per_simdgroup(uint ph, SP_CONSTANT L2NormalizeParams& p, uint threads) {
        (void)ph;
        (void)p;
        (void)threads;
        return false;
    }

    static void phase(uint ph, SP_CONSTANT L2NormalizeParams& p, SP_DEVICE const T* x,
                      SP_DEVICE T* out, SP_THREADGROUP Shared& sh, SP_THREAD Local& lo,
                      SpThread th) {
        (void)lo;
        const uint n = sp_umin(th.threads, SP_ROW_THREADS);
        const uint t = th.tid;
        if (t >= n || th.group >= p.rows) {
            return;
        }
        const uint xrow = p.x_off + th.group * p.dim;
        const uint orow = p.out_off + th.group * p.dim;
        if (ph == 0) {
            float s = 0.0f;
            for (uint c = t; c < p.dim; c += n) {
                const float v = float(x[xrow + c]);
                s += v * v;
            }
            sh.part[t] = s;
        } else if (ph == 1) {
            sp_fold_sum(sh.part, n, sh.red, t);
        } else {
            const float norm = sp_fmax(sp_sqrt(sp_sum_red(sh.red, n)), 1e-12f);
            for (uint c = t; c < p.dim; c += n) {
                out[orow + c] = T(float(x[xrow + c]) / norm);
            }
        }
    }
};

// rms_norm: out = residual + x / sqrt(mean(x^2) + eps) * weight. Phases: partial sums of
// squares | fold | normalise.
template <typename T>
struct SpRmsNorm {
    typedef SpRowShared Shared;
    typedef SpNoLocal Local;

    static uint phases(SP_CONSTANT RmsNormParams& p, uint threads) {
        (void)p;
        (void)threads;
        return 3;
    }
    static bool per_simdgroup(uint ph, SP_CONSTANT RmsNormParams& p, uint threads) {
        (void)ph;
        (void)p;
        (void)threads;
        return false;
    }

    static void phase(uint ph, SP_CONSTANT RmsNormParams& p, SP_DEVICE const T* x,
                      SP_DEVICE const T* residual, SP_DEVICE const T* weight, SP_DEVICE T* out,
                      SP_THREADGROUP Shared& sh, SP_THREAD Local& lo, SpThread th) {
        (void)lo;
        const uint n = sp_umin(th.threads, SP_ROW_THREADS);
        const uint t = th.tid;
        if (t >= n || th.group >= p.rows) {
            return;
        }
        const uint row = th.group * p.dim;
        if (ph == 0) {
            float s = 0.0f;
            for (uint c = t; c < p.dim; c += n) {
                const float v = float(x[p.x_off + row + c]);
                s += v * v;
            }
            sh.part[t] = s;
        } else if (ph == 1) {
            sp_fold_sum(sh.part, n, sh.red, t);
        } else {
            const float inv = 1.0f / sp_sqrt(sp_sum_red(sh.red, n) / float(p.dim) + p.eps);
            for (uint c = t; c < p.dim; c += n) {
                float y = float(x[p.x_off + row + c]) * inv * float(weight[p.weight_off + c]);
                if (p.has_residual != 0) {
                    y = float(residual[p.residual_off + row + c]) + y;
                }
                out[p.out_off + row + c] = T(y);
            }
        }
    }
};

// ---------------------------------------------------------------------------------------------
// attention: one group per query (b, h, i). Keys go in chunks of n = threads with an online
// softmax. The threads form `subsets` teams of `lanes` threads (lanes: the head size rounded up
// to 32, at most n); lane l of a team owns head dims l, l + lanes, ... and the team the chunk's
// keys s, s + subsets, ... Phases: 0 stages the query; then per chunk, each thread scores one
// key | threads < 32 fold the chunk's max | each thread takes the new running max (all compute
// the same) and writes its key's weight | each thread rescales and accumulates its dims over its
// team's keys, with its team's running sum; after the last chunk the teams' partial outputs and
// sums go to shared memory, and a last phase adds them up and stores. No limit on the sequence.

#define SP_ATTENTION_PER_THREAD (SP_ATTENTION_MAX_HEAD_DIM / 32)

template <typename T>
struct SpAttention {
    struct Shared {
        float q[SP_ATTENTION_MAX_HEAD_DIM];
        float score[SP_ATTENTION_THREADS];
        float p[SP_ATTENTION_THREADS];
        float red[32];
        float o[SP_ATTENTION_THREADS * SP_ATTENTION_PER_THREAD];  // [team][dim] partial outputs
        float l[SP_ATTENTION_THREADS / 32];                         // [team] partial sums
    };
    struct Local {
        float acc[SP_ATTENTION_PER_THREAD];  // the team's unnormalised output at the dims owned
        float m;                             // running max (the same in every thread)
        float l;                             // the team's running sum of weights
        float corr;                          // the current chunk's rescale factor
    };

    static uint width(uint threads) { return sp_umin(threads, SP_ATTENTION_THREADS); }
    static uint phases(SP_CONSTANT AttentionParams& p, uint threads) {
        const uint n = width(threads);
        if (n == 0) {
            return 0;
        }
        return 2 + 4 * ((p.seq + n - 1) / n);
    }
    static bool per_simdgroup(uint ph, SP_CONSTANT AttentionParams& p, uint threads) {
        (void)ph;
        (void)p;
        (void)threads;
        return false;
    }

    static void phase(uint ph, SP_CONSTANT AttentionParams& p, SP_DEVICE const T* q,
                      SP_DEVICE const T* k, SP_DEVICE const T* v, SP_DEVICE const float* mask,
                      SP_DEVICE const float* bias, SP_DEVICE T* out, SP_THREADGROUP Shared& sh,
                      SP_THREAD Local& lo, SpThread th) {
        const uint n = width(th.threads);
        const uint t = th.tid;
        const uint hd = p.head_dim;
        // Past the contract (threads beyond the shared arrays, heads too wide for Local): idle.
        if (t >= n || p.seq == 0 || p.heads == 0 || th.group >= p.batch * p.heads * p.seq ||
            hd > SP_ATTENTION_MAX_HEAD_DIM || hd > n * SP_ATTENTION_PER_THREAD) {
            return;
        }
        const uint chunks = (p.seq + n - 1) / n;
        const uint chunk = ph == 0 ? 0u : (ph - 1) / 4;
        const uint stage = ph == 0 ? 0u : (ph - 1) % 4;
        const uint j0 = chunk * n;
        const uint cnt = chunk < chunks ? sp_umin(n, p.seq - j0) : 0u;
        // Threads with nothing to do in this phase leave before the index arithmetic (which
        // costs the host run, where threads do not run in lockstep).
        if (ph > 0 && chunk < chunks && ((stage == 0 && t >= cnt) || (stage == 1 && t >= 32))) {
            return;
        }
        // Teams: lanes >= hd where n allows (then each lane owns at most one dim).
        const uint lanes = sp_umin(n, hd == 0 ? 32u : (hd + 31) / 32 * 32);
        const uint subsets = n / lanes;
        const uint team = t / lanes;
        const uint lane = t % lanes;
        const uint owned = team < subsets && lane < hd ? (hd - lane + lanes - 1) / lanes : 0u;
        if ((ph == 1 + 4 * chunks || (ph > 0 && stage == 3)) && owned == 0) {
            return;  // no dims (and no output): its team's sum is lane 0's
        }
        const uint i = th.group % p.seq;
        const uint bh = th.group / p.seq;
        const uint h = bh % p.heads;
        const uint b = bh / p.heads;
        const uint kv_heads = p.kv_heads == 0 ? p.heads : p.kv_heads;
        const uint group = p.heads / kv_heads == 0 ? 1u : p.heads / kv_heads;
        const uint kvh = h / group;
        if (ph == 0) {
            const uint qrow = p.q_off + (b * p.seq + i) * p.ld_q + h * hd;
            for (uint d = t; d < hd; d += n) {
                sh.q[d] = float(q[qrow + d]);
            }
            for (uint r = 0; r < SP_ATTENTION_PER_THREAD; ++r) {
                lo.acc[r] = 0.0f;
            }
            lo.m = -SP_FLT_MAX;
            lo.l = 0.0f;
            lo.corr = 1.0f;
            return;
        }
        if (ph == 1 + 4 * chunks) {
            // Add up the teams' partials (fixed order) and store.
            if (team == 0) {
                float l = 0.0f;
                for (uint s = 0; s < subsets; ++s) {
                    l += sh.l[s];
                }
                const uint orow = p.out_off + (b * p.seq + i) * p.ld_out + h * hd;
                for (uint r = 0; r < owned; ++r) {
                    const uint d = lane + r * lanes;
                    float o = 0.0f;
                    for (uint s = 0; s < subsets; ++s) {
                        o += sh.o[s * hd + d];
                    }
                    out[orow + d] = T(o / l);
                }
            }
            return;
        }
        if (stage == 0) {
            const uint j = j0 + t;
            const uint krow = p.k_off + (b * p.seq + j) * p.ld_k + kvh * hd;
            float dot = 0.0f;
            for (uint d = 0; d < hd; ++d) {
                dot += sh.q[d] * float(k[krow + d]);
            }
            // As the CPU: scale, then the distance bias, then the additive mask.
            float s = dot * p.scale;
            if (p.has_bias != 0 && p.span + j >= i && p.span + j - i <= 2 * p.span) {
                s += bias[p.bias_off + h * (2 * p.span + 1) + (p.span + j - i)];
            }
            // A token (mask 1) adds exactly 0; testing for it keeps fast math from rewriting
            // s + (1 - m) * -FLT_MAX as (s - FLT_MAX) + m * FLT_MAX, which loses s.
            const float mv = p.has_mask != 0 ? mask[p.mask_off + b * p.seq + j] : 1.0f;
            if (mv != 1.0f) {
                s += (1.0f - mv) * -SP_FLT_MAX;
            }
            sh.score[t] = s;
        } else if (stage == 1) {
            float mx = -SP_FLT_MAX;
            for (uint u = t; u < cnt; u += 32) {
                mx = sp_fmax(mx, sh.score[u]);
            }
            sh.red[t] = mx;
        } else if (stage == 2) {
            // Masked scores are about -FLT_MAX: they weigh exp(-huge) = 0 next to any real key,
            // and all alike in a fully masked row, which so becomes uniform (as the CPU's).
            const float m = sp_fmax(lo.m, sp_max_red(sh.red, n));
            lo.corr = sp_exp(lo.m - m);
            lo.m = m;
            if (t < cnt) {
                sh.p[t] = sp_exp(sh.score[t] - m);
            }
        } else {
            const float corr = lo.corr;
            for (uint r = 0; r < owned; ++r) {
                lo.acc[r] *= corr;
            }
            float psum = 0.0f;
            const uint vbase = p.v_off + (b * p.seq + j0) * p.ld_v + kvh * hd + lane;
            for (uint j = team; j < cnt; j += subsets) {
                const float pj = sh.p[j];
                psum += pj;
                const uint vrow = vbase + j * p.ld_v;
                for (uint r = 0; r < owned; ++r) {
                    lo.acc[r] += pj * float(v[vrow + r * lanes]);
                }
            }
            lo.l = lo.l * corr + psum;
            if (chunk + 1 == chunks) {
                // The team's partials for the last phase.
                for (uint r = 0; r < owned; ++r) {
                    sh.o[team * hd + lane + r * lanes] = lo.acc[r];
                }
                if (lane == 0) {
                    sh.l[team] = lo.l;
                }
            }
        }
    }
};

// ---------------------------------------------------------------------------------------------
// Element kernels: one thread per output element, `gid` = group * threads + tid.

// pool: one thread per (b, d), looping over the sequence.
template <typename T>
struct SpPool {
    static void run(SP_CONSTANT PoolParams& p, SP_DEVICE const T* hidden,
                    SP_DEVICE const float* mask, SP_DEVICE T* out, uint gid) {
        if (p.dim == 0 || gid >= p.batch * p.dim) {
            return;
        }
        const uint b = gid / p.dim;
        const uint d = gid % p.dim;
        const uint base = p.hidden_off + b * p.seq * p.dim + d;
        const uint mrow = p.mask_off + b * p.seq;
        const bool masked = p.has_mask != 0;
        float r = 0.0f;
        if (p.kind == SP_POOL_MAX) {
            // Padding counts as -1e9 (sentence-transformers).
            r = -SP_FLT_MAX;
            for (uint s = 0; s < p.seq; ++s) {
                const bool pad = masked && mask[mrow + s] == 0.0f;
                r = sp_fmax(r, pad ? -1e9f : float(hidden[base + s * p.dim]));
            }
        } else if (p.kind == SP_POOL_LAST_TOKEN) {
            // Position sum(mask) - 1 of a right-padded sequence (the first when all padding).
            float count = float(p.seq);
            if (masked) {
                count = 0.0f;
                for (uint s = 0; s < p.seq; ++s) {
                    count += mask[mrow + s];
                }
            }
            uint last = 0;
            if (count >= 1.0f) {
                last = count >= float(p.seq) ? p.seq - 1 : uint(count) - 1;
            }
            r = p.seq == 0 ? 0.0f : float(hidden[base + last * p.dim]);
        } else if (p.kind == SP_POOL_WEIGHTED_MEAN) {
            // Weights 1, 2, ... by position, times the mask.
            float total = 0.0f;
            for (uint s = 0; s < p.seq; ++s) {
                const float w = (masked ? mask[mrow + s] : 1.0f) * float(s + 1);
                total += w;
                r += float(hidden[base + s * p.dim]) * w;
            }
            r = r / sp_fmax(total, 1e-9f);
        } else if (masked) {
            // Mean over the positions whose mask is not 0, divided by max(sum(mask), 1e-9).
            float count = 0.0f;
            for (uint s = 0; s < p.seq; ++s) {
                const float w = mask[mrow + s];
                if (w != 0.0f) {
                    r += float(hidden[base + s * p.dim]) * w;
                }
                count += w;
            }
            r = r / sp_fmax(count, 1e-9f);
        } else {
            for (uint s = 0; s < p.seq; ++s) {
                r += float(hidden[base + s * p.dim]);
            }
            r = r * (1.0f / float(p.seq == 0 ? 1u : p.seq));
        }
        out[p.out_off + gid] = T(r);
    }
};

// rotary: one thread per (token, head, i < head_dim / 2), rotating the pair (i, i + half);
// a position past the table gives NaN.
template <typename T>
struct SpRotary {
    static void run(SP_CONSTANT RotaryParams& p, SP_DEVICE const T* x,
                    SP_DEVICE const float* table, SP_DEVICE T* out, uint gid) {
        const uint half_dim = p.head_dim / 2;
        if (half_dim == 0 || p.seq == 0 || gid >= p.batch * p.seq * p.heads * half_dim) {
            return;
        }
        const uint i = gid % half_dim;
        const uint rest = gid / half_dim;
        const uint head = rest % p.heads;
        const uint token = rest / p.heads;
        const uint s = token % p.seq;
        const uint at = (token * p.heads + head) * p.head_dim + i;
        const float a = float(x[p.x_off + at]);
        const float b = float(x[p.x_off + at + half_dim]);
        float lo = SP_NAN;
        float hi = SP_NAN;
        if (s < p.positions) {
            const float c = table[p.table_off + s * p.head_dim + i];
            const float sn = table[p.table_off + s * p.head_dim + half_dim + i];
            // As PyTorch: x * cos + rotate_half(x) * sin.
            lo = a * c + (-b) * sn;
            hi = b * c + a * sn;
        }
        out[p.out_off + at] = T(lo);
        out[p.out_off + at + half_dim] = T(hi);
    }
};

// mul: out = a * b.
template <typename T>
struct SpMul {
    static void run(SP_CONSTANT MulParams& p, SP_DEVICE const T* a, SP_DEVICE const T* b,
                    SP_DEVICE T* out, uint gid) {
        if (gid >= p.count) {
            return;
        }
        out[p.out_off + gid] = T(float(a[p.a_off + gid]) * float(b[p.b_off + gid]));
    }
};

// embedding: out[t, c] = table[ids[t], c]; NaN past the table.
template <typename T>
struct SpEmbedding {
    static void run(SP_CONSTANT EmbeddingParams& p, SP_DEVICE const uint* ids,
                    SP_DEVICE const T* table, SP_DEVICE T* out, uint gid) {
        if (p.dim == 0 || gid >= p.tokens * p.dim) {
            return;
        }
        const uint t = gid / p.dim;
        const uint c = gid % p.dim;
        const uint id = ids[p.ids_off + t];
        out[p.out_off + gid] = id < p.vocab ? table[p.table_off + id * p.dim + c] : T(SP_NAN);
    }
};

// conv1d: one thread per (b, o, l), summing the group's input channels and taps (zero padding).
template <typename T>
struct SpConv1d {
    static void run(SP_CONSTANT Conv1dParams& p, SP_DEVICE const T* x, SP_DEVICE const T* w,
                    SP_DEVICE const T* bias, SP_DEVICE T* out, uint gid) {
        if (p.out_length == 0 || p.out_channels == 0 || p.groups == 0 ||
            gid >= p.batch * p.out_channels * p.out_length) {
            return;
        }
        const uint cout_g = p.out_channels / p.groups;
        const uint cin_g = p.in_channels / p.groups;
        if (cout_g == 0) {
            return;
        }
        const uint l = gid % p.out_length;
        const uint rest = gid / p.out_length;
        const uint o = rest % p.out_channels;
        const uint b = rest / p.out_channels;
        const uint g = o / cout_g;
        float acc = p.has_bias != 0 ? float(bias[p.bias_off + o]) : 0.0f;
        for (uint ci = 0; ci < cin_g; ++ci) {
            const uint xrow = p.x_off + (b * p.in_channels + g * cin_g + ci) * p.length;
            const uint wrow = p.w_off + (o * cin_g + ci) * p.kernel_size;
            for (uint k = 0; k < p.kernel_size; ++k) {
                const uint pos = l * p.stride + k * p.dilation;  // in the padded input
                if (pos >= p.padding && pos - p.padding < p.length) {
                    acc += float(x[xrow + pos - p.padding]) * float(w[wrow + k]);
                }
            }
        }
        out[p.out_off + gid] = T(sp_activate(p.act, acc));
    }
};

// copy_strided: dst[i] = src[src_off + sum_d index_d(i) * strides[d]], bits unchanged (E is
// ushort or uint). Offsets wrap modulo 2^32, so a negative stride passed as its two's
// complement works too.
template <typename E>
struct SpCopyStrided {
    static void run(SP_CONSTANT CopyStridedParams& p, SP_DEVICE const E* src, SP_DEVICE E* dst,
                    uint gid) {
        if (gid >= p.count) {
            return;
        }
        const uint rank = sp_umin(p.rank, SP_MAX_RANK);
        uint rem = gid;
        uint at = p.src_off;
        for (uint r = rank; r > 0; --r) {
            const uint n = p.shape[r - 1];
            if (n == 0) {
                return;
            }
            at += (rem % n) * p.strides[r - 1];
            rem /= n;
        }
        dst[p.dst_off + gid] = src[at];
    }
};

#endif  // SP_OPS_H
