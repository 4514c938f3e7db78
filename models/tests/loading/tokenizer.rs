//! Tokenizer against the sentence-transformers reference ids (downloads the model if absent).

use std::sync::OnceLock;

use super::real_model;
use streampool_models::loading::{LoadError, Tokenizer};

const CLS: u32 = 101;
const SEP: u32 = 102;

/// The real model's tokenizer; `None` where the model cannot be downloaded (see `real_model`).
fn tokenizer() -> Option<&'static Tokenizer> {
    static TOKENIZER: OnceLock<Tokenizer> = OnceLock::new();
    let files = real_model()?;
    Some(TOKENIZER.get_or_init(|| Tokenizer::from_file(&files.tokenizer, 256).unwrap()))
}

struct Case {
    text: String,
    input_ids: Vec<u32>,
}

fn fixture() -> (usize, Vec<Case>) {
    let path = streampool_models::testing::reference_fixture_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()));
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases = json["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Case {
            text: c["text"].as_str().unwrap().to_owned(),
            input_ids: c["input_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| u32::try_from(v.as_u64().unwrap()).unwrap())
                .collect(),
        })
        .collect();
    (json["max_seq_length"].as_u64().unwrap() as usize, cases)
}

#[test]
fn ids_match_sentence_transformers_for_all_fixture_cases() {
    let Some(tokenizer) = tokenizer() else { return };
    let (max_seq_length, cases) = fixture();
    assert_eq!(max_seq_length, 256);
    assert_eq!(cases.len(), 30);
    let texts: Vec<&str> = cases.iter().map(|c| c.text.as_str()).collect();
    let encodings = tokenizer.encode_batch(&texts).unwrap();
    assert_eq!(encodings.len(), cases.len());
    for (case, enc) in cases.iter().zip(&encodings) {
        assert_eq!(enc.input_ids, case.input_ids, "text {:?}", case.text);
        assert_eq!(enc.attention_mask, vec![1; enc.len()], "text {:?}", case.text);
        assert_eq!(enc.token_type_ids, vec![0; enc.len()], "text {:?}", case.text);
    }
    // The fixture itself exercises truncation: its longest texts give exactly 256 ids.
    assert!(cases.iter().any(|c| c.input_ids.len() == 256));
}

#[test]
fn very_long_text_is_truncated_to_256_with_sep_last() {
    let Some(tokenizer) = tokenizer() else { return };
    let text = "streams and events keep the device busy ".repeat(400);
    let enc = tokenizer.encode(&text).unwrap();
    assert_eq!(enc.len(), 256);
    assert_eq!(enc.input_ids[0], CLS);
    assert_eq!(enc.input_ids[255], SEP);
    assert_eq!(enc.attention_mask.len(), 256);
    assert_eq!(enc.token_type_ids.len(), 256);

    // Shorter texts in the same batch are not padded to it.
    let batch = tokenizer.encode_batch(&[&text, "short"]).unwrap();
    assert_eq!(batch[0].len(), 256);
    assert_eq!(batch[1].len(), 3);
}

#[test]
fn empty_and_whitespace_give_cls_sep() {
    let Some(tokenizer) = tokenizer() else { return };
    let batch = tokenizer.encode_batch(&["", " ", "\t\n  \r\n"]).unwrap();
    for enc in batch {
        assert_eq!(enc.input_ids, vec![CLS, SEP]);
        assert_eq!(enc.attention_mask, vec![1, 1]);
        assert_eq!(enc.token_type_ids, vec![0, 0]);
    }
    assert!(tokenizer.encode_batch(&[]).unwrap().is_empty());
}

#[test]
fn other_truncation_lengths_are_honoured() {
    let Some(files) = real_model() else { return };
    let short = Tokenizer::from_file(&files.tokenizer, 8).unwrap();
    assert_eq!(short.max_seq_length(), 8);
    let enc = short.encode("one two three four five six seven eight nine ten").unwrap();
    assert_eq!(enc.input_ids.len(), 8);
    assert_eq!(enc.input_ids[7], SEP);
    let err = Tokenizer::from_file(&files.tokenizer, 2).unwrap_err();
    assert!(matches!(err, LoadError::InvalidConfig { .. }), "{err:?}");
}

#[test]
fn broken_tokenizer_json_is_a_typed_error() {
    let Some(files) = real_model() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("tokenizer.json");
    std::fs::write(&path, r#"{"version": "1.0", "model": {"type": "NoSuchModel"}}"#).unwrap();
    let err = Tokenizer::from_file(&path, 256).unwrap_err();
    assert!(matches!(err, LoadError::TokenizerLoad { .. }), "{err:?}");
    assert!(err.to_string().contains("tokenizer.json"), "{err}");

    let full = std::fs::read(&files.tokenizer).unwrap();
    std::fs::write(&path, &full[..full.len() / 2]).unwrap();
    let err = Tokenizer::from_file(&path, 256).unwrap_err();
    assert!(matches!(err, LoadError::TokenizerLoad { .. }), "{err:?}");

    let err = Tokenizer::from_file(&tmp.path().join("absent.json"), 256).unwrap_err();
    assert!(matches!(err, LoadError::FileMissing { .. }), "{err:?}");
}
