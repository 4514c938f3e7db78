//! Synchronisation primitives used by the core, routed through one module so that the loom model
//! checker can replace them (`RUSTFLAGS="--cfg loom"`), as crossbeam does with its
//! `primitive::sync` module. Everything in the pool and the cache that two threads can touch at
//! once goes through here.

#[cfg(not(loom))]
pub(crate) use std::sync::{
    atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering},
    Arc, Condvar, Mutex, MutexGuard,
};

#[cfg(loom)]
pub(crate) use loom::sync::{
    atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering},
    Arc, Condvar, Mutex, MutexGuard,
};

/// `thread_local!` that loom can see (loom runs the destructors when a modelled thread ends).
#[cfg(not(loom))]
macro_rules! sp_thread_local {
    ($($t:tt)*) => { std::thread_local!($($t)*); };
}
#[cfg(loom)]
macro_rules! sp_thread_local {
    ($($t:tt)*) => { loom::thread_local!($($t)*); };
}
pub(crate) use sp_thread_local as thread_local;

/// Wait on a condition variable for at most `timeout`. Loom has no timed wait, so under loom this
/// is a plain wait: the models never rely on the timeout firing.
#[cfg(not(loom))]
pub(crate) fn wait_timeout<'a, T>(
    cv: &Condvar,
    guard: MutexGuard<'a, T>,
    timeout: std::time::Duration,
) -> MutexGuard<'a, T> {
    cv.wait_timeout(guard, timeout).unwrap_or_else(|poison| poison.into_inner()).0
}
#[cfg(loom)]
pub(crate) fn wait_timeout<'a, T>(
    cv: &Condvar,
    guard: MutexGuard<'a, T>,
    _timeout: std::time::Duration,
) -> MutexGuard<'a, T> {
    cv.wait(guard).unwrap()
}

/// Lock a mutex, ignoring poisoning: every critical section in the core leaves its data
/// consistent before it can panic, so a poisoned lock still guards valid state.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    #[cfg(not(loom))]
    {
        m.lock().unwrap_or_else(|poison| poison.into_inner())
    }
    #[cfg(loom)]
    {
        m.lock().unwrap()
    }
}

/// Block on a condition variable, ignoring poisoning (see [`lock`]).
pub(crate) fn wait<'a, T>(cv: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    #[cfg(not(loom))]
    {
        cv.wait(guard).unwrap_or_else(|poison| poison.into_inner())
    }
    #[cfg(loom)]
    {
        cv.wait(guard).unwrap()
    }
}

/// Snapshot pointer with lock-free reads: `arc_swap::ArcSwap` normally; under loom a mutex
/// around an `Arc` (loom cannot model arc-swap's internals, but it does model the protocol built on
/// top of it).
#[cfg(not(loom))]
pub(crate) struct Snapshot<T>(arc_swap::ArcSwap<T>);
#[cfg(not(loom))]
impl<T> Snapshot<T> {
    pub(crate) fn new(value: T) -> Self {
        Self(arc_swap::ArcSwap::from_pointee(value))
    }
    /// Read the current snapshot. Takes no lock: arc-swap's fast path uses a per-thread slot.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        f(&self.0.load())
    }
    pub(crate) fn store(&self, value: T) {
        self.0.store(std::sync::Arc::new(value));
    }
}

#[cfg(loom)]
pub(crate) struct Snapshot<T>(Mutex<std::sync::Arc<T>>);
#[cfg(loom)]
impl<T> Snapshot<T> {
    pub(crate) fn new(value: T) -> Self {
        Self(Mutex::new(std::sync::Arc::new(value)))
    }
    pub(crate) fn read<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        let snap = self.0.lock().unwrap().clone();
        f(&snap)
    }
    pub(crate) fn store(&self, value: T) {
        *self.0.lock().unwrap() = std::sync::Arc::new(value);
    }
}
