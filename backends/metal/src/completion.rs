//! Completion of a stream's committed command buffers, without keeping the buffers.
//!
//! Each stream has a [`Tracker`] and one *completion thread*: the stream hands it every command
//! buffer it commits (in commit order); the thread waits for each (`waitUntilCompleted`, a
//! sleeping wait), writes what became of it into a small shared [`Completion`] record (status,
//! `GPUEndTime`, Metal's error message), records a failure for the threads that encoded the
//! buffer, **drops the buffer**, and only then advances the stream's count of completed
//! buffers. Nothing else holds a committed buffer: events keep the record, `synchronize` and
//! the back-pressure of new command buffers wait for the count.
//!
//! Why a thread rather than `addCompletedHandler:`: that takes an Objective-C block, and the
//! `block2` crate that objc2-metal uses for blocks is not available to this build. A thread per
//! stream, asleep in `waitUntilCompleted`, is the equivalent (Metal's completed handlers also
//! run on a thread of their own); the cost is one mostly sleeping thread per stream.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use objc2::rc::{autoreleasepool, Retained};
use objc2::runtime::ProtocolObject;
use objc2_metal::{MTLCommandBuffer, MTLCommandBufferStatus};
use streampool_core::{BackendError, Failures, Submitter};

use crate::error::BACKEND;

/// A command buffer (being encoded, or committed).
pub(crate) type CommandBuffer = Retained<ProtocolObject<dyn MTLCommandBuffer>>;

/// What became of a committed command buffer.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Outcome {
    /// Not known to be complete yet.
    Pending,
    /// Completed successfully; `gpu_end` is its `GPUEndTime` (host seconds).
    Completed {
        /// When the GPU finished it (`0.0` if Metal gave no time).
        gpu_end: f64,
    },
    /// Failed, with Metal's message.
    Failed(String),
}

/// The completion record of one committed command buffer: all an event keeps of the buffer
/// that signals it (no buffer is kept).
pub(crate) struct Completion {
    outcome: Mutex<Outcome>,
    /// Signalled once, when `outcome` leaves `Pending`.
    settled: Condvar,
}

impl Completion {
    fn new() -> Arc<Self> {
        Arc::new(Self { outcome: Mutex::new(Outcome::Pending), settled: Condvar::new() })
    }

    fn lock(&self) -> MutexGuard<'_, Outcome> {
        // Poisoned: a thread panicked while copying the outcome; the value is always whole.
        self.outcome.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The outcome now. Never blocks (the lock is held only to copy or set it).
    pub(crate) fn outcome(&self) -> Outcome {
        self.lock().clone()
    }

    /// Sleep until the outcome is known; returns it.
    pub(crate) fn wait(&self) -> Outcome {
        let mut outcome = self.lock();
        while *outcome == Outcome::Pending {
            outcome = self.settled.wait(outcome).unwrap_or_else(|p| p.into_inner());
        }
        outcome.clone()
    }

    fn settle(&self, outcome: Outcome) {
        *self.lock() = outcome;
        self.settled.notify_all();
    }
}

/// A committed command buffer, on its way to the completion thread.
struct Committed(CommandBuffer);

// SAFETY: a command buffer is not thread-safe while it is being *encoded*; a committed one is
// never encoded again (nothing here encodes). The completion thread only waits for it and reads
// its `status`, `error` and `GPUEndTime`, queries Metal answers from any thread once the buffer
// is committed (its own completed handlers run on Metal's threads and read them); retain and
// release are atomic. One thread at a time owns a `Committed` (it is moved, never shared).
unsafe impl Send for Committed {}

impl Committed {
    /// Wait for the GPU to finish (or fail) the buffer and read what became of it; the buffer
    /// is released when this returns.
    fn finish(self) -> Outcome {
        // MPS lesson: an autorelease pool around every Objective-C call path on a worker thread
        // (the error's description is autoreleased; this thread never drains otherwise).
        autoreleasepool(|_| {
            self.0.waitUntilCompleted();
            let status = self.0.status();
            if status == MTLCommandBufferStatus::Completed {
                Outcome::Completed { gpu_end: self.0.GPUEndTime() }
            } else if status == MTLCommandBufferStatus::Error {
                Outcome::Failed(match self.0.error() {
                    Some(e) => e.localizedDescription().to_string(),
                    None => "command buffer failed (Metal gave no error)".into(),
                })
            } else {
                Outcome::Failed(format!(
                    "command buffer returned from waitUntilCompleted with status {status:?}"
                ))
            }
        })
    }
}

