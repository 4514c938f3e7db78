//! A worker: owns one pool slot, takes what has queued, runs it as one batch, answers each job.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvError, Sender, TryRecvError};
use streampool_core::{panic_text, Backend, Device, Lease, PoolError};

use crate::lanes::Lanes;
use crate::stats::Counters;
use crate::{Answer, BatchFailure, BatchModel, EngineConfig, EngineError};

/// One queued request and where its answer goes.
pub(crate) struct Job<M: BatchModel> {
    pub(crate) input: M::Input,
    pub(crate) reply: Reply<M>,
}

/// Where a request's answer goes.
pub(crate) enum Reply<M: BatchModel> {
    /// A blocking caller's [`crate::Pending`].
    Channel(Sender<Answer<M>>),
    /// An async caller's [`crate::Answering`]: closed once the caller dropped it, and then the
    /// request is cancelled before it reaches a batch.
    Oneshot(tokio::sync::oneshot::Sender<Answer<M>>),
}

impl<M: BatchModel> Reply<M> {
    fn send(self, answer: Answer<M>) {
        // The caller may have gone: nobody to tell.
        match self {
            Self::Channel(tx) => drop(tx.send(answer)),
            Self::Oneshot(tx) => drop(tx.send(answer)),
        }
    }

    fn is_cancelled(&self) -> bool {
        match self {
            Self::Channel(_) => false,
            Self::Oneshot(tx) => tx.is_closed(),
        }
    }
}

/// Runs until the engine drops the queue's sender and the queue is empty: every job taken is
/// answered (or dropped unrun when its caller has gone), whatever the model does. `me`: this
/// worker's device among `lanes`.
pub(crate) fn run<M: BatchModel>(
    model: &M,
    lease: &Lease<M::Backend>,
    jobs: &Receiver<Job<M>>,
    config: EngineConfig,
    lanes: &Lanes,
    me: usize,
) {
    let stream = lease.stream();
    let lane = lanes.lane(me);
    let counters = &lane.counters;
    let mut batch = Vec::with_capacity(config.max_batch);
    // A request taken from the queue that did not fit the last batch's token budget.
    let mut carry: Option<Job<M>> = None;
    loop {
        if lanes.is_failed(me) {
            if let Some(job) = carry.take() {
                // Taken for the batch after the one that failed: it goes with its device.
                let cause = lane.failure().unwrap_or_default().to_owned();
                job.reply
                    .send(Err(EngineError::DeviceFailed { device: lane.label.clone(), cause }));
            }
            return after_failure(jobs, lanes);
        }
        let first = match carry.take() {
            Some(job) => job,
            None => match recv_polling_when(jobs, config.spin, || lanes.preferred(me)) {
                Ok(job) => job,
                Err(RecvError) => break,
            },
        };
        if first.reply.is_cancelled() {
            counters.cancelled();
            continue;
        }
        let mut tokens = model.padded_tokens(&first.input);
        batch.push((tokens, first));
        let available = (1 + jobs.len()).min(config.max_batch);
        let take = model.batch_size(available).clamp(1, config.max_batch);
        carry = collect(model, jobs, &mut batch, take, config, counters, &mut tokens);
        // Sorted by length and cut where a group's rows × its longest would pass the budget:
        // groups of similar lengths pad little (the sort is stable: ties keep queue order).
        batch.sort_by_key(|(cost, _)| *cost);
        let mut group: Vec<Job<M>> = Vec::new();
        for (cost, job) in batch.drain(..) {
            // Ascending: `cost` is the longest of the group it joins.
            if !group.is_empty() && (group.len() + 1).saturating_mul(cost) > config.max_batch_tokens
            {
                run_and_answer(model, stream, std::mem::take(&mut group), lanes, me);
            }
            group.push(job);
        }
        run_and_answer(model, stream, group, lanes, me);
    }
}

