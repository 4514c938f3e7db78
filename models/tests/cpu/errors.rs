//! Bad model files and bad input come back as typed errors, never panics.

use std::path::Path;

use crate::common::{device, model, model_files};
use streampool_models::loading::weights::save_f32;
use streampool_models::loading::{self, locate_model, Encoding, ModelFiles};
use streampool_models::{MiniLm, ModelError};

/// A model directory with `real`'s configs, tokenizer and weights (which the caller spoils).
fn scratch_model(dir: &Path, real: &ModelFiles) -> ModelFiles {
    std::fs::create_dir_all(dir.join("1_Pooling")).unwrap();
    for (from, name) in [
        (&real.config, "config.json"),
        (&real.tokenizer, "tokenizer.json"),
        (&real.sentence_config, "sentence_bert_config.json"),
        (&real.pooling_config, "1_Pooling/config.json"),
        (&real.weights, "model.safetensors"),
    ] {
        std::fs::copy(from, dir.join(name)).unwrap();
    }
    locate_model(dir).unwrap()
}

fn load_err(files: &ModelFiles) -> ModelError {
    match MiniLm::load(device(), files) {
        Ok(_) => panic!("loading bad weights succeeded"),
        Err(e) => e,
    }
}

#[test]
fn bad_weight_files_are_typed_errors() {
    let Some(real) = model_files() else { return };
    let dir = tempfile::tempdir().unwrap();
    let files = scratch_model(dir.path(), real);

    let bytes = std::fs::read(&files.weights).unwrap();
    std::fs::write(&files.weights, &bytes[..bytes.len() / 2]).unwrap();
    let e = load_err(&files);
    assert!(matches!(e, ModelError::Load(loading::LoadError::TruncatedSafetensors { .. })), "{e}");
    assert!(e.to_string().contains("truncated"), "{e}");

    save_f32(&files.weights, &[("embeddings.word_embeddings.weight", &[2, 3], &[0.0; 6])]).unwrap();
    let e = load_err(&files);
    match e {
        ModelError::Load(loading::LoadError::WrongShape {
            ref name,
            ref expected,
            ref found,
            ..
        }) => {
            assert_eq!(name, "embeddings.word_embeddings.weight");
            assert_eq!((expected.as_slice(), found.as_slice()), (&[30522, 384][..], &[2, 3][..]));
        }
        other => panic!("expected WrongShape, got {other}"),
    }

    save_f32(&files.weights, &[("unrelated", &[1], &[0.0])]).unwrap();
    let e = load_err(&files);
    assert!(matches!(e, ModelError::Load(loading::LoadError::TensorMissing { .. })), "{e}");

    std::fs::remove_file(&files.weights).unwrap();
    let e = load_err(&files);
    assert!(matches!(e, ModelError::Load(loading::LoadError::FileMissing { .. })), "{e}");
}

#[test]
fn bad_input_is_a_typed_error() {
    let Some(model) = model() else { return };
    let lease = device().acquire().unwrap();
    let s = lease.stream();
    assert!(matches!(model.embed(s, &[]), Err(ModelError::EmptyBatch)));
    assert!(matches!(model.embed_encodings(s, &[]), Err(ModelError::EmptyBatch)));

    let enc = |ids: Vec<u32>| Encoding {
        attention_mask: vec![1; ids.len()],
        token_type_ids: vec![0; ids.len()],
        input_ids: ids,
        pool_from: 0,
    };
    let e = model.embed_encodings(s, &[enc(vec![101, 40_000, 102])]).unwrap_err();
    assert!(matches!(e, ModelError::InvalidInput { index: 0, .. }), "{e}");
    assert!(e.to_string().contains("vocabulary"), "{e}");
    let e = model.embed_encodings(s, &[enc(vec![101, 102]), enc(vec![101; 300])]).unwrap_err();
    assert!(matches!(e, ModelError::InvalidInput { index: 1, .. }), "{e}");
    let e = model.embed_encodings(s, &[enc(vec![])]).unwrap_err();
    assert!(matches!(e, ModelError::InvalidInput { index: 0, .. }), "{e}");

    // Whitespace only is [CLS] [SEP]; a very long text is truncated to 256 tokens.
    let long = "word ".repeat(2000);
    let got = model.embed(s, &["   ", "\n\t", &long]).unwrap();
    assert!(got.iter().all(|v| v.len() == 384 && v.iter().all(|x| x.is_finite())));
    assert_eq!(model.tokenizer().encode(&long).unwrap().len(), 256);
    // The stream still works after refused input.
    assert_eq!(model.embed(s, &["fine"]).unwrap().len(), 1);
}
