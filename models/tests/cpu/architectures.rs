//! Architecture conformance without downloads: every tiny random-weight model of
//! `fixtures/tiny-models/` (BERT with every pooling, BERT with `bert.`-prefixed weights, BERT with
//! two `Dense` modules, a prompt left out of the pooling, XLM-RoBERTa, MPNet, Gemma-3 with a
//! sliding window and Dense heads) against the float64 reference transformers and
//! sentence-transformers computed for it (token ids equal; cosine >= 0.99999 and max abs diff
//! <= 1e-4 in f32), one text at a time and in one batch. Then directories the loader must refuse,
//! each with a clear error.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use streampool_models::loading::{locate_model, LoadError, ModelConfig, PoolingMode};
use streampool_models::testing::{compare, tiny_models_dir};
use streampool_models::MiniLm;

use crate::common::device;

#[derive(Deserialize)]
struct Reference {
    max_seq_length: usize,
    /// The model's prompt the reference embedded the texts with, if any.
    #[serde(default)]
    prompt_name: Option<String>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    text: String,
    input_ids: Vec<u32>,
    embedding: Vec<f64>,
}

fn tiny_models() -> Vec<PathBuf> {
    let dirs = streampool_models::testing::tiny_models();
    assert!(dirs.len() >= 12, "tiny models: {dirs:?}");
    dirs
}

#[test]
fn every_tiny_model_matches_its_reference() {
    for dir in tiny_models() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let reference: Reference =
            serde_json::from_slice(&std::fs::read(dir.join("reference.json")).unwrap()).unwrap();
        let files = locate_model(&dir).unwrap();
        let model = MiniLm::load(device(), &files).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(model.name(), name);
        assert_eq!(model.config().max_seq_length, reference.max_seq_length, "{name}");
        let lease = device().acquire().unwrap();
        let texts: Vec<&str> = reference.cases.iter().map(|c| c.text.as_str()).collect();
        let prompt = model.prompt(reference.prompt_name.as_deref()).unwrap();
        let batched = model.embed_prompted(lease.stream(), &texts, prompt).unwrap();
        let (mut worst_cos, mut worst_diff) = (1f64, 0f64);
        for (i, case) in reference.cases.iter().enumerate() {
            let text = [case.text.as_str()];
            let ids = model.encode_prompted(&text, prompt).unwrap().remove(0).input_ids;
            assert_eq!(ids, case.input_ids, "{name}: token ids of {:?}", case.text);
            let alone = model.embed_prompted(lease.stream(), &text, prompt).unwrap().remove(0);
            for got in [&batched[i], &alone] {
                let (cos, diff) = compare(got, &case.embedding);
                worst_cos = worst_cos.min(cos);
                worst_diff = worst_diff.max(diff);
            }
        }
        println!("{name}: min cosine {worst_cos:.8}, max abs diff {worst_diff:.2e}");
        assert!(worst_cos >= 0.99999 && worst_diff <= 1e-4, "{name}: {worst_cos} / {worst_diff}");
    }
}

/// A copy of the tiny BERT model with `edit` applied to its files.
fn spoiled(edit: impl FnOnce(&Path)) -> (tempfile::TempDir, PathBuf) {
    spoiled_copy("bert-mean", edit)
}

/// A copy of tiny model `name` with `edit` applied to its files.
fn spoiled_copy(name: &str, edit: impl FnOnce(&Path)) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("spoiled");
    let from = tiny_models_dir().join(name);
    for entry in walk(&from) {
        let to = dir.join(entry.strip_prefix(&from).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&entry, &to).unwrap();
    }
    edit(&dir);
    (tmp, dir)
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

fn rewrite(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{from:?} in {}", path.display());
    std::fs::write(path, text.replace(from, to)).unwrap();
}

fn load_error(dir: &Path) -> String {
    let files = locate_model(dir).unwrap();
    match MiniLm::load(device(), &files) {
        Ok(_) => panic!("{} loaded", dir.display()),
        Err(e) => {
            let text = e.to_string();
            assert!(!text.is_empty());
            text
        }
    }
}

