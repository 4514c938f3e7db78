//! MiniLM in reduced precision on CUDA (`MiniLm::load_with`): TF32, f16 and bf16 against the
//! sentence-transformers fixture (TF32, f16 and bf16: cosine >= 0.9999 on every text), graph mode
//! against eager mode in each precision, and 16 threads x 100 requests in f16 against the
//! single-thread f16 result. The GPU tests are `#[ignore]`d (CI has no GPU); run with `cargo
//! test --release -p streampool-models --features cuda --test gpu_precision --
//! --include-ignored`, with `STREAMPOOL_MODEL_DIR` as for `gpu_minilm` (the tests take turns).
#![cfg(feature = "cuda")]

mod gpu_support;

use std::sync::{Barrier, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use gpu_support::{cases, compare, gpu, max_abs_diff, model_files, texts};
use streampool_core::Stream;
use streampool_cpu::CpuBackend;
use streampool_cuda::CudaBackend;
use streampool_models::graph::ExecMode;
use streampool_models::{MiniLm, Precision};
use streampool_tensor::DType;

/// Held by each test for its whole run: a graph is captured per load class (how many forwards
/// run at once), so another test's forwards running alongside could make a replay take another
/// graph, with other GEMM plans and rounding, than the run it is compared with.
fn exclusive() -> MutexGuard<'static, ()> {
    static GPU_TESTS: Mutex<()> = Mutex::new(());
    GPU_TESTS.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The model loaded once per precision.
fn model(p: Precision) -> &'static MiniLm<CudaBackend> {
    static MODELS: [OnceLock<MiniLm<CudaBackend>>; 4] =
        [OnceLock::new(), OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let i = Precision::ALL.iter().position(|&q| q == p).unwrap();
    MODELS[i].get_or_init(|| {
        MiniLm::load_with(gpu(), model_files(), p)
            .unwrap_or_else(|e| panic!("load MiniLM in {p} on the GPU: {e}"))
    })
}

/// Lowest cosine every precision must reach against the fixture, on every text.
const MIN_COSINE: f64 = 0.9999;

/// Largest element difference allowed between graph and eager results.
fn graph_tolerance(p: Precision) -> f32 {
    match p {
        Precision::F32 => 1e-5,
        Precision::Tf32 => 1e-3,
        Precision::F16 => 2e-3,
        Precision::Bf16 => 1e-2,
    }
}

const REDUCED: [Precision; 3] = [Precision::Tf32, Precision::F16, Precision::Bf16];

#[test]
fn precision_modes_parse_and_cpu_is_f32_only() {
    for p in Precision::ALL {
        assert_eq!(p.name().parse::<Precision>(), Ok(p));
        assert!(p.supported_on::<CudaBackend>(), "{p} on CUDA");
        assert_eq!(p.supported_on::<CpuBackend>(), p == Precision::F32, "{p} on the CPU");
    }
    assert_eq!(Precision::F16.dtype(), DType::F16);
    assert_eq!(Precision::Tf32.dtype(), DType::F32);
    assert!("f8".parse::<Precision>().is_err());
}

/// All 30 fixture texts, in one batch and one at a time, in each reduced precision.
#[test]
#[ignore = "needs a CUDA GPU"]
fn fixture_cosines_in_each_precision() {
    let _gpu = exclusive();
    let texts = texts();
    let lease = gpu().acquire().unwrap();
    let stream = lease.stream();
    // Every precision is measured before anything is asserted, so one run reports them all.
    let mut failures = Vec::new();
    for p in REDUCED {
        let m = model(p);
        assert_eq!(m.precision(), p);
        let batched = m.embed(stream, &texts).unwrap();
        let (mut worst_cos, mut worst_diff) = (1f64, 0f64);
        for (i, case) in cases().iter().enumerate() {
            let single = m.embed(stream, &[case.text.as_str()]).unwrap().remove(0);
            for (what, got) in [("batched", &batched[i]), ("single", &single)] {
                assert_eq!(got.len(), 384);
                let norm = got.iter().map(|v| v * v).sum::<f32>().sqrt();
                assert!((norm - 1.0).abs() < 1e-2, "{p} {what} {:?}: norm {norm}", case.text);
                let (cos, diff) = compare(got, &case.embedding);
                if cos < MIN_COSINE {
                    failures.push(format!("{p} {what} {:?}: cosine {cos}", case.text));
                }
                worst_cos = worst_cos.min(cos);
                worst_diff = worst_diff.max(diff);
            }
        }
        let bytes = m.parameter_bytes();
        println!(
            "{p}: 30 fixture texts (batched and single): min cosine {worst_cos:.6} (needs {}), \
             max abs diff {worst_diff:.2e}; parameters {:.1} MB",
            MIN_COSINE,
            bytes as f64 / 1e6
        );
    }
    assert!(failures.is_empty(), "below the cosine floor: {failures:#?}");
}

/// Graph mode against eager mode, one text at a time and all 30 in one batch, per precision.
#[test]
#[ignore = "needs a CUDA GPU"]
fn graph_equals_eager_in_each_precision() {
    let _gpu = exclusive();
    let texts = texts();
    let lease = gpu().acquire().unwrap();
    let stream = lease.stream();
    let mut failures = Vec::new();
    for p in Precision::ALL {
        let m = model(p);
        let tol = graph_tolerance(p);
        let mut worst = 0f32;
        for t in &texts {
            let eager = m.embed_mode(stream, &[t], ExecMode::Eager).unwrap();
            let graph = m.embed_mode(stream, &[t], ExecMode::Graph).unwrap();
            let again = m.embed_mode(stream, &[t], ExecMode::Graph).unwrap();
            if graph != again {
                failures.push(format!("{p} {t:?}: a replay differs from the captured run"));
            }
            worst = worst.max(max_abs_diff(&graph[0], &eager[0]));
        }
        let eager = m.embed_mode(stream, &texts, ExecMode::Eager).unwrap();
        let graph = m.embed_mode(stream, &texts, ExecMode::Graph).unwrap();
        for (g, e) in graph.iter().zip(&eager) {
            worst = worst.max(max_abs_diff(g, e));
        }
        if worst > tol {
            failures.push(format!("{p}: graph vs eager {worst} > {tol}"));
        }
        println!(
            "{p}: graph vs eager (30 singles, one batch of 30): max abs diff {worst:.2e} \
             (allowed {tol:.0e})"
        );
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// 16 threads x 100 single-text requests in f16, each equal to the single-thread f16 result.
#[test]
#[ignore = "needs a CUDA GPU"]
fn f16_sixteen_threads_match_single_thread() {
    let _gpu = exclusive();
    const THREADS: usize = 16;
    const REQUESTS: usize = 100;
    let m = model(Precision::F16);
    let texts = texts();
    let reference: Vec<Vec<f32>> = {
        let lease = gpu().acquire().unwrap();
        texts.iter().map(|t| m.embed(lease.stream(), &[t]).unwrap().remove(0)).collect()
    };
    let longest = *texts.iter().max_by_key(|t| t.len()).unwrap();
    let ready = Barrier::new(THREADS + 1);
    let mut start = Instant::now();
    let results: Vec<(usize, f32, usize)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (texts, reference, ready) = (&texts, &reference, &ready);
                s.spawn(move || {
                    let lease = gpu().acquire().unwrap();
                    let stream = lease.stream();
                    let warm = m.embed(stream, &[longest]);
                    ready.wait();
                    warm.unwrap();
                    let (mut worst, mut bad) = (0f32, 0usize);
                    for i in 0..REQUESTS {
                        let k = (t * 7 + i) % texts.len();
                        let got = m.embed(stream, &[texts[k]]).unwrap();
                        let diff = max_abs_diff(&got[0], &reference[k]);
                        worst = worst.max(diff);
                        bad += usize::from(diff > 1e-6);
                    }
                    (stream.slot(), worst, bad)
                })
            })
            .collect();
        ready.wait();
        start = Instant::now();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let secs = start.elapsed().as_secs_f64();
    let mut slots: Vec<usize> = results.iter().map(|r| r.0).collect();
    slots.sort_unstable();
    slots.dedup();
    assert_eq!(slots.len(), THREADS, "every thread has its own stream");
    let worst = results.iter().map(|r| r.1).fold(0.0, f32::max);
    let bad: usize = results.iter().map(|r| r.2).sum();
    println!(
        "f16: {THREADS} threads x {REQUESTS} requests: {secs:.2} s, {:.0} req/s; max diff from \
         single-thread {worst:.2e}",
        (THREADS * REQUESTS) as f64 / secs
    );
    assert_eq!(bad, 0, "{bad} f16 results differ from the single-thread result ({worst})");
}
