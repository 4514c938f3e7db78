// The host launcher: runs the Metal kernels' bodies (ops.h) on the CPU, group by group, as a
// Metal dispatch would, so that CI can compare them with the CPU backend on machines without
// Metal. These kernels have never been through a Metal compiler; this build proves their
// arithmetic and their phase structure (what each thread does between barriers), not the Metal
// API use in entry.metal.
//
// Execution model: for each threadgroup, phase by phase, every thread (t = 0..threads-1) runs
// the phase before any runs the next one, which is what the threadgroup barrier after each
// phase guarantees on the GPU. A simdgroup phase runs once per simdgroup, as lane 0 with that
// lane's Local, since a host simdgroup_float8x8 holds the whole matrix. Threadgroup memory and
// per-thread state start each group filled with NaN bytes, so a read of something no phase wrote
// shows up in the results.

#include "dialect.h"
#include "params.h"
#include "ops.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <type_traits>
#include <vector>

namespace {

// Runs groups [first, end) of threadgroup kernel K; `call(ph, shared, local, thread)` runs
// phase ph for one thread with the kernel's buffers.
template <class K, class P, class Call>
void run_group_range(uint32_t first, uint32_t end, uint32_t threads, const P& p, Call& call) {
    typedef typename K::Shared Shared;
    typedef typename K::Local Local;
    static_assert(std::is_trivially_copyable<Shared>::value, "Shared is plain memory");
    static_assert(std::is_trivially_copyable<Local>::value, "Local is plain memory");
    std::unique_ptr<Shared> shared(new Shared);
    std::vector<Local> locals(threads);
    const uint phases = K::phases(p, threads);
    for (uint32_t g = first; g < end; ++g) {
        std::memset(static_cast<void*>(shared.get()), 0xff, sizeof(Shared));
        std::memset(static_cast<void*>(locals.data()), 0xff, sizeof(Local) * threads);
        for (uint ph = 0; ph < phases; ++ph) {
            if (K::per_simdgroup(ph, p, threads)) {
                for (uint32_t s = 0; s < threads / 32; ++s) {
                    const SpThread th = {g, s * 32, threads, s, 0};
                    call(ph, *shared, locals[s * 32], th);
                }
            } else {
                for (uint32_t t = 0; t < threads; ++t) {
                    const SpThread th = {g, t, threads, t / 32, t % 32};
                    call(ph, *shared, locals[t], th);
                }
            }
        }
    }
}

// Runs threadgroup kernel K over `groups` groups. Threadgroups are independent in Metal (no
// barrier or threadgroup memory spans two), so large grids are shared out between a few host
// threads, each with its own threadgroup memory: the tests run MiniLM through these kernels.
template <class K, class P, class Call>
void run_groups(uint32_t groups, uint32_t threads, const P& p, Call call) {
    const uint32_t cores = std::max(1u, std::thread::hardware_concurrency());
    const uint32_t workers = std::min({cores, 8u, std::max(1u, groups / 64)});
    if (workers == 1) {
        run_group_range<K>(0, groups, threads, p, call);
        return;
    }
    std::vector<std::thread> pool;
    const uint32_t per = (groups + workers - 1) / workers;
    for (uint32_t w = 1; w < workers; ++w) {
        const uint32_t first = std::min(groups, w * per), end = std::min(groups, first + per);
        pool.emplace_back([=, &p]() mutable { run_group_range<K>(first, end, threads, p, call); });
    }
    run_group_range<K>(0, std::min(groups, per), threads, p, call);
    for (std::thread& t : pool) {
        t.join();
    }
}

// Runs element kernel `run(gid)` for every thread of the grid.
template <class Run>
void run_elements(uint32_t groups, uint32_t threads, Run run) {
    for (uint32_t g = 0; g < groups; ++g) {
        for (uint32_t t = 0; t < threads; ++t) {
            run(g * threads + t);
        }
    }
}

template <class X>
X* buf(void* const* buffers, uint32_t i) {
    return static_cast<X*>(buffers[i]);
}

// One launcher per entry point: buffers in params.h's order.
typedef void (*Launch)(uint32_t groups, uint32_t threads, void* const* b, const void* params);

template <class T>
void launch_linear(uint32_t groups, uint32_t threads, void* const* b, const void* params) {
    LinearParams p;
    std::memcpy(&p, params, sizeof p);
    typedef SpLinear<T> K;
    run_groups<K>(groups, threads, p,
                  [&](uint ph, typename K::Shared& sh, typename K::Local& lo, SpThread th) {
                      K::phase(ph, p, buf<const T>(b, 0), buf<const T>(b, 1),
                               buf<const T>(b, 2), buf<T>(b, 3), sh, lo, th);
                  });
}

template <class T>
void launch_add_layer_norm(uint32_t groups, uint32_t threads, void* const* b,
                           const void* params) {
    AddLayerNormParams p;
    std::memcpy(&p, params, sizeof p);
    typedef SpAddLayerNorm<T> K;
    run_groups<K>(groups, threads, p,
                  [&](uint ph, typename K::Shared& sh, typename K::Local& lo, SpThread th) {
                      K::phase(ph, p, buf<const T>(b, 0), buf<const T>(b, 1),
                               buf<const T>(b, 2), buf<const T>(b, 3), buf<const T>(b, 4),
                               buf<T>(b, 5), sh, lo, th);
                  });
}

template <class T>
void launch_bert_embeddings(uint32_t groups, uint32_t threads, void* const* b,
                            const void* params) {
    BertEmbeddingsParams p;
    std::memcpy(&p, params, sizeof p);
    typedef SpBertEmbeddings<T> K;
    run_groups<K>(groups, threads, p,
                  [&](uint ph, typename K::Shared& sh, typename K::Local& lo, SpThread th) {
                      K::phase(ph, p, buf<const uint>(b, 0), buf<const uint>(b, 1),
                               buf<const T>(b, 2), buf<const T>(b, 3), buf<const T>(b, 4),
                               buf<const T>(b, 5), buf<const T>(b, 6), buf<T>(b, 7), sh, lo, th);
                  });
}

template <class T>
void launch_attention(uint32_t groups, uint32_t threads, void* const* b, const void* params) {
    AttentionParams p;
    std::memcpy(&p, params, sizeof p);
    typedef SpAttention<T> K;
    run_groups<K>(groups, threads, p,
                  [&](uint ph, typename K::Shared& sh, typename K::Local& lo, SpThread th) {
                      K::phase(ph, p, buf<const T>(b, 0), buf<const T>(b, 1),
                               buf<const T>(b, 2), buf<const float>(b, 3),
                               buf<const float>(b, 4), buf<T>(b, 5), sh, lo, th);
                  });
}

template <class T>
void launch_l2_normalize(uint32_t groups, uint32_t threads, void* const* b, const void* params) {
    L2NormalizeParams p;
    std::memcpy(&p, params, sizeof p);
    typedef SpL2Normalize<T> K;
    run_groups<K>(groups, threads, p,
                  [&](uint ph, typename K::Shared& sh, typename K::Local& lo, SpThread th) {
                      K::phase(ph, p, buf<const T>(b, 0), buf<T>(b, 1), sh, lo, th);
                  });
}

template <class T>
void launch_rms_norm(uint32_t groups, uint32_t threads, void* const* b, const void* params) {
    RmsNormParams p;
    std::memcpy(&p, params, sizeof p);
    typedef SpRmsNorm<T> K;
    run_groups<K>(groups, threads, p,
                  [&](uint ph, typename K::Shared& sh, typename K::Local& lo, SpThread th) {
                      K::phase(ph, p, buf<const T>(b, 0), buf<const T>(b, 1),
                               buf<const T>(b, 2), buf<T>(b, 3), sh, lo, th);
                  });
}

template <class T>
void launch_embedding(uint32_t groups, uint32_t threads, void* const* b, const void* params) {
    EmbeddingParams p;
    std::memcpy(&p, params, sizeof p);
    run_elements(groups, threads, [&](uint gid) {
        SpEmbedding<T>::run(p, buf<const uint>(b, 0), buf<const T>(b, 1), buf<T>(b, 2), gid);
    });
}

template <class T>
void launch_pool(uint32_t groups, uint32_t threads, void* const* b, const void* params) {
    PoolParams p;
    std::memcpy(&p, params, sizeof p);
    run_elements(groups, threads, [&](uint gid) {
        SpPool<T>::run(p, buf<const T>(b, 0), buf<const float>(b, 1), buf<T>(b, 2), gid);
    });
}

template <class T>
void launch_rotary(uint32_t groups, uint32_t threads, void* const* b, const void* params) {
    RotaryParams p;
    std::memcpy(&p, params, sizeof p);
    run_elements(groups, threads, [&](uint gid) {
        SpRotary<T>::run(p, buf<const T>(b, 0), buf<const float>(b, 1), buf<T>(b, 2), gid);
    });
}

template <class T>
void launch_mul(uint32_t groups, uint32_t threads, void* const* b, const void* params) {
    MulParams p;
    std::memcpy(&p, params, sizeof p);
    run_elements(groups, threads, [&](uint gid) {
        SpMul<T>::run(p, buf<const T>(b, 0), buf<const T>(b, 1), buf<T>(b, 2), gid);
    });
}

template <class T>
void launch_conv1d(uint32_t groups, uint32_t threads, void* const* b, const void* params) {
    Conv1dParams p;
    std::memcpy(&p, params, sizeof p);
    run_elements(groups, threads, [&](uint gid) {
        SpConv1d<T>::run(p, buf<const T>(b, 0), buf<const T>(b, 1), buf<const T>(b, 2),
                         buf<T>(b, 3), gid);
    });
}

template <class E>
void launch_copy_strided(uint32_t groups, uint32_t threads, void* const* b, const void* params) {
    CopyStridedParams p;
    std::memcpy(&p, params, sizeof p);
    run_elements(groups, threads, [&](uint gid) {
        SpCopyStrided<E>::run(p, buf<const E>(b, 0), buf<E>(b, 1), gid);
    });
}

// Which group sizes a kernel takes.
enum Threads {
    LINEAR_THREADS,     // exactly SP_LINEAR_THREADS
    ROW_THREADS,        // a multiple of 32 up to SP_ROW_THREADS (its shared partials)
    ATTENTION_THREADS,  // a multiple of 32 up to SP_ATTENTION_THREADS (its shared scores)
    ELEMENT_THREADS,    // a multiple of 32 up to 1024
};

struct Entry {
    const char* name;
    uint32_t params_size;
    uint32_t buffers;
    Threads threads;
    Launch launch;
};

const Entry ENTRIES[] = {
    {"linear_f32", sizeof(LinearParams), 4, LINEAR_THREADS, launch_linear<float>},
    {"linear_f16", sizeof(LinearParams), 4, LINEAR_THREADS, launch_linear<half>},
    {"add_layer_norm_f32", sizeof(AddLayerNormParams), 6, ROW_THREADS,
     launch_add_layer_norm<float>},
    {"add_layer_norm_f16", sizeof(AddLayerNormParams), 6, ROW_THREADS,
     launch_add_layer_norm<half>},
    {"bert_embeddings_f32", sizeof(BertEmbeddingsParams), 8, ROW_THREADS,
     launch_bert_embeddings<float>},
    {"bert_embeddings_f16", sizeof(BertEmbeddingsParams), 8, ROW_THREADS,
     launch_bert_embeddings<half>},
    {"embedding_f32", sizeof(EmbeddingParams), 3, ELEMENT_THREADS, launch_embedding<float>},
    {"embedding_f16", sizeof(EmbeddingParams), 3, ELEMENT_THREADS, launch_embedding<half>},
    {"attention_f32", sizeof(AttentionParams), 6, ATTENTION_THREADS, launch_attention<float>},
    {"attention_f16", sizeof(AttentionParams), 6, ATTENTION_THREADS, launch_attention<half>},
    {"pool_f32", sizeof(PoolParams), 3, ELEMENT_THREADS, launch_pool<float>},
    {"pool_f16", sizeof(PoolParams), 3, ELEMENT_THREADS, launch_pool<half>},
    {"l2_normalize_f32", sizeof(L2NormalizeParams), 2, ROW_THREADS, launch_l2_normalize<float>},
    {"l2_normalize_f16", sizeof(L2NormalizeParams), 2, ROW_THREADS, launch_l2_normalize<half>},
    {"rms_norm_f32", sizeof(RmsNormParams), 4, ROW_THREADS, launch_rms_norm<float>},
    {"rms_norm_f16", sizeof(RmsNormParams), 4, ROW_THREADS, launch_rms_norm<half>},
    {"rotary_f32", sizeof(RotaryParams), 3, ELEMENT_THREADS, launch_rotary<float>},
    {"rotary_f16", sizeof(RotaryParams), 3, ELEMENT_THREADS, launch_rotary<half>},
    {"mul_f32", sizeof(MulParams), 3, ELEMENT_THREADS, launch_mul<float>},
    {"mul_f16", sizeof(MulParams), 3, ELEMENT_THREADS, launch_mul<half>},
    {"conv1d_f32", sizeof(Conv1dParams), 4, ELEMENT_THREADS, launch_conv1d<float>},
    {"conv1d_f16", sizeof(Conv1dParams), 4, ELEMENT_THREADS, launch_conv1d<half>},
    {"copy_strided_b16", sizeof(CopyStridedParams), 2, ELEMENT_THREADS,
     launch_copy_strided<ushort>},
    {"copy_strided_b32", sizeof(CopyStridedParams), 2, ELEMENT_THREADS,
     launch_copy_strided<uint>},
};

const Entry* find(const char* kernel) {
    if (kernel == nullptr) {
        return nullptr;
    }
    for (const Entry& e : ENTRIES) {
        if (std::strcmp(e.name, kernel) == 0) {
            return &e;
        }
    }
    return nullptr;
}

bool threads_allowed(Threads kind, uint32_t threads) {
    if (kind == LINEAR_THREADS) {
        return threads == SP_LINEAR_THREADS;
    }
    const uint32_t most = kind == ROW_THREADS         ? SP_ROW_THREADS
                          : kind == ATTENTION_THREADS ? SP_ATTENTION_THREADS
                                                      : 1024u;
    return threads != 0 && threads % 32 == 0 && threads <= most;
}

}  // namespace

