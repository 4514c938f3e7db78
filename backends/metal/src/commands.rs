//! A stream's command buffers: the one being encoded (with its compute encoder), both created
//! lazily, and the committed ones not yet seen complete. Everything here runs under the owning
//! stream's lock (`MetalStream::commands`); only [`Committed`] handles leave it.
//!
//! Metal returns command buffers, encoders and error strings autoreleased: each such call runs in
//! its own autorelease pool, so that threads that live long and never drain a pool (stream
//! owners, the pool's workers) do not accumulate them.

use std::collections::VecDeque;

use objc2::rc::{autoreleasepool, Retained};
use objc2::runtime::ProtocolObject;
use objc2_metal::{
    MTLCommandBuffer, MTLCommandBufferStatus, MTLCommandEncoder, MTLCommandQueue,
    MTLComputeCommandEncoder, MTLDispatchType,
};
use streampool_core::{submitter, BackendError, Failures, Submitter};

use crate::error;

/// Dispatches encoded into one command buffer before it is committed, so the GPU starts on long
/// runs of work without waiting for a `synchronize` or `record`.
const MAX_DISPATCHES: usize = 64;

type CommandBuffer = Retained<ProtocolObject<dyn MTLCommandBuffer>>;
type Encoder = Retained<ProtocolObject<dyn MTLComputeCommandEncoder>>;

/// A committed command buffer: only its completion is asked about from now on.
#[derive(Clone)]
pub(crate) struct Committed(CommandBuffer);

// SAFETY: a command buffer is not thread-safe while it is being *encoded*; a `Committed` one is
// never encoded again (no method here encodes). What remains — `status`, `error`,
// `GPUEndTime`, `waitUntilCompleted` — are queries of its completion that Metal answers from any
// thread (completion handlers run on Metal's own threads and read them), and retain/release are
// atomic.
unsafe impl Send for Committed {}
// SAFETY: as for `Send`: every method on `&Committed` is one of those thread-safe queries;
// concurrent `waitUntilCompleted` calls from several threads each return at completion.
unsafe impl Sync for Committed {}

impl Committed {
    /// Block until the GPU has finished (or failed) the buffer.
    pub(crate) fn wait(&self) {
        self.0.waitUntilCompleted();
    }

    /// Whether the GPU has finished the buffer successfully; `Err` with Metal's message if it
    /// failed. Never blocks.
    pub(crate) fn done(&self) -> Result<bool, String> {
        let status = self.0.status();
        if status == MTLCommandBufferStatus::Error {
            return Err(self.failure_message());
        }
        Ok(status == MTLCommandBufferStatus::Completed)
    }

    /// When the GPU finished the buffer (host seconds; `0.0` until the CPU has been told).
    pub(crate) fn gpu_end_time(&self) -> f64 {
        self.0.GPUEndTime()
    }

    fn failure_message(&self) -> String {
        autoreleasepool(|_| match self.0.error() {
            Some(e) => e.localizedDescription().to_string(),
            None => "command buffer failed (Metal gave no error)".into(),
        })
    }
}

/// Guarded by `MetalStream::commands` (see there).
pub(crate) struct Commands {
    /// The command buffer being encoded: created at the first op after a commit.
    open: Option<CommandBuffer>,
    /// `open`'s compute encoder: created at the first dispatch, ended before a commit and before
    /// an event signal or wait is encoded (Metal allows those only with no encoder open).
    encoder: Option<Encoder>,
    /// Dispatches encoded into `open`.
    dispatches: usize,
    /// The threads that encoded into `open`, each once: a failure of the buffer is theirs.
    open_submitters: Vec<Submitter>,
    /// Committed buffers not yet seen complete, oldest first, with the threads that encoded them.
    in_flight: VecDeque<(Committed, Vec<Submitter>)>,
    /// Failures of completed buffers, kept for their submitters ([`Failures`]).
    failures: Failures,
    /// Last value of the stream's hold gate (hold.rs) that a command buffer signals or waits for.
    pub(crate) gate_value: u64,
}

// SAFETY: command buffers and encoders are not thread-safe, but they are not bound to the thread
// that made them either: Metal's multithreaded encoding encodes on worker threads and commits
// from another. `Commands` lives only inside its stream's `Mutex`, so one thread at a time
// touches it; moving it between threads (which `Send` allows) is all the mutex needs.
unsafe impl Send for Commands {}

