//! What the engine runs: a model that takes a batch of inputs on a stream.

use streampool_core::{Backend, Device};

/// A model the engine can run in batches. Shared by every worker (so `Sync`); each call gets
/// the worker's own stream.
pub trait BatchModel: Send + Sync + 'static {
    /// The backend the model runs on.
    type Backend: Backend;
    /// One request.
    type Input: Send + 'static;
    /// One result.
    type Output: Send + 'static;
    /// Why the model refuses an input ([`BatchModel::check`]) or fails a batch
    /// ([`BatchModel::run`]); callers get it inside [`crate::EngineError`].
    type Error: std::error::Error + Send + Sync + 'static;

    /// The device whose pool the workers lease their streams from.
    fn device(&self) -> &Device<Self::Backend>;

    /// Refuse an input that the model would refuse, before it is queued, so that a bad request
    /// fails alone instead of failing the batch it would have joined. The error is the
    /// caller's [`crate::EngineError::Invalid`].
    fn check(&self, input: &Self::Input) -> Result<(), Self::Error>;

    /// How many of the `available` queued requests (at least 1, at most the engine's
    /// `max_batch`) to run as one batch. Default: all of them. A model that pads batches to
    /// fixed sizes can take a size that pads nothing and leave the rest to the next worker.
    fn batch_size(&self, available: usize) -> usize {
        available
    }

    /// What `input` costs as a row of a batch, in the unit of [`EngineConfig::max_batch_tokens`]
    /// (a batch costs its rows × its costliest row): the tokens a sequence is padded to.
    /// Default: 1, so that the budget counts rows.
    ///
    /// [`EngineConfig::max_batch_tokens`]: crate::EngineConfig::max_batch_tokens
    fn padded_tokens(&self, input: &Self::Input) -> usize {
        let _ = input;
        1
    }

    /// Run `inputs` as one batch on `stream`: exactly one output per input, in order. An error
    /// goes to every request of the batch ([`crate::BatchFailure::Model`]).
    fn run(
        &self,
        stream: &<Self::Backend as Backend>::Stream,
        inputs: &[Self::Input],
    ) -> Result<Vec<Self::Output>, Self::Error>;

    /// After a batch failed on `stream`: whether the device still works. An error takes the
    /// device out of the engine (its batch's requests get [`crate::EngineError::DeviceFailed`],
    /// the other devices go on). Default: it does (`Ok`), so that only the batch fails. A
    /// backend whose faults are sticky (CUDA) fails a `synchronize` here.
    fn check_device(&self, stream: &<Self::Backend as Backend>::Stream) -> Result<(), Self::Error> {
        let _ = stream;
        Ok(())
    }
}
