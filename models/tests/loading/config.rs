//! config.json / sentence-transformers config parsing and validation (no model needed).

use std::path::Path;

use streampool_models::loading::{locate_model, BertConfig, LoadError, ModelConfig, PoolingMode};

const BERT: &str = r#"{
  "architectures": ["BertModel"], "hidden_act": "gelu", "hidden_size": 384,
  "intermediate_size": 1536, "layer_norm_eps": 1e-12, "max_position_embeddings": 512,
  "model_type": "bert", "num_attention_heads": 12, "num_hidden_layers": 6,
  "type_vocab_size": 2, "vocab_size": 30522
}"#;
const SENTENCE: &str = r#"{"max_seq_length": 256, "do_lower_case": false}"#;
const POOLING: &str = r#"{"word_embedding_dimension": 384, "pooling_mode_cls_token": false,
  "pooling_mode_mean_tokens": true, "pooling_mode_max_tokens": false,
  "pooling_mode_mean_sqrt_len_tokens": false}"#;

/// A model directory with the given config texts (other files empty).
fn model_dir(dir: &Path, bert: &str, sentence: &str, pooling: &str) {
    std::fs::create_dir_all(dir.join("1_Pooling")).unwrap();
    std::fs::write(dir.join("config.json"), bert).unwrap();
    std::fs::write(dir.join("sentence_bert_config.json"), sentence).unwrap();
    std::fs::write(dir.join("1_Pooling/config.json"), pooling).unwrap();
    std::fs::write(dir.join("tokenizer.json"), "{}").unwrap();
    std::fs::write(dir.join("model.safetensors"), "").unwrap();
}

fn load(bert: &str, sentence: &str, pooling: &str) -> Result<ModelConfig, LoadError> {
    let tmp = tempfile::tempdir().unwrap();
    model_dir(tmp.path(), bert, sentence, pooling);
    ModelConfig::load(&locate_model(tmp.path()).unwrap())
}

fn invalid_reason(result: Result<ModelConfig, LoadError>) -> String {
    match result {
        Err(LoadError::InvalidConfig { reason, .. }) => reason,
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

#[test]
fn minilm_config_parses() {
    let config = load(BERT, SENTENCE, POOLING).unwrap();
    let bert = &config.bert;
    assert_eq!(
        (bert.vocab_size, bert.hidden_size, bert.num_hidden_layers, bert.num_attention_heads),
        (30522, 384, 6, 12)
    );
    assert_eq!((bert.intermediate_size, bert.max_position_embeddings), (1536, 512));
    assert_eq!((bert.type_vocab_size, bert.hidden_act.as_str()), (2, "gelu"));
    assert_eq!(bert.layer_norm_eps, 1e-12);
    assert_eq!(bert.head_dim(), 32);
    assert_eq!(config.max_seq_length, 256);
    assert_eq!(config.pooling, PoolingMode::Mean);
}

#[test]
fn invalid_bert_configs_are_rejected() {
    let heads = BERT.replace("\"num_attention_heads\": 12", "\"num_attention_heads\": 7");
    assert!(invalid_reason(load(&heads, SENTENCE, POOLING)).contains("num_attention_heads"));
    let relu = BERT.replace("\"gelu\"", "\"relu\"");
    assert!(invalid_reason(load(&relu, SENTENCE, POOLING)).contains("relu"));
    let zero = BERT.replace("\"num_hidden_layers\": 6", "\"num_hidden_layers\": 0");
    assert!(invalid_reason(load(&zero, SENTENCE, POOLING)).contains("num_hidden_layers"));
}

#[test]
fn malformed_json_names_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("config.json");
    std::fs::write(&path, r#"{"hidden_size": 384,"#).unwrap();
    match BertConfig::load(&path).unwrap_err() {
        LoadError::ConfigParse { path: p, .. } => assert_eq!(p, path),
        other => panic!("expected ConfigParse, got {other:?}"),
    }
    let missing_key = BERT.replace("\"vocab_size\": 30522", "\"vocab\": 1");
    assert!(matches!(
        load(&missing_key, SENTENCE, POOLING).unwrap_err(),
        LoadError::ConfigParse { .. }
    ));
}

#[test]
fn sentence_and_pooling_configs_are_checked() {
    let too_long = r#"{"max_seq_length": 1024}"#;
    assert!(invalid_reason(load(BERT, too_long, POOLING)).contains("max_seq_length"));
    let two_modes =
        POOLING.replace("\"pooling_mode_cls_token\": false", "\"pooling_mode_cls_token\": true");
    assert!(invalid_reason(load(BERT, SENTENCE, &two_modes)).contains("pooling_mode"));
    let wrong_dim = POOLING.replace("384", "768");
    assert!(invalid_reason(load(BERT, SENTENCE, &wrong_dim)).contains("768"));
    let cls = r#"{"word_embedding_dimension": 384, "pooling_mode_cls_token": true}"#;
    assert_eq!(load(BERT, SENTENCE, cls).unwrap().pooling, PoolingMode::Cls);
}
