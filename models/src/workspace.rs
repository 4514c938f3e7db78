//! Per-slot workspaces: activation buffers cached per stream slot, so repeated calls on a slot
//! allocate nothing once its buffers are large enough.

use std::sync::{Mutex, MutexGuard};

use streampool_core::Device;
use streampool_tensor::{DType, Layout, Ops, Tensor};

use crate::ModelError;

/// One workspace per pool slot, each behind its own lock.
pub struct SlotWorkspaces<W> {
    /// Index = stream slot. Each mutex guards that slot's workspace only: it is uncontended
    /// unless two threads use the same stream at once (then they take turns).
    slots: Vec<Mutex<W>>,
}

impl<W: Default> SlotWorkspaces<W> {
    /// Empty workspaces for a pool of `capacity` slots.
    pub fn new(capacity: usize) -> Self {
        Self { slots: (0..capacity).map(|_| Mutex::new(W::default())).collect() }
    }

    /// Locks slot `slot`'s workspace.
    pub fn lock(&self, slot: usize) -> Result<MutexGuard<'_, W>, ModelError> {
        let capacity = self.slots.len();
        let m = self.slots.get(slot).ok_or(ModelError::SlotOutOfRange { slot, capacity })?;
        // A panic while holding the lock leaves only scratch data behind: keep using it.
        Ok(m.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// A device buffer that grows to the largest size asked of it and hands out contiguous views
/// at its start.
pub struct GrowBuffer<B: Ops> {
    buffer: Option<B::Buffer>,
    elements: usize,
}

impl<B: Ops> Default for GrowBuffer<B> {
    fn default() -> Self {
        Self { buffer: None, elements: 0 }
    }
}

impl<B: Ops> GrowBuffer<B> {
    /// A contiguous `dtype` view of `shape` at the start of the buffer, reallocating when it is
    /// too small. Views handed out earlier stay valid (they keep the old buffer alive).
    pub fn view(
        &mut self,
        device: &Device<B>,
        shape: &[usize],
        dtype: DType,
    ) -> Result<Tensor<B>, ModelError> {
        let layout = Layout::contiguous(shape)?;
        // Counted in 4-byte units, the size of every dtype the models use.
        let needed = layout.numel() * dtype.size().div_ceil(4);
        let buffer = match &self.buffer {
            Some(b) if self.elements >= needed => b.clone(),
            _ => {
                let b = device.alloc(needed.max(1) * 4)?;
                self.buffer = Some(b.clone());
                self.elements = needed;
                b
            }
        };
        Ok(Tensor::from_parts(buffer, layout, dtype)?)
    }

    /// The buffer, holding at least `elements` 4-byte units: reallocated on `stream` (from the
    /// backend's per-stream pool, [`Ops::stream_alloc`]: no device-wide wait) when too small,
    /// else the one it already has. Views made from an earlier buffer stay valid (they keep it
    /// alive); the workspace must then be used on `stream` alone.
    pub fn reserve(
        &mut self,
        stream: &B::Stream,
        elements: usize,
    ) -> Result<B::Buffer, ModelError> {
        match &self.buffer {
            Some(b) if self.elements >= elements => Ok(b.clone()),
            _ => {
                let b = B::stream_alloc(stream, elements.max(1) * 4)?;
                self.buffer = Some(b.clone());
                self.elements = elements;
                Ok(b)
            }
        }
    }

    /// Elements (4-byte units) currently allocated.
    pub fn capacity(&self) -> usize {
        self.elements
    }
}