#[test]
fn directories_that_cannot_run_are_refused_with_a_reason() {
    let (_t, dir) = spoiled(|d| rewrite(&d.join("config.json"), "\"bert\"", "\"deberta-v2\""));
    let e = load_error(&dir);
    assert!(e.contains("model_type `deberta-v2` is not supported") && e.contains("mpnet"), "{e}");

    let (_t, dir) = spoiled_copy("mpnet-mean", |d| {
        rewrite(&d.join("config.json"), "\"relative_attention_num_buckets\"", "\"buckets\"")
    });
    assert!(load_error(&dir).contains("needs relative_attention_num_buckets"));

    // Gemma-3: a causal model is a language model, not an encoder; scaled rotary positions and
    // another activation are not computed here.
    for (from, to, says) in [
        (
            "\"use_bidirectional_attention\": true",
            "\"use_bidirectional_attention\": false",
            "causal",
        ),
        ("\"rope_type\": \"default\"", "\"rope_type\": \"linear\"", "rope_type"),
        ("gelu_pytorch_tanh", "silu", "hidden_activation"),
    ] {
        let (_t, dir) =
            spoiled_copy("gemma3-mean-dense", |d| rewrite(&d.join("config.json"), from, to));
        let e = load_error(&dir);
        assert!(e.contains(says), "{to}: {e}");
    }

    let (_t, dir) =
        spoiled(|d| rewrite(&d.join("1_Pooling/config.json"), "\"mean\"", "[\"mean\", \"cls\"]"));
    assert!(load_error(&dir).contains("only one pooling mode"));

    let (_t, dir) =
        spoiled(|d| rewrite(&d.join("1_Pooling/config.json"), "\"mean\"", "\"median\""));
    assert!(load_error(&dir).contains("unknown pooling mode `median`"));

    // A module after Normalize, or one this crate does not run.
    let (_t, dir) = spoiled_copy("bert-dense", |d| {
        let path = d.join("modules.json");
        let mut modules: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let (dense, norm) = (modules[3]["type"].clone(), modules[4]["type"].clone());
        (modules[3]["type"], modules[4]["type"]) = (norm, dense);
        std::fs::write(&path, modules.to_string()).unwrap();
    });
    // A sentence-transformers sparse encoder (SPLADE) is named as such.
    let (_t3, dir3) = spoiled(|d| {
        let modules = r#"[{"idx": 0, "name": "0", "path": "",
            "type": "sentence_transformers.sparse_encoder.models.MLMTransformer"},
          {"idx": 1, "name": "1", "path": "1_SpladePooling",
            "type": "sentence_transformers.sparse_encoder.models.SpladePooling"}]"#;
        std::fs::write(d.join("modules.json"), modules).unwrap()
    });
    let e = load_error(&dir3);
    assert!(e.contains("MLMTransformer") && e.contains("sparse encoder (SPLADE)"), "{e}");
    let (_t2, dir2) =
        spoiled(|d| rewrite(&d.join("modules.json"), "normalize.Normalize", "models.LayerNorm"));
    for (dir, kind) in [(&dir, "dense.Dense"), (&dir2, "models.LayerNorm")] {
        let e = load_error(dir);
        assert!(e.contains(kind) && e.contains("not supported"), "{e}");
    }

    // Dense modules: an activation not run here, widths that do not chain, pickled weights, and
    // a pooling whose scale the host applies.
    let (_t, dir) = spoiled_copy("bert-dense", |d| {
        rewrite(&d.join("2_Dense/config.json"), "activation.Tanh", "activation.ReLU")
    });
    assert!(load_error(&dir).contains("Dense activation `torch.nn.modules.activation.ReLU`"));
    let (_t, dir) = spoiled_copy("bert-dense", |d| {
        rewrite(&d.join("3_Dense/config.json"), "\"in_features\": 48", "\"in_features\": 40")
    });
    assert!(load_error(&dir).contains("Dense module 1 takes 40 values, its input has 48"));
    let (_t, dir) = spoiled_copy("bert-dense", |d| {
        std::fs::rename(d.join("2_Dense/model.safetensors"), d.join("2_Dense/pytorch_model.bin"))
            .unwrap()
    });
    assert!(load_error(&dir).contains("from model.safetensors only"));
    let (_t, dir) = spoiled_copy("bert-dense", |d| {
        rewrite(&d.join("1_Pooling/config.json"), "\"cls\"", "\"mean_sqrt_len_tokens\"")
    });
    assert!(load_error(&dir).contains("followed by Dense modules is not supported"));

    let (_t, dir) = spoiled(|d| {
        let relative = "{\n  \"position_embedding_type\": \"relative_key\",";
        rewrite(&d.join("config.json"), "{", relative)
    });
    assert!(load_error(&dir).contains("position_embedding_type `relative_key` is not supported"));

    let (_t, dir) =
        spoiled(|d| rewrite(&d.join("config.json"), "\"hidden_size\": 64", "\"hidden_size\": 96"));
    let e = load_error(&dir);
    assert!(e.contains("differs from hidden_size 96") || e.contains("shape"), "{e}");
}

