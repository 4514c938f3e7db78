//! The engine and the corpus pipeline over every GPU of the machine (one on a one-GPU machine):
//! 64 threads × 1,000 requests of the reference texts, each checked against the text embedded
//! alone on GPU 0; per-device counters that add up and, with several GPUs, work on every one;
//! the corpus over every GPU against GPU 0 alone. `#[ignore]`d (CI has no GPU): run with
//! `--features cuda -- --include-ignored`, `STREAMPOOL_MODEL_DIR` naming the model.
#![cfg(feature = "cuda")]

#[path = "../../models/tests/gpu_support/mod.rs"]
mod gpu_support;

use std::sync::{Arc, Barrier};

use gpu_support::{model_files, texts};
use streampool_core::{Device, PoolConfig};
use streampool_cuda::CudaBackend;
use streampool_engine::corpus::{embed_all, embed_corpus_on, CorpusConfig};
use streampool_engine::{Engine, EngineConfig, MiniLmBatches};
use streampool_models::graph::ExecMode;
use streampool_models::{MiniLm, Precision};

/// Every GPU, each with its own pool, and a copy of MiniLM (f16) on each.
fn copies() -> Vec<MiniLmBatches<CudaBackend>> {
    let count = CudaBackend::device_count();
    assert!(count > 0, "needs a CUDA GPU");
    eprintln!("{count} GPU(s)");
    (0..count)
        .map(|i| {
            let backend = CudaBackend::open(i).unwrap_or_else(|e| panic!("cuda:{i}: {e}"));
            let device = Device::new(backend, PoolConfig::with_capacity(16));
            let model = MiniLm::load_with(&device, model_files(), Precision::F16).unwrap();
            MiniLmBatches::new(Arc::new(model), ExecMode::Eager)
        })
        .collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn sixty_four_threads_over_every_gpu_get_their_own_checked_results() {
    let copies = copies();
    let texts = texts();
    // Each text alone on GPU 0: what every answer must match.
    let first = &copies[0];
    let alone: Vec<Vec<f32>> = texts
        .iter()
        .map(|t| {
            let encoding = first.encode(t).unwrap();
            let device = first.model().device();
            let lease = device.acquire().unwrap();
            first.model().embed_encodings(lease.stream(), &[encoding]).unwrap().remove(0)
        })
        .collect();
    let encodings: Vec<_> = texts.iter().map(|t| first.encode(t).unwrap()).collect();
    let engine = Engine::start_on(
        copies.iter().cloned().map(Arc::new).collect(),
        EngineConfig::default().workers(4),
    )
    .unwrap();
    let start = Barrier::new(64);
    std::thread::scope(|s| {
        for t in 0..64 {
            let (engine, start, encodings, alone) = (&engine, &start, &encodings, &alone);
            s.spawn(move || {
                start.wait();
                for i in 0..1000 {
                    let k = (t * 7 + i) % encodings.len();
                    let got = engine.call(encodings[k].clone()).unwrap();
                    let cos = cosine(&got, &alone[k]);
                    assert!(cos >= 0.9999, "thread {t}, request {i}, text {k}: cosine {cos}");
                }
            });
        }
    });
    let devices = engine.device_stats();
    eprintln!("{devices:#?}");
    assert_eq!(engine.stats().requests, 64_000);
    assert_eq!(devices.iter().map(|d| d.stats.requests).sum::<u64>(), 64_000);
    for d in &devices {
        assert!(d.healthy() && d.stats.requests > 0, "{d:?}");
        assert_eq!(d.stats.failed_batches, 0, "{d:?}");
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn the_corpus_over_every_gpu_matches_gpu_zero_alone() {
    let copies = copies();
    let texts: Vec<String> = (0..20_000).map(|i| texts()[i % 30].to_owned()).collect();
    let config = CorpusConfig { workers: 4, window: 2000, ..CorpusConfig::default() };
    let (alone, _) = embed_all(&copies[0], &config, texts.iter().cloned()).unwrap();
    let all: Vec<&MiniLmBatches<CudaBackend>> = copies.iter().collect();
    let mut rows = Vec::new();
    let stats = embed_corpus_on(
        &all,
        &config,
        texts.iter().cloned().map(Ok::<_, std::convert::Infallible>),
        |chunk| {
            rows.extend_from_slice(chunk);
            Ok(())
        },
        |_| {},
    )
    .unwrap();
    assert_eq!(stats.texts, texts.len());
    assert_eq!(rows.len(), alone.len());
    let worst = rows.iter().zip(&alone).map(|(a, b)| cosine(a, b)).fold(1.0, f64::min);
    eprintln!("{} GPU(s): worst cosine against GPU 0 alone {worst}", copies.len());
    assert!(worst >= 0.9999, "{worst}");
}
