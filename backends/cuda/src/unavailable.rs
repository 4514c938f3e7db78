//! Stand-ins for a build without the `cuda` feature: the same names, so code generic over
//! backends compiles unchanged, but [`CudaBackend::open`] always fails and no value of the other
//! types can exist.

use std::path::PathBuf;
use std::time::Duration;

use streampool_core::{Backend, BackendError, DeviceKind, Event, EventError, Stream, Timing};

const REASON: &str = "built without the `cuda` feature; rebuild with --features cuda";

/// Has no values: what the stand-ins hold, so that none can be built.
#[derive(Debug, Clone, Copy)]
enum Never {}

/// How to open a device (accepted and ignored without the `cuda` feature).
#[derive(Debug, Clone, Default)]
pub struct CudaOptions {
    /// Folder of the on-disk kernel cache.
    pub kernel_cache_dir: Option<PathBuf>,
    /// How host threads wait for the GPU.
    pub host_wait: Option<HostWait>,
    /// Bytes of each stream's cuBLAS workspace.
    pub blas_workspace_bytes: Option<usize>,
    /// Multiprocessors each GEMM is planned for.
    pub gemm_sm_target: Option<u32>,
}

/// How a host thread waits for the GPU (accepted and ignored without the `cuda` feature).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostWait {
    /// The driver's choice.
    #[default]
    Auto,
    /// Spin.
    Spin,
    /// Spin, yielding the core between polls.
    Yield,
    /// Sleep.
    Block,
}

/// The CUDA backend; this build has no CUDA support, so it cannot be opened.
#[derive(Debug)]
pub struct CudaBackend(Never);

/// Stream of the CUDA backend (no values in this build).
#[derive(Debug)]
pub struct CudaStream(Never);

/// Event of the CUDA backend (no values in this build).
#[derive(Debug)]
pub struct CudaEvent(Never);

/// Device memory of the CUDA backend (no values in this build).
#[derive(Debug, Clone)]
pub struct CudaBuffer(Never);

impl CudaBackend {
    /// Always [`BackendError::Unavailable`]: this build has no CUDA support.
    pub fn open(ordinal: usize) -> Result<Self, BackendError> {
        Self::open_with(ordinal, CudaOptions::default())
    }

    /// Always [`BackendError::Unavailable`]: this build has no CUDA support.
    pub fn open_with(_ordinal: usize, _options: CudaOptions) -> Result<Self, BackendError> {
        Err(BackendError::Unavailable { backend: "cuda", reason: REASON.into() })
    }

    /// Number of usable CUDA GPUs: none in this build.
    pub fn device_count() -> usize {
        0
    }
}

impl Backend for CudaBackend {
    type Stream = CudaStream;
    type Event = CudaEvent;
    type Buffer = CudaBuffer;

    fn kind(&self) -> DeviceKind {
        DeviceKind::Cuda
    }
    fn name(&self) -> String {
        match self.0 {}
    }
    fn new_stream(&self, _: usize) -> Result<CudaStream, BackendError> {
        match self.0 {}
    }
    fn new_event(&self, _: Timing) -> Result<CudaEvent, BackendError> {
        match self.0 {}
    }
    fn alloc(&self, _: usize) -> Result<CudaBuffer, BackendError> {
        match self.0 {}
    }
    fn buffer_len(buffer: &CudaBuffer) -> usize {
        match buffer.0 {}
    }
}

impl Stream<CudaBackend> for CudaStream {
    fn slot(&self) -> usize {
        match self.0 {}
    }
    fn record(&self, _: &CudaEvent) -> Result<(), BackendError> {
        match self.0 {}
    }
    fn wait_event(&self, _: &CudaEvent) -> Result<(), BackendError> {
        match self.0 {}
    }
    fn synchronize(&self) -> Result<(), BackendError> {
        match self.0 {}
    }
    fn write(&self, _: &CudaBuffer, _: usize, _: &[u8]) -> Result<(), BackendError> {
        match self.0 {}
    }
    fn read(&self, _: &CudaBuffer, _: usize, _: &mut [u8]) -> Result<(), BackendError> {
        match self.0 {}
    }
    fn fill_u32(&self, _: &CudaBuffer, _: u32) -> Result<(), BackendError> {
        match self.0 {}
    }
    fn mul_add_u32(&self, _: &CudaBuffer, _: u32, _: u32) -> Result<(), BackendError> {
        match self.0 {}
    }
    fn copy(&self, _: &CudaBuffer, _: &CudaBuffer) -> Result<(), BackendError> {
        match self.0 {}
    }
    fn hold(&self, _: Duration) -> Result<(), BackendError> {
        match self.0 {}
    }
}

impl Event for CudaEvent {
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
