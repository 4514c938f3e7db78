//! [`ModelError`]: everything that can go wrong loading or running a model.

use streampool_core::{BackendError, PoolError};
use streampool_tensor::OpError;

use crate::loading;

/// An error from loading or running a model ([`crate::MiniLm`], [`crate::Mlp`],
/// [`crate::Conv1dNet`]). Input mistakes are reported before any work is submitted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// Reading the model files failed (missing, truncated, corrupt, wrong shape, ...).
    #[error(transparent)]
    Load(#[from] loading::LoadError),
    /// Downloading the model failed.
    #[error(transparent)]
    Fetch(#[from] loading::fetch::FetchError),
    /// `embed` or `forward` was called with nothing to compute.
    #[error("empty batch: pass at least one input")]
    EmptyBatch,
    /// A pre-tokenised input the model cannot take.
    #[error("input {index}: {reason}")]
    InvalidInput {
        /// Position of the input in the batch.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// Host input whose length does not match the shape asked for.
    #[error("input has {found} values, expected {expected} ({shape})")]
    InputLength {
        /// Values the shape needs.
        expected: usize,
        /// Values given.
        found: usize,
        /// The shape, in words.
        shape: String,
    },
    /// A model file describes a model this runtime does not run.
    #[error("unsupported model {what}: {reason}")]
    Unsupported {
        /// Which file or setting.
        what: String,
        /// Why.
        reason: String,
    },
    /// The stream belongs to a slot the model has no workspace for (another device's stream).
    #[error("stream slot {slot} is out of range: the model was loaded for a pool of {capacity}")]
    SlotOutOfRange {
        /// The stream's slot.
        slot: usize,
        /// Slots the model was loaded for.
        capacity: usize,
    },
    /// An op was refused.
    #[error(transparent)]
    Op(#[from] OpError),
    /// The device failed (allocation, or work that failed on the stream).
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// No stream could be acquired (while loading).
    #[error(transparent)]
    Pool(#[from] PoolError),
}

impl From<streampool_tensor::ViewError> for ModelError {
    fn from(e: streampool_tensor::ViewError) -> Self {
        Self::Op(e.into())
    }
}
