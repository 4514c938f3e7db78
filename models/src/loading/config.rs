//! Model configuration: BERT's `config.json` plus the sentence-transformers settings
//! (`sentence_bert_config.json`, `1_Pooling/config.json`).

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::{LoadError, ModelFiles};

/// The BERT encoder hyper-parameters from `config.json` (other keys are ignored).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct BertConfig {
    /// Number of token embeddings.
    pub vocab_size: usize,
    /// Width of the hidden states.
    pub hidden_size: usize,
    /// Number of encoder layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer; divides `hidden_size`.
    pub num_attention_heads: usize,
    /// Width of the feed-forward layer.
    pub intermediate_size: usize,
    /// Number of position embeddings (longest sequence the model accepts).
    pub max_position_embeddings: usize,
    /// Number of token-type (segment) embeddings.
    pub type_vocab_size: usize,
    /// Epsilon of every LayerNorm.
    pub layer_norm_eps: f64,
    /// Activation of the feed-forward layer; only `gelu` (erf form) is supported.
    pub hidden_act: String,
}

impl BertConfig {
    /// Reads and validates `config.json`.
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let config: Self = read_json(path)?;
        config
            .validate()
            .map_err(|reason| LoadError::InvalidConfig { path: path.to_path_buf(), reason })?;
        Ok(config)
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Checks the invariants the model code relies on; the error says which one fails.
    pub fn validate(&self) -> Result<(), String> {
        let sizes = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ];
        if let Some((name, _)) = sizes.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{name} must be positive"));
        }
        if self.hidden_size % self.num_attention_heads != 0 {
            return Err(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.hidden_act != "gelu" {
            return Err(format!("hidden_act `{}` is not supported (only `gelu`)", self.hidden_act));
        }
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps > 0.0) {
            return Err(format!("layer_norm_eps {} must be positive", self.layer_norm_eps));
        }
        Ok(())
    }
}

/// How token embeddings are pooled into one sentence embedding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoolingMode {
    /// Mean over the tokens where the attention mask is 1.
    Mean,
    /// The `[CLS]` token's embedding.
    Cls,
    /// Element-wise maximum over the tokens.
    Max,
    /// Sum over the tokens divided by the square root of their number.
    MeanSqrtLen,
}

#[derive(Deserialize)]
struct SentenceBertJson {
    max_seq_length: usize,
}

#[derive(Deserialize)]
struct PoolingJson {
    word_embedding_dimension: usize,
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
}

/// Everything needed to build the sentence-embedding model, validated together.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelConfig {
    /// The encoder.
    pub bert: BertConfig,
    /// Longest tokenized input, `[CLS]` and `[SEP]` included (256 for all-MiniLM-L6-v2).
    pub max_seq_length: usize,
    /// Pooling of token embeddings (mean for all-MiniLM-L6-v2).
    pub pooling: PoolingMode,
}

impl ModelConfig {
    /// Reads the three config files of a model directory and checks they agree.
    pub fn load(files: &ModelFiles) -> Result<Self, LoadError> {
        let bert = BertConfig::load(&files.config)?;
        let sentence: SentenceBertJson = read_json(&files.sentence_config)?;
        let invalid = |path: &Path, reason: String| LoadError::InvalidConfig {
            path: path.to_path_buf(),
            reason,
        };
        if sentence.max_seq_length < 2 || sentence.max_seq_length > bert.max_position_embeddings {
            return Err(invalid(
                &files.sentence_config,
                format!(
                    "max_seq_length {} must lie in 2..={} (max_position_embeddings)",
                    sentence.max_seq_length, bert.max_position_embeddings
                ),
            ));
        }
        let pooling_json: PoolingJson = read_json(&files.pooling_config)?;
        if pooling_json.word_embedding_dimension != bert.hidden_size {
            return Err(invalid(
                &files.pooling_config,
                format!(
                    "word_embedding_dimension {} differs from hidden_size {}",
                    pooling_json.word_embedding_dimension, bert.hidden_size
                ),
            ));
        }
        let modes = [
            (pooling_json.pooling_mode_mean_tokens, PoolingMode::Mean),
            (pooling_json.pooling_mode_cls_token, PoolingMode::Cls),
            (pooling_json.pooling_mode_max_tokens, PoolingMode::Max),
            (pooling_json.pooling_mode_mean_sqrt_len_tokens, PoolingMode::MeanSqrtLen),
        ];
        let mut enabled = modes.iter().filter(|(on, _)| *on).map(|&(_, mode)| mode);
        let pooling = match (enabled.next(), enabled.next()) {
            (Some(mode), None) => mode,
            _ => {
                return Err(invalid(
                    &files.pooling_config,
                    "exactly one pooling_mode_* must be true".to_owned(),
                ))
            }
        };
        Ok(Self { bert, max_seq_length: sentence.max_seq_length, pooling })
    }
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, LoadError> {
    let text = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => LoadError::FileMissing { path: path.to_path_buf() },
        _ => LoadError::io(path, e),
    })?;
    serde_json::from_slice(&text)
        .map_err(|source| LoadError::ConfigParse { path: path.to_path_buf(), source })
}
