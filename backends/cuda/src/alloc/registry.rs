//! The device's list of arenas (for a stream whose own list is empty, and for statistics) and
//! its device-wide counters.

use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, RwLock, Weak};

use cudarc::driver::sys;

use super::arena::Arena;

/// Memory of one stream's pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamMemoryStats {
    /// The stream's pool slot.
    pub slot: usize,
    /// Bytes (size classes) of live buffers allocated on this stream.
    pub in_use: usize,
    /// Highest `in_use`.
    pub peak: usize,
    /// Bytes in this stream's free lists.
    pub cached: usize,
    /// Allocations served from this stream's own free list (no wait, no driver call).
    pub hits: usize,
    /// Allocations served from another stream's list (its free event had completed).
    pub steals: usize,
    /// Allocations that called `cuMemAlloc`.
    pub mallocs: usize,
}

/// Memory of the device's stream pools.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Bytes of live pooled buffers, all streams.
    pub in_use: usize,
    /// Highest `in_use` of the device.
    pub peak: usize,
    /// Bytes in all free lists.
    pub cached: usize,
    /// Per stream, in order of creation (streams already dropped are left out).
    pub streams: Vec<StreamMemoryStats>,
}

/// All arenas of a device.
#[derive(Default)]
pub(crate) struct Registry {
    /// Guards the list of arenas: written when a stream is created, read when a stream's own
    /// list has no block of the class it needs and for statistics. Not taken on a hit.
    arenas: RwLock<Vec<Weak<Arena>>>,
    /// Device-wide bytes in use, cached, and the peak of in-use. Relaxed: statistics.
    in_use: AtomicIsize,
    cached: AtomicIsize,
    peak: AtomicUsize,
}

impl Registry {
    pub(super) fn register(&self, arena: &Arc<Arena>) {
        let mut arenas = self.arenas.write().unwrap_or_else(|p| p.into_inner());
        arenas.retain(|a| a.strong_count() > 0);
        arenas.push(Arc::downgrade(arena));
    }

    fn live(&self) -> Vec<Arc<Arena>> {
        let arenas = self.arenas.read().unwrap_or_else(|p| p.into_inner());
        arenas.iter().filter_map(Weak::upgrade).collect()
    }

    pub(super) fn count_in_use(&self, delta: isize) {
        let now = self.in_use.fetch_add(delta, Relaxed) + delta;
        self.peak.fetch_max(now.max(0) as usize, Relaxed);
    }

    pub(super) fn count_cached(&self, delta: isize) {
        self.cached.fetch_add(delta, Relaxed);
    }

    /// A ready block of `class` from any arena but `thief`'s.
    pub(super) fn steal(&self, class: usize, thief: &Arena) -> Option<sys::CUdeviceptr> {
        if self.cached.load(Relaxed) <= 0 {
            return None;
        }
        let arenas = self.arenas.read().unwrap_or_else(|p| p.into_inner());
        arenas
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|a| !std::ptr::eq(&**a, thief))
            .find_map(|a| a.take_ready(class))
    }

    /// Free every cached block of every stream (after the device is idle).
    pub(crate) fn release_all(&self) {
        for arena in self.live() {
            let ptrs = arena.drain();
            arena.release(ptrs);
        }
    }

    pub(crate) fn stats(&self) -> MemoryStats {
        MemoryStats {
            in_use: self.in_use.load(Relaxed).max(0) as usize,
            peak: self.peak.load(Relaxed),
            cached: self.cached.load(Relaxed).max(0) as usize,
            streams: self.live().iter().map(|a| a.stats()).collect(),
        }
    }
}
