//! The fused attention and add + bias + layer-norm kernels at MiniLM's shapes (12 heads of 32,
//! 128 tokens; batch 1, 8, 32), f32 and f16. Each sample enqueues its iterations back to back on
//! one stream between two timing events and reports the GPU time per launch
//! (`Bencher::iter_custom`), so host overhead is not counted. `bench/torch_ops.py` times the
//! same ops in PyTorch.
//!
//! `cargo bench -p streampool-cuda --features cuda --bench kernels` (needs a GPU: without one it
//! says so and measures nothing).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use streampool_core::{Backend, Event, Stream, Timing};
use streampool_cuda::ops::{self, Elem, Slice};
use streampool_cuda::{CudaBackend, CudaOptions, CudaStream};

#[path = "../tests/common/mod.rs"]
mod common;
use common::{rand, upload, upload_f16};

const HEADS: usize = 12;
const HEAD_DIM: usize = 32;
const SEQ: usize = 128;

/// GPU time of `iters` launches of `f`, enqueued back to back on `s` between two events.
fn gpu_time(backend: &CudaBackend, s: &CudaStream, iters: u64, f: &mut impl FnMut()) -> Duration {
    let start = backend.new_event(Timing::Enabled).unwrap();
    let end = backend.new_event(Timing::Enabled).unwrap();
    s.record(&start).unwrap();
    for _ in 0..iters {
        f();
    }
    s.record(&end).unwrap();
    end.synchronize().unwrap();
    end.elapsed_since(&start).unwrap()
}

fn kernels(c: &mut Criterion) {
    let options = CudaOptions { kernel_cache_dir: None, ..CudaOptions::default() };
    let backend = match CudaBackend::open_with(0, options) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("no CUDA GPU ({e}): nothing measured");
            return;
        }
    };
    let s = backend.new_stream(0).unwrap();
    let hid = HEADS * HEAD_DIM;
    let mut group = c.benchmark_group("cuda_kernels");
    group.sample_size(20).measurement_time(Duration::from_secs(2));
    for batch in [1usize, 8, 32] {
        let n = batch * SEQ * hid;
        for elem in [Elem::F32, Elem::F16] {
            let up = if elem == Elem::F32 { upload } else { upload_f16 };
            let (q, k, v) = (up(&s, &rand(n, 1)), up(&s, &rand(n, 2)), up(&s, &rand(n, 3)));
            let mask = upload(&s, &vec![1.0; batch * SEQ]);
            let out = s.alloc(n * elem.size()).unwrap();
            let dims = streampool_core::AttentionDims {
                batch,
                seq: SEQ,
                heads: HEADS,
                head_dim: HEAD_DIM,
            };
            let mut attention = || {
                let layout = ops::AttentionLayout::dense(hid);
                let (q, k, v, m) = ((&q).into(), (&k).into(), (&v).into(), Some((&mask).into()));
                ops::attention(&s, q, k, v, m, (&out).into(), dims, layout, None, None, elem)
                    .unwrap()
            };
            let id = BenchmarkId::new(format!("attention_{elem:?}"), format!("batch {batch}"));
            group.bench_function(id, |b| {
                b.iter_custom(|iters| gpu_time(&backend, &s, iters, &mut attention))
            });
        }
        let rows = batch * SEQ;
        let (x, r) = (upload(&s, &rand(rows * hid, 4)), upload(&s, &rand(rows * hid, 5)));
        let (bias, g, beta) =
            (upload(&s, &rand(hid, 6)), upload(&s, &rand(hid, 7)), upload(&s, &rand(hid, 8)));
        let out = s.alloc(rows * hid * 4).unwrap();
        let mut layer_norm = || {
            let norm = ops::LayerNormArgs { gamma: (&g).into(), beta: (&beta).into(), eps: 1e-12 };
            let (x, r, bias) = ((&x).into(), Some((&r).into()), Some((&bias).into()));
            let out = Slice::new(&out, 0);
            ops::add_layer_norm(&s, x, r, bias, norm, rows, hid, out, Elem::F32).unwrap()
        };
        let id = BenchmarkId::new("add_layer_norm_F32", format!("batch {batch}"));
        group.bench_function(id, |b| {
            b.iter_custom(|iters| gpu_time(&backend, &s, iters, &mut layer_norm))
        });
    }
    group.finish();
}

criterion_group!(benches, kernels);
criterion_main!(benches);
