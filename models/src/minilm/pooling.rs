//! sentence-transformers' head: pooling of the token embeddings (mean over the unmasked
//! tokens, the first token, the maximum, the last token, the mean weighted by position, or the
//! mean scaled by the square root of the count), then the `Dense` modules if any, then L2
//! normalisation where the model has a `Normalize` module.

use streampool_tensor::{DType, OpError, Ops, PoolKind, Tensor};

use super::weights::DenseWeights;
use super::workspace::Activations;
use crate::loading::PoolingMode;
use crate::ModelError;

/// The pooling a model runs on the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) pooling: PoolingMode,
    pub(crate) normalize: bool,
    /// Whether the pooling reads `pool_mask` (prompt tokens left out) rather than `mask`.
    pub(crate) skips_prompt: bool,
}

impl Head {
    /// The head of a model with `pooling` (every sentence-transformers mode runs); the prompt's
    /// tokens are pooled unless `include_prompt` is false.
    pub(crate) fn new(pooling: PoolingMode, normalize: bool, include_prompt: bool) -> Self {
        Self { pooling, normalize, skips_prompt: !include_prompt }
    }

    /// What the host still has to do to pooled row of a sequence of `tokens` tokens: mean
    /// pooling scaled by the square root of the count, when no normalisation (which makes the
    /// scale moot) follows.
    pub(crate) fn host_scale(self, tokens: usize) -> Option<f32> {
        (self.pooling == PoolingMode::MeanSqrtLen && !self.normalize)
            .then(|| (tokens as f32).sqrt())
    }
}

/// `a.pooled = [normalize](dense(pool(source)))`, `source` (`[batch, seq, hidden]`: the
/// encoder's output) pooled as `head` says, then through the `Dense` modules in order (their
/// intermediate results in `a.head`).
pub(crate) fn pool<B: Ops>(
    stream: &B::Stream,
    a: &Activations<B>,
    source: &Tensor<B>,
    head: Head,
    dense: &[DenseWeights<B>],
) -> Result<(), ModelError> {
    let mask = if head.skips_prompt { &a.pool_mask } else { &a.mask };
    let Some((last, first)) = dense.split_last() else {
        pool_into(stream, source, head.pooling, mask, &a.pooled)?;
        return normalize(stream, a, head);
    };
    let hidden = source.shape().last().copied().unwrap_or(0);
    let mut x = a.head_view(0, hidden)?;
    pool_into(stream, source, head.pooling, mask, &x)?;
    for (i, d) in first.iter().enumerate() {
        let out = a.head_view(i + 1, d.weight.shape()[0])?;
        B::linear(stream, &x, &d.weight, d.bias.as_ref(), d.act, &out)?;
        x = out;
    }
    B::linear(stream, &x, &last.weight, last.bias.as_ref(), last.act, &a.pooled)?;
    normalize(stream, a, head)
}

/// L2-normalises `a.pooled` in place if the model has a `Normalize` module.
fn normalize<B: Ops>(stream: &B::Stream, a: &Activations<B>, head: Head) -> Result<(), ModelError> {
    if head.normalize {
        B::l2_normalize(stream, &a.pooled, &a.pooled)?;
    }
    Ok(())
}

/// `pooled` (`[batch, hidden]`) = `hidden` pooled as `mode` says over the positions where
/// `mask` is 1 (CLS: the first row, whatever the mask).
fn pool_into<B: Ops>(
    stream: &B::Stream,
    hidden: &Tensor<B>,
    mode: PoolingMode,
    mask: &Tensor<B>,
    pooled: &Tensor<B>,
) -> Result<(), ModelError> {
    match mode {
        PoolingMode::Cls => {
            let [rows, _, dim] = hidden.shape()[..] else {
                return Err(ModelError::Op(OpError::Shape {
                    op: "cls pooling",
                    reason: format!("hidden states of shape {:?}", hidden.shape()),
                }));
            };
            let first = hidden.narrow(1, 0, 1).map_err(OpError::from)?;
            let pooled = pooled.reshape(&[rows, 1, dim]).map_err(OpError::from)?;
            B::copy_strided(stream, &first, &pooled)?;
        }
        PoolingMode::Max => B::pool(stream, hidden, Some(mask), PoolKind::Max, pooled)?,
        PoolingMode::LastToken => B::pool(stream, hidden, Some(mask), PoolKind::LastToken, pooled)?,
        PoolingMode::WeightedMean => {
            B::pool(stream, hidden, Some(mask), PoolKind::WeightedMean, pooled)?
        }
        // The mean; the square root's scale is the host's (`Head::host_scale`).
        _ => B::mean_pool(stream, hidden, Some(mask), pooled)?,
    }
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
