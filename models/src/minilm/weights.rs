//! MiniLM's parameters on the device, uploaded once and shared (through an `Arc`) by every
//! stream: ops read them; nothing writes them after loading.

use streampool_tensor::{Activation, DType, LayerNorm, Ops, Tensor};

use crate::loading::{Architecture, DenseConfig, ModelConfig, Weights};
use crate::params::Uploader;
use crate::ModelError;

/// A layer norm's parameters.
pub(crate) struct NormWeights<B: Ops> {
    pub(crate) gamma: Tensor<B>,
    pub(crate) beta: Tensor<B>,
    pub(crate) eps: f32,
}

impl<B: Ops> NormWeights<B> {
    fn load(
        up: &Uploader<'_, B>,
        prefix: &str,
        dim: usize,
        eps: f32,
        dt: DType,
    ) -> Result<Self, ModelError> {
        let gamma = up.tensor_as(&format!("{prefix}.weight"), &[dim], dt)?;
        let beta = up.tensor_as(&format!("{prefix}.bias"), &[dim], dt)?;
        Ok(Self { gamma, beta, eps })
    }

    pub(crate) fn as_op(&self) -> LayerNorm<'_, B> {
        LayerNorm { gamma: &self.gamma, beta: &self.beta, eps: self.eps }
    }
}

/// A linear layer, PyTorch layout: `weight` `[out, in]`, `bias` `[out]`.
pub(crate) struct LinearWeights<B: Ops> {
    pub(crate) weight: Tensor<B>,
    pub(crate) bias: Tensor<B>,
}

impl<B: Ops> LinearWeights<B> {
    fn load(
        up: &Uploader<'_, B>,
        prefix: &str,
        out: usize,
        inp: usize,
        dt: DType,
    ) -> Result<Self, ModelError> {
        let weight = up.tensor_as(&format!("{prefix}.weight"), &[out, inp], dt)?;
        let bias = up.tensor_as(&format!("{prefix}.bias"), &[out], dt)?;
        Ok(Self { weight, bias })
    }
}

/// The embedding block.
pub(crate) struct EmbeddingWeights<B: Ops> {
    pub(crate) word: Tensor<B>,
    pub(crate) position: Tensor<B>,
    pub(crate) token_type: Tensor<B>,
    pub(crate) norm: NormWeights<B>,
}

impl<B: Ops> LinearWeights<B> {
    /// Several linears of the same input size as one: weights `[sum of outs, inp]` and biases
    /// concatenated in the order of `prefixes` (so one GEMM computes all their outputs side by
    /// side in each row).
    fn load_fused(
        up: &Uploader<'_, B>,
        prefixes: &[&str],
        out: usize,
        inp: usize,
        dt: DType,
    ) -> Result<Self, ModelError> {
        let (mut weight, mut bias) = (Vec::new(), Vec::new());
        for p in prefixes {
            weight.extend(up.weights.get_f32(&format!("{p}.weight"), &[out, inp])?);
            bias.extend(up.weights.get_f32(&format!("{p}.bias"), &[out])?);
        }
        let total = out * prefixes.len();
        Ok(Self {
            weight: up.upload(&weight, &[total, inp], dt)?,
            bias: up.upload(&bias, &[total], dt)?,
        })
    }
}

/// One encoder layer.
pub(crate) struct LayerWeights<B: Ops> {
    /// Query, key and value projections fused: `[3 * hidden, hidden]`, output columns
    /// `0..hidden` the query, then the key, then the value.
    pub(crate) qkv: LinearWeights<B>,
    pub(crate) attn_out: LinearWeights<B>,
    pub(crate) attn_norm: NormWeights<B>,
    pub(crate) intermediate: LinearWeights<B>,
    pub(crate) output: LinearWeights<B>,
    pub(crate) out_norm: NormWeights<B>,
}

/// A `Dense` module after the pooling: `act(x . weight^T + bias)`.
pub(crate) struct DenseWeights<B: Ops> {
    pub(crate) weight: Tensor<B>,
    pub(crate) bias: Option<Tensor<B>>,
    pub(crate) act: Activation,
}

impl<B: Ops> DenseWeights<B> {
    /// Reads the module's `model.safetensors` and uploads it in `dt`.
    pub(crate) fn load(
        up: &Uploader<'_, B>,
        c: &DenseConfig,
        dt: DType,
    ) -> Result<Self, ModelError> {
        let file = Weights::open(&c.weights)?;
        let up = Uploader { weights: &file, ..*up };
        let (out, inp) = (c.out_features, c.in_features);
        let weight = up.tensor_as("linear.weight", &[out, inp], dt)?;
        let bias = c.bias.then(|| up.tensor_as("linear.bias", &[out], dt)).transpose()?;
        Ok(Self { weight, bias, act: c.activation })
    }
}

/// A BERT-family encoder's parameters (BERT, RoBERTa, XLM-RoBERTa, MPNet).
pub(crate) struct BertWeights<B: Ops> {
    pub(crate) embeddings: EmbeddingWeights<B>,
    pub(crate) layers: Vec<LayerWeights<B>>,
    /// MPNet's relative position bias resolved per distance, f32 `[heads, 2 * span + 1]`
    /// (`span`: the longest input less one), added by every layer's attention; `None` for the
    /// other architectures.
    pub(crate) position_bias: Option<Tensor<B>>,
}

/// The encoder's parameters, by architecture.
pub(crate) enum EncoderWeights<B: Ops> {
    Bert(BertWeights<B>),
    Gemma(super::gemma::GemmaWeights<B>),
}

/// All of the model's parameters.
pub(crate) struct MiniLmWeights<B: Ops> {
    pub(crate) encoder: EncoderWeights<B>,
    /// The `Dense` modules after the pooling, in order.
    pub(crate) dense: Vec<DenseWeights<B>>,
}

