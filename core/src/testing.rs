//! Test support: a backend that does no work, for documentation examples and model checks of the
//! pool (where only ownership matters), and the deterministic data the backends' tests share.
//! Real backends (`streampool-cpu`, CUDA, Metal) are what the conformance tests run on.

use std::time::Duration;

use crate::backend::{Backend, Event, Stream, Timing};
use crate::error::{BackendError, EventError};

/// Deterministic values, uniform in [-1, 1) (xorshift: the same on every machine).
///
/// ```
/// let v = streampool_core::testing::rand(4, 7);
/// assert_eq!(v, streampool_core::testing::rand(4, 7));
/// assert!(v.iter().all(|x| (-1.0..1.0).contains(x)));
/// ```
pub fn rand(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// A backend whose streams accept work and do nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullBackend;

/// Stream of [`NullBackend`] (and of the other null backends, `B`).
#[derive(Debug)]
pub struct NullStream<B = NullBackend>(usize, std::marker::PhantomData<B>);

/// Event of [`NullBackend`]: always complete.
#[derive(Debug)]
pub struct NullEvent(Timing);

impl Backend for NullBackend {
    type Stream = NullStream;
    type Event = NullEvent;
    type Buffer = usize;

    fn kind(&self) -> &'static str {
        "null"
    }
    fn name(&self) -> String {
        "null".into()
    }
    fn new_stream(&self, slot: usize) -> Result<NullStream, BackendError> {
        Ok(NullStream(slot, std::marker::PhantomData))
    }
    fn new_event(&self, timing: Timing) -> Result<NullEvent, BackendError> {
        Ok(NullEvent(timing))
    }
    fn alloc(&self, bytes: usize) -> Result<usize, BackendError> {
        Ok(bytes)
    }
    fn buffer_len(buffer: &usize) -> usize {
        *buffer
    }
}

// For every backend built on the null stream (`NullBackend`, `CountedBackend`).
impl<B: Backend<Stream = NullStream<B>, Event = NullEvent, Buffer = usize>> Stream<B>
    for NullStream<B>
{
    fn slot(&self) -> usize {
        self.0
    }
    fn record(&self, _: &NullEvent) -> Result<(), BackendError> {
        Ok(())
    }
    fn wait_event(&self, _: &NullEvent) -> Result<(), BackendError> {
        Ok(())
    }
    fn synchronize(&self) -> Result<(), BackendError> {
        Ok(())
    }
    fn write(&self, _: &usize, _: usize, _: &[u8]) -> Result<(), BackendError> {
        Ok(())
    }
    fn read(&self, _: &usize, _: usize, dst: &mut [u8]) -> Result<(), BackendError> {
        dst.fill(0);
        Ok(())
    }
    fn fill_u32(&self, _: &usize, _: u32) -> Result<(), BackendError> {
        Ok(())
    }
    fn mul_add_u32(&self, _: &usize, _: u32, _: u32) -> Result<(), BackendError> {
        Ok(())
    }
    fn copy(&self, _: &usize, _: &usize) -> Result<(), BackendError> {
        Ok(())
    }
    fn hold(&self, _: Duration) -> Result<(), BackendError> {
        Ok(())
    }
}

impl Event for NullEvent {
    fn timing(&self) -> Timing {
        self.0
    }
    fn synchronize(&self) -> Result<(), BackendError> {
        Ok(())
    }
    fn query(&self) -> Result<bool, BackendError> {
        Ok(true)
    }
    fn elapsed_since(&self, start: &Self) -> Result<Duration, EventError> {
        if self.0 == Timing::Disabled || start.0 == Timing::Disabled {
            return Err(EventError::TimingDisabled);
        }
        Ok(Duration::ZERO)
    }
}

/// A [`NullBackend`] that counts its drops, for tests of when a device is destroyed: each
/// device's backend is dropped exactly once, when its last handle (device, lease) goes.
#[derive(Debug, Default)]
pub struct CountedBackend {
    /// Incremented by the drop.
    pub drops: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Drop for CountedBackend {
    fn drop(&mut self) {
        self.drops.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Backend for CountedBackend {
    type Stream = NullStream<Self>;
    type Event = NullEvent;
    type Buffer = usize;

    fn kind(&self) -> &'static str {
        "counted"
    }
    fn name(&self) -> String {
        "counted".into()
    }
    fn new_stream(&self, slot: usize) -> Result<NullStream<Self>, BackendError> {
        Ok(NullStream(slot, std::marker::PhantomData))
    }
    fn new_event(&self, timing: Timing) -> Result<NullEvent, BackendError> {
        NullBackend.new_event(timing)
    }
    fn alloc(&self, bytes: usize) -> Result<usize, BackendError> {
        NullBackend.alloc(bytes)
    }
    fn buffer_len(buffer: &usize) -> usize {
        NullBackend::buffer_len(buffer)
    }
}
