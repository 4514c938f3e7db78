//! The engine's errors: [`EngineError`], and [`BatchFailure`] for why a batch failed.

use std::sync::Arc;
use std::time::Duration;

use streampool_core::PoolError;

/// Why a request got no result, or the engine did not start. `E` is the model's error type
/// ([`BatchModel::Error`](crate::BatchModel::Error)).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError<E> {
    /// The input was refused before it was queued (the model's check).
    #[error("invalid input: {0}")]
    Invalid(#[source] E),
    /// The queue stayed full for the whole submit timeout.
    #[error("engine overloaded: the queue of {capacity} requests stayed full for {waited:?}")]
    Overloaded {
        /// Requests the queue holds.
        capacity: usize,
        /// How long the submit waited.
        waited: Duration,
    },
    /// The batch this request ran in failed (every request of the batch gets this error, the
    /// same [`BatchFailure`] shared).
    #[error("the batch of {batch} failed: {cause}")]
    Batch {
        /// Requests in the batch.
        batch: usize,
        /// Why it failed.
        #[source]
        cause: BatchFailure<E>,
    },
    /// The engine stopped before the request could be queued.
    #[error("the engine has stopped")]
    Stopped,
    /// The request's batch failed and its device failed the check that followed
    /// ([`crate::BatchModel::check_device`]): the device takes no more batches, the engine's
    /// other devices go on.
    #[error("device {device} failed: {cause}")]
    DeviceFailed {
        /// The device's label (`cuda:1`).
        device: String,
        /// The batch's failure and the check's.
        cause: String,
    },
    /// Every device of the engine has failed: no request can run.
    #[error("every device of the engine has failed: {failures}")]
    NoDevice {
        /// Each device's label and why it failed.
        failures: String,
    },
    /// Starting the engine failed: a worker could not lease a stream of the pool (no free slot
    /// is [`PoolError::Exhausted`], after no wait).
    #[error("starting the engine on {device}: worker {worker} of {workers}: {source}")]
    Start {
        /// The device's label.
        device: String,
        /// The worker (1-based) that got no stream.
        worker: usize,
        /// Workers asked for.
        workers: usize,
        /// Why.
        source: PoolError,
    },
    /// Starting the engine failed: a worker's thread could not be spawned.
    #[error("starting the engine: spawning worker {worker}: {source}")]
    Spawn {
        /// The worker (1-based).
        worker: usize,
        /// The system's error (shared, so that the error stays `Clone`).
        source: Arc<std::io::Error>,
    },
}

/// Why a batch failed: given, shared, to every request of the batch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BatchFailure<E> {
    /// The model's error for the batch.
    #[error(transparent)]
    Model(Arc<E>),
    /// The model panicked; the panic's message.
    #[error("the model panicked: {0}")]
    Panicked(String),
    /// The model returned another number of results than it was given inputs.
    #[error("the model returned {outputs} results for {inputs} inputs")]
    OutputCount {
        /// Inputs of the batch.
        inputs: usize,
        /// Results returned.
        outputs: usize,
    },
}

// By hand: the derive would ask `E: Clone`, which sharing the model's error through an `Arc`
// does not need.
impl<E> Clone for BatchFailure<E> {
    fn clone(&self) -> Self {
        match self {
            Self::Model(e) => Self::Model(e.clone()),
            Self::Panicked(message) => Self::Panicked(message.clone()),
            &Self::OutputCount { inputs, outputs } => Self::OutputCount { inputs, outputs },
        }
    }
}
