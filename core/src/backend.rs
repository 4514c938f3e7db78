//! The contract every backend (CPU, CUDA, Metal) keeps. The core is generic over it and never
//! names a concrete backend.
//!
//! Semantics a backend must keep (the conformance tests in `streampool-cpu` and the CUDA backend
//! check them):
//! - work on one stream runs in submission order; any thread may submit to a stream it can
//!   reach (several at once included, see [`Stream`]): each submitter's own work runs in the
//!   order it submitted it, the interleaving between submitters is unspecified, and no work is
//!   lost;
//! - an event recorded on stream A and waited on by stream B orders B's later work after A's
//!   earlier work (the wait refers to the last record made before the wait call);
//! - [`Event::synchronize`] blocks the host until the recorded work is done, [`Event::query`]
//!   never blocks;
//! - [`Event::elapsed_since`] works only when both events were created with timing, and otherwise
//!   returns [`EventError::TimingDisabled`] at once: it never blocks;
//! - [`Stream::synchronize`] waits for all work submitted to that stream before the call, by
//!   every submitter, and is safe to call from any thread while others keep submitting;
//! - a failure of enqueued work is never lost ([`crate::Failures`]): it is kept for the thread
//!   that submitted the work and reported to it once, at its next call on the stream (submit or
//!   synchronize); every synchronize that covers the work reports it as well, from any thread,
//!   without taking it from its submitter. A backend whose faults are sticky for the whole
//!   device (CUDA: every later call fails) keeps this rule by construction.

use std::time::Duration;

use crate::error::{BackendError, EventError};

/// Whether an event records timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Timing {
    /// No timestamps: cheaper; `elapsed_since` returns [`EventError::TimingDisabled`].
    #[default]
    Disabled,
    /// Timestamps, for `elapsed_since`.
    Enabled,
}

/// Device memory a backend reports (see [`Backend::memory`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryUsage {
    /// Bytes of device memory in use by this process (weights, workspaces, caches, context), as
    /// the driver reports it.
    pub device_used: usize,
    /// Bytes held by live buffers of the backend's caching allocator.
    pub pool_in_use: usize,
    /// Highest `pool_in_use` so far.
    pub pool_peak: usize,
    /// Bytes cached in the allocator's free lists.
    pub pool_cached: usize,
}

/// A backend: one device, its streams, events and memory.
pub trait Backend: Send + Sync + Sized + 'static {
    /// An in-order queue of work.
    type Stream: Stream<Self>;
    /// A marker recorded on a stream.
    type Event: Event;
    /// Device memory. Cloning gives another handle to the same memory.
    type Buffer: Clone + Send + Sync + 'static;

    /// The backend's short name, as the CLI spells it (`"cpu"`, `"cuda"`, ...).
    fn kind(&self) -> &'static str;
    /// A human-readable device name ("cpu (2 cores)", "NVIDIA H200", ...).
    fn name(&self) -> String;
    /// Which device of its kind this is (CUDA's device ordinal; default 0): with
    /// [`Backend::kind`], the label that names the device in errors and statistics
    /// ([`crate::Device::label`]).
    fn ordinal(&self) -> usize {
        0
    }
    /// Create the stream for pool slot `slot`. Called at most once per slot, lazily, from
    /// whichever thread first owns the slot.
    fn new_stream(&self, slot: usize) -> Result<Self::Stream, BackendError>;
    /// Create an event.
    fn new_event(&self, timing: Timing) -> Result<Self::Event, BackendError>;
    /// Allocate `bytes` of device memory (contents unspecified).
    fn alloc(&self, bytes: usize) -> Result<Self::Buffer, BackendError>;
    /// Size of a buffer in bytes.
    fn buffer_len(buffer: &Self::Buffer) -> usize;
    /// Device memory in use, when the backend can tell (the CPU backend cannot: `None`).
    fn memory(&self) -> Option<MemoryUsage> {
        None
    }
}

