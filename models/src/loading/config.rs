//! Model configuration: the encoder's `config.json` plus the sentence-transformers pipeline
//! (`modules.json`, the pooling module's config, the maximum length).

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Deserialize;

use streampool_tensor::Activation;

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
    /// Number of token-type (segment) embeddings (0 where the architecture has none: MPNet).
    #[serde(default)]
    pub type_vocab_size: usize,
    /// Epsilon of every LayerNorm.
    pub layer_norm_eps: f64,
    /// Activation of the feed-forward layer; only `gelu` (erf form) is supported.
    pub hidden_act: String,
    /// The architecture (`bert`, `roberta`, `xlm-roberta`; a config without it is BERT's).
    #[serde(default = "bert")]
    pub model_type: String,
    /// The padding token's id: RoBERTa-style models number positions from `pad_token_id + 1`.
    #[serde(default)]
    pub pad_token_id: Option<usize>,
    /// How positions are encoded; only `absolute` (a learned table) is supported.
    #[serde(default)]
    pub position_embedding_type: Option<String>,
    /// MPNet's relative position buckets (32), whose learned biases every layer's attention
    /// adds to its scores.
    #[serde(default)]
    pub relative_attention_num_buckets: Option<usize>,
}

fn bert() -> String {
    "bert".to_owned()
}

/// The encoder architectures this crate runs, by `config.json`'s `model_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Architecture {
    /// BERT (`bert`; MiniLM, bge, multilingual-e5 and most sentence-transformers models).
    Bert,
    /// RoBERTa and XLM-RoBERTa (`roberta`, `xlm-roberta`): BERT's layers, positions numbered
    /// from `pad_token_id + 1`.
    Roberta,
    /// MPNet (`mpnet`; all-mpnet-base-v2): BERT's layers with a relative position bias added
    /// to every attention score, positions numbered from `pad_token_id + 1`, no token types.
    MpNet,
    /// Gemma-3 text encoders (`gemma3_text`; EmbeddingGemma): pre- and post-norm layers of RMS
    /// norms, rotary positions, grouped-query attention that is bidirectional, within a sliding
    /// window on some layers, and a gated GELU feed-forward ([`GemmaConfig`]).
    Gemma3,
}

impl Architecture {
    /// The `model_type` values that load, for error messages.
    pub const SUPPORTED: &'static str = "bert, roberta, xlm-roberta, mpnet, gemma3_text";

    /// The architecture of `model_type`, if supported.
    pub fn from_model_type(model_type: &str) -> Option<Self> {
        match model_type {
            "bert" => Some(Self::Bert),
            "roberta" | "xlm-roberta" => Some(Self::Roberta),
            "mpnet" => Some(Self::MpNet),
            "gemma3_text" => Some(Self::Gemma3),
            _ => None,
        }
    }
}

/// What a Gemma-3 text encoder's `config.json` says beyond [`BertConfig`]'s fields (which
/// [`GemmaConfig::read`] also fills: widths, layers, heads, vocabulary, `rms_norm_eps` as
/// `layer_norm_eps`).
#[derive(Clone, Debug, PartialEq)]
pub struct GemmaConfig {
    /// Width of one attention head (256 in EmbeddingGemma; not `hidden_size / heads`).
    pub head_dim: usize,
    /// Key / value heads, each shared by `num_attention_heads / num_key_value_heads` query heads.
    pub num_key_value_heads: usize,
    /// Scores are scaled by `query_pre_attn_scalar^-0.5`.
    pub query_pre_attn_scalar: f64,
    /// On the sliding layers a key gets weight only if it is fewer than this many positions
    /// from its query, either way: `config.json`'s `sliding_window / 2 + 1` (transformers' reading
    /// of a bidirectional window: 257 for EmbeddingGemma's 512).
    pub sliding_window: usize,
    /// Per layer: whether it attends within the sliding window (else to every token).
    pub sliding: Vec<bool>,
    /// Rotary base of the sliding layers.
    pub rope_theta_sliding: f64,
    /// Rotary base of the full-attention layers.
    pub rope_theta_full: f64,
}

