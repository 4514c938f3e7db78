//! `Stream::hold` without a clock on the GPU (the Metal Shading Language has none): the stream's
//! command buffer signals a per-stream "gate" `MTLSharedEvent` when the GPU reaches the hold,
//! then waits for the next value; a host thread waits for the first value, sleeps for the
//! duration, and sets the second. So the hold starts when the GPU gets there, like CUDA's
//! `hold_ns` kernel, and lasts about `duration`.
//!
//! Approximate, and meant for tests and demos only: the duration is the host thread's sleep plus
//! the latency of Metal's event notification both ways (tens of microseconds to a few
//! milliseconds); each hold costs a host thread while it is pending; if the command buffer
//! carrying it fails, or the stream is dropped before the GPU gets there, the thread gives up
//! and opens the gate at once.

use std::sync::{Arc, Weak};
use std::time::Duration;

use objc2::rc::{autoreleasepool, Retained};
use objc2::runtime::ProtocolObject;
use objc2_metal::{MTLCommandBuffer, MTLCommandQueue, MTLDevice, MTLEvent, MTLSharedEvent};
use streampool_core::BackendError;

use crate::commands::Commands;
use crate::error::{self, BACKEND};

/// How long the host thread sleeps in one wait for the GPU to reach the hold, before it checks
/// whether the stream still exists.
const POLL_MS: u64 = 50;

/// A stream's hold gate.
pub(crate) struct Gate {
    /// `MTLSharedEvent` is `Send + Sync` in objc2-metal.
    event: Retained<ProtocolObject<dyn MTLSharedEvent>>,
    /// Dropped with the stream: tells pending hold threads to stop waiting.
    alive: Arc<()>,
}

impl Gate {
    pub(crate) fn new(device: &ProtocolObject<dyn MTLDevice>) -> Result<Self, BackendError> {
        let event = autoreleasepool(|_| device.newSharedEvent())
            .ok_or_else(|| error::nil("newSharedEvent"))?;
        Ok(Self { event, alive: Arc::new(()) })
    }

    /// Encode a hold of `duration` into the stream's open command buffer (`commands`, under the
    /// stream's lock, with room for a new buffer made by the caller) and start the host thread
    /// that ends it. Never blocks.
    pub(crate) fn hold(
        &self,
        commands: &mut Commands,
        queue: &ProtocolObject<dyn MTLCommandQueue>,
        duration: Duration,
    ) -> Result<(), BackendError> {
        let reached = commands.gate_value + 1;
        let release = reached + 1;
        let event = self.event.clone();
        let alive = Arc::downgrade(&self.alive);
        // Start the thread first: if that fails, nothing is encoded that would wait forever.
        std::thread::Builder::new()
            .name("streampool-metal-hold".into())
            .spawn(move || open_after(&event, &alive, reached, release, duration))
            .map_err(|e| BackendError::Driver {
                backend: BACKEND,
                call: "spawn hold thread",
                message: e.to_string(),
            })?;
        let gate: &ProtocolObject<dyn MTLEvent> = ProtocolObject::from_ref(&*self.event);
        let buffer = match commands.open_buffer(queue) {
            Ok(buffer) => buffer,
            Err(e) => {
                // The thread is waiting for a value no buffer will signal: let it go.
                self.event.setSignaledValue(release);
                commands.gate_value = release;
                return Err(e);
            }
        };
        // Later commands of this buffer run after the wait (Metal: a wait holds back every
        // later command of its buffer), and later buffers of the queue after this one.
        buffer.encodeSignalEvent_value(gate, reached);
        buffer.encodeWaitForEvent_value(gate, release);
        commands.gate_value = release;
        Ok(())
    }
}

/// The hold thread: wait for the GPU to reach the hold, sleep, open the gate.
fn open_after(
    event: &ProtocolObject<dyn MTLSharedEvent>,
    alive: &Weak<()>,
    reached: u64,
    release: u64,
    duration: Duration,
) {
    // A sleeping wait in slices, never a spin. The gate's value only grows: `reached` and
    // `release` are above every value set before this hold was encoded.
    // MPS lesson: an autorelease pool around every Objective-C call on a worker thread (this
    // one never drains otherwise).
    while !autoreleasepool(|_| event.waitUntilSignaledValue_timeoutMS(reached, POLL_MS)) {
        if alive.strong_count() == 0 {
            // The stream is gone; its buffers were committed on drop, but one that failed would
            // never signal `reached`. Open the gate rather than wait for ever.
            autoreleasepool(|_| event.setSignaledValue(release));
            return;
        }
    }
    std::thread::sleep(duration);
    autoreleasepool(|_| event.setSignaledValue(release));
}
