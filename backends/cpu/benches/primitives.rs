//! Cost of the runtime's primitives, with 1 and with 16 threads: using a lease (the thread's own
//! stream), submitting a work item, recording + waiting on an event, a compile-cache hit.
//!
//! Each sample runs `iters` ops on every one of T threads (released together by a barrier) and
//! reports `wall × min(T, cores) / T`: the time one core spends per op. With perfect scaling it
//! is the same for 1 and for 16 threads; contention on shared state makes it grow.
//!
//! `cargo bench -p streampool-cpu --bench primitives`

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use streampool_core::{CompileCache, Device, PoolConfig, Stream, Timing};
use streampool_cpu::{CpuBackend, CpuDevice, CpuStream};

const THREADS: [usize; 2] = [1, 16];

/// Run `op` `iters` times on each of `threads` threads; `setup` runs per thread, untimed.
fn per_core_time<S>(
    threads: usize,
    iters: u64,
    setup: impl Fn() -> S + Sync,
    op: impl Fn(&S) + Sync,
    finish: impl Fn(&S) + Sync,
) -> Duration {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let barrier = Barrier::new(threads + 1);
    let wall = std::thread::scope(|s| {
        for _ in 0..threads {
            let (barrier, setup, op, finish) = (&barrier, &setup, &op, &finish);
            s.spawn(move || {
                let state = setup();
                barrier.wait();
                for _ in 0..iters {
                    op(&state);
                }
                finish(&state);
                barrier.wait();
            });
        }
        barrier.wait();
        let start = Instant::now();
        barrier.wait();
        start.elapsed()
    });
    wall.mul_f64(threads.min(cores) as f64 / threads as f64)
}

fn device() -> CpuDevice {
    Device::new(CpuBackend::new(), PoolConfig::with_capacity(32))
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("primitives");
    group.measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_millis(500));
    for threads in THREADS {
        let dev = device();
        group.bench_with_input(BenchmarkId::new("lease_use", threads), &threads, |b, &t| {
            b.iter_custom(|iters| {
                per_core_time(
                    t,
                    iters,
                    || (),
                    |_| {
                        dev.with_stream(|s: &CpuStream| black_box(s.slot())).unwrap();
                    },
                    |_| {},
                )
            })
        });
        group.bench_with_input(BenchmarkId::new("submit", threads), &threads, |b, &t| {
            b.iter_custom(|iters| {
                per_core_time(
                    t,
                    iters,
                    || dev.acquire().unwrap(),
                    |lease| lease.stream().enqueue(|| Ok(())).unwrap(),
                    |lease| lease.stream().synchronize().unwrap(),
                )
            })
        });
        group.bench_with_input(
            BenchmarkId::new("event_record_wait", threads),
            &threads,
            |b, &t| {
                b.iter_custom(|iters| {
                    per_core_time(
                        t,
                        iters,
                        || (dev.acquire().unwrap(), dev.new_event(Timing::Disabled).unwrap()),
                        |(lease, event)| {
                            lease.stream().record(event).unwrap();
                            lease.stream().wait_event(event).unwrap();
                        },
                        |(lease, _)| Stream::synchronize(lease.stream()).unwrap(),
                    )
                })
            },
        );
        let cache: CompileCache<u64, u64, String> = CompileCache::new();
        for k in 0..64 {
            cache.get(&k, || Ok(k * 3)).unwrap();
        }
        group.bench_with_input(BenchmarkId::new("cache_hit", threads), &threads, |b, &t| {
            b.iter_custom(|iters| {
                per_core_time(
                    t,
                    iters,
                    || (),
                    |_| {
                        let v = cache.get_with(&black_box(17), || unreachable!(), |v| *v).unwrap();
                        black_box(v);
                    },
                    |_| (),
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
