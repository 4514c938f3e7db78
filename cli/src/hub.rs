//! `--model ORG/NAME`: a sentence-transformers model of the Hugging Face Hub, downloaded with
//! the hf-hub crate into the Hub's own cache (`$HF_HOME/hub`, else `~/.cache/huggingface/hub`,
//! shared with Python's `huggingface_hub`). `HF_ENDPOINT` points it at a mirror, `HF_TOKEN` (or
//! the token file of `huggingface-cli login`) opens gated models. Machines that cannot reach the
//! Hub get the download's error; give such machines a model directory (`--model DIR`) instead.

use std::path::{Path, PathBuf};

use hf_hub::api::sync::{ApiBuilder, ApiError, ApiRepo};

/// Files of a model directory the loader reads when present, beside the three it needs.
const OPTIONAL: [&str; 5] = [
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
];

/// Downloads (or finds in the Hub cache) what streampool reads of model `repo_id` and returns
/// the snapshot directory that holds it.
pub fn download(repo_id: &str, quiet: bool) -> Result<PathBuf, Box<dyn std::error::Error>> {
    let api = ApiBuilder::from_env().with_progress(!quiet).build()?;
    let repo = api.model(repo_id.to_owned());
    let fail = |file: &str, e: ApiError| format!("--model {repo_id}: downloading {file}: {e}");
    let mut dir = None;
    for file in ["config.json", "tokenizer.json", "model.safetensors"] {
        let path = repo.get(file).map_err(|e| fail(file, e))?;
        dir = path.parent().map(Path::to_path_buf);
    }
    let dir = dir.ok_or("the Hub cache gave a file without a folder")?;
    for file in OPTIONAL {
        optional(&repo, file).map_err(|e| fail(file, e))?;
    }
    // Each module's folder: its config, and the weights of a Dense module.
    if let Ok(text) = std::fs::read(dir.join("modules.json")) {
        let modules: Vec<serde_json::Value> = serde_json::from_slice(&text)?;
        for module in &modules {
            let folder = module["path"].as_str().unwrap_or_default();
            if folder.is_empty() {
                continue;
            }
            let config = format!("{folder}/config.json");
            optional(&repo, &config).map_err(|e| fail(&config, e))?;
            if module["type"].as_str().is_some_and(|t| t.ends_with("Dense")) {
                let weights = format!("{folder}/model.safetensors");
                optional(&repo, &weights).map_err(|e| fail(&weights, e))?;
            }
        }
    }
    Ok(dir)
}

/// Downloads `file` if the repository has it (a 404 is no error).
fn optional(repo: &ApiRepo, file: &str) -> Result<(), ApiError> {
    match repo.get(file) {
        Ok(_) => Ok(()),
        Err(ApiError::RequestError(e)) if matches!(*e, ureq::Error::Status(404, _)) => Ok(()),
        Err(e) => Err(e),
    }
}
