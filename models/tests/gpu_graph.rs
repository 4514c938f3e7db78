//! MiniLM in graph mode (`ExecMode::Graph`: a CUDA graph per slot and shape bucket, inputs and
//! outputs staged through pinned memory) against eager mode: the 30 fixture texts one at a time
//! and in batches, 16 threads x 200 requests, replays after other buckets were captured. The GPU
//! tests are `#[ignore]`d (CI has no GPU); run with `cargo test --release -p streampool-models
//! --features cuda --test gpu_graph -- --include-ignored --test-threads 1`, with
//! `STREAMPOOL_MODEL_DIR` as for `gpu_minilm` (see `gpu_support`).
#![cfg(feature = "cuda")]

mod gpu_support;

use std::sync::Barrier;
use std::time::Instant;

use gpu_support::{cpu, cpu_model, gpu, gpu_model, max_abs_diff, model_files, texts};
use streampool_core::{Device, PoolConfig, Stream};
use streampool_cpu::CpuBackend;
use streampool_cuda::{CudaBackend, CudaOptions};
use streampool_models::graph::ExecMode;
use streampool_models::{MiniLm, ModelError};

const EAGER: ExecMode = ExecMode::Eager;
const GRAPH: ExecMode = ExecMode::Graph;

/// Eager results of every fixture text, one at a time on one stream.
fn eager_singles() -> Vec<Vec<f32>> {
    let lease = gpu().acquire().unwrap();
    texts()
        .iter()
        .map(|t| gpu_model().embed_mode(lease.stream(), &[t], EAGER).unwrap().remove(0))
        .collect()
}

/// The largest difference between `got` and the references of `indices`, checked <= 1e-5.
fn check(what: &str, got: &[Vec<f32>], indices: &[usize], reference: &[Vec<f32>]) -> f32 {
    assert_eq!(got.len(), indices.len(), "{what}: one result per input");
    let mut worst = 0f32;
    for (g, &i) in got.iter().zip(indices) {
        let diff = max_abs_diff(g, &reference[i]);
        assert!(diff <= 1e-5, "{what}: text {i} differs from eager by {diff}");
        worst = worst.max(diff);
    }
    worst
}

#[test]
fn graph_mode_is_supported_on_cuda_only() {
    assert!(EAGER.supported_on::<CpuBackend>() && EAGER.supported_on::<CudaBackend>());
    assert!(GRAPH.supported_on::<CudaBackend>());
    assert!(!GRAPH.supported_on::<CpuBackend>());
    assert_eq!("graph".parse::<ExecMode>(), Ok(GRAPH));
    assert_eq!(EAGER.to_string(), "eager");
    assert!("fast".parse::<ExecMode>().is_err());
}

#[test]
#[ignore = "needs the model files"]
fn graph_mode_on_the_cpu_is_unsupported() {
    let lease = cpu().acquire().unwrap();
    let err = cpu_model().embed_mode(lease.stream(), &["a"], GRAPH).unwrap_err();
    assert!(matches!(err, ModelError::Unsupported { .. }), "{err}");
    println!("CPU, graph mode: {err}");
}

