//! A device: one backend and its stream pool. Any thread may use it first; nothing needs to be
//! initialised on a "main" thread.

use std::time::Instant;

use crate::backend::{Backend, Stream, Timing};
use crate::error::{BackendError, PoolError};
use crate::pool::{self, slots::Slots, Lease, PoolConfig, PoolStats};
use crate::sync::{Arc, AtomicUsize, Ordering};

/// Unique id per device, so thread-local state of different devices never mixes. Not modelled
/// under loom: it is assigned once at creation.
static NEXT_DEVICE_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

struct Shared<B: Backend> {
    id: u64,
    backend: B,
    config: PoolConfig,
    slots: Slots<B::Stream>,
    /// Callers inside a [`Running`] guard (work under way), for load-dependent plans. A relaxed
    /// counter, no lock: a plan read while others enter or leave is only a little stale.
    running: AtomicUsize,
}

/// A device and its pool of streams. Cloning gives another handle to the same device.
///
/// ```
/// use streampool_core::{Device, PoolConfig};
/// # use streampool_core::testing::NullBackend;
/// let device = Device::new(NullBackend, PoolConfig::with_capacity(4));
/// std::thread::scope(|s| {
///     for _ in 0..4 {
///         s.spawn(|| {
///             let lease = device.acquire().unwrap();
///             let _current = lease.make_current();
///             assert_eq!(device.current_slot(), Some(lease.slot()));
///         });
///     }
/// });
/// device.synchronize().unwrap();
/// assert_eq!(device.stats().high_water <= 4, true);
/// ```
pub struct Device<B: Backend> {
    shared: Arc<Shared<B>>,
}

impl<B: Backend> Clone for Device<B> {
    fn clone(&self) -> Self {
        Self { shared: self.shared.clone() }
    }
}

impl<B: Backend> Device<B> {
    /// Wrap a backend with a stream pool of `config.capacity` slots. Streams are created lazily,
    /// by whichever thread first owns each slot.
    pub fn new(backend: B, config: PoolConfig) -> Self {
        let id = NEXT_DEVICE_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let slots = Slots::new(config.capacity);
        Self {
            shared: Arc::new(Shared { id, backend, config, slots, running: AtomicUsize::new(0) }),
        }
    }

    /// Unique id of this device within the process.
    pub fn id(&self) -> u64 {
        self.shared.id
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.shared.backend
    }

    /// The device's label, as `--device` spells it: `"cuda:1"`, `"cpu:0"`.
    pub fn label(&self) -> String {
        format!("{}:{}", self.shared.backend.kind(), self.shared.backend.ordinal())
    }

    /// The pool's configuration.
    pub fn config(&self) -> &PoolConfig {
        &self.shared.config
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.shared.slots.capacity()
    }

    /// Own a slot, waiting up to the configured timeout if all are taken
    /// (then [`PoolError::Exhausted`]).
    pub fn acquire(&self) -> Result<Lease<B>, PoolError> {
        let timeout = self.shared.config.acquire_timeout;
        let start = Instant::now();
        let slot = self.shared.slots.take(pool::lease_hint(), timeout).map_err(|waited| {
            PoolError::Exhausted { capacity: self.capacity(), waited: waited.max(start.elapsed()) }
        })?;
        self.lease_for(slot)
    }

    /// Own a free slot if there is one now; never waits.
    pub fn try_acquire(&self) -> Result<Option<Lease<B>>, PoolError> {
        match self.shared.slots.try_take(pool::lease_hint()) {
            Some(slot) => self.lease_for(slot).map(Some),
            None => Ok(None),
        }
    }

    /// Make sure slot `slot` (just taken by this thread) has a stream, then wrap it in a lease.
    fn lease_for(&self, slot: usize) -> Result<Lease<B>, PoolError> {
        let cell = &self.shared.slots.slot(slot).stream;
        if cell.get().is_none() {
            // This thread owns the slot exclusively, so no other thread creates this stream;
            // `device.synchronize()` only reads the cell.
            match self.shared.backend.new_stream(slot) {
                Ok(stream) => {
                    let _ = cell.set(stream);
                }
                Err(e) => {
                    self.shared.slots.release(slot);
                    return Err(e.into());
                }
            }
        }
        pool::set_lease_hint(slot);
        Ok(Lease::new(self.clone(), slot))
    }

    pub(crate) fn release_slot(&self, slot: usize) {
        self.shared.slots.release(slot);
    }

    pub(crate) fn slot_stream(&self, slot: usize) -> Option<&B::Stream> {
        self.shared.slots.slot(slot).stream.get()
    }

    /// The slot made current on this thread by [`Lease::make_current`], if any.
    pub fn current_slot(&self) -> Option<usize> {
        pool::current_slot(self.id())
    }

