//! What the routes call: an [`EmbedService`], shared by every connection. [`EngineService`] is a
//! model behind the engine, so the texts of all requests in flight are batched onto its streams.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use streampool_engine::{
    BatchModel, DeviceStats, Engine, EngineConfig, EngineError, EngineStats, MiniLmBatches,
};
use streampool_models::loading::{Encoding, Side, Token, Tokenizer};
use streampool_tensor::Ops;

use crate::metrics::Metrics;

/// Why a text got no embedding, sorted by whose fault it is (the HTTP status follows).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum EmbedError {
    /// The request's fault: an input the model refuses.
    #[error("{0}")]
    Invalid(String),
    /// The queue is full; the client may retry later.
    #[error("overloaded: {0}")]
    Overloaded(String),
    /// The model or a device failed (the message names it), or the engine has stopped.
    #[error("{0}")]
    Failed(String),
}

/// The answer to one queued text: its embedding, or why it has none.
pub type EmbedFuture = Pin<Box<dyn Future<Output = Result<Vec<f32>, EmbedError>> + Send>>;

/// The model served, as `GET /info` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    /// The served name.
    pub id: String,
    /// Length of each embedding.
    pub dim: usize,
    /// Tokens the model reads at most, special tokens included.
    pub max_input_tokens: usize,
    /// Whether the model's last module normalises (its vectors are unit-length).
    pub normalized: bool,
    /// The pooling, as sentence-transformers names it.
    pub pooling: String,
    /// Precision of weights and activations.
    pub dtype: String,
    /// The device, in words; several: how many of which, and their labels
    /// (`2 × cpu (8 cores) (cpu:0,cpu:1)`).
    pub device: String,
}

/// Embeds texts for the routes: tokenising in the caller's thread, queueing without blocking.
pub trait EmbedService: Send + Sync + 'static {
    /// The model served.
    fn info(&self) -> &ModelInfo;
    /// `text` tokenised, `side` dropped when too long; whether anything was dropped.
    fn encode(&self, text: &str, side: Side) -> Result<(Encoding, bool), EmbedError>;
    /// The tokens of `text` the model reads.
    fn tokens(&self, text: &str, add_special_tokens: bool) -> Result<Vec<Token>, EmbedError>;
    /// A caller's own token ids as the model's whole input (special tokens included).
    fn encode_ids(&self, ids: &[u32]) -> Result<Encoding, EmbedError>;
    /// Queue `encoding` without waiting: a full queue is [`EmbedError::Overloaded`] at once.
    /// Dropping the future cancels the text if no batch has taken it yet.
    fn submit(&self, encoding: Encoding) -> Result<EmbedFuture, EmbedError>;
    /// The engine's counters and its queue's length now.
    fn load(&self) -> (EngineStats, usize);
    /// How the engine batches (`GET /info` shows its limits).
    fn config(&self) -> EngineConfig;
    /// Each device's counters and health, in order (`GET /health` and `/metrics` show them).
    fn devices(&self) -> Vec<DeviceStats>;
}

/// A batch model of texts: the engine's model, with the tokenizer and description the server
/// needs.
pub trait TextModel: BatchModel<Input = Encoding, Output = Vec<f32>> {
    /// The model's tokenizer.
    fn tokenizer(&self) -> &Tokenizer;
    /// The model, described (its `id` is replaced by the served name).
    fn describe(&self) -> ModelInfo;
}

impl<B: Ops + 'static> TextModel for MiniLmBatches<B> {
    fn tokenizer(&self) -> &Tokenizer {
        self.model().tokenizer()
    }

    fn describe(&self) -> ModelInfo {
        let model = self.model();
        let config = model.config();
        ModelInfo {
            id: model.name().to_owned(),
            dim: model.dim(),
            max_input_tokens: config.max_seq_length,
            normalized: config.normalize,
            pooling: config.pooling.name().to_owned(),
            dtype: model.precision().to_string(),
            device: model.device().backend().name(),
        }
    }
}

/// `M` with every batch it runs counted in the server's metrics (size, padded tokens, tokens).
pub struct Metered<M> {
    model: M,
    metrics: Arc<Metrics>,
}

impl<M: TextModel> BatchModel for Metered<M> {
    type Backend = M::Backend;
    type Input = Encoding;
    type Output = Vec<f32>;
    type Error = M::Error;

    fn device(&self) -> &streampool_core::Device<M::Backend> {
        self.model.device()
    }

    fn check(&self, input: &Encoding) -> Result<(), M::Error> {
        self.model.check(input)
    }

