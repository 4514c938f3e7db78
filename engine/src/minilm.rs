//! MiniLM as a [`BatchModel`]: pre-tokenised inputs (callers tokenise in their own threads), one
//! embedding each.

use std::sync::Arc;

use streampool_core::{Backend, Device, Stream};
use streampool_models::graph::ExecMode;
use streampool_models::loading::Encoding;
use streampool_models::{MiniLm, ModelError};
use streampool_tensor::Ops;

use crate::corpus::CorpusModel;
use crate::BatchModel;

/// A shared [`MiniLm`] run eagerly or by graph replays ([`ExecMode`]).
#[derive(Debug)]
pub struct MiniLmBatches<B: Ops> {
    model: Arc<MiniLm<B>>,
    mode: ExecMode,
    /// Prepended to every text the corpus pipeline tokenises.
    prompt: Option<String>,
}

// By hand: the derive would ask `B: Clone`; the model is shared through its `Arc`.
impl<B: Ops> Clone for MiniLmBatches<B> {
    fn clone(&self) -> Self {
        Self { model: self.model.clone(), mode: self.mode, prompt: self.prompt.clone() }
    }
}

impl<B: Ops> MiniLmBatches<B> {
    /// Batches of `model`, run in `mode` ([`ExecMode::Graph`]: CUDA only; elsewhere every batch
    /// fails with the model's `Unsupported` error).
    pub fn new(model: Arc<MiniLm<B>>, mode: ExecMode) -> Self {
        Self { model, mode, prompt: None }
    }

    /// These batches with `prompt` prepended to every text the corpus pipeline tokenises
    /// ([`MiniLm::encode_prompted`]: its tokens are left out of the pooling where the model
    /// says so).
    pub fn with_prompt(mut self, prompt: Option<String>) -> Self {
        self.prompt = prompt.filter(|p| !p.is_empty());
        self
    }

    /// The model.
    pub fn model(&self) -> &MiniLm<B> {
        &self.model
    }

    /// Tokenise `text` (truncated to the model's maximum length), in the caller's thread.
    pub fn encode(&self, text: &str) -> Result<Encoding, ModelError> {
        Ok(self.model.tokenizer().encode(text)?)
    }
}

impl<B: Ops + Backend> BatchModel for MiniLmBatches<B>
where
    B: 'static,
{
    type Backend = B;
    type Input = Encoding;
    type Output = Vec<f32>;
    type Error = ModelError;

    fn device(&self) -> &Device<B> {
        self.model.device()
    }

    fn check(&self, input: &Encoding) -> Result<(), ModelError> {
        self.model.check_encoding(input)
    }

    /// Graph mode pads a batch to a power of two rows (its graph buckets): take the largest power
    /// of two that has queued, so that no row is padding.
    fn batch_size(&self, available: usize) -> usize {
        match self.mode {
            ExecMode::Graph => 1 << available.max(1).ilog2(),
            ExecMode::Eager => available,
        }
    }

    /// The sequence length a batch holding `input` runs at ([`MiniLm::padded_len`]).
    fn padded_tokens(&self, input: &Encoding) -> usize {
        self.model.padded_len(input.len(), self.mode)
    }

    fn run(&self, stream: &B::Stream, inputs: &[Encoding]) -> Result<Vec<Vec<f32>>, ModelError> {
        self.model.embed_encodings_mode(stream, inputs, self.mode)
    }

    /// The stream's synchronize: a fault that is sticky for the device (CUDA's) fails it again;
    /// work that failed once has been reported and leaves it passing.
    fn check_device(&self, stream: &B::Stream) -> Result<(), ModelError> {
        Ok(stream.synchronize()?)
    }
}

impl<B: Ops + Backend + 'static> CorpusModel for MiniLmBatches<B> {
    /// The texts (after the prompt, if any) tokenised on every core
    /// ([`MiniLm::encode_prompted`]).
    fn tokenize(&self, texts: &[&str]) -> Result<Vec<Encoding>, ModelError> {
        self.model.encode_prompted(texts, self.prompt.as_deref())
    }

    fn tokens(input: &Encoding) -> usize {
        input.len()
    }

    /// [`MiniLm::padded_len`] in the batches' mode.
    fn padded_len(&self, tokens: usize) -> usize {
        self.model.padded_len(tokens, self.mode)
    }
}
