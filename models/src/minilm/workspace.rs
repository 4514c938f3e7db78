//! MiniLM's per-slot workspace: one buffer per activation (ops refuse outputs that share a buffer
//! with an input), allocated on the slot's stream (the backend's per-stream pool: no device-wide
//! wait) the first time the slot runs a bucket that large, and reused after that.

use streampool_tensor::{DType, Layout, OpError, Ops, Tensor};

use crate::workspace::GrowBuffer;
use crate::ModelError;

/// Activations of a bucket (the fields of [`Activations`], `head` counting two).
const VIEWS: usize = 13;

/// The extents of one run's activations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Dims {
    /// Sequences.
    pub(crate) rows: usize,
    /// Tokens per sequence (padded).
    pub(crate) seq: usize,
    /// The encoder's width.
    pub(crate) hidden: usize,
    /// Width of the `qkv` rows: `3 * hidden` for BERT's fused projection; a Gemma encoder's
    /// query, key, value and normed query and key.
    pub(crate) qkv: usize,
    /// Width of the attention's output rows (`hidden`, or `heads * head_dim`).
    pub(crate) context: usize,
    /// Width of the `intermediate` rows (the feed-forward's; three times it for a gated one).
    pub(crate) inter: usize,
    /// The embedding's width (the last `Dense` module's output, else `hidden`).
    pub(crate) out: usize,
    /// The widest input or output of a `Dense` module; 0 without any.
    pub(crate) head: usize,
}

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
    /// `[batch, seq]` f32: `mask` less each sequence's prompt tokens, the positions pooled by a
    /// model whose pooling leaves the prompt out (`include_prompt: false`; unused otherwise).
    pub(crate) pool_mask: Tensor<B>,
    /// `[batch, seq, hidden]`: the encoder's running state. This and the rest: the model's
    /// storage type.
    pub(crate) hidden: Tensor<B>,
    /// `[batch, seq, qkv]`: query, key and value of each token side by side (BERT); a Gemma
    /// encoder's q, k, v and normed q, k, one after another ([`carve`]).
    pub(crate) qkv: Tensor<B>,
    /// `[batch, seq, context]`: the attention's output.
    pub(crate) context: Tensor<B>,
    /// `[batch, seq, hidden]`: a projection before its residual add + layer norm.
    pub(crate) projected: Tensor<B>,
    /// `[batch, seq, hidden]`: the attention block's output.
    pub(crate) attn_hidden: Tensor<B>,
    /// `[batch, seq, inter]`: the feed-forward's (a gated one's gate, up and product).
    pub(crate) intermediate: Tensor<B>,
    /// `[batch, out]`: the embeddings (pooled, through the `Dense` modules if any, then
    /// normalised in place).
    pub(crate) pooled: Tensor<B>,
    /// Flat `[batch * head]` each: the pooled rows and the `Dense` modules' outputs before the
    /// last, alternating between the two ([`Activations::head_view`]).
    pub(crate) head: [Tensor<B>; 2],
}

impl<B: Ops> Activations<B> {
    /// `head[i]`'s first `rows * width` values as `[rows, width]`.
    pub(crate) fn head_view(&self, i: usize, width: usize) -> Result<Tensor<B>, OpError> {
        let rows = self.pooled.shape()[0];
        Ok(self.head[i % 2].narrow(0, 0, rows * width)?.reshape(&[rows, width])?)
    }
}

impl<B: Ops> MiniLmWorkspace<B> {
    /// Views for `d.rows` sequences of `d.seq` tokens, float activations in `f` (allocating on
    /// `stream` only when this slot has not yet run a bucket this large).
    pub(crate) fn views(
        &mut self,
        stream: &B::Stream,
        d: Dims,
        f: DType,
    ) -> Result<Activations<B>, ModelError> {
        let Dims { rows: batch, seq, hidden, qkv, context, inter, out, head } = d;
        let u = DType::U32;
        let shapes: [(&[usize], DType); VIEWS] = [
            (&[batch, seq], u),
            (&[batch, seq], u),
            (&[batch, seq], DType::F32),
            (&[batch, seq], DType::F32),
            (&[batch, seq, hidden], f),
            (&[batch, seq, qkv], f),
            (&[batch, seq, context], f),
            (&[batch, seq, hidden], f),
            (&[batch, seq, hidden], f),
            (&[batch, seq, inter], f),
            (&[batch, out], f),
            (&[batch * head], f),
            (&[batch * head], f),
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
            pool_mask: view()?,
            hidden: view()?,
            qkv: view()?,
            context: view()?,
            projected: view()?,
            attn_hidden: view()?,
            intermediate: view()?,
            pooled: view()?,
            head: [view()?, view()?],
        })
    }

    /// Elements (4-byte units) held by this workspace.
    pub(crate) fn capacity(&self) -> usize {
        self.buffers.iter().map(GrowBuffer::capacity).sum()
    }
}

/// The contiguous `shape` view of `t`'s elements from `offset` on (`t` contiguous): a part of
/// a workspace buffer used as a tensor of its own.
pub(crate) fn carve<B: Ops>(
    t: &Tensor<B>,
    offset: usize,
    shape: &[usize],
) -> Result<Tensor<B>, OpError> {
    let len = shape.iter().product();
    Ok(t.reshape(&[t.numel()])?.narrow(0, offset, len)?.reshape(shape)?)
}
