//! [`SlotGraphs`]: each pool slot's own graphs, by key.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, TryLockError};

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

    /// Call `f` on each slot's map. With `wait` false a slot whose lock is held (by its user, or
    /// by the caller itself) is skipped rather than waited for: safe to call while holding one
    /// slot's lock, as from inside [`SlotGraphs::with`]. Returns how many slots were skipped.
    pub fn for_each_slot(&self, wait: bool, mut f: impl FnMut(&mut HashMap<K, G>)) -> usize {
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner()).clone();
        let mut skipped = 0;
        for s in slots {
            let guard = if wait { Some(lock(&s)) } else { try_lock(&s) };
            match guard {
                Some(mut map) => f(&mut map),
                None => skipped += 1,
            }
        }
        skipped
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

/// [`lock`] without waiting: `None` while another holder has it.
fn try_lock<K, G>(slot: &Mutex<HashMap<K, G>>) -> Option<MutexGuard<'_, HashMap<K, G>>> {
    match slot.try_lock() {
        Ok(guard) => Some(guard),
        Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

impl<K, G> std::fmt::Debug for SlotGraphs<K, G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner()).len();
        f.debug_struct("SlotGraphs").field("slots", &slots).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::SlotGraphs;

    /// `for_each_slot` visits every slot; without `wait` it skips the slot whose lock the caller
    /// holds (no self-deadlock) and counts it.
    #[test]
    fn for_each_slot_visits_all_and_skips_a_held_slot() {
        let graphs: SlotGraphs<u32, String> = SlotGraphs::new();
        for slot in [0, 2, 3] {
            graphs.with(slot, 7, || Ok::<_, ()>(format!("slot {slot}")), |_| ()).unwrap();
        }
        let mut seen = 0;
        assert_eq!(graphs.for_each_slot(true, |map| seen += map.len()), 0);
        assert_eq!(seen, 3);
        let inner = graphs
            .with(
                2,
                7,
                || Ok::<_, ()>(String::new()),
                |_| {
                    let mut visited = 0;
                    let skipped = graphs.for_each_slot(false, |map| {
                        visited += 1;
                        map.retain(|_, g| g != "slot 0");
                    });
                    (visited, skipped)
                },
            )
            .unwrap();
        assert_eq!(inner, (3, 1), "slots 0, 1 (empty) and 3 visited, slot 2 skipped");
        assert_eq!(graphs.len(0), 0);
        assert_eq!((graphs.len(2), graphs.len(3)), (1, 1));
    }
}
