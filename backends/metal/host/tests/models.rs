//! Whole models through the Metal kernels' host build: every tiny random-weight model of
//! `fixtures/tiny-models/` (BERT with every pooling, XLM-RoBERTa, MPNet's relative attention
//! bias, Gemma-3's RMS norm, rotary and grouped attention with a sliding window, Dense heads)
//! and the real MiniLM against sentence-transformers' fixture, in f32 and f16; then MiniLM from
//! 8 threads at once, every result checked.

use std::path::Path;
use std::sync::OnceLock;

use streampool_core::{Device, PoolConfig};
use streampool_metal_host::MslHostBackend;
use streampool_models::loading::locate_model;
use streampool_models::testing::{compare, default_model, reference_fixture_path, tiny_models};
use streampool_models::{MiniLm, Precision};

fn device() -> &'static Device<MslHostBackend> {
    static DEVICE: OnceLock<Device<MslHostBackend>> = OnceLock::new();
    DEVICE.get_or_init(|| Device::new(MslHostBackend::new(), PoolConfig::with_capacity(8)))
}

/// One reference case: the text and sentence-transformers' f64 embedding.
struct Case {
    text: String,
    embedding: Vec<f64>,
}

/// The cases of a reference file (the fixture's and the tiny models' share the shape), with its
/// prompt name if it has one.
fn cases(path: &Path) -> (Vec<Case>, Option<String>) {
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).expect("reference file")).expect("JSON");
    let cases = json["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| Case {
            text: c["text"].as_str().expect("text").to_owned(),
            embedding: c["embedding"]
                .as_array()
                .expect("embedding")
                .iter()
                .map(|x| x.as_f64().expect("number"))
                .collect(),
        })
        .collect();
    (cases, json["prompt_name"].as_str().map(str::to_owned))
}

/// The least cosine and largest difference of `model`'s embeddings of `cases` (in one batch)
/// against their references.
fn worst(model: &MiniLm<MslHostBackend>, cases: &[Case], prompt: Option<&str>) -> (f64, f64) {
    let lease = device().acquire().unwrap();
    let texts: Vec<&str> = cases.iter().map(|c| c.text.as_str()).collect();
    let prompt = model.prompt(prompt).unwrap();
    let got = model.embed_prompted(lease.stream(), &texts, prompt).unwrap();
    got.iter().zip(cases).fold((1.0, 0.0), |(c, d), (g, case)| {
        let (cos, diff) = compare(g, &case.embedding);
        (c.min(cos), d.max(diff))
    })
}

#[test]
fn every_tiny_model_matches_its_reference_in_f32_and_f16() {
    let dirs = tiny_models();
    assert!(dirs.len() >= 12, "tiny models: {dirs:?}");
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let files = locate_model(&dir).unwrap();
        let (cases, prompt) = cases(&dir.join("reference.json"));
        for (precision, min_cos, max_diff) in
            [(Precision::F32, 0.99999, 1e-4), (Precision::F16, 0.999, 2e-2)]
        {
            let model = MiniLm::load_with(device(), &files, precision)
                .unwrap_or_else(|e| panic!("{name} {precision:?}: {e}"));
            let (cos, diff) = worst(&model, &cases, prompt.as_deref());
            println!("{name} {precision:?}: min cosine {cos:.8}, max abs diff {diff:.2e}");
            assert!(cos >= min_cos && diff <= max_diff, "{name} {precision:?}: {cos} / {diff}");
        }
    }
}

#[test]
fn minilm_matches_sentence_transformers_in_f32_and_f16() {
    let Some(files) = default_model() else { return };
    let (cases, _) = cases(&reference_fixture_path());
    assert_eq!(cases.len(), 30);
    for (precision, min_cos, max_diff) in
        [(Precision::F32, 0.99999, 1e-4), (Precision::F16, 0.9995, 1e-2)]
    {
        let model = MiniLm::load_with(device(), files, precision).unwrap();
        let (cos, diff) = worst(&model, &cases, None);
        println!("MiniLM {precision:?}: min cosine {cos:.8}, max abs diff {diff:.2e}");
        assert!(cos >= min_cos && diff <= max_diff, "MiniLM {precision:?}: {cos} / {diff}");
    }
}

#[test]
fn minilm_from_8_threads_gives_every_caller_its_own_result() {
    let Some(files) = default_model() else { return };
    let (cases, _) = cases(&reference_fixture_path());
    let model = MiniLm::load(device(), files).unwrap();
    std::thread::scope(|s| {
        for t in 0..8 {
            let (model, cases) = (&model, &cases);
            s.spawn(move || {
                let lease = device().acquire().unwrap();
                for round in 0..4 {
                    let case = &cases[(t * 7 + round * 3) % cases.len()];
                    let got = model.embed(lease.stream(), &[&case.text]).unwrap().remove(0);
                    let (cos, _) = compare(&got, &case.embedding);
                    assert!(cos >= 0.99999, "thread {t} round {round} {:?}: {cos}", case.text);
                }
            });
        }
    });
}
