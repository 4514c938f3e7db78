//! MiniLM on an Apple GPU through the Metal backend: the 30 fixture texts against
//! sentence-transformers (f32 and f16), then 16 threads x 200 requests on their own streams,
//! every result checked. Needs a Mac: every test is ignored, and none has ever run (no Mac was
//! available). On a Mac: `scripts/test-metal`.
#![cfg(all(feature = "metal", target_os = "macos"))]

#[allow(dead_code)] // the token ids: the CPU tests check them
#[path = "fixture/mod.rs"]
mod fixture;

use std::sync::{Barrier, OnceLock};

use fixture::{cases, compare, max_abs_diff, texts};
use streampool_core::{Device, PoolConfig};
use streampool_metal::MetalBackend;
use streampool_models::testing::default_model;
use streampool_models::{MiniLm, Precision};

const THREADS: usize = 16;
const REQUESTS: usize = 200;

fn metal() -> &'static Device<MetalBackend> {
    static DEVICE: OnceLock<Device<MetalBackend>> = OnceLock::new();
    DEVICE.get_or_init(|| {
        let backend = MetalBackend::open().expect("open the default Metal device");
        eprintln!("GPU: {backend:?}");
        Device::new(backend, PoolConfig::with_capacity(THREADS + 2))
    })
}

#[test]
#[ignore = "needs an Apple GPU (never run: no Mac available)"]
fn fixture_cases_match_sentence_transformers_in_f32_and_f16() {
    let Some(files) = default_model() else { return };
    let texts = texts();
    for (precision, min_cos, max_diff) in
        [(Precision::F32, 0.99999, 1e-4), (Precision::F16, 0.9995, 1e-2)]
    {
        let model = MiniLm::load_with(metal(), files, precision).unwrap();
        let lease = metal().acquire().unwrap();
        let got = model.embed(lease.stream(), &texts).unwrap();
        let (mut worst_cos, mut worst_diff) = (1f64, 0f64);
        for (case, g) in cases().iter().zip(&got) {
            let (cos, diff) = compare(g, &case.embedding);
            worst_cos = worst_cos.min(cos);
            worst_diff = worst_diff.max(diff);
        }
        println!("MiniLM {precision:?}: min cosine {worst_cos:.8}, max abs diff {worst_diff:.2e}");
        assert!(worst_cos >= min_cos && worst_diff <= max_diff, "{precision:?}");
    }
}

#[test]
#[ignore = "needs an Apple GPU (never run: no Mac available)"]
fn sixteen_threads_two_hundred_checked_requests_each() {
    let Some(files) = default_model() else { return };
    let model = MiniLm::load(metal(), files).unwrap();
    let texts = texts();
    let reference: Vec<Vec<f32>> = {
        let lease = metal().acquire().unwrap();
        texts.iter().map(|t| model.embed(lease.stream(), &[t]).unwrap().remove(0)).collect()
    };
    // Every thread starts at once: the cold paths (workspaces, command buffers, encoders) race.
    let ready = Barrier::new(THREADS);
    let start = std::time::Instant::now();
    let bad: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (model, texts, reference, ready) = (&model, &texts, &reference, &ready);
                s.spawn(move || {
                    let lease = metal().acquire().unwrap();
                    ready.wait();
                    let mut bad = 0;
                    for i in 0..REQUESTS {
                        let k = (t * 7 + i) % texts.len();
                        let got = model.embed(lease.stream(), &[texts[k]]).unwrap().remove(0);
                        let diff = max_abs_diff(&got, &reference[k]);
                        if diff > 1e-5 {
                            eprintln!("thread {t} request {i}: differs by {diff}");
                            bad += 1;
                        }
                    }
                    bad
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{THREADS} threads x {REQUESTS} requests: {secs:.1} s, {:.0} req/s",
        (THREADS * REQUESTS) as f64 / secs
    );
    assert_eq!(bad, 0, "{bad} results differ from the single-thread result by > 1e-5");
}