impl GemmaConfig {
    /// Reads a `gemma3_text` config (transformers 4 or 5 layout: `rope_theta` and
    /// `rope_local_base_freq`, or `rope_parameters` per layer type; `layer_types`, or every
    /// `sliding_window_pattern`-th layer full) into the shared fields and Gemma's own. Refuses,
    /// with the reason, what would not be an encoder or not computed as transformers does:
    /// causal attention, logit soft-capping, biases, another activation, scaled rotary positions.
    pub fn read(path: &Path) -> Result<(BertConfig, Self), LoadError> {
        let json: serde_json::Value = read_json(path)?;
        let invalid =
            |reason: String| LoadError::InvalidConfig { path: path.to_path_buf(), reason };
        let size = |key: &str| -> Result<usize, LoadError> {
            match json.get(key).and_then(serde_json::Value::as_u64) {
                Some(n) if n > 0 => Ok(n as usize),
                _ => Err(invalid(format!("`{key}` must be a positive integer"))),
            }
        };
        let float = |key: &str| json.get(key).and_then(serde_json::Value::as_f64);
        if json.get("use_bidirectional_attention").and_then(serde_json::Value::as_bool)
            != Some(true)
        {
            return Err(invalid(
                "a Gemma-3 model with causal attention is a language model, not a sentence \
                 encoder (EmbeddingGemma sets use_bidirectional_attention: true)"
                    .into(),
            ));
        }
        if json.get("attn_logit_softcapping").is_some_and(|v| !v.is_null()) {
            return Err(invalid("attention logit soft-capping is not supported".into()));
        }
        if json.get("attention_bias").and_then(serde_json::Value::as_bool) == Some(true) {
            return Err(invalid("attention projections with biases are not supported".into()));
        }
        let act = json.get("hidden_activation").and_then(serde_json::Value::as_str);
        if !matches!(act, Some("gelu_pytorch_tanh" | "gelu_tanh")) {
            return Err(invalid(format!(
                "hidden_activation {act:?} is not supported (only gelu_pytorch_tanh)"
            )));
        }
        let layers = size("num_hidden_layers")?;
        let heads = size("num_attention_heads")?;
        let kv_heads = size("num_key_value_heads")?;
        if heads % kv_heads != 0 {
            return Err(invalid(format!("{heads} heads do not share {kv_heads} key/value heads")));
        }
        let head_dim = size("head_dim")?;
        if head_dim % 2 != 0 {
            return Err(invalid(format!("head_dim {head_dim} must be even (rotary halves)")));
        }
        let sliding: Vec<bool> = match json.get("layer_types").and_then(serde_json::Value::as_array)
        {
            Some(types) => types
                .iter()
                .map(|t| match t.as_str() {
                    Some("sliding_attention") => Ok(true),
                    Some("full_attention") => Ok(false),
                    other => Err(invalid(format!("layer type {other:?} is not supported"))),
                })
                .collect::<Result<_, _>>()?,
            None => {
                let pattern = json
                    .get("sliding_window_pattern")
                    .or_else(|| json.get("_sliding_window_pattern"))
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(6) as usize;
                (0..layers).map(|i| (i + 1) % pattern.max(1) != 0).collect()
            }
        };
        if sliding.len() != layers {
            return Err(invalid(format!("{} layer types for {layers} layers", sliding.len())));
        }
        // Rotary bases: transformers 5's `rope_parameters`, else 4's two keys.
        let theta = |kind: &str, fallback: &str, default: f64| -> Result<f64, LoadError> {
            match json.get("rope_parameters").and_then(|p| p.get(kind)) {
                Some(p) => {
                    let kind_of = p.get("rope_type").and_then(serde_json::Value::as_str);
                    if kind_of.is_some_and(|t| t != "default") {
                        return Err(invalid(format!("rope_type {kind_of:?} is not supported")));
                    }
                    p.get("rope_theta")
                        .and_then(serde_json::Value::as_f64)
                        .ok_or_else(|| invalid(format!("rope_parameters.{kind} has no rope_theta")))
                }
                None => Ok(float(fallback).unwrap_or(default)),
            }
        };
        if json.get("rope_scaling").is_some_and(|v| !v.is_null()) {
            return Err(invalid("scaled rotary positions (rope_scaling) are not supported".into()));
        }
        let gemma = GemmaConfig {
            head_dim,
            num_key_value_heads: kv_heads,
            query_pre_attn_scalar: float("query_pre_attn_scalar").unwrap_or(head_dim as f64),
            sliding_window: size("sliding_window")? / 2 + 1,
            sliding,
            rope_theta_sliding: theta("sliding_attention", "rope_local_base_freq", 10_000.0)?,
            rope_theta_full: theta("full_attention", "rope_theta", 1_000_000.0)?,
        };
        let bert = BertConfig {
            vocab_size: size("vocab_size")?,
            hidden_size: size("hidden_size")?,
            num_hidden_layers: layers,
            num_attention_heads: heads,
            intermediate_size: size("intermediate_size")?,
            max_position_embeddings: size("max_position_embeddings")?,
            type_vocab_size: 0,
            layer_norm_eps: float("rms_norm_eps").unwrap_or(1e-6),
            hidden_act: "gelu_pytorch_tanh".into(),
            model_type: "gemma3_text".into(),
            pad_token_id: json
                .get("pad_token_id")
                .and_then(serde_json::Value::as_u64)
                .map(|p| p as usize),
            position_embedding_type: None,
            relative_attention_num_buckets: None,
        };
        Ok((bert, gemma))
    }
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

