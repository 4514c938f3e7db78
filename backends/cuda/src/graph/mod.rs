//! CUDA graphs: fixed-shape work captured once on a stream and replayed there, with inputs and
//! outputs staged through pinned host memory ([`crate::PinnedBuffer`]). Models reach them
//! through the `Ops` graph capability of `streampool-tensor`; each model owns its graphs.
//!
//! - [`CudaStream::capture`](crate::CudaStream::capture) records what a closure enqueues on the
//!   stream into a [`CudaGraph`] (thread-local capture mode: other threads, on other streams,
//!   are not disturbed), [`CudaStream::replay`](crate::CudaStream::replay) launches it.
//! - While it runs, the capture is the capturing thread's alone: the stream's capture gate
//!   refuses other threads' submissions to it (rule 5).
//!
//! # Rules for the captured work
//!
//! Capture records addresses and launches; nothing runs. So:
//!
//! 1. **Run it eagerly once first.** Kernels are compiled and loaded at first use, which is not
//!    allowed inside a capture; cuBLAS settles its algorithm too.
//! 2. **Allocate every buffer the graph uses before the capture**, and keep each alive as long
//!    as the graph ([`CudaGraph::retain`], or own them next to it). An allocation inside the
//!    capture that reaches `cuMemAlloc` fails (the driver refuses it, the capture ends with
//!    [`CaptureError::Body`], the stream works on); one served from the stream's free list
//!    would succeed silently, handing the graph memory the pool may reuse, so don't.
//! 3. **Free nothing the graph uses.** A pooled buffer dropped while its stream is captured
//!    (by any thread) goes back to the free list only when the capture ends: its free event is
//!    recorded then, outside the capture. A graph that used it would still read freed memory.
//! 4. **No synchronisation and no host copies** other than
//!    [`copy_from_pinned`](crate::CudaStream::copy_from_pinned) /
//!    [`copy_to_pinned`](crate::CudaStream::copy_to_pinned) inside the capture. *Enforced*:
//!    `synchronize`, `Stream::read` and `Stream::write` on a stream being captured are refused
//!    with [`BackendError::StreamCapturing`] from every thread, the capturing one included,
//!    before they reach the driver, and the capture goes on. (Left to the driver, `write` would
//!    not fail — seen on an H200, driver 13.0 — but be captured as a copy from the caller's
//!    pageable slice, which every replay would read after the slice is gone.) The pinned copies
//!    are the capturing thread's only (rule 5), and the graph keeps their pinned memory alive:
//!    so pinned staging is never part of a graph that does not hold it.
//! 5. **Enqueue from the capturing thread only.** *Enforced*: the driver would put another
//!    thread's work on the capturing stream into the graph, so every submission path of the
//!    stream (kernel launches, cuBLAS / cuBLASLt calls, device and pinned copies, event records
//!    and waits, replays, the graph's upload, allocations from the stream's pool, another
//!    capture) passes the stream's capture gate, which refuses other threads with
//!    [`BackendError::StreamCapturing`] until the capture has ended. Submissions from other
//!    threads already under way when the capture is asked for are waited for before it begins,
//!    so none lands in the graph. The gate costs the hot path no lock: an atomic increment and
//!    decrement and two loads per submission (`gate.rs`). Work enqueued around the backend, on
//!    [`CudaStream::raw`](crate::CudaStream::raw) or `cu_stream` or the cuBLAS handle, is not
//!    seen by the gate.
//! 6. **No device-wide waits anywhere while a capture runs**: dropping a
//!    [`Backend::alloc`](streampool_core::Backend::alloc) buffer or `empty_cache` synchronise
//!    the whole context, which a capturing stream cannot take part in. Another device of the
//!    same GPU torn down meanwhile (they share the context) invalidates the capture:
//!    [`CudaStream::capture_retrying`](crate::CudaStream::capture_retrying) captures again.
//!
//! The ops of [`crate::ops`] allocate nothing and never wait, and each stream's cuBLAS handle
//! has its own workspace, so a chain of ops obeys these rules once warmed up. cudarc's per-buffer
//! event tracking, which would record events inside the capture, is off for the whole context.
//! Violations that reach the driver (an allocation that calls `cuMemAlloc`) come back as errors,
//! never as a stream left capturing; those the gate catches (rules 4 and 5) never reach it. Not
//! caught yet, because the check belongs in the allocator: an allocation served from the free
//! list inside a capture.
//!
//! Replays of one graph run in order on its stream; host access to its pinned buffers waits for
//! the last replay ([`crate::PinnedBuffer::lock`]).
//!
//! [`BackendError::StreamCapturing`]: streampool_core::BackendError::StreamCapturing

mod capture;
mod exec;
mod gate;

pub(crate) use capture::retain_in_capture;
pub use capture::{CaptureError, CAPTURE_TRIES};
pub use exec::CudaGraph;
pub(crate) use gate::{CaptureGate, Submission};
