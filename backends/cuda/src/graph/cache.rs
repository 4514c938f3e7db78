//! [`SlotGraphs`]: each pool slot's own graphs, by key.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

/// One slot's graphs.
type Slot<K, G> = Arc<Mutex<HashMap<K, G>>>;

/// Graphs (or whatever a caller builds around one: its buffers, its pinned staging) kept per
/// pool slot and key, e.g. `(model id, shape bucket)`.
///
/// Unlike the core's per-device `CompileCache`, nothing here is shared between slots: a graph
/// replays on the one stream it was captured on, so each slot captures and owns its own. A slot
/// is used by one thread at a time (the lease holder), so its lock is uncontended, and a slow
/// capture in one slot never blocks another.
///
/// ```
/// use streampool_cuda::graph::SlotGraphs;
/// let graphs: SlotGraphs<(u64, usize), String> = SlotGraphs::new();
/// let len = graphs.with(3, (7, 128), || Ok::<_, ()>("captured".to_string()), |g| g.len());
/// assert_eq!(len, Ok(8));
/// assert_eq!(graphs.len(3), 1);
/// ```
pub struct SlotGraphs<K, G> {
    /// Guards the list of slots: read to find a slot's map, written only to add slots. Never
    /// held while a slot's lock is taken.
    slots: RwLock<Vec<Slot<K, G>>>,
}

impl<K: Eq + Hash, G> Default for SlotGraphs<K, G> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Eq + Hash, G> SlotGraphs<K, G> {
    /// No graphs yet.
    pub fn new() -> Self {
        Self { slots: RwLock::new(Vec::new()) }
    }

    /// Slot `slot`'s map (created on first use).
    fn slot(&self, slot: usize) -> Slot<K, G> {
        if let Some(s) = self.slots.read().unwrap_or_else(|p| p.into_inner()).get(slot) {
            return s.clone();
        }
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        // Checked again under the write lock: another slot may have grown the list meanwhile.
        while slots.len() <= slot {
            slots.push(Arc::default());
        }
        slots[slot].clone()
    }

    /// Call `f` with `slot`'s graph for `key`, building it with `make` (under the slot's lock:
    /// the same slot waits, others do not) if there is none. A failed `make` stores nothing.
    pub fn with<R, E>(
        &self,
        slot: usize,
        key: K,
        make: impl FnOnce() -> Result<G, E>,
        f: impl FnOnce(&mut G) -> R,
    ) -> Result<R, E> {
        let slot = self.slot(slot);
        let mut map = lock(&slot);
        let graph = match map.entry(key) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(make()?),
        };
        Ok(f(graph))
    }

    /// Number of graphs `slot` holds.
    pub fn len(&self, slot: usize) -> usize {
        lock(&self.slot(slot)).len()
    }

    /// Drop every graph of every slot (waits for each slot's current user).
    pub fn clear(&self) {
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner()).clone();
        for s in slots {
            lock(&s).clear();
        }
    }
}

/// Lock a slot's map. A poisoned lock is taken anyway: a panic mid-replay leaves graphs that are
/// still valid (a failed build never inserts one).
fn lock<K, G>(slot: &Mutex<HashMap<K, G>>) -> MutexGuard<'_, HashMap<K, G>> {
    slot.lock().unwrap_or_else(|p| p.into_inner())
}

impl<K, G> std::fmt::Debug for SlotGraphs<K, G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner()).len();
        f.debug_struct("SlotGraphs").field("slots", &slots).finish_non_exhaustive()
    }
}
