//! The engine's errors.

use std::time::Duration;

/// Why a request got no result.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum EngineError {
    /// The input was refused before it was queued (the model's check).
    #[error("invalid input: {0}")]
    Invalid(String),
    /// The queue stayed full for the whole submit timeout.
    #[error("engine overloaded: the queue of {capacity} requests stayed full for {waited:?}")]
    Overloaded {
        /// Requests the queue holds.
        capacity: usize,
        /// How long the submit waited.
        waited: Duration,
    },
    /// The batch this request ran in failed (every request of the batch gets this error).
    #[error("the batch of {batch} failed: {message}")]
    Batch {
        /// Requests in the batch.
        batch: usize,
        /// The model's error, or the panic message.
        message: String,
    },
    /// The engine stopped before the request could be queued.
    #[error("the engine has stopped")]
    Stopped,
    /// Starting the engine failed (a worker could not lease a stream).
    #[error("starting the engine: {0}")]
    Start(String),
}