    /// The architecture ([`BertConfig::validate`] refuses an unsupported `model_type`).
    pub fn architecture(&self) -> Option<Architecture> {
        Architecture::from_model_type(&self.model_type)
    }

    /// The row of the position table the first token uses: 0 for BERT, `pad_token_id + 1` for
    /// RoBERTa-style models (padding 1 when the config does not say).
    pub fn position_offset(&self) -> usize {
        match self.architecture() {
            Some(Architecture::Roberta | Architecture::MpNet) => self.pad_token_id.unwrap_or(1) + 1,
            _ => 0,
        }
    }

    /// Rows of the token-type table the model runs with: `type_vocab_size`, or one row of
    /// zeros for an architecture without token types (MPNet).
    pub fn token_types(&self) -> usize {
        self.type_vocab_size.max(1)
    }

    /// Longest input the position table allows, special tokens included.
    pub fn max_positions(&self) -> usize {
        self.max_position_embeddings.saturating_sub(self.position_offset())
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
        ];
        if let Some((name, _)) = sizes.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{name} must be positive"));
        }
        let mpnet = self.architecture() == Some(Architecture::MpNet);
        if self.type_vocab_size == 0 && !mpnet && self.architecture() != Some(Architecture::Gemma3)
        {
            return Err("type_vocab_size must be positive".into());
        }
        match (mpnet, self.relative_attention_num_buckets) {
            (true, None) => {
                return Err("an mpnet config needs relative_attention_num_buckets".into())
            }
            (true, Some(n)) if n < 4 || n % 2 == 1 => {
                return Err(format!(
                    "relative_attention_num_buckets {n} must be an even number of at least 4"
                ))
            }
            _ => {}
        }
        if self.hidden_size % self.num_attention_heads != 0 {
            return Err(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.architecture().is_none() {
            return Err(format!(
                "model_type `{}` is not supported (supported: {})",
                self.model_type,
                Architecture::SUPPORTED
            ));
        }
        if let Some(kind) = self.position_embedding_type.as_deref().filter(|&k| k != "absolute") {
            return Err(format!(
                "position_embedding_type `{kind}` is not supported (only `absolute`)"
            ));
        }
        if self.max_positions() < 2 {
            return Err(format!(
                "max_position_embeddings {} leaves no positions after the offset {}",
                self.max_position_embeddings,
                self.position_offset()
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

/// How token embeddings are pooled into one sentence embedding (sentence-transformers'
/// `Pooling` module).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoolingMode {
    /// Mean over the tokens where the attention mask is 1 (`mean`).
    Mean,
    /// The first token's embedding (`cls`).
    Cls,
    /// Element-wise maximum over the tokens (`max`).
    Max,
    /// Sum over the tokens divided by the square root of their number (`mean_sqrt_len_tokens`).
    MeanSqrtLen,
    /// Mean weighted by position (`weightedmean`).
    WeightedMean,
    /// The last token's embedding (`lasttoken`).
    LastToken,
}

impl PoolingMode {
    /// The mode sentence-transformers calls `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "mean" => Self::Mean,
            "cls" => Self::Cls,
            "max" => Self::Max,
            "mean_sqrt_len_tokens" => Self::MeanSqrtLen,
            "weightedmean" => Self::WeightedMean,
            "lasttoken" => Self::LastToken,
            _ => return None,
        })
    }

    /// The name sentence-transformers gives the mode.
    pub fn name(self) -> &'static str {
        match self {
            Self::Mean => "mean",
            Self::Cls => "cls",
            Self::Max => "max",
            Self::MeanSqrtLen => "mean_sqrt_len_tokens",
            Self::WeightedMean => "weightedmean",
            Self::LastToken => "lasttoken",
        }
    }
}