impl Commands {
    pub(crate) fn new() -> Self {
        Self {
            open: None,
            encoder: None,
            dispatches: 0,
            open_submitters: Vec::new(),
            in_flight: VecDeque::new(),
            failures: Failures::default(),
            gate_value: 0,
        }
    }

    /// The open command buffer, created if there is none.
    fn open_buffer(
        &mut self,
        queue: &ProtocolObject<dyn MTLCommandQueue>,
    ) -> Result<&CommandBuffer, BackendError> {
        let me = submitter();
        if !self.open_submitters.contains(&me) {
            self.open_submitters.push(me);
        }
        if self.open.is_none() {
            // Blocks while the queue has its maximum of uncompleted buffers (64): back-pressure.
            let buffer = autoreleasepool(|_| queue.commandBuffer())
                .ok_or_else(|| error::nil("commandBuffer"))?;
            self.open = Some(buffer);
        }
        Ok(self.open.as_ref().expect("invariant: set just above"))
    }

    /// The compute encoder of the open command buffer, both created if needed. Serial dispatch:
    /// each dispatch starts after the previous one has finished, so the ops of one stream run in
    /// submission order even when they touch no common buffer.
    pub(crate) fn encoder(
        &mut self,
        queue: &ProtocolObject<dyn MTLCommandQueue>,
    ) -> Result<&Encoder, BackendError> {
        if self.encoder.is_none() {
            let buffer = self.open_buffer(queue)?;
            let encoder = autoreleasepool(|_| {
                buffer.computeCommandEncoderWithDispatchType(MTLDispatchType::Serial)
            })
            .ok_or_else(|| error::nil("computeCommandEncoder"))?;
            self.encoder = Some(encoder);
        }
        Ok(self.encoder.as_ref().expect("invariant: set just above"))
    }

    /// Count a dispatch just encoded; commit the buffer once it holds [`MAX_DISPATCHES`].
    pub(crate) fn dispatched(&mut self) {
        self.dispatches += 1;
        if self.dispatches >= MAX_DISPATCHES {
            self.commit();
        }
    }

    /// The open command buffer with no encoder open, ready for an event signal or wait.
    pub(crate) fn between_encoders(
        &mut self,
        queue: &ProtocolObject<dyn MTLCommandQueue>,
    ) -> Result<&CommandBuffer, BackendError> {
        self.end_encoder();
        self.open_buffer(queue)
    }

    fn end_encoder(&mut self) {
        if let Some(encoder) = self.encoder.take() {
            encoder.endEncoding();
        }
    }

    /// Commit the open command buffer, if any; returns it.
    pub(crate) fn commit(&mut self) -> Option<Committed> {
        self.end_encoder();
        let buffer = self.open.take()?;
        buffer.commit();
        self.dispatches = 0;
        let committed = Committed(buffer);
        let submitters = std::mem::take(&mut self.open_submitters);
        self.in_flight.push_back((committed.clone(), submitters));
        self.reap();
        Some(committed)
    }

    /// The committed buffers not yet seen complete, oldest first.
    pub(crate) fn in_flight(&self) -> Vec<Committed> {
        self.in_flight.iter().map(|(buffer, _)| buffer.clone()).collect()
    }

    /// Forget the buffers that have completed, keeping each failure for the threads that
    /// encoded the buffer. Never blocks.
    pub(crate) fn reap(&mut self) {
        while let Some((oldest, submitters)) = self.in_flight.front() {
            match oldest.done() {
                Ok(false) => break,
                Ok(true) => {}
                Err(message) => {
                    for &s in submitters {
                        self.failures.record(s, message.clone());
                    }
                }
            }
            self.in_flight.pop_front();
        }
    }

    /// For the calling thread's submissions: report (once) a failure of work it submitted.
    pub(crate) fn take_failure(&mut self, slot: usize) -> Result<(), BackendError> {
        self.reap();
        self.failures.take_own(slot)
    }

    /// For a synchronize: the caller's own failure (taken), else another thread's (kept).
    pub(crate) fn check_failures(&mut self, slot: usize) -> Result<(), BackendError> {
        self.reap();
        self.failures.check(slot)
    }
}

impl Drop for Commands {
    fn drop(&mut self) {
        // Metal asserts when an encoder is released before `endEncoding`; and work already
        // submitted to the stream still runs, as on the other backends.
        self.commit();
    }
}