/// An in-order queue of work on a device.
///
/// # Who may submit
///
/// `Stream` is `Send + Sync`: any thread that can reach a stream may submit to it, and several
/// threads may submit to one stream at once (a lease's owner sharing `lease.stream()` with the
/// scoped threads it spawns, say). What holds then:
///
/// - **each submitter's own work keeps its order**: two calls made one after the other by one
///   thread run in that order (a write, then a kernel that reads what it wrote, then a `read`,
///   see each other's effects as on a stream used by one thread alone);
/// - **the interleaving between submitters is unspecified**: the work of calls made at the same
///   time by different threads runs in some interleaved order; work that must be ordered across
///   submitters needs them to agree among themselves (a join, a channel, an event), or must not
///   depend on that order (disjoint buffers or regions, commutative updates);
/// - **no work is lost**: every call that returned `Ok` is enqueued and runs;
/// - **synchronisation covers every submitter**: [`Stream::synchronize`] (and so
///   [`Stream::read`]) waits for all work submitted to the stream before the call, whichever
///   thread submitted it; an [`Event`] recorded on the stream completes after all work submitted
///   before the record, by any thread.
///
/// A failure of earlier work (`BackendError::StreamFailed`) goes to the thread that submitted
/// it, at its next call, and to every synchronize that covers it ([`crate::Failures`]). A
/// backend may refuse a submission for a reason of its own
/// with a typed error, never by dropping it: the CUDA backend refuses, while a thread captures
/// the stream into a graph, every enqueue from other threads, and synchronisations and pageable
/// host copies from any thread ([`BackendError::StreamCapturing`]).
///
/// The `*_u32` operations are the portable work items every backend implements. They are small
/// on purpose: they let the same concurrency tests and the `demo` workload run on every backend,
/// with results that can be checked exactly.
pub trait Stream<B: Backend>: Send + Sync {
    /// The pool slot this stream belongs to.
    fn slot(&self) -> usize;
    /// Record `event` on this stream: it completes when all work submitted before it has.
    fn record(&self, event: &B::Event) -> Result<(), BackendError>;
    /// Make this stream's later work wait until `event` (as last recorded) has completed.
    /// Waiting on an event that was never recorded is a no-op.
    fn wait_event(&self, event: &B::Event) -> Result<(), BackendError>;
    /// Block until all work submitted to this stream before the call has completed.
    fn synchronize(&self) -> Result<(), BackendError>;

    /// Enqueue a copy of `src` (taken at the call) into `dst` at byte `offset`.
    fn write(&self, dst: &B::Buffer, offset: usize, src: &[u8]) -> Result<(), BackendError>;
    /// Wait for this stream's earlier work, then copy `dst.len()` bytes from `src` at `offset`.
    fn read(&self, src: &B::Buffer, offset: usize, dst: &mut [u8]) -> Result<(), BackendError>;
    /// Enqueue: set every u32 of `dst` to `value`.
    fn fill_u32(&self, dst: &B::Buffer, value: u32) -> Result<(), BackendError>;
    /// Enqueue: `buf[i] = buf[i] * mul + add` (wrapping) for every u32 `i`. Not commutative with
    /// itself for different arguments, so a reordering shows up in the result.
    fn mul_add_u32(&self, buf: &B::Buffer, mul: u32, add: u32) -> Result<(), BackendError>;
    /// Enqueue: copy all of `src` into `dst` (same length).
    fn copy(&self, src: &B::Buffer, dst: &B::Buffer) -> Result<(), BackendError>;
    /// Enqueue work that keeps the stream busy for about `duration` (for tests and demos of
    /// ordering: later work on this stream, and work ordered after it by events, must wait).
    fn hold(&self, duration: Duration) -> Result<(), BackendError>;
}

/// A marker in a stream's work.
pub trait Event: Send + Sync {
    /// Whether this event records timestamps.
    fn timing(&self) -> Timing;
    /// Block the host until the last recorded work has completed (returns at once if never
    /// recorded).
    fn synchronize(&self) -> Result<(), BackendError>;
    /// Whether the last recorded work has completed; never blocks. `true` if never recorded.
    fn query(&self) -> Result<bool, BackendError>;
    /// Time from `start` to `self`. Never blocks: errors at once with
    /// [`EventError::TimingDisabled`] unless both have timing, [`EventError::NotRecorded`] or
    /// [`EventError::NotReady`].
    fn elapsed_since(&self, start: &Self) -> Result<Duration, EventError>;
}
