//! How an engine runs.

use std::time::Duration;

/// Settings of an [`crate::Engine`]. `EngineConfig::default()` then the builder methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineConfig {
    /// Workers, each leasing one pool slot (stream) for the engine's life (default 4).
    pub workers: usize,
    /// Requests per batch at most (default 64).
    pub max_batch: usize,
    /// Padded tokens ([`crate::BatchModel::padded_tokens`]) a worker takes from the queue at once
    /// (default: no bound). What it takes is sorted by length and run as batches whose rows ×
    /// longest stay within the same bound, so that a short text does not pay for a long one's
    /// padding. A request that would pass it starts the worker's next take; one over it alone
    /// runs alone.
    pub max_batch_tokens: usize,
    /// How long a worker that has a request waits for more before running (default zero: it
    /// runs what has queued; batches grow under load while the workers are busy).
    pub max_wait: Duration,
    /// Requests the queue holds (default 4,096).
    pub queue_capacity: usize,
    /// How long a submit waits for room in a full queue before
    /// [`crate::EngineError::Overloaded`] (default 30 s, as the pool's acquire).
    pub submit_timeout: Duration,
    /// How long an idle worker polls the queue (yielding the core between polls) before it
    /// sleeps (default 1 ms): waking a sleeping thread costs tens of microseconds, about a tenth
    /// of a batch-1 forward on a GPU. Zero: sleep at once.
    pub spin: Duration,
    /// How long a caller waiting for its answer ([`crate::Pending::wait`]) polls before it
    /// sleeps (default 1 ms, as `spin`): for callers that outnumber the cores, where polling
    /// takes cores from others. (16 and 64 Python threads on a GPU measured the same with 0,
    /// 0.1 and 1 ms: docs/performance.md, "GPU: Python threads".)
    pub wait_spin: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            workers: 4,
            max_batch: 64,
            max_batch_tokens: usize::MAX,
            max_wait: Duration::ZERO,
            queue_capacity: 4096,
            submit_timeout: Duration::from_secs(30),
            spin: Duration::from_millis(1),
            wait_spin: Duration::from_millis(1),
        }
    }
}

impl EngineConfig {
    /// Set [`EngineConfig::workers`] (at least 1).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n.max(1);
        self
    }

    /// Set [`EngineConfig::max_batch`] (at least 1).
    pub fn max_batch(mut self, n: usize) -> Self {
        self.max_batch = n.max(1);
        self
    }

    /// Set [`EngineConfig::max_batch_tokens`] (at least 1).
    pub fn max_batch_tokens(mut self, n: usize) -> Self {
        self.max_batch_tokens = n.max(1);
        self
    }

    /// Set [`EngineConfig::max_wait`].
    pub fn max_wait(mut self, wait: Duration) -> Self {
        self.max_wait = wait;
        self
    }

    /// Set [`EngineConfig::queue_capacity`] (at least 1).
    pub fn queue_capacity(mut self, n: usize) -> Self {
        self.queue_capacity = n.max(1);
        self
    }

    /// Set [`EngineConfig::spin`] and [`EngineConfig::wait_spin`].
    pub fn spin(mut self, spin: Duration) -> Self {
        self.spin = spin;
        self.wait_spin = spin;
        self
    }

    /// Set [`EngineConfig::wait_spin`] alone.
    pub fn wait_spin(mut self, spin: Duration) -> Self {
        self.wait_spin = spin;
        self
    }

    /// Set [`EngineConfig::submit_timeout`].
    pub fn submit_timeout(mut self, timeout: Duration) -> Self {
        self.submit_timeout = timeout;
        self
    }
}
