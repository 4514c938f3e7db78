//! [`Failures`]: a stream's asynchronous failures, kept until the thread that submitted the failed
//! work has heard of each one, and reported by every synchronize meanwhile.

use std::sync::atomic::AtomicU64;

use crate::error::BackendError;
use crate::sync::{lock, thread_local, AtomicUsize, Mutex, Ordering};

/// Who submitted a piece of work: a number per thread (`ThreadId`s cannot be made by a model
/// checker, and this is one relaxed load once the thread has one).
pub type Submitter = u64;

/// Numbers handed out so far (a plain `std` atomic even under loom: it only makes ids unique).
static NEXT_SUBMITTER: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static ME: Submitter = NEXT_SUBMITTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// The calling thread's [`Submitter`] number.
pub fn submitter() -> Submitter {
    ME.with(|me| *me)
}

/// The failures of one stream's work, each with the thread that submitted the work.
///
/// The rule every backend keeps (see [`crate::Stream`]): a failure is **kept for its submitter**
/// and reported once to it, at its next call on the stream ([`Failures::take_own`]); every
/// synchronize that covers the failed work reports it too ([`Failures::check`]), from any thread,
/// without consuming it. So no failure is lost because another thread synchronised first.
///
/// ```
/// use streampool_core::{submitter, Failures};
/// let failures = Failures::default();
/// failures.record(submitter(), "kernel fault".into());
/// std::thread::scope(|s| {
///     s.spawn(|| {
///         assert!(failures.take_own(3).is_ok(), "not this thread's work");
///         assert!(failures.check(3).is_err(), "but its synchronize covers it");
///     });
/// });
/// assert!(failures.take_own(3).is_err(), "kept for the submitter");
/// assert!(failures.take_own(3).is_ok(), "reported once");
/// assert!(failures.check(3).is_ok());
/// ```
#[derive(Debug)]
pub struct Failures {
    /// Failures kept: (submitter, message), oldest first. Taken only when something failed or
    /// [`Failures::pending`] says there is something to look at.
    list: Mutex<Vec<(Submitter, String)>>,
    /// `list.len()`, readable without the lock: the no-failure path of every call is one load.
    pending: AtomicUsize,
}

impl Default for Failures {
    fn default() -> Self {
        Self { list: Mutex::new(Vec::new()), pending: AtomicUsize::new(0) }
    }
}

impl Failures {
    /// Keep `message`, a failure of work `submitter` submitted.
    pub fn record(&self, submitter: Submitter, message: String) {
        let mut list = lock(&self.list);
        list.push((submitter, message));
        // Release: a reader that sees the count sees the entry (it then takes the lock anyway).
        self.pending.store(list.len(), Ordering::Release);
    }

    /// Whether any failure is kept.
    pub fn pending(&self) -> bool {
        self.pending.load(Ordering::Acquire) > 0
    }

    /// For the calling thread's own calls on stream `slot` (submitting, synchronising): the
    /// oldest failure of work this thread submitted, removed, as
    /// [`BackendError::StreamFailed`].
    pub fn take_own(&self, slot: usize) -> Result<(), BackendError> {
        if !self.pending() {
            return Ok(());
        }
        let me = submitter();
        let mut list = lock(&self.list);
        let Some(i) = list.iter().position(|(s, _)| *s == me) else { return Ok(()) };
        let (_, message) = list.remove(i);
        self.pending.store(list.len(), Ordering::Release);
        Err(BackendError::StreamFailed { slot, message })
    }

    /// For a synchronize of stream `slot` (after its wait): the calling thread's own failure,
    /// removed, as [`Failures::take_own`]; else the oldest failure of another thread's work,
    /// reported and kept for its submitter.
    pub fn check(&self, slot: usize) -> Result<(), BackendError> {
        self.take_own(slot)?;
        if !self.pending() {
            return Ok(());
        }
        match lock(&self.list).first() {
            Some((_, message)) => {
                Err(BackendError::StreamFailed { slot, message: message.clone() })
            }
            None => Ok(()),
        }
    }
}
