//! CUDA events: `cuEventCreate` (with `CU_EVENT_DISABLE_TIMING` unless timing is asked for),
//! recorded on and waited by the stream given.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cudarc::driver::{self as cu, sys};
use streampool_core::{BackendError, Event, EventError, Timing};

use crate::error;

/// Event of the CUDA backend.
pub struct CudaEvent {
    event: cu::CudaEvent,
    timing: Timing,
    /// Set (Release) after the first successful record. The driver cannot tell "never recorded"
    /// from "complete" (both query as done), so `elapsed_since` reads this (Acquire) to answer
    /// `NotRecorded`.
    recorded: AtomicBool,
}

impl CudaEvent {
    pub(crate) fn new(ctx: &Arc<cu::CudaContext>, timing: Timing) -> Result<Self, BackendError> {
        let flags = match timing {
            Timing::Enabled => sys::CUevent_flags::CU_EVENT_DEFAULT,
            Timing::Disabled => sys::CUevent_flags::CU_EVENT_DISABLE_TIMING,
        };
        let event = ctx.new_event(Some(flags)).map_err(error::driver("cuEventCreate"))?;
        Ok(Self { event, timing, recorded: AtomicBool::new(false) })
    }

    /// The cudarc event (for libraries built on cudarc).
    pub fn raw(&self) -> &cu::CudaEvent {
        &self.event
    }

    /// Record on `stream` (called by the stream).
    pub(crate) fn record_on(&self, stream: &cu::CudaStream) -> Result<(), BackendError> {
        self.event.record(stream).map_err(error::driver("cuEventRecord"))?;
        self.recorded.store(true, Ordering::Release);
        Ok(())
    }

    /// Whether the last record has completed; `Err(NotRecorded)` if there was none.
    fn done(&self) -> Result<bool, EventError> {
        if !self.recorded.load(Ordering::Acquire) {
            return Err(EventError::NotRecorded);
        }
        Ok(self.query()?)
    }
}

impl Event for CudaEvent {
    fn timing(&self) -> Timing {
        self.timing
    }

    fn synchronize(&self) -> Result<(), BackendError> {
        // Returns at once for an event never recorded (the driver treats it as complete).
        self.event.synchronize().map_err(error::driver("cuEventSynchronize"))
    }

    fn query(&self) -> Result<bool, BackendError> {
        self.event.try_is_complete().map_err(error::driver("cuEventQuery"))
    }

    fn elapsed_since(&self, start: &Self) -> Result<Duration, EventError> {
        if self.timing != Timing::Enabled || start.timing != Timing::Enabled {
            return Err(EventError::TimingDisabled);
        }
        // Query first: cuEventElapsedTime itself would fail with NOT_READY, but a query also
        // separates "never recorded" from "not done yet". Nothing here blocks.
        if !start.done()? || !self.done()? {
            return Err(EventError::NotReady);
        }
        // SAFETY: both events are live (borrowed) and created by cuEventCreate; the driver checks
        // that they share a context and have timing.
        let ms = match unsafe {
            cu::result::event::elapsed(start.event.cu_event(), self.event.cu_event())
        } {
            Ok(ms) => ms,
            Err(cu::DriverError(sys::CUresult::CUDA_ERROR_NOT_READY)) => {
                return Err(EventError::NotReady)
            }
            Err(e) => return Err(error::driver("cuEventElapsedTime")(e).into()),
        };
        // `self` recorded before `start` gives a negative time: clamp to zero, like the CPU
        // backend's saturating difference.
        Ok(Duration::from_secs_f64(f64::from(ms.max(0.0)) / 1e3))
    }
}

impl std::fmt::Debug for CudaEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaEvent")
            .field("timing", &self.timing)
            .field("recorded", &self.recorded.load(Ordering::Relaxed))
            .finish()
    }
}
