//! MiniLM against sentence-transformers' reference embeddings, and batching vs one at a time.

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

/// CLS pooling on a real model: all-MiniLM-L6-v2's weights with its pooling switched to CLS
/// (the pooling folder rewritten in sentence-transformers' current format), against
/// sentence-transformers with the same switch (`fixtures/minilm_cls_reference.json`, float64).
#[test]
fn cls_pooling_on_minilm_matches_sentence_transformers() {
    let Some(files) = crate::common::model_files() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("all-MiniLM-L6-v2-cls");
    std::fs::create_dir_all(dir.join("1_Pooling")).unwrap();
    std::fs::create_dir_all(dir.join("2_Normalize")).unwrap();
    for name in [
        "config.json",
        "tokenizer.json",
        "model.safetensors",
        "modules.json",
        "sentence_bert_config.json",
    ] {
        std::fs::copy(files.dir.join(name), dir.join(name)).unwrap();
    }
    std::fs::write(
        dir.join("1_Pooling/config.json"),
        r#"{"embedding_dimension": 384, "pooling_mode": "cls", "include_prompt": true}"#,
    )
    .unwrap();
    let model = streampool_models::MiniLm::load(
        device(),
        &streampool_models::loading::locate_model(&dir).unwrap(),
    )
    .unwrap();
    let path = streampool_models::testing::reference_fixture_path()
        .with_file_name("minilm_cls_reference.json");
    let reference: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let cases = reference["cases"].as_array().unwrap();
    let texts: Vec<&str> = cases.iter().map(|c| c["text"].as_str().unwrap()).collect();
    let lease = device().acquire().unwrap();
    let got = model.embed(lease.stream(), &texts).unwrap();
    for (case, emb) in cases.iter().zip(&got) {
        let want: Vec<f64> = serde_json::from_value(case["embedding"].clone()).unwrap();
        let (cos, diff) = compare(emb, &want);
        assert!(cos >= 0.99999 && diff <= 1e-4, "{:?}: cosine {cos}, diff {diff}", case["text"]);
    }
}
