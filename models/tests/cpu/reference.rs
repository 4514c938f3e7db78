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