/// Every fixture text alone, then in batches of several sizes (row buckets 1 to 32, padded
/// rows included), against eager one at a time: max abs diff <= 1e-5.
#[test]
#[ignore = "needs a CUDA GPU"]
fn graph_equals_eager_singly_and_in_batches() {
    let model = gpu_model();
    let reference = eager_singles();
    let texts = texts();
    let lease = gpu().acquire().unwrap();
    let stream = lease.stream();
    let mut worst = 0f32;
    for (i, t) in texts.iter().enumerate() {
        let got = model.embed_mode(stream, &[t], GRAPH).unwrap();
        worst = worst.max(check("single", &got, &[i], &reference));
        // The second call replays the graph the first captured.
        let again = model.embed_mode(stream, &[t], GRAPH).unwrap();
        assert_eq!(again, got, "text {i}: a replay differs from the first run");
    }
    let singles = model.graph_count(stream.slot());
    for size in [2, 3, 5, 7, 8, 13, 16, 30] {
        for start in (0..texts.len()).step_by(size) {
            let indices: Vec<usize> = (start..texts.len().min(start + size)).collect();
            let batch: Vec<&str> = indices.iter().map(|&i| texts[i]).collect();
            let got = model.embed_mode(stream, &batch, GRAPH).unwrap();
            worst = worst.max(check(&format!("batch of {size}"), &got, &indices, &reference));
        }
    }
    // Reversed order: results come back in input order.
    let reversed: Vec<usize> = (0..texts.len()).rev().collect();
    let batch: Vec<&str> = reversed.iter().map(|&i| texts[i]).collect();
    let got = model.embed_mode(stream, &batch, GRAPH).unwrap();
    worst = worst.max(check("reversed batch", &got, &reversed, &reference));
    let graphs = model.graph_count(stream.slot());
    // The slot's buckets share one set of buffers, sized for the largest, 32 rows of the longest
    // text's bucket (growth doubles, so at most about twice that). Per token: ids, segment ids,
    // mask (12 bytes), then hidden, qkv, context, projection, attention output (7 x hidden) and
    // the intermediate in f32; per row the pooled output.
    let longest = texts.iter().map(|t| model.tokenizer().encode(t).unwrap().len()).max().unwrap();
    let tokens = 32 * streampool_models::minilm::bucket(longest, 256);
    let largest = tokens * (12 + (7 * 384 + 1536) * 4) + 32 * 384 * 4;
    let bytes = model.graph_bytes(stream.slot());
    println!(
        "graph vs eager: max abs diff {worst:.2e}; slot {} captured {singles} graphs for the \
         singles, holds {graphs} now, in {:.1} MB of activations (largest bucket {:.1} MB)",
        stream.slot(),
        bytes as f64 / 1e6,
        largest as f64 / 1e6,
    );
    assert!(singles >= 1 && graphs >= 1, "{singles} / {graphs} graphs");
    assert!(bytes >= largest && bytes <= 5 * largest / 2, "{bytes} bytes for {largest}");
}

/// After a slot captured many buckets (growing its buffers, which drops and recaptures its
/// graphs), the first bucket's graph replays to the same result (bit for bit) as when it was
/// first captured.
#[test]
#[ignore = "needs a CUDA GPU"]
fn replay_after_other_buckets_is_still_correct() {
    let model = gpu_model();
    let reference = eager_singles();
    let texts = texts();
    let lease = gpu().acquire().unwrap();
    let stream = lease.stream();
    let first = model.embed_mode(stream, &[texts[0]], GRAPH).unwrap();
    check("first", &first, &[0], &reference);
    let before = model.graph_count(stream.slot());
    for size in [1, 2, 4, 8, 16, 32] {
        let indices: Vec<usize> = (0..size).map(|k| (k * 11 + size) % texts.len()).collect();
        let batch: Vec<&str> = indices.iter().map(|&i| texts[i]).collect();
        let got = model.embed_mode(stream, &batch, GRAPH).unwrap();
        check(&format!("batch of {size}"), &got, &indices, &reference);
        // Eager calls in between use the slot's own workspace, not the graphs' buffers.
        let eager = model.embed_mode(stream, &batch, EAGER).unwrap();
        check(&format!("eager batch of {size}"), &eager, &indices, &reference);
    }
    let after = model.graph_count(stream.slot());
    let again = model.embed_mode(stream, &[texts[0]], GRAPH).unwrap();
    assert_eq!(again, first, "the first graph's replay changed after {after} captures");
    println!("slot {}: {before} graphs, then {after}; first replay unchanged", stream.slot());
    assert!(before >= 1 && after >= 1);
}