/// Without `modules.json` (a plain transformers directory with a legacy pooling folder), the
/// pooling folder decides and nothing is normalised unless `2_Normalize` exists, as in
/// sentence-transformers.
#[test]
fn a_directory_without_modules_json() {
    let (_t, dir) = spoiled(|d| std::fs::remove_file(d.join("modules.json")).unwrap());
    let config = ModelConfig::load(&locate_model(&dir).unwrap()).unwrap();
    assert_eq!((config.pooling, config.normalize), (PoolingMode::Mean, true));
    std::fs::remove_dir_all(dir.join("2_Normalize")).unwrap();
    std::fs::remove_dir_all(dir.join("1_Pooling")).unwrap();
    let config = ModelConfig::load(&locate_model(&dir).unwrap()).unwrap();
    assert_eq!((config.pooling, config.normalize), (PoolingMode::Mean, false));
    // No max_seq_length anywhere: what the position table allows.
    std::fs::remove_file(dir.join("tokenizer_config.json")).unwrap();
    let config = ModelConfig::load(&locate_model(&dir).unwrap()).unwrap();
    assert_eq!(config.max_seq_length, 64);
}

#[test]
fn a_missing_required_file_is_named() {
    let (_t, dir) = spoiled(|d| std::fs::remove_file(d.join("tokenizer.json")).unwrap());
    let e = locate_model(&dir).unwrap_err();
    assert!(matches!(e, LoadError::FileMissing { ref path } if path.ends_with("tokenizer.json")));
    let (_t, dir) = spoiled(|d| std::fs::remove_file(d.join("model.safetensors")).unwrap());
    let e = locate_model(&dir).unwrap_err();
    assert!(e.to_string().contains("model.safetensors is missing"), "{e}");
    // The sentence-transformers files are optional: without them, defaults.
    let (_t, dir) = spoiled(|d| std::fs::remove_file(d.join("sentence_bert_config.json")).unwrap());
    assert!(MiniLm::load(device(), &locate_model(&dir).unwrap()).is_ok());
}

/// A model that pools without its prompt (`include_prompt: false`) takes a prompt with mean, max
/// and weighted-mean pooling; with CLS or last-token pooling a prompt is refused (sentence-
/// transformers would pick another token), while texts without one still embed.
#[test]
fn prompts_left_out_of_cls_pooling_are_refused() {
    let (_t, dir) = spoiled_copy("bert-mean-prompt-excluded", |d| {
        rewrite(&d.join("1_Pooling/config.json"), "\"mean\"", "\"cls\"")
    });
    let model = MiniLm::load(device(), &locate_model(&dir).unwrap()).unwrap();
    let prompt = model.prompt(Some("query")).unwrap();
    let e = model.encode_prompted(&["a text"], prompt).unwrap_err().to_string();
    assert!(e.contains("include_prompt: false") && e.contains("Cls"), "{e}");
    let lease = device().acquire().unwrap();
    assert_eq!(model.embed_prompted(lease.stream(), &["a text"], None).unwrap()[0].len(), 64);
}
