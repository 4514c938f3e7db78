//! What the engine itself costs per request: a stand-in model that does no work, so the time is
//! the hand-off (check, queue, a worker taking the batch, the answer back to the caller), from
//! 1 caller and from 16 callers at once (time per request across all of them).
//!
//! `cargo bench -p streampool-engine --bench handoff`

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use streampool_core::{Device, PoolConfig};
use streampool_cpu::{CpuBackend, CpuStream};
use streampool_engine::{BatchModel, Engine, EngineConfig};

/// Returns its inputs: no work, so only the engine is measured.
struct Echo(Device<CpuBackend>);

impl BatchModel for Echo {
    type Backend = CpuBackend;
    type Input = u64;
    type Output = u64;
    type Error = std::convert::Infallible;
    fn device(&self) -> &Device<CpuBackend> {
        &self.0
    }
    fn check(&self, _: &u64) -> Result<(), Self::Error> {
        Ok(())
    }
    fn run(&self, _: &CpuStream, xs: &[u64]) -> Result<Vec<u64>, Self::Error> {
        Ok(xs.to_vec())
    }
}

fn handoff(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine_request");
    for callers in [1usize, 16] {
        for spin_us in [0u64, 1000] {
            let device = Device::new(CpuBackend::new(), PoolConfig::with_capacity(4));
            let config = EngineConfig::default().workers(2).spin(Duration::from_micros(spin_us));
            let engine = Engine::start(Arc::new(Echo(device)), config).expect("engine");
            let id = BenchmarkId::new(format!("spin_{spin_us}us"), format!("{callers}_callers"));
            // `iters` requests in all, split over the callers: criterion's time per iteration is
            // the wall time per request of the whole group.
            group.bench_function(id, |b| {
                b.iter_custom(|iters| {
                    let barrier = Barrier::new(callers + 1);
                    let per_caller = iters.div_ceil(callers as u64);
                    std::thread::scope(|s| {
                        for t in 0..callers as u64 {
                            let (engine, barrier) = (&engine, &barrier);
                            s.spawn(move || {
                                barrier.wait();
                                for i in 0..per_caller {
                                    let x = t * per_caller + i;
                                    assert_eq!(engine.call(x).ok(), Some(x));
                                }
                            });
                        }
                        barrier.wait();
                        let start = Instant::now();
                        // The scope joins the callers before it returns.
                        start
                    })
                    .elapsed()
                })
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(3));
    targets = handoff
}
criterion_main!(benches);