// Runs entry point `kernel` over `groups` threadgroups of `threads` threads as Metal would.
// buffers[i] = base address of the buffer bound at index i. Returns 0 on success; 1 unknown
// kernel; 2 params_size differs from the kernel's params struct; 3 wrong buffer count; 4 threads
// not allowed for the kernel (linear: SP_LINEAR_THREADS; row kernels: a multiple of 32 up to
// SP_ROW_THREADS; attention: a multiple of 32 up to SP_ATTENTION_THREADS; element kernels: a
// multiple of 32 up to 1024).
extern "C" int sp_host_launch(const char* kernel, uint32_t groups, uint32_t threads,
                              void* const* buffers, uint32_t nbuffers, const void* params,
                              uint32_t params_size) {
    const Entry* e = find(kernel);
    if (e == nullptr) {
        return 1;
    }
    if (params == nullptr || params_size != e->params_size) {
        return 2;
    }
    if (nbuffers != e->buffers || buffers == nullptr) {
        return 3;
    }
    if (!threads_allowed(e->threads, threads)) {
        return 4;
    }
    e->launch(groups, threads, buffers, params);
    return 0;
}

// sizeof of the params struct of `kernel`'s family (0 if unknown), for a layout test.
extern "C" uint32_t sp_host_params_size(const char* kernel) {
    const Entry* e = find(kernel);
    return e == nullptr ? 0 : e->params_size;
}
