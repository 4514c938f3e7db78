//! MiniLM's per-slot workspace: one growable buffer per activation.

use streampool_core::Device;
use streampool_tensor::{DType, Ops, Tensor};

use crate::workspace::Arena;
use crate::ModelError;

/// The buffers of one slot. Grown to the largest (batch, seq) bucket the slot has run.
pub(crate) struct MiniLmWorkspace<B: Ops> {
    ids: Arena<B>,
    type_ids: Arena<B>,
    mask: Arena<B>,
    hidden: Arena<B>,
    q: Arena<B>,
    k: Arena<B>,
    v: Arena<B>,
    context: Arena<B>,
    projected: Arena<B>,
    attn_hidden: Arena<B>,
    intermediate: Arena<B>,
    pooled: Arena<B>,
}

impl<B: Ops> Default for MiniLmWorkspace<B> {
    fn default() -> Self {
        Self {
            ids: Arena::default(),
            type_ids: Arena::default(),
            mask: Arena::default(),
            hidden: Arena::default(),
            q: Arena::default(),
            k: Arena::default(),
            v: Arena::default(),
            context: Arena::default(),
            projected: Arena::default(),
            attn_hidden: Arena::default(),
            intermediate: Arena::default(),
            pooled: Arena::default(),
        }
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
    /// `[batch, seq, hidden]`: the encoder's running state.
    pub(crate) hidden: Tensor<B>,
    pub(crate) q: Tensor<B>,
    pub(crate) k: Tensor<B>,
    pub(crate) v: Tensor<B>,
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
    /// Views for `batch` sequences of `seq` tokens (allocating only when this slot has not yet
    /// run a bucket this large).
    pub(crate) fn views(
        &mut self,
        device: &Device<B>,
        [batch, seq, hidden, inter]: [usize; 4],
    ) -> Result<Activations<B>, ModelError> {
        let tokens = [batch, seq];
        let states = [batch, seq, hidden];
        let f = DType::F32;
        Ok(Activations {
            ids: self.ids.view(device, &tokens, DType::U32)?,
            type_ids: self.type_ids.view(device, &tokens, DType::U32)?,
            mask: self.mask.view(device, &tokens, f)?,
            hidden: self.hidden.view(device, &states, f)?,
            q: self.q.view(device, &states, f)?,
            k: self.k.view(device, &states, f)?,
            v: self.v.view(device, &states, f)?,
            context: self.context.view(device, &states, f)?,
            projected: self.projected.view(device, &states, f)?,
            attn_hidden: self.attn_hidden.view(device, &states, f)?,
            intermediate: self.intermediate.view(device, &[batch, seq, inter], f)?,
            pooled: self.pooled.view(device, &[batch, hidden], f)?,
        })
    }

    /// Elements (4-byte units) held by this workspace.
    pub(crate) fn capacity(&self) -> usize {
        [
            &self.ids,
            &self.type_ids,
            &self.mask,
            &self.hidden,
            &self.q,
            &self.k,
            &self.v,
            &self.context,
            &self.projected,
            &self.attn_hidden,
            &self.intermediate,
            &self.pooled,
        ]
        .iter()
        .map(|a| a.capacity())
        .sum()
    }
}
