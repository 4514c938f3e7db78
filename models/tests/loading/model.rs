//! The real all-MiniLM-L6-v2 directory: configs and weights (downloads the model if absent).

use super::real_model;
use streampool_models::loading::weights::Dtype;
use streampool_models::loading::{LoadError, ModelConfig, PoolingMode, Weights};

#[test]
fn real_config_is_minilm_l6() {
    let Some(files) = real_model() else { return };
    let config = ModelConfig::load(files).unwrap();
    assert_eq!(config.bert.vocab_size, 30522);
    assert_eq!(config.bert.hidden_size, 384);
    assert_eq!(config.bert.num_hidden_layers, 6);
    assert_eq!(config.bert.num_attention_heads, 12);
    assert_eq!(config.bert.intermediate_size, 1536);
    assert_eq!(config.bert.max_position_embeddings, 512);
    assert_eq!(config.bert.type_vocab_size, 2);
    assert_eq!(config.bert.hidden_act, "gelu");
    assert_eq!(config.max_seq_length, 256);
    assert_eq!(config.pooling, PoolingMode::Mean);
}

#[test]
fn real_weights_have_bert_shapes() {
    let Some(files) = real_model() else { return };
    let config = ModelConfig::load(files).unwrap().bert;
    let w = Weights::open(&files.weights).unwrap();
    let (h, i) = (config.hidden_size, config.intermediate_size);
    let emb = w.get_f32("embeddings.word_embeddings.weight", &[config.vocab_size, h]).unwrap();
    assert_eq!(emb.len(), config.vocab_size * h);
    assert!(emb.iter().all(|v| v.is_finite()));
    assert!(emb.iter().any(|&v| v != 0.0));
    w.get_f32("embeddings.position_embeddings.weight", &[config.max_position_embeddings, h])
        .unwrap();
    w.get_f32("embeddings.token_type_embeddings.weight", &[config.type_vocab_size, h]).unwrap();
    for layer in 0..config.num_hidden_layers {
        let p = format!("encoder.layer.{layer}");
        for name in ["query", "key", "value"] {
            w.get_f32(&format!("{p}.attention.self.{name}.weight"), &[h, h]).unwrap();
            w.get_f32(&format!("{p}.attention.self.{name}.bias"), &[h]).unwrap();
        }
        w.get_f32(&format!("{p}.attention.output.dense.weight"), &[h, h]).unwrap();
        w.get_f32(&format!("{p}.attention.output.LayerNorm.weight"), &[h]).unwrap();
        w.get_f32(&format!("{p}.intermediate.dense.weight"), &[i, h]).unwrap();
        w.get_f32(&format!("{p}.output.dense.weight"), &[h, i]).unwrap();
        w.get_f32(&format!("{p}.output.LayerNorm.bias"), &[h]).unwrap();
    }
    let raw = w.get_raw("embeddings.LayerNorm.weight", &[h]).unwrap();
    assert_eq!(raw.dtype, Dtype::F32);
    assert_eq!(raw.bytes.len(), h * 4);

    // position_ids is stored as I64: not a weight.
    let err = w.get_f32("embeddings.position_ids", &[1, 512]).unwrap_err();
    assert!(matches!(err, LoadError::WrongDtype { .. }), "{err:?}");
    let err = w.get_f32("encoder.layer.0.intermediate.dense.weight", &[h, i]).unwrap_err();
    assert!(matches!(err, LoadError::WrongShape { .. }), "{err:?}");
    let err = w.get_f32("encoder.layer.6.output.dense.weight", &[h, i]).unwrap_err();
    assert!(matches!(err, LoadError::TensorMissing { .. }), "{err:?}");
}

#[test]
fn truncated_copy_of_real_weights_is_reported() {
    let Some(files) = real_model() else { return };
    let bytes = std::fs::read(&files.weights).unwrap();
    let cut = bytes[..bytes.len() - 1000].to_vec();
    let err = Weights::from_bytes(&files.weights, cut).unwrap_err();
    assert!(matches!(err, LoadError::TruncatedSafetensors { .. }), "{err:?}");
}