    /// Run `f` on a stream of this device: the current one if a [`Lease::make_current`] guard
    /// is alive on this thread, otherwise a lease taken for the call and given back when `f`
    /// returns (the slot this thread used last, when it is free). Work `f` submits is ordered
    /// within the call; for order across calls, hold a [`Lease`] (or make one current). Nothing
    /// is kept per thread, so no slot stays taken, and no device handle lives, after the call.
    ///
    /// ```
    /// use streampool_core::{Device, PoolConfig, Stream};
    /// # use streampool_core::testing::NullBackend;
    /// let device = Device::new(NullBackend, PoolConfig::with_capacity(2));
    /// let slot = device.with_stream(|s| s.slot()).unwrap();
    /// assert_eq!(device.in_use(), 0, "given back on return");
    /// assert_eq!(device.with_stream(|s| s.slot()).unwrap(), slot, "the same slot when free");
    /// ```
    pub fn with_stream<R>(&self, f: impl FnOnce(&B::Stream) -> R) -> Result<R, PoolError> {
        if let Some(slot) = self.current_slot() {
            if let Some(stream) = self.slot_stream(slot) {
                return Ok(f(stream));
            }
        }
        let lease = self.acquire()?;
        Ok(f(lease.stream()))
    }

    /// Wait until all work submitted before this call, on every stream of the device (other
    /// threads' included), has completed. Safe while other threads keep submitting: work they
    /// submit after the call may or may not be waited for.
    ///
    /// Every stream is waited for, also when some have failed; then the failures found are
    /// reported: one stream's error as it is, several as [`BackendError::Streams`], each naming
    /// its stream. A failure of another thread's work is reported without being taken from it
    /// (its submitter still hears of it, see [`crate::Failures`]).
    pub fn synchronize(&self) -> Result<(), BackendError> {
        let mut failures: Vec<BackendError> = self
            .shared
            .slots
            .iter()
            .filter_map(|slot| slot.stream.get())
            .filter_map(|stream| stream.synchronize().err())
            .collect();
        match failures.len() {
            0 => Ok(()),
            1 => Err(failures.remove(0)),
            _ => Err(BackendError::Streams(failures)),
        }
    }

    /// Create an event on this device.
    pub fn new_event(&self, timing: Timing) -> Result<B::Event, BackendError> {
        self.shared.backend.new_event(timing)
    }

    /// Allocate device memory.
    pub fn alloc(&self, bytes: usize) -> Result<B::Buffer, BackendError> {
        self.shared.backend.alloc(bytes)
    }

    /// Slots owned by a lease right now (one relaxed atomic load: cheap enough for every call).
    pub fn in_use(&self) -> usize {
        self.shared.slots.in_use()
    }

    /// Mark the caller as running work on the device (a forward) until the guard drops. Plans
    /// that depend on the load ([`crate::load_class`]) count these, not the leases held: a slot
    /// held by an idle thread (an engine's waiting worker) does not share the GPU.
    ///
    /// ```
    /// use streampool_core::{Device, PoolConfig};
    /// # use streampool_core::testing::NullBackend;
    /// let device = Device::new(NullBackend, PoolConfig::with_capacity(2));
    /// let _idle = device.acquire().unwrap();
    /// let first = device.enter();
    /// assert_eq!(first.load(), 1);
    /// assert_eq!(device.enter().load(), 2);
    /// drop(first);
    /// assert_eq!(device.running(), 0);
    /// ```
    pub fn enter(&self) -> Running<'_> {
        let load = self.shared.running.fetch_add(1, Ordering::Relaxed) + 1;
        Running { running: &self.shared.running, load }
    }

    /// Callers between [`Device::enter`] and the guard's drop right now.
    pub fn running(&self) -> usize {
        self.shared.running.load(Ordering::Relaxed)
    }

    /// Counters of the pool.
    pub fn stats(&self) -> PoolStats {
        self.shared.slots.stats()
    }
}

/// The labels of `devices`, joined: `cuda:0,cuda:2`.
pub fn labels<B: Backend>(devices: &[Device<B>]) -> String {
    devices.iter().map(Device::label).collect::<Vec<_>>().join(",")
}

/// `devices` in words: one device's name (`NVIDIA H200`); several, how many of which and their
/// labels (`2 × NVIDIA H200 (cuda:0,cuda:1)`).
pub fn describe_devices<B: Backend>(devices: &[Device<B>]) -> String {
    let names: Vec<String> = devices.iter().map(|d| d.backend().name()).collect();
    match names.as_slice() {
        [one] => one.clone(),
        [first, ..] if names.iter().all(|n| n == first) => {
            format!("{} × {first} ({})", names.len(), labels(devices))
        }
        _ => format!("{} ({})", names.join(", "), labels(devices)),
    }
}

/// A caller's work under way on a device ([`Device::enter`]); leaving is the drop.
#[must_use = "the caller counts as running only while the guard lives"]
#[derive(Debug)]
pub struct Running<'a> {
    running: &'a AtomicUsize,
    load: usize,
}

impl Running<'_> {
    /// Callers running when this one entered, itself included (at least 1).
    pub fn load(&self) -> usize {
        self.load
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.running.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<B: Backend> std::fmt::Debug for Device<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device")
            .field("id", &self.id())
            .field("kind", &self.shared.backend.kind())
            .field("capacity", &self.capacity())
            .finish()
    }
}
