//! The devices of an engine: each one's counters and health, read without locks.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use crate::stats::Counters;
use crate::{DeviceStats, EngineStats};

/// One device of an engine.
pub(crate) struct Lane {
    pub(crate) label: String,
    pub(crate) workers: usize,
    pub(crate) counters: Counters,
    /// Why the device failed: set once, read without a lock after. Once set, its workers take
    /// no more batches.
    failure: OnceLock<String>,
}

impl Lane {
    /// Why the device failed, once it has.
    pub(crate) fn failure(&self) -> Option<&str> {
        self.failure.get().map(String::as_str)
    }
}

/// Every device of an engine, in the order given.
pub(crate) struct Lanes {
    lanes: Vec<Lane>,
    /// Devices not failed. Sequentially consistent with `failure`: of several devices failing at
    /// once, the last to count itself out sees zero (and answers the queue, see the worker).
    healthy: AtomicUsize,
}

impl Lanes {
    pub(crate) fn new(devices: impl IntoIterator<Item = (String, usize)>) -> Self {
        let lanes: Vec<Lane> = devices
            .into_iter()
            .map(|(label, workers)| Lane {
                label,
                workers,
                counters: Counters::default(),
                failure: OnceLock::new(),
            })
            .collect();
        let healthy = AtomicUsize::new(lanes.len());
        Self { lanes, healthy }
    }

    pub(crate) fn lane(&self, i: usize) -> &Lane {
        &self.lanes[i]
    }

    /// Devices not failed.
    pub(crate) fn healthy(&self) -> usize {
        self.healthy.load(Ordering::SeqCst)
    }

    pub(crate) fn is_failed(&self, i: usize) -> bool {
        self.lanes[i].failure.get().is_some()
    }

    /// Take device `i` out, for `why` (the first reason stays).
    pub(crate) fn fail(&self, i: usize, why: String) {
        if self.lanes[i].failure.set(why).is_ok() {
            self.healthy.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Whether a free worker of device `i` should take the next request now: unless another
    /// healthy device with a free worker runs fewer batches. Requests go to the least-loaded
    /// device without a guess at queue lengths: a worker takes work only when it is free.
    pub(crate) fn preferred(&self, i: usize) -> bool {
        if self.lanes.len() == 1 {
            return true;
        }
        let mine = self.lanes[i].counters.running();
        self.lanes.iter().enumerate().all(|(j, lane)| {
            let running = lane.counters.running();
            j == i || lane.failure.get().is_some() || running >= lane.workers || running >= mine
        })
    }

    /// Every failed device and why, as one line.
    pub(crate) fn failures(&self) -> String {
        let failed: Vec<String> = self
            .lanes
            .iter()
            .filter_map(|lane| lane.failure.get().map(|why| format!("{}: {why}", lane.label)))
            .collect();
        failed.join("; ")
    }

    pub(crate) fn stats(&self) -> Vec<DeviceStats> {
        self.lanes
            .iter()
            .map(|lane| DeviceStats {
                device: lane.label.clone(),
                stats: lane.counters.snapshot(),
                workers: lane.workers,
                failure: lane.failure.get().cloned(),
            })
            .collect()
    }

    pub(crate) fn total(&self) -> EngineStats {
        let parts: Vec<EngineStats> = self.lanes.iter().map(|l| l.counters.snapshot()).collect();
        EngineStats::sum(&parts)
    }
}