/// A worker whose device failed: it leaves the queue to the other devices, or, when every
/// device has failed, answers each request with why until the engine stops (so that no
/// caller waits for ever).
fn after_failure<M: BatchModel>(jobs: &Receiver<Job<M>>, lanes: &Lanes) {
    if lanes.healthy() > 0 {
        return;
    }
    for job in jobs.iter() {
        job.reply.send(Err(EngineError::NoDevice { failures: lanes.failures() }));
    }
}

/// Run `batch` on device `me` and give each job its answer. A failed batch is followed by the
/// model's check of the device; if that fails too, the device is out and the batch's requests
/// hear so.
fn run_and_answer<M: BatchModel>(
    model: &M,
    stream: &<M::Backend as Backend>::Stream,
    batch: Vec<Job<M>>,
    lanes: &Lanes,
    me: usize,
) {
    let lane = lanes.lane(me);
    let counters = &lane.counters;
    let (inputs, replies): (Vec<_>, Vec<_>) = batch.into_iter().map(|j| (j.input, j.reply)).unzip();
    let n = inputs.len();
    let running = counters.enter();
    let outputs = run_batch(model, stream, &inputs);
    drop(running);
    // Counted before answering: a caller who has its answer sees its request counted.
    counters.batch(n, outputs.is_ok());
    match outputs {
        Ok(out) => {
            for (reply, output) in replies.into_iter().zip(out) {
                reply.send(Ok(output));
            }
        }
        Err(cause) => {
            let check = catch_unwind(AssertUnwindSafe(|| model.check_device(stream)));
            let broken = match check {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(panic) => Some(format!("the check panicked: {}", panic_text(&*panic))),
            };
            let failed = broken.map(|check| {
                let why = format!("a batch of {n} failed ({cause}), then its check ({check})");
                lanes.fail(me, why.clone());
                why
            });
            for reply in replies {
                reply.send(Err(match &failed {
                    None => EngineError::Batch { batch: n, cause: cause.clone() },
                    Some(why) => {
                        EngineError::DeviceFailed { device: lane.label.clone(), cause: why.clone() }
                    }
                }));
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
    recv_polling_when(rx, spin, || true)
}

/// [`recv_polling`] that polls only while `ready()`: a worker leaves a message to a less loaded
/// device's free worker ([`Lanes::preferred`]); the blocking receive after `spin` takes
/// whatever comes.
fn recv_polling_when<T>(
    rx: &Receiver<T>,
    spin: Duration,
    ready: impl Fn() -> bool,
) -> Result<T, RecvError> {
    let until = Instant::now() + spin;
    loop {
        if ready() {
            match rx.try_recv() {
                Ok(message) => return Ok(message),
                Err(TryRecvError::Disconnected) => return Err(RecvError),
                Err(TryRecvError::Empty) => {}
            }
        }
        if Instant::now() >= until {
            return rx.recv();
        }
        std::thread::yield_now();
    }
}

/// Add to `batch` what has queued, up to `take` jobs, waiting at most `max_wait` for more, while
/// the batch's tokens (`tokens`: the sum of each job's padded tokens) stay within the token
/// budget. Cancelled jobs are dropped here. Returns the job that would have taken the batch
/// past the budget: it starts the next one.
fn collect<M: BatchModel>(
    model: &M,
    jobs: &Receiver<Job<M>>,
    batch: &mut Vec<(usize, Job<M>)>,
    take: usize,
    config: EngineConfig,
    counters: &Counters,
    tokens: &mut usize,
) -> Option<Job<M>> {
    let deadline = Instant::now() + config.max_wait;
    while batch.len() < take {
        let job = match jobs.try_recv() {
            Ok(job) => job,
            Err(TryRecvError::Disconnected) => break,
            Err(TryRecvError::Empty) => match jobs.recv_deadline(deadline) {
                Ok(job) => job,
                Err(_) => break, // the deadline passed (at once when max_wait is zero)
            },
        };
        if job.reply.is_cancelled() {
            counters.cancelled();
            continue;
        }
        let cost = model.padded_tokens(&job.input);
        if tokens.saturating_add(cost) > config.max_batch_tokens {
            return Some(job);
        }
        *tokens += cost;
        batch.push((cost, job));
    }
    None
}
