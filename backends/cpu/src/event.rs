//! CPU events: a generation counter advanced by work items on the recording stream.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use streampool_core::{BackendError, Event, EventError, Timing};

/// Guarded by `Inner::state`, a lock of this event alone.
#[derive(Default)]
struct State {
    /// Number of records made (the last one is what waits refer to).
    recorded: u64,
    /// Highest record generation whose preceding work has completed.
    completed: u64,
    /// When `completed` was reached (only with timing).
    completed_at: Option<Instant>,
}

struct Inner {
    timing: Timing,
    state: Mutex<State>,
    /// Signalled when `completed` advances.
    reached: Condvar,
}

/// Event of the CPU backend. Cloning gives another handle to the same event.
#[derive(Clone)]
pub struct CpuEvent {
    inner: Arc<Inner>,
}

impl CpuEvent {
    pub(crate) fn new(timing: Timing) -> Self {
        Self {
            inner: Arc::new(Inner {
                timing,
                state: Mutex::new(State::default()),
                reached: Condvar::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Start a new record; returns its generation, and the closure the stream must run when it
    /// reaches the record.
    pub(crate) fn begin_record(&self) -> impl FnOnce() -> Result<(), String> + Send + 'static {
        let generation = {
            let mut state = self.lock();
            state.recorded += 1;
            state.recorded
        };
        let event = self.clone();
        move || {
            let mut state = event.lock();
            if generation > state.completed {
                state.completed = generation;
                if event.inner.timing == Timing::Enabled {
                    state.completed_at = Some(Instant::now());
                }
            }
            drop(state);
            event.inner.reached.notify_all();
            Ok(())
        }
    }

    /// The generation a wait issued now refers to, or `None` if there is nothing to wait for.
    pub(crate) fn pending_generation(&self) -> Option<u64> {
        let state = self.lock();
        (state.completed < state.recorded).then_some(state.recorded)
    }

    /// Block until generation `generation` has completed.
    pub(crate) fn wait_for(&self, generation: u64) {
        let mut state = self.lock();
        while state.completed < generation {
            state = self.inner.reached.wait(state).unwrap_or_else(|p| p.into_inner());
        }
    }
}

impl Event for CpuEvent {
    fn timing(&self) -> Timing {
        self.inner.timing
    }

    fn synchronize(&self) -> Result<(), BackendError> {
        if let Some(generation) = self.pending_generation() {
            self.wait_for(generation);
        }
        Ok(())
    }

    fn query(&self) -> Result<bool, BackendError> {
        Ok(self.pending_generation().is_none())
    }

    fn elapsed_since(&self, start: &Self) -> Result<Duration, EventError> {
        if self.inner.timing != Timing::Enabled || start.inner.timing != Timing::Enabled {
            return Err(EventError::TimingDisabled);
        }
        let end_at = stamp(&self.lock())?;
        let start_at = stamp(&start.lock())?;
        Ok(end_at.saturating_duration_since(start_at))
    }
}

/// The completion time of the last record, or why there is none. Never blocks.
fn stamp(state: &State) -> Result<Instant, EventError> {
    if state.recorded == 0 {
        return Err(EventError::NotRecorded);
    }
    if state.completed < state.recorded {
        return Err(EventError::NotReady);
    }
    state.completed_at.ok_or(EventError::NotReady)
}

impl std::fmt::Debug for CpuEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("CpuEvent")
            .field("timing", &self.inner.timing)
            .field("recorded", &state.recorded)
            .field("completed", &state.completed)
            .finish()
    }
}
