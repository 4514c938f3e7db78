//! Stand-ins for a build without Metal (the `metal` feature off, or a system other than
//! macOS): the same names, so code generic over backends compiles unchanged, but
//! [`MetalBackend::open`] always fails and no value of the other types can exist.

use std::time::Duration;

use streampool_core::{Backend, BackendError, DeviceKind, Event, EventError, Stream, Timing};

#[cfg(target_os = "macos")]
const REASON: &str = "built without the `metal` feature; rebuild with --features metal";
#[cfg(not(target_os = "macos"))]
const REASON: &str = "Metal exists only on macOS (Apple GPUs); use the cpu or cuda backend here";

/// Has no values: what the stand-ins hold, so that none can be built.
#[derive(Debug, Clone, Copy)]
enum Never {}

/// The Metal backend; this build has no Metal support, so it cannot be opened.
#[derive(Debug)]
pub struct MetalBackend(Never);

/// Stream of the Metal backend (no values in this build).
#[derive(Debug)]
pub struct MetalStream(Never);

/// Event of the Metal backend (no values in this build).
#[derive(Debug, Clone)]
pub struct MetalEvent(Never);

/// Device memory of the Metal backend (no values in this build).
#[derive(Debug, Clone)]
pub struct MetalBuffer(Never);

impl MetalBackend {
    /// Always [`BackendError::Unavailable`]: this build has no Metal support.
    pub fn open() -> Result<Self, BackendError> {
        Err(BackendError::Unavailable { backend: "metal", reason: REASON.into() })
    }

    /// Number of kernel compiles: none in this build.
    pub fn kernel_compiles(&self) -> u64 {
        match self.0 {}
    }
}

impl MetalBuffer {
    /// Size in bytes.
    pub fn len(&self) -> usize {
        match self.0 {}
    }

    /// Whether the buffer has no bytes.
    pub fn is_empty(&self) -> bool {
        match self.0 {}
    }
}

impl Backend for MetalBackend {
    type Stream = MetalStream;
    type Event = MetalEvent;
    type Buffer = MetalBuffer;

    fn kind(&self) -> DeviceKind {
        DeviceKind::Metal
    }
    fn name(&self) -> String {
        match self.0 {}
    }
    fn new_stream(&self, _: usize) -> Result<MetalStream, BackendError> {
        match self.0 {}
    }
    fn new_event(&self, _: Timing) -> Result<MetalEvent, BackendError> {
        match self.0 {}
    }
    fn alloc(&self, _: usize) -> Result<MetalBuffer, BackendError> {
        match self.0 {}
    }
    fn buffer_len(buffer: &MetalBuffer) -> usize {
        match buffer.0 {}
    }
}

impl Stream<MetalBackend> for MetalStream {
    fn slot(&self) -> usize {
        match self.0 {}
    }
    fn record(&self, _: &MetalEvent) -> Result<(), BackendError> {
        match self.0 {}
    }
    fn wait_event(&self, _: &MetalEvent) -> Result<(), BackendError> {
        match self.0 {}
    }
    fn synchronize(&self) -> Result<(), BackendError> {
        match self.0 {}
    }
    fn write(&self, _: &MetalBuffer, _: usize, _: &[u8]) -> Result<(), BackendError> {
        match self.0 {}
    }
    fn read(&self, _: &MetalBuffer, _: usize, _: &mut [u8]) -> Result<(), BackendError> {
        match self.0 {}
    }
    fn fill_u32(&self, _: &MetalBuffer, _: u32) -> Result<(), BackendError> {
        match self.0 {}
    }
    fn mul_add_u32(&self, _: &MetalBuffer, _: u32, _: u32) -> Result<(), BackendError> {
        match self.0 {}
    }
    fn copy(&self, _: &MetalBuffer, _: &MetalBuffer) -> Result<(), BackendError> {
        match self.0 {}
    }
    fn hold(&self, _: Duration) -> Result<(), BackendError> {
        match self.0 {}
    }
}

impl Event for MetalEvent {
    fn timing(&self) -> Timing {
        match self.0 {}
    }
    fn synchronize(&self) -> Result<(), BackendError> {
        match self.0 {}
    }
    fn query(&self) -> Result<bool, BackendError> {
        match self.0 {}
    }
    fn elapsed_since(&self, _: &Self) -> Result<Duration, EventError> {
        match self.0 {}
    }
}
