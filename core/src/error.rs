//! Typed errors, one enum per family of failing operation.

use std::time::Duration;

/// A failure reported by a backend (driver call, allocation, a stream whose work failed).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendError {
    /// The backend cannot run on this machine (no GPU, driver or library missing).
    #[error("{backend} backend unavailable: {reason}")]
    Unavailable {
        /// Which backend.
        backend: &'static str,
        /// What is missing, and what to do about it.
        reason: String,
    },
    /// A driver or runtime call failed.
    #[error("{backend}: {call} failed: {message}")]
    Driver {
        /// Which backend.
        backend: &'static str,
        /// The call that failed.
        call: &'static str,
        /// The driver's message.
        message: String,
    },
    /// Device memory ran out.
    #[error("out of device memory: asked for {bytes} bytes")]
    OutOfMemory {
        /// Size of the failed allocation.
        bytes: usize,
    },
    /// An argument was out of range (buffer too small, offset past the end, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Work that was enqueued on a stream failed after the enqueue returned. Kept for the thread
    /// that submitted it (reported once, at its next call on the stream) and reported by every
    /// synchronize that covers it ([`crate::Failures`]).
    #[error("work on stream {slot} failed: {message}")]
    StreamFailed {
        /// Slot of the stream.
        slot: usize,
        /// What went wrong.
        message: String,
    },
    /// A device-wide synchronize found work failed on several streams: each stream's error (a
    /// single failed stream is reported as its own error).
    #[error("work on {} streams failed: {}", .0.len(), list(.0))]
    Streams(Vec<BackendError>),
    /// The stream is being captured into a graph (CUDA) and the call cannot join the capture:
    /// an enqueue from a thread other than the capturing one, or, from any thread, a
    /// synchronisation or a copy from or to pageable host memory. Nothing was enqueued; the
    /// capture goes on undisturbed, and the same call succeeds once it has ended.
    #[error(
        "stream {slot} is being captured into a graph: until the capture ends, only the \
         capturing thread may enqueue on it, and no thread may synchronise it or copy pageable \
         host memory through it"
    )]
    StreamCapturing {
        /// Slot of the stream.
        slot: usize,
    },
}

/// `errors` as one line.
fn list(errors: &[BackendError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// Errors of event queries. None of them blocks: each is returned at once.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventError {
    /// Elapsed time was asked of an event created without timing.
    #[error("elapsed time needs both events created with timing enabled (Event::timing)")]
    TimingDisabled,
    /// The event has never been recorded on a stream.
    #[error("event was never recorded on a stream")]
    NotRecorded,
    /// The work before the event has not completed yet.
    #[error("event has not completed yet")]
    NotReady,
    /// The backend failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// Errors of the stream pool.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoolError {
    /// Every slot stayed taken for the whole acquire timeout.
    #[error(
        "all {capacity} stream slots stayed in use for {waited:?}; raise the pool capacity or \
         the acquire timeout, or hold leases for less time"
    )]
    Exhausted {
        /// Pool capacity.
        capacity: usize,
        /// How long the caller waited.
        waited: Duration,
    },
    /// The slot's stream could not be created.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// The text of a caught panic's payload (`panic!` with a message gives a `&str` or a `String`).
pub fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}
