//! The corpus pipeline on CUDA with all-MiniLM-L6-v2: 4 streams at once, eager and graph mode,
//! f32 and f16, against each text embedded alone on the GPU (f32: within 1e-5; f16: cosine >=
//! 0.9999) and graph mode against eager. `#[ignore]`d (CI has no GPU): run with `--features cuda
//! -- --include-ignored`, `STREAMPOOL_MODEL_DIR` naming the model.
#![cfg(feature = "cuda")]

#[path = "../../models/tests/gpu_support/mod.rs"]
mod gpu_support;

use std::sync::Arc;

use gpu_support::{gpu, model_files};
use streampool_cuda::CudaBackend;
use streampool_engine::corpus::{embed_all, CorpusConfig, CorpusStats};
use streampool_engine::MiniLmBatches;
use streampool_models::graph::ExecMode;
use streampool_models::{MiniLm, Precision};

/// 4,000 texts of 0 to 120 words, shuffled lengths, one of 1 MB.
fn texts() -> Vec<String> {
    let words: Vec<&str> = "streams of light fall on quiet hills while the river runs to an open \
                            sea and every town wakes under a pale sky"
        .split_whitespace()
        .collect();
    let lengths = streampool_core::testing::rand(4000, 3);
    let mut texts: Vec<String> = (0..4000)
        .map(|i| {
            let n = ((lengths[i] + 1.0) * 60.0) as usize;
            (0..n).map(|w| words[(w * 5 + i) % words.len()]).collect::<Vec<_>>().join(" ")
        })
        .collect();
    texts[17] = "a very long text ".repeat(60_000);
    texts
}

fn run(
    model: &Arc<MiniLm<CudaBackend>>,
    mode: ExecMode,
    texts: &[String],
) -> (Vec<Vec<f32>>, CorpusStats) {
    let batches = MiniLmBatches::new(model.clone(), mode);
    let config =
        CorpusConfig { workers: 4, window: 1500, max_batch_tokens: 8192, ..Default::default() };
    embed_all(&batches, &config, texts.iter().cloned()).unwrap()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn corpus_on_four_streams_matches_one_text_at_a_time() {
    let texts = texts();
    for precision in [Precision::F32, Precision::F16] {
        let model = Arc::new(MiniLm::load_with(gpu(), model_files(), precision).unwrap());
        let (eager, stats) = run(&model, ExecMode::Eager, &texts);
        let (graph, graph_stats) = run(&model, ExecMode::Graph, &texts);
        assert_eq!((eager.len(), graph.len()), (texts.len(), texts.len()));
        let lease = gpu().acquire().unwrap();
        let (mut worst_diff, mut worst_cos, mut worst_graph) = (0f32, 1f64, 0f32);
        for (i, text) in texts.iter().enumerate() {
            let alone = model.embed(lease.stream(), &[text.as_str()]).unwrap().remove(0);
            worst_diff = worst_diff.max(max_diff(&eager[i], &alone));
            worst_cos = worst_cos.min(cosine(&eager[i], &alone));
            worst_graph = worst_graph.max(max_diff(&graph[i], &eager[i]));
        }
        println!(
            "{precision}: {} texts, padding {:.1}% eager / {:.1}% graph; vs alone: max diff \
             {worst_diff:.2e}, min cosine {worst_cos:.6}; graph vs eager max diff {worst_graph:.2e}",
            texts.len(),
            100.0 * stats.padding_share(),
            100.0 * graph_stats.padding_share(),
        );
        match precision {
            Precision::F32 => assert!(worst_diff <= 1e-5 && worst_graph <= 1e-5),
            _ => assert!(worst_cos >= 0.9999 && worst_graph <= 2e-3),
        }
    }
}
