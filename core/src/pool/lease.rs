//! Leases (ownership of a slot) and the thread's current stream.

use std::cell::{Cell, RefCell};
use std::marker::PhantomData;

use crate::backend::Backend;
use crate::device::Device;
use crate::sync::thread_local;

thread_local! {
    /// Stack of (device id, slot) set by [`Lease::make_current`]; the top entry for a device is
    /// that thread's current stream on it. Thread-local: no lock.
    static CURRENT: RefCell<Vec<(u64, usize)>> = RefCell::new(Vec::new());
    /// The slot this thread last owned, used as the starting point of the next scan.
    static HINT: Cell<Option<usize>> = Cell::new(None);
}

pub(crate) fn slot_hint() -> Option<usize> {
    HINT.with(|h| h.get())
}

pub(crate) fn set_slot_hint(slot: usize) {
    HINT.with(|h| h.set(Some(slot)));
}

/// Ownership of one slot of a device's pool, and so of its stream. The slot goes back to the pool
/// when the lease is dropped. A slot never has two leases at once.
///
/// ```
/// use streampool_core::{Device, PoolConfig};
/// # use streampool_core::testing::NullBackend;
/// let device = Device::new(NullBackend, PoolConfig::with_capacity(2));
/// let lease = device.acquire()?;
/// assert_eq!(device.stats().in_use, 1);
/// drop(lease);
/// assert_eq!(device.stats().in_use, 0);
/// # Ok::<(), streampool_core::PoolError>(())
/// ```
///
/// A lease can move to another thread (ownership moves with it) but cannot be shared: it is
/// `Send` and not `Sync`, so no thread can make a stream current from a lease it only borrows.
///
/// ```compile_fail
/// fn shared<T: Sync>() {}
/// shared::<streampool_core::Lease<streampool_core::testing::NullBackend>>();
/// ```
pub struct Lease<B: Backend> {
    device: Device<B>,
    slot: usize,
    /// `Cell` is `Send` and not `Sync`: the lease may move between threads, never be shared.
    _not_sync: PhantomData<Cell<()>>,
}

impl<B: Backend> Lease<B> {
    /// Called by the device once the slot is taken and its stream exists.
    pub(crate) fn new(device: Device<B>, slot: usize) -> Self {
        Self { device, slot, _not_sync: PhantomData }
    }

    /// The slot index (0..capacity).
    pub fn slot(&self) -> usize {
        self.slot
    }

    /// The device this lease belongs to.
    pub fn device(&self) -> &Device<B> {
        &self.device
    }

    /// The slot's stream. Using it takes no lock in the core.
    pub fn stream(&self) -> &B::Stream {
        self.device
            .slot_stream(self.slot)
            .expect("invariant: a lease's stream is created before the lease exists")
    }

    /// Make this lease's stream the calling thread's current stream on its device until the guard
    /// drops. The guard borrows the lease, so the lease outlives it; the guard cannot leave the
    /// thread. This is the only way to set a current stream.
    pub fn make_current(&self) -> CurrentGuard<'_, B> {
        CURRENT.with(|c| c.borrow_mut().push((self.device.id(), self.slot)));
        CurrentGuard { lease: self, _not_send: PhantomData }
    }
}

impl<B: Backend> Drop for Lease<B> {
    fn drop(&mut self) {
        self.device.release_slot(self.slot);
    }
}

impl<B: Backend> std::fmt::Debug for Lease<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("device", &self.device.id())
            .field("slot", &self.slot)
            .finish()
    }
}

/// Keeps a lease's stream current on this thread; restores the previous current stream on drop.
pub struct CurrentGuard<'a, B: Backend> {
    lease: &'a Lease<B>,
    /// A current stream is a property of one thread: the guard must not move to another.
    _not_send: PhantomData<*const ()>,
}

impl<B: Backend> CurrentGuard<'_, B> {
    /// The lease that is current.
    pub fn lease(&self) -> &Lease<B> {
        self.lease
    }
}

impl<B: Backend> Drop for CurrentGuard<'_, B> {
    fn drop(&mut self) {
        let key = (self.lease.device.id(), self.lease.slot);
        // Guards drop in reverse order of creation on one thread, so this is the top entry;
        // search anyway so that a guard leaked with mem::forget cannot pop someone else's.
        // `try_with`: during thread teardown the stack may already be gone.
        let _ = CURRENT.try_with(|c| {
            let mut stack = c.borrow_mut();
            if let Some(pos) = stack.iter().rposition(|e| *e == key) {
                stack.remove(pos);
            }
        });
    }
}

/// The slot that is current on this thread for device `device_id`, if a guard set one.
pub(crate) fn current_slot(device_id: u64) -> Option<usize> {
    CURRENT.with(|c| c.borrow().iter().rev().find(|(d, _)| *d == device_id).map(|(_, s)| *s))
}
