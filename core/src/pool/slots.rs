//! The slot table: which slots are taken, and the slow path for callers that find none free.
//!
//! Ownership is one atomic flag per slot. A slot is taken by a successful `false -> true`
//! compare-exchange and given back by storing `false`, so a slot can never have two owners: only
//! one compare-exchange can win. Nothing here takes a lock unless every slot is taken.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::sync::{self, fence, AtomicBool, AtomicU64, AtomicUsize, Condvar, Mutex, Ordering};

/// One slot: its ownership flag and its stream, created on first use.
pub(crate) struct Slot<S> {
    /// `true` while a lease owns the slot. SeqCst: it takes part in the sleep/wake handshake
    /// with `Slots::waiters` (see `release`).
    taken: AtomicBool,
    /// Created by the first owner (slots are exclusive, so at most one thread creates it); read
    /// by device-wide synchronize from any thread.
    pub(crate) stream: OnceLock<S>,
}

/// Counters for [`crate::PoolStats`]. Relaxed: they are statistics, not synchronisation.
#[derive(Default)]
struct Counters {
    in_use: AtomicUsize,
    high_water: AtomicUsize,
    acquires: AtomicU64,
    waits: AtomicU64,
    timeouts: AtomicU64,
}

pub(crate) struct Slots<S> {
    slots: Box<[Slot<S>]>,
    counters: Counters,
    /// Number of callers sleeping in `acquire_slow` (SeqCst, see `release`).
    waiters: AtomicUsize,
    /// Guards no data: it only makes "check for a free slot, then sleep" atomic with respect to
    /// `release`'s notify, so that a wake-up cannot be lost. Taken only when every slot is taken.
    sleep: Mutex<()>,
    freed: Condvar,
    /// Where the next caller without a slot hint starts scanning; spreads first acquires.
    next_start: AtomicUsize,
}

impl<S> Slots<S> {
    pub(crate) fn new(capacity: usize) -> Self {
        let slots = (0..capacity.max(1))
            .map(|_| Slot { taken: AtomicBool::new(false), stream: OnceLock::new() })
            .collect();
        Self {
            slots,
            counters: Counters::default(),
            waiters: AtomicUsize::new(0),
            sleep: Mutex::new(()),
            freed: Condvar::new(),
            next_start: AtomicUsize::new(0),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn slot(&self, index: usize) -> &Slot<S> {
        &self.slots[index]
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Slot<S>> {
        self.slots.iter()
    }

    /// Take a free slot without waiting, starting the scan at `hint` (the caller's last slot,
    /// so a thread tends to get its own stream back).
    pub(crate) fn try_take(&self, hint: Option<usize>) -> Option<usize> {
        let n = self.slots.len();
        let start = match hint {
            Some(h) if h < n => h,
            _ => self.next_start.fetch_add(1, Ordering::Relaxed) % n,
        };
        for i in 0..n {
            let index = (start + i) % n;
            let slot = &self.slots[index];
            // SeqCst even for this pre-check (a plain load on x86): see the fences in `take`
            // and `release`.
            if !slot.taken.load(Ordering::SeqCst)
                && slot
                    .taken
                    .compare_exchange(false, true, Ordering::SeqCst, Ordering::Relaxed)
                    .is_ok()
            {
                self.counters.acquires.fetch_add(1, Ordering::Relaxed);
                let now = self.counters.in_use.fetch_add(1, Ordering::Relaxed) + 1;
                self.counters.high_water.fetch_max(now, Ordering::Relaxed);
                return Some(index);
            }
        }
        None
    }

    /// Take a free slot, sleeping until one is released or `timeout` passes.
    pub(crate) fn take(&self, hint: Option<usize>, timeout: Duration) -> Result<usize, Duration> {
        if let Some(index) = self.try_take(hint) {
            return Ok(index);
        }
        self.counters.waits.fetch_add(1, Ordering::Relaxed);
        let start = Instant::now();
        let mut guard = sync::lock(&self.sleep);
        self.waiters.fetch_add(1, Ordering::SeqCst);
        // Pairs with the fence in `release` (a store-load handshake): either our scan below sees
        // the released flag, or `release` sees `waiters > 0` and notifies under `sleep`.
        fence(Ordering::SeqCst);
        let result = loop {
            // Checked after `waiters` was raised: a release that ran before this scan is seen
            // by it; one that runs after sees `waiters > 0` and notifies under `sleep`.
            if let Some(index) = self.try_take(hint) {
                break Ok(index);
            }
            let waited = start.elapsed();
            if waited >= timeout {
                self.counters.timeouts.fetch_add(1, Ordering::Relaxed);
                break Err(waited);
            }
            guard = sync::wait_timeout(&self.freed, guard, timeout - waited);
        };
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        drop(guard);
        result
    }

    /// Give slot `index` back. Called exactly once per successful take (by the lease's drop).
    pub(crate) fn release(&self, index: usize) {
        self.counters.in_use.fetch_sub(1, Ordering::Relaxed);
        self.slots[index].taken.store(false, Ordering::SeqCst);
        // Pairs with the fence in `take`: either the waiter's scan sees the store above, or this
        // load sees the waiter and the notify below wakes it. Only a full fence on both sides
        // guarantees that (a SeqCst store followed by a load of another variable does not).
        fence(Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) > 0 {
            let _guard = sync::lock(&self.sleep);
            self.freed.notify_all();
        }
    }

    pub(crate) fn in_use(&self) -> usize {
        self.counters.in_use.load(Ordering::Relaxed)
    }

    pub(crate) fn stats(&self) -> crate::PoolStats {
        let c = &self.counters;
        crate::PoolStats {
            capacity: self.slots.len(),
            in_use: c.in_use.load(Ordering::Relaxed),
            high_water: c.high_water.load(Ordering::Relaxed),
            acquires: c.acquires.load(Ordering::Relaxed),
            waits: c.waits.load(Ordering::Relaxed),
            timeouts: c.timeouts.load(Ordering::Relaxed),
            streams_created: self.slots.iter().filter(|s| s.stream.get().is_some()).count(),
        }
    }
}
