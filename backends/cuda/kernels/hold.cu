// Keeps a stream busy for about `ns` nanoseconds: one thread reads the GPU's global timer
// (nanoseconds) until that much time has passed, sleeping briefly between reads so that it takes
// next to no issue slots from other work on the same multiprocessor.
//
// The global timer can be re-synchronised by the driver and jump. Time is therefore summed from
// the steps between reads, a backwards step counting zero and a step over 1 ms counting 1 ms: a
// jump can only make the hold longer, never end it early (which would break the ordering tests
// that rely on it).

__device__ __forceinline__ unsigned long long global_ns() {
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}

extern "C" __global__ void hold_ns(unsigned long long ns) {
    const unsigned long long max_step = 1000000ull;
    unsigned long long last = global_ns();
    unsigned long long done = 0;
    while (done < ns) {
#if __CUDA_ARCH__ >= 700
        __nanosleep(1000);
#endif
        unsigned long long now = global_ns();
        if (now > last) {
            unsigned long long step = now - last;
            done += step < max_step ? step : max_step;
        }
        last = now;
    }
}
