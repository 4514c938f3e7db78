//! MiniLM against sentence-transformers' reference embeddings, and batching vs one at a time.

use streampool_cpu::CpuBackend;
use streampool_models::loading::fetch::{fetch_known, known_model};
use streampool_models::loading::{default_cache_dir, locate_model};
use streampool_models::{testing, MiniLm};

use crate::common::{cases, compare, device, max_abs_diff, model, texts};

#[test]
fn matches_sentence_transformers_reference() {
    let Some(model) = model() else { return };
    let lease = device().acquire().unwrap();
    let got = model.embed(lease.stream(), &texts()).unwrap();
    for (case, emb) in cases().iter().zip(&got) {
        let ids = model.tokenizer().encode(&case.text).unwrap().input_ids;
        assert_eq!(ids, case.input_ids, "token ids of {:?}", case.text);
        let (cos, diff) = compare(emb, &case.embedding);
        assert!(cos >= 0.99999, "{:?}: cosine {cos}", case.text);
        assert!(diff <= 1e-4, "{:?}: max abs diff {diff}", case.text);
    }
}

#[test]
fn batch_equals_one_at_a_time() {
    let Some(model) = model() else { return };
    let lease = device().acquire().unwrap();
    let texts = texts();
    let batched = model.embed(lease.stream(), &texts).unwrap();
    for (text, b) in texts.iter().zip(&batched) {
        let single = model.embed(lease.stream(), &[text]).unwrap();
        let diff = max_abs_diff(&single[0], b);
        assert!(diff <= 1e-5, "{text:?}: batched vs single differ by {diff}");
        let norm: f32 = b.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{text:?}: norm {norm}");
    }
}

/// `model` against a reference of `fixtures/` written by
/// `scripts/fixtures/make-model-reference.py`: token ids equal, cosine >= 0.99999 and max abs
/// diff <= 1e-4 for every text, all in one batch.
fn assert_matches_reference(model: &MiniLm<CpuBackend>, fixture: &str) {
    let path = testing::reference_fixture_path().with_file_name(fixture);
    let reference: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let cases = reference["cases"].as_array().unwrap();
    let texts: Vec<&str> = cases.iter().map(|c| c["text"].as_str().unwrap()).collect();
    let lease = device().acquire().unwrap();
    let got = model.embed(lease.stream(), &texts).unwrap();
    for (case, emb) in cases.iter().zip(&got) {
        let ids: Vec<u32> = serde_json::from_value(case["input_ids"].clone()).unwrap();
        let text = case["text"].as_str().unwrap();
        assert_eq!(model.tokenizer().encode(text).unwrap().input_ids, ids, "{fixture}: {text:?}");
        let want: Vec<f64> = serde_json::from_value(case["embedding"].clone()).unwrap();
        let (cos, diff) = compare(emb, &want);
        assert!(cos >= 0.99999 && diff <= 1e-4, "{fixture}: {text:?}: cosine {cos}, diff {diff}");
    }
}

/// CLS pooling on a real model: all-MiniLM-L6-v2's weights with its pooling switched to CLS
/// (the pooling folder rewritten in sentence-transformers' current format), against
/// sentence-transformers with the same switch.
#[test]
fn cls_pooling_on_minilm_matches_sentence_transformers() {
    let Some(files) = crate::common::model_files() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("all-MiniLM-L6-v2-cls");
    std::fs::create_dir_all(dir.join("1_Pooling")).unwrap();
    for name in REAL_FILES {
        std::fs::copy(files.dir.join(name), dir.join(name)).unwrap();
    }
    let cls = r#"{"embedding_dimension": 384, "pooling_mode": "cls", "include_prompt": true}"#;
    std::fs::write(dir.join("1_Pooling/config.json"), cls).unwrap();
    let model = MiniLm::load(device(), &locate_model(&dir).unwrap()).unwrap();
    assert_matches_reference(&model, "minilm_cls_reference.json");
}

/// The files of a real model directory that a copy needs.
const REAL_FILES: [&str; 5] = [
    "config.json",
    "tokenizer.json",
    "model.safetensors",
    "modules.json",
    "sentence_bert_config.json",
];

/// A known model of the cache (`streampool fetch-model NAME`), loaded: where it is already in
/// the cache, or with `STREAMPOOL_EXTRA_MODELS=1` (downloaded); otherwise `None` after a
/// visible SKIPPED line.
fn extra_model(name: &str, test: &str) -> Option<MiniLm<CpuBackend>> {
    let known = known_model(name).unwrap();
    let cache = default_cache_dir().unwrap();
    let dir = cache.join(known.name);
    if locate_model(&dir).is_err() {
        if std::env::var_os("STREAMPOOL_EXTRA_MODELS").is_none_or(|v| v != "1") {
            eprintln!(
                "SKIPPED {test}: {name} is not in the cache (streampool fetch-model {name}, or \
                 STREAMPOOL_EXTRA_MODELS=1)"
            );
            return None;
        }
        fetch_known(&cache, known, &mut |_| {}).unwrap();
    }
    let model = MiniLm::load(device(), &locate_model(&dir).unwrap()).unwrap();
    assert_eq!(model.name(), name);
    Some(model)
}

/// A second real model, a fine-tune of MiniLM (84 MB download).
#[test]
fn sre_embedding_model_matches_sentence_transformers() {
    let test = "sre_embedding_model_matches_sentence_transformers";
    let Some(model) = extra_model("sre-embedding-model", test) else { return };
    assert_matches_reference(&model, "sre_embedding_reference.json");
}

/// MPNet on a real model: all-mpnet-base-v2 (relative position bias, `<s>` / `</s>`; 418 MB
/// download).
#[test]
fn all_mpnet_base_v2_matches_sentence_transformers() {
    let test = "all_mpnet_base_v2_matches_sentence_transformers";
    let Some(model) = extra_model("all-mpnet-base-v2", test) else { return };
    assert_eq!((model.dim(), model.config().max_seq_length), (768, 384));
    assert_matches_reference(&model, "mpnet_reference.json");
}

/// Gemma-3 on a real model: EmbeddingGemma-300m (1.2 GB download; Gemma Terms of Use). Its
/// reference: sentence-transformers in float64, no prompt.
#[test]
fn embeddinggemma_300m_matches_sentence_transformers() {
    let test = "embeddinggemma_300m_matches_sentence_transformers";
    let Some(model) = extra_model("embeddinggemma-300m", test) else { return };
    assert_eq!((model.dim(), model.config().max_seq_length), (768, 2048));
    assert_matches_reference(&model, "embeddinggemma_reference.json");
}