/// Graphs are planned for the forwards running at once, not the slots leased: a forward among
/// three idle leases is captured for the whole GPU (load 1); with three other callers inside a
/// forward (their `enter` guards held) it gets a graph for load 4; both give the same embedding.
/// On a device of its own, so that the other tests' forwards do not count; the model's graphs
/// are freed with the model.
#[test]
#[ignore = "needs a CUDA GPU"]
fn graphs_are_planned_for_running_forwards_not_leases() {
    let backend = CudaBackend::open_with(0, CudaOptions::default()).expect("needs a CUDA GPU");
    let device = Device::new(backend, PoolConfig::with_capacity(4));
    let model = MiniLm::load(&device, model_files()).expect("load MiniLM");
    let leases: Vec<_> = (0..4).map(|_| device.acquire().unwrap()).collect();
    let stream = leases[0].stream();
    let text = texts()[0];
    let alone = model.embed_mode(stream, &[text], GRAPH).unwrap();
    assert_eq!(model.graph_loads(stream.slot()), [1], "three idle leases are no load");
    let others: Vec<_> = (0..3).map(|_| device.enter()).collect();
    let shared = model.embed_mode(stream, &[text], GRAPH).unwrap();
    assert_eq!(model.graph_loads(stream.slot()), [1, 4]);
    drop(others);
    assert_eq!(device.running(), 0);
    let diff = max_abs_diff(&alone[0], &shared[0]);
    println!("load 1 vs load 4 graphs: max |diff| {diff:.2e}");
    assert!(diff <= 1e-5, "{diff}");
    // The model's graphs are its own: dropped with it, their buffers go back to the device's
    // pool at once; the device, then the shared GPU device, are unaffected.
    let in_use = || device.backend().memory_stats().in_use;
    let before = in_use();
    drop(model);
    assert!(in_use() < before, "the graphs' buffers are freed with the model");
    drop(leases);
    let reloaded = MiniLm::load(&device, model_files()).unwrap();
    let lease = device.acquire().unwrap();
    let third = reloaded.embed_mode(lease.stream(), &[text], GRAPH).unwrap();
    assert!(max_abs_diff(&third[0], &alone[0]) <= 1e-5);
    drop((reloaded, lease, device));
    let lease = gpu().acquire().unwrap();
    let again = gpu_model().embed_mode(lease.stream(), &[text], GRAPH).unwrap();
    assert!(max_abs_diff(&again[0], &alone[0]) <= 1e-5);
}

const THREADS: usize = 16;
const REQUESTS: usize = 200;

/// 16 threads x 200 requests in graph mode, each on its own stream (singles and small batches,
/// so each slot captures several buckets while the others replay): every result equals the
/// eager single-thread result (<= 1e-5).
#[test]
#[ignore = "needs a CUDA GPU"]
fn sixteen_threads_two_hundred_requests_each() {
    let model = gpu_model();
    let reference = eager_singles();
    let texts = texts();
    let start = Barrier::new(THREADS);
    let t0 = Instant::now();
    let results: Vec<(usize, f32, usize)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (texts, reference, start) = (&texts, &reference, &start);
                s.spawn(move || {
                    let lease = gpu().acquire().unwrap();
                    let stream = lease.stream();
                    start.wait(); // first captures of all threads overlap
                    let mut worst = 0f32;
                    for i in 0..REQUESTS {
                        // Mostly singles; every 10th request a batch of 1 + (i / 10) % 5 texts.
                        let size = if i % 10 == 9 { 1 + (i / 10) % 5 } else { 1 };
                        let indices: Vec<usize> =
                            (0..size).map(|k| (t * 7 + i + k * 3) % texts.len()).collect();
                        let batch: Vec<&str> = indices.iter().map(|&k| texts[k]).collect();
                        let got = model.embed_mode(stream, &batch, GRAPH).unwrap();
                        let what = format!("thread {t} request {i}");
                        worst = worst.max(check(&what, &got, &indices, reference));
                    }
                    (stream.slot(), worst, model.graph_count(stream.slot()))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let secs = t0.elapsed().as_secs_f64();
    let mut slots: Vec<usize> = results.iter().map(|r| r.0).collect();
    slots.sort_unstable();
    slots.dedup();
    assert_eq!(slots.len(), THREADS, "every thread has its own stream");
    let worst = results.iter().map(|r| r.1).fold(0.0, f32::max);
    let graphs: usize = results.iter().map(|r| r.2).sum();
    println!(
        "{THREADS} threads x {REQUESTS} graph-mode requests (captures included): {secs:.1} s, \
         {:.0} req/s; {graphs} graphs captured; max diff from eager single-thread {worst:.2e}",
        (THREADS * REQUESTS) as f64 / secs
    );
}
