//! MiniLM's per-slot workspace: one buffer per activation (ops refuse outputs that share a buffer
//! with an input), allocated on the slot's stream (the backend's per-stream pool: no device-wide
//! wait) the first time the slot runs a bucket that large, and reused after that.

use streampool_tensor::{DType, Layout, OpError, Ops, Tensor};

use crate::workspace::GrowBuffer;
use crate::ModelError;

/// Activations of a bucket (the fields of [`Activations`]).
const VIEWS: usize = 10;

/// The buffers of one slot, one per activation. Grown to the largest (batch, seq) bucket the
/// slot has run.
pub(crate) struct MiniLmWorkspace<B: Ops> {
    buffers: [GrowBuffer<B>; VIEWS],
}

impl<B: Ops> Default for MiniLmWorkspace<B> {
    fn default() -> Self {
        Self { buffers: std::array::from_fn(|_| GrowBuffer::default()) }
    }
}

/// Views of the workspace for one `[batch, seq]` bucket.
pub(crate) struct Activations<B: Ops> {
    /// `[batch, seq]` u32 token ids (padding: 0).
    pub(crate) ids: Tensor<B>,
    /// `[batch, seq]` u32 segment ids.
    pub(crate) type_ids: Tensor<B>,
    /// `[batch, seq]` f32, 1 for tokens, 0 for padding.
    pub(crate) mask: Tensor<B>,
    /// `[batch, seq, hidden]`: the encoder's running state. This and the rest: the model's
    /// storage type.
    pub(crate) hidden: Tensor<B>,
    /// `[batch, seq, 3 * hidden]`: query, key and value of each token side by side.
    pub(crate) qkv: Tensor<B>,
    /// `[batch, seq, hidden]`: the attention's output.
    pub(crate) context: Tensor<B>,
    /// `[batch, seq, hidden]`: a projection before its residual add + layer norm.
    pub(crate) projected: Tensor<B>,
    /// `[batch, seq, hidden]`: the attention block's output.
    pub(crate) attn_hidden: Tensor<B>,
    /// `[batch, seq, intermediate]`.
    pub(crate) intermediate: Tensor<B>,
    /// `[batch, hidden]`: pooled, then normalised in place.
    pub(crate) pooled: Tensor<B>,
}

impl<B: Ops> MiniLmWorkspace<B> {
    /// Views for `batch` sequences of `seq` tokens, float activations in `f` (allocating on
    /// `stream` only when this slot has not yet run a bucket this large).
    pub(crate) fn views(
        &mut self,
        stream: &B::Stream,
        [batch, seq, hidden, inter]: [usize; 4],
        f: DType,
    ) -> Result<Activations<B>, ModelError> {
        let u = DType::U32;
        let shapes: [(&[usize], DType); VIEWS] = [
            (&[batch, seq], u),
            (&[batch, seq], u),
            (&[batch, seq], DType::F32),
            (&[batch, seq, hidden], f),
            (&[batch, seq, 3 * hidden], f),
            (&[batch, seq, hidden], f),
            (&[batch, seq, hidden], f),
            (&[batch, seq, hidden], f),
            (&[batch, seq, inter], f),
            (&[batch, hidden], f),
        ];
        let mut views = Vec::with_capacity(VIEWS);
        for (buffer, (shape, dtype)) in self.buffers.iter_mut().zip(shapes) {
            // The buffers count 4-byte units.
            let units = (shape.iter().product::<usize>() * dtype.size()).div_ceil(4);
            let buffer = buffer.reserve(stream, units)?;
            views.push(Tensor::from_parts(buffer, Layout::contiguous(shape)?, dtype)?);
        }
        let mut views = views.into_iter();
        let mut view = || {
            views.next().ok_or_else(|| {
                ModelError::Op(OpError::Shape {
                    op: "workspace",
                    reason: "internal: too few views".into(),
                })
            })
        };
        Ok(Activations {
            ids: view()?,
            type_ids: view()?,
            mask: view()?,
            hidden: view()?,
            qkv: view()?,
            context: view()?,
            projected: view()?,
            attn_hidden: view()?,
            intermediate: view()?,
            pooled: view()?,
        })
    }

    /// Elements (4-byte units) held by this workspace.
    pub(crate) fn capacity(&self) -> usize {
        self.buffers.iter().map(GrowBuffer::capacity).sum()
    }
}