/// sentence-transformers' legacy pooling flags (releases before 6) and the mode name each
/// stands for, in its order.
const LEGACY_POOLING_KEYS: [(&str, &str); 6] = [
    ("pooling_mode_cls_token", "cls"),
    ("pooling_mode_max_tokens", "max"),
    ("pooling_mode_mean_tokens", "mean"),
    ("pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len_tokens"),
    ("pooling_mode_weightedmean_tokens", "weightedmean"),
    ("pooling_mode_lasttoken", "lasttoken"),
];

/// One entry of `modules.json`.
#[derive(Deserialize)]
struct ModuleJson {
    idx: usize,
    #[serde(default)]
    path: String,
    #[serde(rename = "type")]
    kind: String,
}

/// A `Dense` module of sentence-transformers after the pooling: `activation(x . W^T + b)`
/// (LaBSE's and EmbeddingGemma's projection heads).
#[derive(Clone, Debug, PartialEq)]
pub struct DenseConfig {
    /// Width of its input.
    pub in_features: usize,
    /// Width of its output.
    pub out_features: usize,
    /// Whether it adds a bias.
    pub bias: bool,
    /// Its activation (`torch.nn.Tanh`, `Identity` or `GELU`).
    pub activation: Activation,
    /// Its weights: `linear.weight` `[out, in]` and `linear.bias` `[out]`.
    pub weights: PathBuf,
}

impl DenseConfig {
    /// Reads the module's folder: `config.json` and `model.safetensors`.
    fn load(dir: &Path) -> Result<Self, LoadError> {
        #[derive(Deserialize)]
        struct DenseJson {
            in_features: usize,
            out_features: usize,
            #[serde(default = "yes")]
            bias: bool,
            #[serde(default = "tanh")]
            activation_function: String,
        }
        let path = dir.join("config.json");
        let json: DenseJson = read_json(&path)?;
        let invalid = |reason: String| LoadError::InvalidConfig { path: path.clone(), reason };
        // "torch.nn.modules.activation.Tanh", "torch.nn.modules.linear.Identity", ...
        let name = json.activation_function.rsplit('.').next().unwrap_or_default();
        let activation = match name {
            "Tanh" => Activation::Tanh,
            "Identity" => Activation::Identity,
            "GELU" => Activation::Gelu,
            _ => {
                return Err(invalid(format!(
                    "Dense activation `{}` is not supported (supported: Tanh, Identity, GELU)",
                    json.activation_function
                )))
            }
        };
        if json.in_features == 0 || json.out_features == 0 {
            return Err(invalid("in_features and out_features must be positive".into()));
        }
        let weights = dir.join("model.safetensors");
        if !weights.is_file() {
            let pickle = dir.join("pytorch_model.bin");
            return Err(if pickle.is_file() {
                LoadError::InvalidConfig {
                    path: pickle,
                    reason: "Dense weights are read from model.safetensors only (convert this \
                             PyTorch pickle with sentence-transformers' save)"
                        .into(),
                }
            } else {
                LoadError::FileMissing { path: weights }
            });
        }
        Ok(Self {
            in_features: json.in_features,
            out_features: json.out_features,
            bias: json.bias,
            activation,
            weights,
        })
    }
}

