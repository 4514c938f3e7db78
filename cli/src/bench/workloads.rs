//! The workers the bench runs, one per thread.

use streampool_core::conformance::{expected, steps_for};
use streampool_core::{Backend, Device, Stream};
use streampool_models::graph::ExecMode;
use streampool_models::loading::Encoding;
use streampool_models::{Conv1dNet, MiniLm, Mlp};
use streampool_tensor::Ops;

use super::measure::Worker;

/// The core's portable ops: a request is `fill` + 4 multiply-adds over `words × batch` words,
/// then a read-back whose every word is checked.
pub struct DemoWorker<B: Backend> {
    buf: B::Buffer,
    batch: usize,
    host: Vec<u8>,
    round: usize,
}

impl<B: Backend> DemoWorker<B> {
    /// A worker with its own buffer.
    pub fn new(device: &Device<B>, words: usize, batch: usize) -> Result<Self, String> {
        let bytes = words * batch * 4;
        let buf = device.alloc(bytes).map_err(|e| e.to_string())?;
        Ok(Self { buf, batch, host: vec![0; bytes], round: 0 })
    }
}

impl<B: Backend> Worker<B> for DemoWorker<B> {
    fn request(&mut self, stream: &B::Stream) -> Result<usize, String> {
        let (seed, steps) = (self.round as u32, steps_for(stream.slot(), self.round));
        self.round += 1;
        let mut run = || -> Result<(), streampool_core::BackendError> {
            stream.fill_u32(&self.buf, seed)?;
            for &(m, a) in &steps {
                stream.mul_add_u32(&self.buf, m, a)?;
            }
            stream.read(&self.buf, 0, &mut self.host)
        };
        run().map_err(|e| e.to_string())?;
        let want = expected(seed, &steps).to_le_bytes();
        if !self.host.chunks_exact(4).all(|w| w == want) {
            return Err(format!("stream {} computed a wrong result", stream.slot()));
        }
        Ok(self.batch)
    }
}

/// MiniLM: a request embeds `batch` pre-tokenised sequences of exactly `seq` tokens (forward,
/// pooling, normalisation, download; tokenising is left out, as in the PyTorch peer), eagerly
/// or by replaying CUDA graphs.
pub struct MiniLmWorker<'m, B: Ops> {
    model: &'m MiniLm<B>,
    encodings: Vec<Encoding>,
    mode: ExecMode,
}

impl<'m, B: Ops> MiniLmWorker<'m, B> {
    /// `batch` copies of a text that tokenises to exactly `seq` tokens, run in `mode`.
    pub fn new(
        model: &'m MiniLm<B>,
        seq: usize,
        batch: usize,
        mode: ExecMode,
    ) -> Result<Self, String> {
        let encoding = encoding_of_len(model, seq)?;
        Ok(Self { model, encodings: vec![encoding; batch], mode })
    }
}

/// The bench's words: one WordPiece token each in MiniLM's vocabulary.
const WORDS: [&str; 8] = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog"];

/// A text that tokenises to exactly `seq` tokens: `seq - 2` of the bench's words, each one token
/// in MiniLM's vocabulary (an error for a vocabulary where they are not).
pub(crate) fn text_of_len<B: Ops>(model: &MiniLm<B>, seq: usize) -> Result<String, String> {
    let text: Vec<&str> = (0..seq.saturating_sub(2)).map(|i| WORDS[i % WORDS.len()]).collect();
    let text = text.join(" ");
    let tokens = model.tokenizer().encode(&text).map_err(|e| e.to_string())?.len();
    match tokens == seq {
        true => Ok(text),
        false => Err(format!("--engine-tokenize: the bench text is {tokens} tokens, not {seq}")),
    }
}

/// A text of `seq` tokens (`[CLS]` + `seq - 2` words + `[SEP]`).
pub(crate) fn encoding_of_len<B: Ops>(model: &MiniLm<B>, seq: usize) -> Result<Encoding, String> {
    let max = model.tokenizer().max_seq_length();
    if seq < 3 || seq > max {
        return Err(format!("--seq must lie in 3..={max} (the model's max_seq_length)"));
    }
    // A text longer than the model reads, tokenised (any vocabulary), then cut to `seq` tokens:
    // its first `seq - 1` and its closing special token.
    let text: Vec<&str> = (0..2 * max).map(|i| WORDS[i % WORDS.len()]).collect();
    let full = model.tokenizer().encode(&text.join(" ")).map_err(|e| e.to_string())?;
    let cut = |v: &[u32]| -> Vec<u32> {
        let mut head = v[..seq - 1].to_vec();
        head.push(v[v.len() - 1]);
        head
    };
    if full.len() < seq {
        return Err(format!("--seq {seq}: the bench text tokenised to {} tokens", full.len()));
    }
    Ok(Encoding {
        input_ids: cut(&full.input_ids),
        attention_mask: cut(&full.attention_mask),
        token_type_ids: cut(&full.token_type_ids),
        pool_from: 0,
    })
}

impl<B: Ops> Worker<B> for MiniLmWorker<'_, B> {
    fn request(&mut self, stream: &B::Stream) -> Result<usize, String> {
        let out = self
            .model
            .embed_encodings_mode(stream, &self.encodings, self.mode)
            .map_err(|e| e.to_string())?;
        Ok(out.len())
    }
}

/// MLP or Conv1D: a request is one forward of `batch` inputs.
pub struct SmallModelWorker<'m, B: Ops> {
    model: SmallModel<'m, B>,
    input: Vec<f32>,
    batch: usize,
    length: usize,
}

/// One of the small models.
pub enum SmallModel<'m, B: Ops> {
    /// The MLP.
    Mlp(&'m Mlp<B>),
    /// The Conv1D net, run on inputs of `length`.
    Conv1d(&'m Conv1dNet<B>),
}

impl<'m, B: Ops> SmallModelWorker<'m, B> {
    /// A worker with a fixed input of `batch` rows (Conv1D: of `length` positions).
    pub fn new(model: SmallModel<'m, B>, batch: usize, length: usize) -> Self {
        let n = match &model {
            SmallModel::Mlp(m) => batch * m.in_features(),
            SmallModel::Conv1d(m) => batch * m.in_channels() * length,
        };
        let input = (0..n).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect();
        Self { model, input, batch, length }
    }
}

impl<B: Ops> Worker<B> for SmallModelWorker<'_, B> {
    fn request(&mut self, stream: &B::Stream) -> Result<usize, String> {
        let out = match &self.model {
            SmallModel::Mlp(m) => m.forward(stream, &self.input, self.batch),
            SmallModel::Conv1d(m) => m.forward(stream, &self.input, self.batch, self.length),
        };
        out.map_err(|e| e.to_string())?;
        Ok(self.batch)
    }
}
