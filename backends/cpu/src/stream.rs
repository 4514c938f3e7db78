//! A CPU stream: an in-order executor. `enqueue` returns at once; a worker thread runs the work
//! items one after another, in submission order.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use streampool_core::{submitter, BackendError, Failures, Submitter};

/// A unit of work. An `Err` is a failure of the work, kept for the thread that submitted it
/// ([`Failures`]), and later work still runs so that events recorded after it complete.
pub type Job = Box<dyn FnOnce() -> Result<(), String> + Send + 'static>;

/// State of one stream's queue. Guarded by `Queue::state`, which is this stream's lock: only its
/// submitters (one thread, or several sharing the stream), its worker and callers of
/// `synchronize` take it.
#[derive(Default)]
struct QueueState {
    /// Each job with the thread that submitted it.
    jobs: VecDeque<(Submitter, Job)>,
    /// Jobs enqueued so far.
    submitted: u64,
    /// Jobs finished so far (run in order, so jobs `0..completed` are all done).
    completed: u64,
    /// The worker is parked waiting for work.
    worker_parked: bool,
    /// Callers blocked in `synchronize`.
    syncing: usize,
    shutdown: bool,
}

struct Queue {
    state: Mutex<QueueState>,
    /// Failures of finished jobs, by submitter (its own lock: taken only once something failed).
    failures: Failures,
    /// The worker waits here for work.
    work: Condvar,
    /// `synchronize` waits here for `completed` to advance.
    progress: Condvar,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Stream of the CPU backend.
pub struct CpuStream {
    slot: usize,
    queue: Arc<Queue>,
    worker: Option<JoinHandle<()>>,
}

impl CpuStream {
    pub(crate) fn new(slot: usize) -> Result<Self, BackendError> {
        let queue = Arc::new(Queue {
            state: Mutex::new(QueueState::default()),
            failures: Failures::default(),
            work: Condvar::new(),
            progress: Condvar::new(),
        });
        let worker_queue = queue.clone();
        let worker = std::thread::Builder::new()
            .name(format!("streampool-cpu-{slot}"))
            .spawn(move || run_worker(&worker_queue, slot))
            .map_err(|e| BackendError::Driver {
                backend: "cpu",
                call: "spawn stream worker",
                message: e.to_string(),
            })?;
        Ok(Self { slot, queue, worker: Some(worker) })
    }

    /// The pool slot of this stream.
    pub fn slot(&self) -> usize {
        self.slot
    }

    /// Append `job` to the stream. Returns at once; reports (once) a failure of earlier work
    /// that this thread submitted, if any.
    pub fn enqueue(
        &self,
        job: impl FnOnce() -> Result<(), String> + Send + 'static,
    ) -> Result<(), BackendError> {
        // Taken before the push: this call reports earlier work, never the job it enqueues.
        let earlier = self.queue.failures.take_own(self.slot);
        let mut state = self.queue.lock();
        state.jobs.push_back((submitter(), Box::new(job)));
        state.submitted += 1;
        let wake = state.worker_parked;
        drop(state);
        if wake {
            self.queue.work.notify_one();
        }
        earlier
    }

    /// Block until every job enqueued before the call has run; then report a failure: this
    /// thread's own (taken), else another thread's (kept for it), see [`Failures::check`].
    pub fn synchronize(&self) -> Result<(), BackendError> {
        let mut state = self.queue.lock();
        let target = state.submitted;
        state.syncing += 1;
        while state.completed < target {
            state = self.queue.progress.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        state.syncing -= 1;
        drop(state);
        self.queue.failures.check(self.slot)
    }

    /// Number of jobs enqueued and not yet finished.
    pub fn pending(&self) -> u64 {
        let state = self.queue.lock();
        state.submitted - state.completed
    }
}

fn run_worker(queue: &Queue, slot: usize) {
    let mut state = queue.lock();
    loop {
        let Some((submitter, job)) = state.jobs.pop_front() else {
            if state.shutdown {
                return;
            }
            state.worker_parked = true;
            state = queue.work.wait(state).unwrap_or_else(|p| p.into_inner());
            state.worker_parked = false;
            continue;
        };
        drop(state);
        // A panicking job must not kill the worker: later jobs (event records among them) still
        // have to run, or threads waiting on them would hang.
        let outcome = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)) {
            Ok(result) => result,
            Err(panic) => Err(format!("work item panicked on stream {slot}: {panic:?}")),
        };
        // Recorded before `completed` moves, so a synchronize that sees the job done sees it.
        if let Err(message) = outcome {
            queue.failures.record(submitter, message);
        }
        state = queue.lock();
        state.completed += 1;
        if state.syncing > 0 {
            queue.progress.notify_all();
        }
    }
}

impl Drop for CpuStream {
    fn drop(&mut self) {
        self.queue.lock().shutdown = true;
        self.queue.work.notify_one();
        if let Some(worker) = self.worker.take() {
            // The worker drains the queue first, so work already submitted still completes.
            let _ = worker.join();
        }
    }
}

impl std::fmt::Debug for CpuStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuStream").field("slot", &self.slot).finish()
    }
}