fn yes() -> bool {
    true
}

fn tanh() -> String {
    "torch.nn.modules.activation.Tanh".to_owned()
}

/// Everything needed to build the sentence-embedding model, validated together.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelConfig {
    /// The encoder (for a Gemma-3 model, the fields it shares with BERT).
    pub bert: BertConfig,
    /// A Gemma-3 encoder's own hyper-parameters; `None` for the BERT family.
    pub gemma: Option<GemmaConfig>,
    /// Longest tokenized input, special tokens included (256 for all-MiniLM-L6-v2).
    pub max_seq_length: usize,
    /// Pooling of token embeddings (mean for all-MiniLM-L6-v2).
    pub pooling: PoolingMode,
    /// `Dense` modules after the pooling, in order (none for most models).
    pub dense: Vec<DenseConfig>,
    /// Whether the embeddings are L2-normalised (a `Normalize` module).
    pub normalize: bool,
    /// Named prompts to prepend to a text (`config_sentence_transformers.json`'s `prompts`:
    /// `query: ` for a retrieval model's queries, say), by name.
    pub prompts: std::collections::BTreeMap<String, String>,
    /// The prompt sentence-transformers prepends when none is named (`default_prompt_name`).
    pub default_prompt_name: Option<String>,
    /// Whether the prompt's tokens count in the pooling (the pooling config's
    /// `include_prompt`; `true` unless it says otherwise).
    pub include_prompt: bool,
}

impl ModelConfig {
    /// Width of the embeddings: the last `Dense` module's output, else the hidden size.
    pub fn output_dim(&self) -> usize {
        self.dense.last().map_or(self.bert.hidden_size, |d| d.out_features)
    }

    /// Reads a model directory as sentence-transformers does, from release 2 to 6:
    ///
    /// - `config.json`: the encoder ([`BertConfig`]);
    /// - `modules.json`: the pipeline. A `Transformer`, then a `Pooling` module (its folder's
    ///   `config.json`: `pooling_mode` as a name, or the older `pooling_mode_*` flags; mean
    ///   when none is set), then any `Dense` modules ([`DenseConfig`]: their widths must
    ///   chain), then optionally `Normalize`. Without `modules.json`, `1_Pooling` (if present)
    ///   pools and the output is normalised only if `2_Normalize` exists. Any other module is
    ///   [`LoadError::InvalidConfig`] naming it;
    /// - the maximum length: `sentence_bert_config.json`'s `max_seq_length`, else
    ///   `tokenizer_config.json`'s `model_max_length` (where release 6 keeps it), else what the
    ///   position table allows.
    pub fn load(files: &ModelFiles) -> Result<Self, LoadError> {
        #[derive(Deserialize)]
        struct ModelType {
            #[serde(default)]
            model_type: Option<String>,
        }
        let kind: ModelType = read_json(&files.config)?;
        let (bert, gemma) = match kind.model_type.as_deref() {
            Some("gemma3_text") => {
                let (bert, gemma) = GemmaConfig::read(&files.config)?;
                (bert, Some(gemma))
            }
            _ => (BertConfig::load(&files.config)?, None),
        };
        let invalid = |path: &Path, reason: String| LoadError::InvalidConfig {
            path: path.to_path_buf(),
            reason,
        };
        let Pipeline { pooling: pooling_config, dense, normalize } = pipeline(files)?;
        let (pooling, include_prompt) = match &pooling_config {
            Some(path) => read_pooling(path, bert.hidden_size)?,
            None => (PoolingMode::Mean, true),
        };
        let mut width = bert.hidden_size;
        for (i, d) in dense.iter().enumerate() {
            if d.in_features != width {
                return Err(invalid(
                    &d.weights,
                    format!(
                        "Dense module {i} takes {} values, its input has {width}",
                        d.in_features
                    ),
                ));
            }
            width = d.out_features;
        }
        if pooling == PoolingMode::MeanSqrtLen && !dense.is_empty() {
            return Err(invalid(
                &files.dir.join("modules.json"),
                "mean_sqrt_len_tokens pooling followed by Dense modules is not supported".into(),
            ));
        }
        let (prompts, default_prompt_name) = read_prompts(files)?;
        let limit = bert.max_positions();
        let max_seq_length = match max_length(files)? {
            Some((path, n)) if n < 2 || n > limit => {
                return Err(invalid(
                    &path,
                    format!(
                        "max_seq_length {n} must lie in 2..={limit} (max_position_embeddings {} \
                         less the position offset {})",
                        bert.max_position_embeddings,
                        bert.position_offset()
                    ),
                ))
            }
            Some((_, n)) => n,
            None => limit,
        };
        Ok(Self {
            bert,
            gemma,
            max_seq_length,
            pooling,
            dense,
            normalize,
            prompts,
            default_prompt_name,
            include_prompt,
        })
    }
}

