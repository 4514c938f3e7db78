//! Every tiny random-weight model of `fixtures/tiny-models/` (BERT with every pooling, prefixed
//! weights, Dense modules, a prompt left out of the pooling; XLM-RoBERTa; MPNet; Gemma-3) on
//! CUDA against
//! its float64 reference: f32 eager and graph mode (cosine >= 0.99999, max abs diff <= 1e-4), f16
//! (cosine >= 0.999).
//! `#[ignore]`d (CI has no GPU): run with `--features cuda -- --include-ignored`.
#![cfg(feature = "cuda")]

mod gpu_support;

use gpu_support::gpu;
use streampool_models::graph::ExecMode;
use streampool_models::loading::locate_model;
use streampool_models::testing::tiny_models;
use streampool_models::{MiniLm, Precision};

fn compare(got: &[f32], want: &[f64]) -> (f64, f64) {
    let dot: f64 = got.iter().zip(want).map(|(a, b)| *a as f64 * b).sum();
    let ng = got.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
    let nw = want.iter().map(|x| x.powi(2)).sum::<f64>().sqrt();
    let diff = got.iter().zip(want).map(|(a, b)| (*a as f64 - b).abs()).fold(0.0, f64::max);
    (dot / (ng * nw), diff)
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn tiny_models_of_each_architecture_on_cuda() {
    let dirs = tiny_models();
    assert!(!dirs.is_empty(), "no tiny models");
    let mut failures = Vec::new();
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let reference: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("reference.json")).unwrap()).unwrap();
        let cases = reference["cases"].as_array().unwrap();
        let texts: Vec<&str> = cases.iter().map(|c| c["text"].as_str().unwrap()).collect();
        let files = locate_model(&dir).unwrap();
        for (precision, mode) in [
            (Precision::F32, ExecMode::Eager),
            (Precision::F32, ExecMode::Graph),
            (Precision::F16, ExecMode::Eager),
            (Precision::F16, ExecMode::Graph),
        ] {
            let model = MiniLm::load_with(gpu(), &files, precision)
                .unwrap_or_else(|e| panic!("{name} {precision}: {e}"));
            let lease = gpu().acquire().unwrap();
            // The prompt the reference was embedded with, if any.
            let prompt = model.prompt(reference["prompt_name"].as_str()).unwrap();
            let run = |texts: &[&str]| {
                let encodings = model.encode_prompted(texts, prompt).unwrap();
                model.embed_encodings_mode(lease.stream(), &encodings, mode).unwrap()
            };
            let batched = run(&texts);
            let (mut worst_cos, mut worst_diff) = (1f64, 0f64);
            for (i, case) in cases.iter().enumerate() {
                let want: Vec<f64> = serde_json::from_value(case["embedding"].clone()).unwrap();
                let alone = run(&[texts[i]]).remove(0);
                for got in [&batched[i], &alone] {
                    let (cos, diff) = compare(got, &want);
                    worst_cos = worst_cos.min(cos);
                    worst_diff = worst_diff.max(diff);
                }
            }
            println!("{name} {precision} {mode}: min cosine {worst_cos:.8}, max abs diff {worst_diff:.2e}");
            let ok = match precision {
                Precision::F32 => worst_cos >= 0.99999 && worst_diff <= 1e-4,
                _ => worst_cos >= 0.999,
            };
            if !ok {
                failures.push(format!("{name} {precision} {mode}: {worst_cos} / {worst_diff}"));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