/// Where an architecture keeps a layer's attention parameters (below `encoder.layer.{l}.`):
/// the query, key and value projections, the output projection and its layer norm.
fn attention_names(arch: Architecture) -> ([&'static str; 3], &'static str, &'static str) {
    match arch {
        Architecture::MpNet => (
            ["attention.attn.q", "attention.attn.k", "attention.attn.v"],
            "attention.attn.o",
            "attention.LayerNorm",
        ),
        _ => (
            ["attention.self.query", "attention.self.key", "attention.self.value"],
            "attention.output.dense",
            "attention.output.LayerNorm",
        ),
    }
}

impl<B: Ops> MiniLmWeights<B> {
    /// Reads and uploads every parameter in `dt`, checking each shape against `config`.
    pub(crate) fn load(
        up: &Uploader<'_, B>,
        config: &ModelConfig,
        dt: DType,
    ) -> Result<Self, ModelError> {
        let dense =
            config.dense.iter().map(|d| DenseWeights::load(up, d, dt)).collect::<Result<_, _>>()?;
        let encoder = match &config.gemma {
            Some(g) => EncoderWeights::Gemma(super::gemma::GemmaWeights::load(up, config, g, dt)?),
            None => EncoderWeights::Bert(BertWeights::load(up, config, dt)?),
        };
        Ok(Self { encoder, dense })
    }

    /// Every parameter tensor.
    pub(crate) fn tensors(&self) -> Vec<&Tensor<B>> {
        let mut all = match &self.encoder {
            EncoderWeights::Bert(b) => b.tensors(),
            EncoderWeights::Gemma(g) => g.tensors(),
        };
        for d in &self.dense {
            all.push(&d.weight);
            all.extend(&d.bias);
        }
        all
    }
}

impl<B: Ops> BertWeights<B> {
    /// Reads and uploads every parameter of a BERT-family encoder in `dt`.
    fn load(up: &Uploader<'_, B>, config: &ModelConfig, dt: DType) -> Result<Self, ModelError> {
        let (c, max_seq_length) = (&config.bert, config.max_seq_length);
        let (h, i) = (c.hidden_size, c.intermediate_size);
        let eps = c.layer_norm_eps as f32;
        let arch = c.architecture().unwrap_or(Architecture::Bert);
        let embeddings = EmbeddingWeights {
            word: up.tensor_as("embeddings.word_embeddings.weight", &[c.vocab_size, h], dt)?,
            // RoBERTa-style models number positions from `pad_token_id + 1`: the rows before
            // are never used, so the table is viewed from there on.
            position: up
                .tensor_as(
                    "embeddings.position_embeddings.weight",
                    &[c.max_position_embeddings, h],
                    dt,
                )?
                .narrow(0, c.position_offset(), c.max_positions())
                .map_err(streampool_tensor::OpError::from)?,
            // MPNet has no token types: one row of zeros adds nothing.
            token_type: match arch {
                Architecture::MpNet => up.upload(&vec![0.0; h], &[1, h], dt)?,
                _ => up.tensor_as(
                    "embeddings.token_type_embeddings.weight",
                    &[c.type_vocab_size, h],
                    dt,
                )?,
            },
            norm: NormWeights::load(up, "embeddings.LayerNorm", h, eps, dt)?,
        };
        let (qkv_names, out_name, norm_name) = attention_names(arch);
        let layers = (0..c.num_hidden_layers)
            .map(|l| {
                let p = format!("encoder.layer.{l}");
                let qkv = qkv_names.map(|n| format!("{p}.{n}"));
                Ok(LayerWeights {
                    qkv: LinearWeights::load_fused(
                        up,
                        &qkv.each_ref().map(|s| s.as_str()),
                        h,
                        h,
                        dt,
                    )?,
                    attn_out: LinearWeights::load(up, &format!("{p}.{out_name}"), h, h, dt)?,
                    attn_norm: NormWeights::load(up, &format!("{p}.{norm_name}"), h, eps, dt)?,
                    intermediate: LinearWeights::load(
                        up,
                        &format!("{p}.intermediate.dense"),
                        i,
                        h,
                        dt,
                    )?,
                    output: LinearWeights::load(up, &format!("{p}.output.dense"), h, i, dt)?,
                    out_norm: NormWeights::load(up, &format!("{p}.output.LayerNorm"), h, eps, dt)?,
                })
            })
            .collect::<Result<_, ModelError>>()?;
        let position_bias = match (arch, c.relative_attention_num_buckets) {
            (Architecture::MpNet, Some(buckets)) => {
                let heads = c.num_attention_heads;
                let weight = up
                    .weights
                    .get_f32("encoder.relative_attention_bias.weight", &[buckets, heads])?;
                let span = max_seq_length.saturating_sub(1);
                let table = super::relative::distance_table(&weight, buckets, heads, span);
                Some(up.upload(&table, &[heads, 2 * span + 1], DType::F32)?)
            }
            _ => None,
        };
        Ok(Self { embeddings, layers, position_bias })
    }

    /// Every parameter tensor.
    pub(crate) fn tensors(&self) -> Vec<&Tensor<B>> {
        let e = &self.embeddings;
        let mut all = vec![&e.word, &e.position, &e.token_type, &e.norm.gamma, &e.norm.beta];
        for l in &self.layers {
            for lin in [&l.qkv, &l.attn_out, &l.intermediate, &l.output] {
                all.extend([&lin.weight, &lin.bias]);
            }
            for n in [&l.attn_norm, &l.out_norm] {
                all.extend([&n.gamma, &n.beta]);
            }
        }
        all.extend(&self.position_bias);
        all
    }
}