/// The modules after the transformer.
struct Pipeline {
    /// The pooling module's config file, if any.
    pooling: Option<PathBuf>,
    /// The `Dense` modules, in order.
    dense: Vec<DenseConfig>,
    /// Whether a `Normalize` module ends it.
    normalize: bool,
}

/// Reads `modules.json` (or, without it, the legacy folder names).
fn pipeline(files: &ModelFiles) -> Result<Pipeline, LoadError> {
    let modules_path = files.dir.join("modules.json");
    if !modules_path.is_file() {
        let pooling = Some(files.pooling_config.clone()).filter(|p| p.is_file());
        let normalize = files.dir.join("2_Normalize").is_dir();
        return Ok(Pipeline { pooling, dense: Vec::new(), normalize });
    }
    let mut modules: Vec<ModuleJson> = read_json(&modules_path)?;
    modules.sort_by_key(|m| m.idx);
    let invalid = |reason: String| LoadError::InvalidConfig { path: modules_path.clone(), reason };
    let (mut pooling, mut dense, mut normalize) = (None, Vec::new(), false);
    for (i, module) in modules.iter().enumerate() {
        // "sentence_transformers.models.Pooling", "sentence_transformers.....pooling.Pooling".
        let kind = module.kind.rsplit('.').next().unwrap_or(&module.kind);
        if module.kind.contains("sparse_encoder") || kind == "SpladePooling" {
            return Err(invalid(format!(
                "module {} `{}` belongs to a sparse encoder (SPLADE): streampool computes dense \
                 embeddings only",
                module.idx, module.kind
            )));
        }
        match (i, kind) {
            (0, "Transformer") => {}
            (_, "Pooling") if i > 0 && pooling.is_none() => {
                pooling = Some(files.dir.join(&module.path).join("config.json"));
            }
            (_, "Dense") if pooling.is_some() && !normalize => {
                dense.push(DenseConfig::load(&files.dir.join(&module.path))?);
            }
            (_, "Normalize") if pooling.is_some() && !normalize => normalize = true,
            _ => {
                return Err(invalid(format!(
                    "module {} `{}` at position {i} is not supported (supported: Transformer, \
                     then Pooling, then any Dense modules, then optionally Normalize)",
                    module.idx, module.kind
                )))
            }
        }
    }
    match pooling {
        Some(path) => Ok(Pipeline { pooling: Some(path), dense, normalize }),
        None => Err(invalid("no Pooling module".into())),
    }
}

