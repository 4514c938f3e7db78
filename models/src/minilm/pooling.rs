//! sentence-transformers' head for all-MiniLM-L6-v2: masked mean over tokens, then L2
//! normalisation.

use streampool_tensor::{DType, OpError, Ops, Tensor};

use super::workspace::Activations;
use crate::ModelError;

/// `a.pooled = normalize(mean over unmasked tokens of a.hidden)`.
pub(crate) fn pool<B: Ops>(stream: &B::Stream, a: &Activations<B>) -> Result<(), ModelError> {
    B::mean_pool(stream, &a.hidden, Some(&a.mask), &a.pooled)?;
    B::l2_normalize(stream, &a.pooled, &a.pooled)?;
    Ok(())
}

/// The pooled rows on the host as f32, whatever the storage type (waits for `stream`).
pub(crate) fn to_host<B: Ops>(stream: &B::Stream, pooled: &Tensor<B>) -> Result<Vec<f32>, OpError> {
    let mut bytes = vec![0u8; pooled.numel() * pooled.dtype().size()];
    pooled.read_host(stream, pooled.dtype(), &mut bytes)?;
    Ok(widen(pooled.dtype(), &bytes))
}

/// Elements of `dtype` (native byte order) as f32.
pub(crate) fn widen(dtype: DType, bytes: &[u8]) -> Vec<f32> {
    let two = |b: &[u8]| [b[0], b[1]];
    match dtype {
        DType::F16 => {
            bytes.chunks_exact(2).map(|b| half::f16::from_ne_bytes(two(b)).to_f32()).collect()
        }
        DType::BF16 => {
            bytes.chunks_exact(2).map(|b| half::bf16::from_ne_bytes(two(b)).to_f32()).collect()
        }
        DType::F32 | DType::U32 => {
            bytes.chunks_exact(4).map(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]])).collect()
        }
    }
}
