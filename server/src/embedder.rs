//! What the server calls: an [`Embedder`], shared by every HTTP thread. [`EngineEmbedder`] is
//! MiniLM behind the engine, so concurrent requests are batched onto the engine's streams.

use streampool_engine::{Engine, EngineError, MiniLmBatches};
use streampool_models::ModelError;
use streampool_tensor::Ops;

/// Why texts got no embeddings, sorted by whose fault it is (the HTTP status follows).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum EmbedError {
    /// The request's fault: a text the model refuses. `index` is the text's position.
    #[error("text {index}: {message}")]
    Invalid {
        /// Position of the refused text in the request.
        index: usize,
        /// Why.
        message: String,
    },
    /// Too much work queued; the client may retry later.
    #[error("overloaded: {0}")]
    Overloaded(String),
    /// The model failed, or the engine has stopped.
    #[error("{0}")]
    Failed(String),
}

/// Embeds texts. Called from many threads at once, each call blocking until its results are in.
pub trait Embedder: Send + Sync + 'static {
    /// The model's name (reported by `/health` and with every result).
    fn model(&self) -> &str;
    /// Length of each embedding.
    fn dim(&self) -> usize;
    /// The device it runs on, in words.
    fn device(&self) -> String;
    /// One embedding per text, in order.
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError>;
}

/// MiniLM behind an [`Engine`]: texts are tokenised in the calling (HTTP) thread, queued one
/// request each, and batched by the engine's workers with whatever other connections queued.
pub struct EngineEmbedder<B: Ops> {
    engine: Engine<MiniLmBatches<B>>,
    name: String,
}

impl<B: Ops> EngineEmbedder<B> {
    /// Serve `engine`'s model under `name`.
    pub fn new(engine: Engine<MiniLmBatches<B>>, name: impl Into<String>) -> Self {
        Self { engine, name: name.into() }
    }

    /// The engine (its statistics, say).
    pub fn engine(&self) -> &Engine<MiniLmBatches<B>> {
        &self.engine
    }
}

impl<B: Ops + 'static> Embedder for EngineEmbedder<B> {
    fn model(&self) -> &str {
        &self.name
    }

    fn dim(&self) -> usize {
        self.engine.model().model().dim()
    }

    fn device(&self) -> String {
        self.engine.model().model().device().backend().name()
    }

    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let batches = self.engine.model();
        // Every text is tokenised and queued before the first wait: one request's texts run in
        // the same or neighbouring batches.
        let mut pending = Vec::with_capacity(texts.len());
        for (index, text) in texts.iter().enumerate() {
            let encoding = batches
                .encode(text)
                .map_err(|e| EmbedError::Invalid { index, message: e.to_string() })?;
            pending.push(self.engine.submit(encoding).map_err(|e| engine_error(index, e))?);
        }
        pending
            .into_iter()
            .enumerate()
            .map(|(index, p)| p.wait().map_err(|e| engine_error(index, e)))
            .collect()
    }
}

fn engine_error(index: usize, e: EngineError<ModelError>) -> EmbedError {
    match e {
        EngineError::Invalid(source) => EmbedError::Invalid { index, message: source.to_string() },
        EngineError::Overloaded { .. } => EmbedError::Overloaded(e.to_string()),
        other => EmbedError::Failed(other.to_string()),
    }
}