/// The prompts of `config_sentence_transformers.json` (none when it is absent) and the default
/// prompt's name.
fn read_prompts(
    files: &ModelFiles,
) -> Result<(std::collections::BTreeMap<String, String>, Option<String>), LoadError> {
    #[derive(Deserialize)]
    struct PromptsJson {
        #[serde(default)]
        prompts: std::collections::BTreeMap<String, String>,
        #[serde(default)]
        default_prompt_name: Option<String>,
    }
    let path = files.dir.join("config_sentence_transformers.json");
    if !path.is_file() {
        return Ok(Default::default());
    }
    let json: PromptsJson = read_json(&path)?;
    if let Some(name) = json.default_prompt_name.as_ref().filter(|n| !json.prompts.contains_key(*n))
    {
        return Err(LoadError::InvalidConfig {
            path,
            reason: format!("default_prompt_name `{name}` is not among the prompts"),
        });
    }
    Ok((json.prompts, json.default_prompt_name))
}

/// The pooling mode of a `Pooling` module's config, its dimension checked against `hidden`, and
/// whether prompt tokens are pooled (`include_prompt`, default true).
fn read_pooling(path: &Path, hidden: usize) -> Result<(PoolingMode, bool), LoadError> {
    let json: serde_json::Value = read_json(path)?;
    let invalid = |reason: String| LoadError::InvalidConfig { path: path.to_path_buf(), reason };
    let dim = json.get("embedding_dimension").or_else(|| json.get("word_embedding_dimension"));
    if let Some(dim) = dim.and_then(serde_json::Value::as_u64) {
        if dim as usize != hidden {
            return Err(invalid(format!(
                "embedding dimension {dim} differs from hidden_size {hidden}"
            )));
        }
    }
    let names: Vec<String> = match json.get("pooling_mode") {
        Some(serde_json::Value::String(name)) => vec![name.clone()],
        Some(serde_json::Value::Array(names)) => {
            names.iter().map(|n| n.as_str().unwrap_or("?").to_owned()).collect()
        }
        Some(other) => return Err(invalid(format!("pooling_mode {other} is not a name"))),
        None => LEGACY_POOLING_KEYS
            .iter()
            .filter(|(key, _)| json.get(key).and_then(serde_json::Value::as_bool) == Some(true))
            .map(|(_, name)| name.to_string())
            .collect(),
    };
    let modes: Vec<PoolingMode> = names
        .iter()
        .map(|name| {
            PoolingMode::from_name(name)
                .ok_or_else(|| invalid(format!("unknown pooling mode `{name}`")))
        })
        .collect::<Result<_, _>>()?;
    let include_prompt =
        json.get("include_prompt").and_then(serde_json::Value::as_bool).unwrap_or(true);
    match modes[..] {
        [] => Ok((PoolingMode::Mean, include_prompt)),
        [mode] => Ok((mode, include_prompt)),
        _ => Err(invalid(format!(
            "pooling_mode {names:?} concatenates poolings: only one pooling mode at a time is \
             supported"
        ))),
    }
}

/// The model's maximum input length and the file that says it, if any does.
fn max_length(files: &ModelFiles) -> Result<Option<(PathBuf, usize)>, LoadError> {
    #[derive(Deserialize)]
    struct SentenceBertJson {
        max_seq_length: Option<usize>,
    }
    #[derive(Deserialize)]
    struct TokenizerConfigJson {
        model_max_length: Option<f64>,
    }
    if files.sentence_config.is_file() {
        let json: SentenceBertJson = read_json(&files.sentence_config)?;
        if let Some(n) = json.max_seq_length {
            return Ok(Some((files.sentence_config.clone(), n)));
        }
    }
    let path = files.dir.join("tokenizer_config.json");
    if path.is_file() {
        let json: TokenizerConfigJson = read_json(&path)?;
        // transformers writes a huge number (1e30) when the tokenizer has no limit of its own.
        if let Some(n) = json.model_max_length.filter(|n| (1.0..1e9).contains(n)) {
            return Ok(Some((path, n as usize)));
        }
    }
    Ok(None)
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, LoadError> {
    let text = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => LoadError::FileMissing { path: path.to_path_buf() },
        _ => LoadError::io(path, e),
    })?;
    serde_json::from_slice(&text)
        .map_err(|source| LoadError::ConfigParse { path: path.to_path_buf(), source })
}
