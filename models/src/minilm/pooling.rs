//! sentence-transformers' head for all-MiniLM-L6-v2: masked mean over tokens, then L2
//! normalisation.

use streampool_tensor::Ops;

use super::workspace::Activations;
use crate::ModelError;

/// `a.pooled = normalize(mean over unmasked tokens of a.hidden)`.
pub(crate) fn pool<B: Ops>(stream: &B::Stream, a: &Activations<B>) -> Result<(), ModelError> {
    B::mean_pool(stream, &a.hidden, Some(&a.mask), &a.pooled)?;
    B::l2_normalize(stream, &a.pooled, &a.pooled)?;
    Ok(())
}
