//! Metal events: an `MTLSharedEvent` whose value only grows. Record `n` encodes "signal `n`" on
//! the recording stream's command buffer (and commits it); a wait encodes "wait for `n`" on the
//! waiting stream's; the host waits for the value with a bounded, sleeping wait.
//!
//! An event keeps no command buffer: only the value, the slot, and the completion record of the
//! buffer that signals it (completion.rs), which tells a failure and the `GPUEndTime`.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use objc2::rc::{autoreleasepool, Retained};
use objc2::runtime::ProtocolObject;
use objc2_metal::{MTLEvent, MTLSharedEvent};
use streampool_core::{BackendError, Event, EventError, Timing};

use crate::completion::{Completion, Outcome};

/// How long one host wait on the event's value lasts before the waiter checks whether the
/// command buffer that should signal it failed (then it never will).
const WAIT_SLICE_MS: u64 = 50;

/// The last record. Guarded by `Inner::last`, a lock of this event alone.
#[derive(Clone, Default)]
struct Last {
    /// The value the last record signals; 0: never recorded. Grows by one per record.
    value: u64,
    /// The slot of the stream it was recorded on (for errors).
    slot: usize,
    /// The completion record of the committed command buffer that signals it: a failure (the
    /// value would never come) and, once complete, its `GPUEndTime`.
    // MPS lesson: do not retain completed command buffers: the event keeps this small record,
    // never the buffer.
    signaller: Option<Arc<Completion>>,
}

struct Inner {
    /// `MTLSharedEvent` is `Send + Sync` in objc2-metal.
    event: Retained<ProtocolObject<dyn MTLSharedEvent>>,
    timing: Timing,
    /// Held while a record assigns the next value and commits the buffer that signals it (so
    /// values are committed in increasing order), and briefly by waiters to read it. Taken after
    /// a stream's lock when both are held (record, wait_event), never before one.
    last: Mutex<Last>,
}

/// Event of the Metal backend. Cloning gives another handle to the same event.
#[derive(Clone)]
pub struct MetalEvent {
    inner: Arc<Inner>,
}

impl MetalEvent {
    pub(crate) fn new(event: Retained<ProtocolObject<dyn MTLSharedEvent>>, timing: Timing) -> Self {
        Self { inner: Arc::new(Inner { event, timing, last: Mutex::new(Last::default()) }) }
    }

    /// The shared event (for code that needs the raw API). Its value is managed by this type:
    /// setting it by hand breaks waits.
    pub fn raw(&self) -> &ProtocolObject<dyn MTLSharedEvent> {
        &self.inner.event
    }

    /// The event as the `MTLEvent` that command buffers signal and wait for.
    pub(crate) fn as_event(&self) -> &ProtocolObject<dyn MTLEvent> {
        ProtocolObject::from_ref(&*self.inner.event)
    }

    fn lock(&self) -> MutexGuard<'_, Last> {
        // Poisoned: a record panicked before updating `last`; what is there is still consistent.
        self.inner.last.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Record: `signal` encodes a signal of the value given and commits its command buffer,
    /// returning the buffer's completion record (called by the stream, under its own lock).
    pub(crate) fn record_with(
        &self,
        slot: usize,
        signal: impl FnOnce(u64) -> Result<Arc<Completion>, BackendError>,
    ) -> Result<(), BackendError> {
        let mut last = self.lock();
        let value = last.value + 1;
        let signaller = signal(value)?;
        *last = Last { value, slot, signaller: Some(signaller) };
        Ok(())
    }

    /// The value a wait issued now refers to (0: never recorded, nothing to wait for).
    pub(crate) fn last_value(&self) -> u64 {
        self.lock().value
    }

    /// Whether the last record has completed; `Err` if its command buffer failed. Never blocks.
    fn reached(&self, last: &Last) -> Result<bool, BackendError> {
        if last.value == 0 || self.inner.event.signaledValue() >= last.value {
            return Ok(true);
        }
        match last.signaller.as_deref().map(Completion::outcome) {
            Some(Outcome::Failed(message)) => {
                Err(BackendError::StreamFailed { slot: last.slot, message })
            }
            _ => Ok(false),
        }
    }

    /// The time the last record completed, or why there is none. Never blocks.
    fn stamp(&self) -> Result<f64, EventError> {
        let last = self.lock().clone();
        let Some(signaller) = last.signaller else {
            return Err(EventError::NotRecorded);
        };
        // The buffer's completion record, not the event value: `GPUEndTime` is known only once
        // the buffer has completed, which may come after the signal is visible.
        // MPS lesson: elapsed time never blocks: read the record, never wait for it.
        let end = match signaller.outcome() {
            Outcome::Pending => return Err(EventError::NotReady),
            Outcome::Failed(message) => {
                return Err(BackendError::StreamFailed { slot: last.slot, message }.into());
            }
            Outcome::Completed { gpu_end } => gpu_end,
        };
        if end > 0.0 {
            Ok(end)
        } else {
            Err(BackendError::Driver {
                backend: crate::error::BACKEND,
                call: "GPUEndTime",
                message: "Metal reported no end time for a completed command buffer".into(),
            }
            .into())
        }
    }
}

impl Event for MetalEvent {
    fn timing(&self) -> Timing {
        self.inner.timing
    }

    fn synchronize(&self) -> Result<(), BackendError> {
        let last = self.lock().clone();
        // A blocking wait in slices (the thread sleeps in Metal, it does not spin); between
        // slices, a failed signaller ends the wait with its error instead of hanging.
        // `waitUntilSignaledValue:timeoutMS:` needs macOS 12 (checked by `MetalBackend::open`).
        while !self.reached(&last)? {
            // MPS lesson: an autorelease pool around every Objective-C call on a worker thread.
            autoreleasepool(|_| {
                self.inner.event.waitUntilSignaledValue_timeoutMS(last.value, WAIT_SLICE_MS)
            });
        }
        // With timing, also wait for the signalling buffer's completion record (it may lag the
        // signal a little), so that `elapsed_since` right after this has its end time.
        if let (Timing::Enabled, Some(signaller)) = (self.inner.timing, &last.signaller) {
            signaller.wait();
        }
        Ok(())
    }

    fn query(&self) -> Result<bool, BackendError> {
        let last = self.lock().clone();
        // MPS lesson: an autorelease pool around every Objective-C call on a worker thread.
        autoreleasepool(|_| self.reached(&last))
    }

    fn elapsed_since(&self, start: &Self) -> Result<Duration, EventError> {
        // MPS lesson: elapsed time never blocks: typed errors at once, then two record reads.
        if self.inner.timing != Timing::Enabled || start.inner.timing != Timing::Enabled {
            return Err(EventError::TimingDisabled);
        }
        let begin = start.stamp()?;
        let end = self.stamp()?;
        // `self` completed before `start`: zero, like the other backends.
        Ok(Duration::from_secs_f64((end - begin).max(0.0)))
    }
}

impl std::fmt::Debug for MetalEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetalEvent")
            .field("timing", &self.inner.timing)
            .field("recorded", &self.last_value())
            .finish_non_exhaustive()
    }
}