    fn batch_size(&self, available: usize) -> usize {
        self.model.batch_size(available)
    }

    fn padded_tokens(&self, input: &Encoding) -> usize {
        self.model.padded_tokens(input)
    }

    fn run(
        &self,
        stream: &<M::Backend as streampool_core::Backend>::Stream,
        inputs: &[Encoding],
    ) -> Result<Vec<Vec<f32>>, M::Error> {
        let widest = inputs.iter().map(|e| self.model.padded_tokens(e)).max().unwrap_or(0);
        let tokens: usize = inputs.iter().map(Encoding::len).sum();
        self.metrics.batch(inputs.len(), inputs.len() * widest, tokens);
        self.model.run(stream, inputs)
    }

    fn check_device(
        &self,
        stream: &<M::Backend as streampool_core::Backend>::Stream,
    ) -> Result<(), M::Error> {
        self.model.check_device(stream)
    }
}

/// A [`TextModel`] behind an [`Engine`].
pub struct EngineService<M: TextModel> {
    engine: Engine<Metered<M>>,
    info: ModelInfo,
}

impl<M: TextModel> EngineService<M> {
    /// Start an engine of `model` with `config`, serving it as `name`, its batches counted in
    /// `metrics`.
    pub fn start(
        model: M,
        name: &str,
        config: EngineConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Self, EngineError<M::Error>> {
        Self::start_on(vec![model], name, config, metrics)
    }

    /// [`EngineService::start`] over several devices: `models` holds one copy of the model per
    /// device, each device gets `config.workers` workers, and every device's workers take from
    /// the one queue ([`Engine::start_on`]). A device that fails is taken out; the others go on.
    pub fn start_on(
        models: Vec<M>,
        name: &str,
        config: EngineConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Self, EngineError<M::Error>> {
        let first = models
            .first()
            .ok_or_else(|| EngineError::NoDevice { failures: "no device was given".into() })?;
        let info = ModelInfo {
            id: name.to_owned(),
            device: streampool_core::describe_devices(
                &models.iter().map(|m| m.device().clone()).collect::<Vec<_>>(),
            ),
            ..first.describe()
        };
        let copies =
            models.into_iter().map(|model| Arc::new(Metered { model, metrics: metrics.clone() }));
        let engine = Engine::start_on(copies.collect(), config)?;
        Ok(Self { engine, info })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine<Metered<M>> {
        &self.engine
    }
}

impl<M: TextModel> EmbedService for EngineService<M> {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn encode(&self, text: &str, side: Side) -> Result<(Encoding, bool), EmbedError> {
        let tokenizer = self.engine.model().model.tokenizer();
        tokenizer.encode_side(text, side).map_err(|e| EmbedError::Invalid(e.to_string()))
    }

    fn tokens(&self, text: &str, add_special_tokens: bool) -> Result<Vec<Token>, EmbedError> {
        let tokenizer = self.engine.model().model.tokenizer();
        tokenizer.tokens(text, add_special_tokens).map_err(|e| EmbedError::Invalid(e.to_string()))
    }

    fn encode_ids(&self, ids: &[u32]) -> Result<Encoding, EmbedError> {
        let encoding = Encoding {
            input_ids: ids.to_vec(),
            attention_mask: vec![1; ids.len()],
            token_type_ids: vec![0; ids.len()],
            pool_from: 0,
        };
        let check = self.engine.model().check(&encoding);
        check.map_err(|e| EmbedError::Invalid(e.to_string()))?;
        Ok(encoding)
    }

    fn submit(&self, encoding: Encoding) -> Result<EmbedFuture, EmbedError> {
        let answer = self.engine.submit_async(encoding).map_err(engine_error)?;
        Ok(Box::pin(async move { answer.await.map_err(engine_error) }))
    }

    fn load(&self) -> (EngineStats, usize) {
        (self.engine.stats(), self.engine.queue_len())
    }

    fn config(&self) -> EngineConfig {
        *self.engine.config()
    }

    fn devices(&self) -> Vec<DeviceStats> {
        self.engine.device_stats()
    }
}

/// The engine's error by whose fault it is. A failed device (`DeviceFailed`, `NoDevice`) is the
/// server's: `Failed`, with the message that names the device.
fn engine_error<E: std::error::Error>(e: EngineError<E>) -> EmbedError {
    match e {
        EngineError::Invalid(source) => EmbedError::Invalid(source.to_string()),
        EngineError::Overloaded { .. } => EmbedError::Overloaded(e.to_string()),
        other => EmbedError::Failed(other.to_string()),
    }
}
