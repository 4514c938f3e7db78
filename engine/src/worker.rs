//! A worker: owns one pool slot, takes what has queued, runs it as one batch, answers each job.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvError, Sender, TryRecvError};
use streampool_core::{panic_text, Backend, Device, Lease, PoolError};

use crate::stats::Counters;
use crate::{Answer, BatchFailure, BatchModel, EngineConfig, EngineError};

/// One queued request and where its answer goes.
pub(crate) struct Job<M: BatchModel> {
    pub(crate) input: M::Input,
    pub(crate) reply: Sender<Answer<M>>,
}

/// Runs until the engine drops the queue's sender and the queue is empty: every job taken is
/// answered, whatever the model does.
pub(crate) fn run<M: BatchModel>(
    model: &M,
    lease: &Lease<M::Backend>,
    jobs: &Receiver<Job<M>>,
    config: EngineConfig,
    counters: &Counters,
) {
    let stream = lease.stream();
    let mut batch = Vec::with_capacity(config.max_batch);
    while let Ok(first) = recv_polling(jobs, config.spin) {
        batch.push(first);
        let available = (1 + jobs.len()).min(config.max_batch);
        let take = model.batch_size(available).clamp(1, config.max_batch);
        collect(jobs, &mut batch, take, config);
        let (inputs, replies): (Vec<_>, Vec<_>) =
            batch.drain(..).map(|j| (j.input, j.reply)).unzip();
        let n = inputs.len();
        let outputs = run_batch(model, stream, &inputs);
        // Counted before answering: a caller who has its answer sees its request counted.
        counters.batch(n, outputs.is_ok());
        match outputs {
            Ok(out) => {
                for (reply, output) in replies.into_iter().zip(out) {
                    // The caller may have dropped its Pending: nobody to tell.
                    let _ = reply.send(Ok(output));
                }
            }
            Err(cause) => {
                for reply in replies {
                    let _ = reply.send(Err(EngineError::Batch { batch: n, cause: cause.clone() }));
                }
            }
        }
    }
}

/// `model.run` on one batch, its panics caught: one output per input, or why not.
pub(crate) fn run_batch<M: BatchModel>(
    model: &M,
    stream: &<M::Backend as Backend>::Stream,
    inputs: &[M::Input],
) -> Result<Vec<M::Output>, BatchFailure<M::Error>> {
    let n = inputs.len();
    match catch_unwind(AssertUnwindSafe(|| model.run(stream, inputs))) {
        Ok(Ok(out)) if out.len() == n => Ok(out),
        Ok(Ok(out)) => Err(BatchFailure::OutputCount { inputs: n, outputs: out.len() }),
        Ok(Err(e)) => Err(BatchFailure::Model(Arc::new(e))),
        Err(panic) => Err(BatchFailure::Panicked(panic_text(&*panic))),
    }
}

/// Lease `n` slots of `device`'s pool at once, without waiting (a pool too small fails here, not
/// on the first batch): the leases, or the 1-based number of the worker that got none and why.
pub(crate) fn lease_slots<B: Backend>(
    device: &Device<B>,
    n: usize,
) -> Result<Vec<Lease<B>>, (usize, PoolError)> {
    let mut leases = Vec::with_capacity(n);
    for i in 0..n {
        match device.try_acquire() {
            Ok(Some(lease)) => leases.push(lease),
            Ok(None) => {
                let capacity = device.capacity();
                return Err((i + 1, PoolError::Exhausted { capacity, waited: Duration::ZERO }));
            }
            Err(e) => return Err((i + 1, e)),
        }
    }
    Ok(leases)
}

/// `rx.recv()`, after polling it for `spin` (yielding the core between polls): a message that
/// comes within `spin` is taken without the sleep and wake-up of a blocking receive.
pub(crate) fn recv_polling<T>(rx: &Receiver<T>, spin: Duration) -> Result<T, RecvError> {
    let until = Instant::now() + spin;
    loop {
        match rx.try_recv() {
            Ok(message) => return Ok(message),
            Err(TryRecvError::Disconnected) => return Err(RecvError),
            Err(TryRecvError::Empty) if Instant::now() < until => std::thread::yield_now(),
            Err(TryRecvError::Empty) => return rx.recv(),
        }
    }
}

/// Add to `batch` what has queued, up to `take` jobs, waiting at most `max_wait` for more.
fn collect<M: BatchModel>(
    jobs: &Receiver<Job<M>>,
    batch: &mut Vec<Job<M>>,
    take: usize,
    config: EngineConfig,
) {
    let deadline = Instant::now() + config.max_wait;
    while batch.len() < take {
        match jobs.try_recv() {
            Ok(job) => batch.push(job),
            Err(TryRecvError::Disconnected) => break,
            Err(TryRecvError::Empty) => match jobs.recv_deadline(deadline) {
                Ok(job) => batch.push(job),
                Err(_) => break, // the deadline passed (at once when max_wait is zero)
            },
        }
    }
}