/// A committed buffer and what the completion thread needs to account for it.
struct Job {
    /// Its number among the stream's committed buffers (1, 2, ...).
    seq: u64,
    buffer: Committed,
    completion: Arc<Completion>,
    /// The threads that encoded into it: a failure is theirs.
    submitters: Vec<Submitter>,
}

/// Guarded by `Tracker::state`.
struct State {
    /// Committed buffers the completion thread has not taken yet, oldest first.
    jobs: VecDeque<Job>,
    /// Number of the stream's buffers completed (and released), in commit order: buffer `n`
    /// is done once `completed >= n`.
    completed: u64,
    /// The stream is gone: the thread finishes the jobs queued and exits.
    closed: bool,
}

/// A stream's completion tracking, shared by the stream and its completion thread.
///
/// Lock order: `state` is taken after the stream's lock (by `submit` and `completed` under
/// it), never before one, and is never held while waiting for the GPU.
pub(crate) struct Tracker {
    state: Mutex<State>,
    /// Signalled when a job is queued or the tracker is closed (the completion thread waits).
    queued: Condvar,
    /// Signalled when `completed` grows (`synchronize` and back-pressure wait).
    advanced: Condvar,
    /// Failures of the stream's completed buffers, kept for their submitters.
    pub(crate) failures: Failures,
}

impl Tracker {
    /// A tracker for the stream of `slot`, and its completion thread.
    pub(crate) fn start(slot: usize) -> Result<Arc<Self>, BackendError> {
        let tracker = Arc::new(Self {
            state: Mutex::new(State { jobs: VecDeque::new(), completed: 0, closed: false }),
            queued: Condvar::new(),
            advanced: Condvar::new(),
            failures: Failures::default(),
        });
        let thread = tracker.clone();
        std::thread::Builder::new()
            .name(format!("streampool-metal-completion-{slot}"))
            .spawn(move || thread.run())
            .map_err(|e| BackendError::Driver {
                backend: BACKEND,
                call: "spawn completion thread",
                message: e.to_string(),
            })?;
        Ok(tracker)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Poisoned: a panic while the lock was held; every update leaves the state whole.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hand the completion thread buffer number `seq`, just committed (called under the
    /// stream's lock, in commit order). Returns its completion record.
    pub(crate) fn submit(
        &self,
        seq: u64,
        buffer: CommandBuffer,
        submitters: Vec<Submitter>,
    ) -> Arc<Completion> {
        let completion = Completion::new();
        let job =
            Job { seq, buffer: Committed(buffer), completion: completion.clone(), submitters };
        self.lock().jobs.push_back(job);
        self.queued.notify_one();
        completion
    }

    /// Number of the stream's buffers completed so far. Never blocks (a brief lock).
    pub(crate) fn completed(&self) -> u64 {
        self.lock().completed
    }

    /// Sleep until buffer number `seq` (and every one before it) has completed. The caller
    /// holds no lock of the backend.
    pub(crate) fn wait_completed(&self, seq: u64) {
        let mut state = self.lock();
        while state.completed < seq {
            state = self.advanced.wait(state).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// The stream is gone: let the thread finish what is queued and exit.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.queued.notify_one();
    }

    /// The completion thread.
    fn run(&self) {
        loop {
            let job = {
                let mut state = self.lock();
                loop {
                    if let Some(job) = state.jobs.pop_front() {
                        break job;
                    }
                    if state.closed {
                        return;
                    }
                    state = self.queued.wait(state).unwrap_or_else(|p| p.into_inner());
                }
            };
            let Job { seq, buffer, completion, submitters } = job;
            // MPS lesson: never retain completed command buffers: `finish` consumes the buffer,
            // so it is released the moment the GPU is done with it.
            let outcome = buffer.finish();
            if let Outcome::Failed(message) = &outcome {
                for &s in &submitters {
                    self.failures.record(s, message.clone());
                }
            }
            // Record, then count: whoever sees the count sees the outcome and the failure.
            completion.settle(outcome);
            self.lock().completed = seq;
            self.advanced.notify_all();
        }
    }
}
