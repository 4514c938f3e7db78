//! A stream's command buffer being encoded, created lazily, and the count of those committed.
//! Everything here runs under the owning stream's lock (`MetalStream::commands`); committed
//! buffers leave it at once, for the stream's completion thread (completion.rs).
//!
//! Compute encoders do not live here at all: every kernel is encoded with an encoder of its own,
//! created, used and ended within one call ([`Commands::encode_kernel`]), so no encoder is ever
//! open between calls, nor while the stream's lock is not held.

use std::sync::Arc;

use objc2::rc::autoreleasepool;
use objc2::runtime::ProtocolObject;
use objc2_metal::{
    MTLCommandBuffer, MTLCommandEncoder, MTLCommandQueue, MTLComputeCommandEncoder, MTLDispatchType,
};
use streampool_core::{submitter, BackendError, Submitter};

use crate::completion::{CommandBuffer, Completion, Tracker};
use crate::encoders::EncoderPermit;
use crate::error;

/// Kernels encoded into one command buffer before it is committed, so the GPU starts on long
/// runs of work without waiting for a `synchronize` or `record`.
const MAX_DISPATCHES: usize = 64;

/// Committed command buffers a stream may have uncompleted before it opens another: at this
/// count an op first waits (holding no lock) for the oldest to complete. Well below the queue's
/// own limit (`QUEUE_CAPACITY` in stream.rs), so that `commandBuffer` never blocks.
pub(crate) const MAX_IN_FLIGHT: u64 = 16;

/// Guarded by `MetalStream::commands` (see there).
pub(crate) struct Commands {
    /// The command buffer being encoded: created by the first op after a commit.
    open: Option<CommandBuffer>,
    /// Kernels encoded into `open`.
    dispatches: usize,
    /// The threads that encoded into `open`, each once: a failure of the buffer is theirs.
    open_submitters: Vec<Submitter>,
    /// Buffers committed so far; the last one is number `committed`.
    committed: u64,
    /// Last value of the stream's hold gate (hold.rs) that a command buffer signals or waits for.
    pub(crate) gate_value: u64,
}

// SAFETY: a command buffer is not thread-safe, but it is not bound to the thread that made it
// either: Metal's multithreaded encoding encodes on worker threads and commits from another.
// `Commands` lives only inside its stream's `Mutex`, so one thread at a time touches it; moving
// it between threads (which `Send` allows) is all the mutex needs.
unsafe impl Send for Commands {}

impl Commands {
    pub(crate) fn new() -> Self {
        Self { open: None, dispatches: 0, open_submitters: Vec::new(), committed: 0, gate_value: 0 }
    }

    /// Number of the last buffer committed (0: none yet).
    pub(crate) fn committed(&self) -> u64 {
        self.committed
    }

    /// `None` if an op may go on now; `Some(n)`: opening a buffer now would pass
    /// [`MAX_IN_FLIGHT`], so the op must first wait (without the stream's lock) for buffer
    /// number `n` to complete. Never blocks.
    // MPS lesson: `commandBuffer` blocks at the queue's limit of uncompleted buffers; never let
    // that happen under the stream's lock.
    pub(crate) fn room(&self, tracker: &Tracker) -> Option<u64> {
        if self.open.is_some() {
            return None;
        }
        let uncompleted = self.committed.saturating_sub(tracker.completed());
        (uncompleted >= MAX_IN_FLIGHT).then(|| self.committed + 1 - MAX_IN_FLIGHT)
    }

    /// The open command buffer, created if there is none (the caller made room: [`Self::room`]).
    pub(crate) fn open_buffer(
        &mut self,
        queue: &ProtocolObject<dyn MTLCommandQueue>,
    ) -> Result<&CommandBuffer, BackendError> {
        let me = submitter();
        if !self.open_submitters.contains(&me) {
            self.open_submitters.push(me);
        }
        let buffer = match self.open.take() {
            Some(buffer) => buffer,
            // MPS lesson: command buffers are created lazily per stream under that stream's
            // lock (never shared, never created unlocked). The queue has room (see `room`), so
            // this does not block.
            None => autoreleasepool(|_| queue.commandBuffer())
                .ok_or_else(|| error::nil("commandBuffer"))?,
        };
        Ok(self.open.insert(buffer))
    }

    /// Encode one kernel with an encoder of its own: create it on the open command buffer (or a
    /// new one), let `encode` set the pipeline, the arguments and the dispatch, and end it.
    /// `_permit` is the device's encoder permit, taken before the stream's lock.
    ///
    /// Serial dispatch: the kernel runs after the encoder's earlier work; across encoders of a
    /// buffer (and buffers of the queue) Metal orders work on the same buffers (all are
    /// hazard-tracked), so the stream's ops see each other's results in submission order.
    pub(crate) fn encode_kernel(
        &mut self,
        queue: &ProtocolObject<dyn MTLCommandQueue>,
        _permit: &EncoderPermit<'_>,
        encode: impl FnOnce(&ProtocolObject<dyn MTLComputeCommandEncoder>),
    ) -> Result<(), BackendError> {
        let buffer = self.open_buffer(queue)?;
        // MPS lesson: one short-lived encoder per op (create, encode, end) under the device
        // permit and the stream lock, so no encoder is ever left open between calls.
        let encoder = autoreleasepool(|_| {
            buffer.computeCommandEncoderWithDispatchType(MTLDispatchType::Serial)
        })
        .ok_or_else(|| error::nil("computeCommandEncoderWithDispatchType"))?;
        encode(&encoder);
        // Metal asserts when an encoder is released before `endEncoding`: end it on every path.
        encoder.endEncoding();
        self.dispatches += 1;
        Ok(())
    }

    /// After an op: commit the buffer once it holds [`MAX_DISPATCHES`] kernels.
    pub(crate) fn commit_if_full(&mut self, tracker: &Tracker) {
        if self.dispatches >= MAX_DISPATCHES {
            self.commit(tracker);
        }
    }

    /// Commit the open command buffer, if any, and hand it to the completion thread; returns
    /// its completion record. Never blocks.
    pub(crate) fn commit(&mut self, tracker: &Tracker) -> Option<Arc<Completion>> {
        let buffer = self.open.take()?;
        buffer.commit();
        self.dispatches = 0;
        self.committed += 1;
        let submitters = std::mem::take(&mut self.open_submitters);
        // MPS lesson: do not retain completed command buffers: from here on only the completion
        // thread holds the buffer, and drops it as soon as it completes.
        Some(tracker.submit(self.committed, buffer, submitters))
    }
}
