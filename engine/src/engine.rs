//! The engine's front: submit from any thread, wait for your own answer.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, SendTimeoutError, Sender, TrySendError};

use crate::lanes::Lanes;
use crate::worker::{self, Job, Reply};
use crate::{BatchModel, DeviceStats, EngineConfig, EngineError, EngineStats};

/// A shared model, its request queue and its workers. `Sync`: call it from any number of threads
/// through `&Engine`. Dropping it stops intake, runs what is queued, and joins the workers.
///
/// With several devices ([`Engine::start_on`]: one copy of the model per device), every
/// device's workers take from the one queue, and a worker takes a request only when it is free
/// and no other device with a free worker runs fewer batches: the least-loaded device gets the
/// work. A device whose batch fails and whose check then fails too
/// ([`BatchModel::check_device`]) stops taking work; the others go on.
///
/// Locks: none of the engine's own. The queue is a bounded crossbeam channel (lock-free send and
/// receive while it is neither full nor empty); each request's answer comes back on its own
/// one-slot channel; the counters are relaxed atomics, and a device's failure a `OnceLock`.
pub struct Engine<M: BatchModel> {
    /// One per device; the first is [`Engine::model`].
    models: Vec<Arc<M>>,
    config: EngineConfig,
    /// `None` once stopping: dropping the last sender lets the workers drain the queue and exit.
    queue: Option<Sender<Job<M>>>,
    workers: Vec<JoinHandle<()>>,
    lanes: Arc<Lanes>,
}

/// A request's answer from an engine running model `M`: its result, or why it has none.
pub type Answer<M> = Result<<M as BatchModel>::Output, EngineError<<M as BatchModel>::Error>>;

/// A request submitted to an engine running model `M`: [`Pending::wait`] blocks until its
/// answer is there.
#[must_use = "a submitted request is only answered through its Pending"]
pub struct Pending<M: BatchModel> {
    answer: Receiver<Answer<M>>,
    spin: Duration,
}

impl<M: BatchModel> Pending<M> {
    /// The request's result, or why it has none (polls for [`EngineConfig::wait_spin`], then sleeps).
    pub fn wait(self) -> Answer<M> {
        // A worker answers every job it takes; the channel only closes unanswered if the
        // worker's thread died, which catching the model's panics rules out.
        crate::worker::recv_polling(&self.answer, self.spin).unwrap_or(Err(EngineError::Stopped))
    }
}

/// A request submitted from async code ([`Engine::submit_async`]): a future of its answer.
/// Dropping it before the answer cancels the request: a worker that finds it in the queue drops
/// it unrun ([`EngineStats::cancelled`]).
#[must_use = "dropping it cancels the request"]
pub struct Answering<M: BatchModel> {
    answer: tokio::sync::oneshot::Receiver<Answer<M>>,
}

impl<M: BatchModel> Future for Answering<M> {
    type Output = Answer<M>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer<M>> {
        Pin::new(&mut self.answer).poll(cx).map(|r| r.unwrap_or(Err(EngineError::Stopped)))
    }
}

impl<M: BatchModel> Engine<M> {
    /// Lease one pool slot per worker (now, so that a pool too small fails here, not on a
    /// request) and start the workers.
    pub fn start(model: Arc<M>, config: EngineConfig) -> Result<Self, EngineError<M::Error>> {
        Self::start_on(vec![model], config)
    }

    /// [`Engine::start`] over several devices: `models` holds one copy of the model per device
    /// (each on its own device), and every device gets `config.workers` workers.
    pub fn start_on(
        models: Vec<Arc<M>>,
        config: EngineConfig,
    ) -> Result<Self, EngineError<M::Error>> {
        if models.is_empty() {
            return Err(EngineError::NoDevice { failures: "no device was given".into() });
        }
        let workers = config.workers;
        let mut leases = Vec::with_capacity(models.len());
        for model in &models {
            let device = model.device();
            leases.push(worker::lease_slots(device, workers).map_err(|(worker, source)| {
                EngineError::Start { device: device.label(), worker, workers, source }
            })?);
        }
        let lanes =
            Arc::new(Lanes::new(models.iter().map(|m| (m.device().label(), config.workers))));
        let (queue, jobs) = bounded(config.queue_capacity);
        let mut handles = Vec::with_capacity(models.len() * workers);
        for (lane, (model, leases)) in models.iter().zip(leases).enumerate() {
            for (i, lease) in leases.into_iter().enumerate() {
                let (model, jobs, lanes) = (model.clone(), jobs.clone(), lanes.clone());
                let name = match models.len() {
                    1 => format!("streampool-engine-{i}"),
                    _ => format!("streampool-engine-{lane}-{i}"),
                };
                let spawned = std::thread::Builder::new().name(name).spawn(move || {
                    worker::run(&*model, &lease, &jobs, config, &lanes, lane);
                });
                match spawned {
                    Ok(handle) => handles.push(handle),
                    Err(e) => {
                        // The workers already started exit once the queue's sender is dropped.
                        drop(queue);
                        handles.into_iter().for_each(|w: JoinHandle<()>| drop(w.join()));
                        let worker = lane * workers + i + 1;
                        return Err(EngineError::Spawn { worker, source: Arc::new(e) });
                    }
                }
            }
        }
        Ok(Self { models, config, queue: Some(queue), workers: handles, lanes })
    }

