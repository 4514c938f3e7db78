//! Counters of an engine (relaxed atomics: written by the workers, read at any time).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// A snapshot of an engine's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EngineStats {
    /// Requests answered (results and batch errors).
    pub requests: u64,
    /// Batches run.
    pub batches: u64,
    /// The largest batch run.
    pub max_batch: usize,
    /// Batches that failed.
    pub failed_batches: u64,
    /// Requests dropped unrun because their caller had gone (async callers only).
    pub cancelled: u64,
    /// Workers running a batch now.
    pub running: usize,
}

/// One device's share of an engine ([`crate::Engine::device_stats`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceStats {
    /// The device's label (`cuda:1`).
    pub device: String,
    /// Its counters (`running`: its workers running a batch now).
    pub stats: EngineStats,
    /// Its workers.
    pub workers: usize,
    /// Why it failed, once it has: it takes no more batches.
    pub failure: Option<String>,
}

impl DeviceStats {
    /// Whether the device still takes batches.
    pub fn healthy(&self) -> bool {
        self.failure.is_none()
    }
}

impl EngineStats {
    /// The sum of `parts` (`max_batch`: the largest).
    pub fn sum<'a>(parts: impl IntoIterator<Item = &'a EngineStats>) -> EngineStats {
        parts.into_iter().fold(EngineStats::default(), |a, b| EngineStats {
            requests: a.requests + b.requests,
            batches: a.batches + b.batches,
            max_batch: a.max_batch.max(b.max_batch),
            failed_batches: a.failed_batches + b.failed_batches,
            cancelled: a.cancelled + b.cancelled,
            running: a.running + b.running,
        })
    }

    /// Requests per batch on average (0 before the first batch).
    pub fn mean_batch(&self) -> f64 {
        if self.batches == 0 {
            0.0
        } else {
            self.requests as f64 / self.batches as f64
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    requests: AtomicU64,
    batches: AtomicU64,
    max_batch: AtomicUsize,
    failed_batches: AtomicU64,
    cancelled: AtomicU64,
    running: AtomicUsize,
}

/// A worker running a batch: counted in [`EngineStats::running`] until dropped.
pub(crate) struct Running<'a>(&'a AtomicUsize);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Counters {
    pub(crate) fn batch(&self, size: usize, ok: bool) {
        self.requests.fetch_add(size as u64, Ordering::Relaxed);
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.max_batch.fetch_max(size, Ordering::Relaxed);
        if !ok {
            self.failed_batches.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn cancelled(&self) {
        self.cancelled.fetch_add(1, Ordering::Relaxed);
    }

    /// Workers running a batch now.
    pub(crate) fn running(&self) -> usize {
        self.running.load(Ordering::Relaxed)
    }

    pub(crate) fn enter(&self) -> Running<'_> {
        self.running.fetch_add(1, Ordering::Relaxed);
        Running(&self.running)
    }

    pub(crate) fn snapshot(&self) -> EngineStats {
        EngineStats {
            requests: self.requests.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            max_batch: self.max_batch.load(Ordering::Relaxed),
            failed_batches: self.failed_batches.load(Ordering::Relaxed),
            cancelled: self.cancelled.load(Ordering::Relaxed),
            running: self.running.load(Ordering::Relaxed),
        }
    }
}