    /// `NoDevice` once every device has failed.
    fn check_devices(&self) -> Result<(), EngineError<M::Error>> {
        match self.lanes.healthy() {
            0 => Err(EngineError::NoDevice { failures: self.lanes.failures() }),
            _ => Ok(()),
        }
    }

    /// Check `input`, queue it and return at once; [`Pending::wait`] gives the answer. Waits
    /// for room at most [`EngineConfig::submit_timeout`] when the queue is full.
    pub fn submit(&self, input: M::Input) -> Result<Pending<M>, EngineError<M::Error>> {
        self.models[0].check(&input).map_err(EngineError::Invalid)?;
        self.check_devices()?;
        let queue = self.queue.as_ref().ok_or(EngineError::Stopped)?;
        let (reply, answer) = bounded(1);
        let job = Job { input, reply: Reply::Channel(reply) };
        match queue.send_timeout(job, self.config.submit_timeout) {
            Ok(()) => Ok(Pending { answer, spin: self.config.wait_spin }),
            Err(SendTimeoutError::Timeout(_)) => Err(EngineError::Overloaded {
                capacity: self.config.queue_capacity,
                waited: self.config.submit_timeout,
            }),
            Err(SendTimeoutError::Disconnected(_)) => Err(EngineError::Stopped),
        }
    }

    /// Check `input` and queue it without ever waiting: a full queue is
    /// [`EngineError::Overloaded`] at once (`waited` zero), so that an async caller can answer
    /// "busy" instead of blocking its runtime. Await the [`Answering`] for the answer; drop it to
    /// cancel the request.
    pub fn submit_async(&self, input: M::Input) -> Result<Answering<M>, EngineError<M::Error>> {
        self.models[0].check(&input).map_err(EngineError::Invalid)?;
        self.check_devices()?;
        let queue = self.queue.as_ref().ok_or(EngineError::Stopped)?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        match queue.try_send(Job { input, reply: Reply::Oneshot(reply) }) {
            Ok(()) => Ok(Answering { answer }),
            Err(TrySendError::Full(_)) => Err(EngineError::Overloaded {
                capacity: self.config.queue_capacity,
                waited: Duration::ZERO,
            }),
            Err(TrySendError::Disconnected(_)) => Err(EngineError::Stopped),
        }
    }

    /// Requests queued and not yet taken by a worker.
    pub fn queue_len(&self) -> usize {
        self.queue.as_ref().map_or(0, Sender::len)
    }

    /// Submit one request and wait for its answer.
    pub fn call(&self, input: M::Input) -> Answer<M> {
        self.submit(input)?.wait()
    }

    /// Submit every input (they may run in different batches, on different workers), then wait
    /// for all: one answer per input, in order.
    pub fn call_many(&self, inputs: impl IntoIterator<Item = M::Input>) -> Vec<Answer<M>> {
        let pending: Vec<_> = inputs.into_iter().map(|x| self.submit(x)).collect();
        pending.into_iter().map(|p| p.and_then(Pending::wait)).collect()
    }

    /// The model the engine runs (on several devices: the first device's copy).
    pub fn model(&self) -> &M {
        &self.models[0]
    }

    /// The model's copies, one per device, in the order given.
    pub fn models(&self) -> &[Arc<M>] {
        &self.models
    }

    /// The engine's settings.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The counters so far, summed over the devices.
    pub fn stats(&self) -> EngineStats {
        self.lanes.total()
    }

    /// Each device's counters and health, in the order given.
    pub fn device_stats(&self) -> Vec<DeviceStats> {
        self.lanes.stats()
    }
}

impl<M: BatchModel> Drop for Engine<M> {
    fn drop(&mut self) {
        self.queue = None;
        for worker in self.workers.drain(..) {
            // A worker's panics are caught around the model; a join error can only come from a
            // bug in the loop itself, and there is nobody left to report it to.
            let _ = worker.join();
        }
    }
}

impl<M: BatchModel> std::fmt::Debug for Engine<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}
