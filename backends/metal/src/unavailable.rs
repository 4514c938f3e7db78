//! Stand-ins for a build without Metal (the `metal` feature off, or a system other than
//! macOS): the same names, so code generic over backends compiles unchanged, but
//! [`MetalBackend::open`] always fails and no value of the other types can exist.

use streampool_core::BackendError;

use crate::MetalOptions;

/// Buffers a `MetalStream::launch` binds at most (indices `0..8`), as in the Metal build.
pub const MAX_LAUNCH_BUFFERS: usize = 8;
/// Index of a launch's parameter block (`SP_PARAMS_INDEX` in `kernels/params.h`), as in the
/// Metal build.
pub const PARAMS_INDEX: usize = 8;

#[cfg(target_os = "macos")]
const REASON: &str = "built without the `metal` feature; rebuild with --features metal";
#[cfg(not(target_os = "macos"))]
const REASON: &str = "Metal exists only on macOS (Apple GPUs); use the cpu or cuda backend here";

// The four types and their trait impls, whose methods can never be called (no value exists).
streampool_core::unavailable_backend! {
    kind: "metal";
    /// The Metal backend; this build has no Metal support, so it cannot be opened.
    #[derive(Debug)]
    pub struct MetalBackend;
    /// Stream of the Metal backend (no values in this build).
    #[derive(Debug)]
    pub struct MetalStream;
    /// Event of the Metal backend (no values in this build).
    #[derive(Debug, Clone)]
    pub struct MetalEvent;
    /// Device memory of the Metal backend (no values in this build).
    #[derive(Debug, Clone)]
    pub struct MetalBuffer;
}

impl MetalBackend {
    /// Always [`BackendError::Unavailable`]: this build has no Metal support.
    pub fn open() -> Result<Self, BackendError> {
        Err(BackendError::Unavailable { backend: "metal", reason: REASON.into() })
    }

    /// Always [`BackendError::Unavailable`]: this build has no Metal support.
    pub fn open_with(_options: MetalOptions) -> Result<Self, BackendError> {
        Self::open()
    }

    /// The options the device was opened with (no device exists in this build).
    pub fn options(&self) -> MetalOptions {
        match self.0 {}
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

impl MetalStream {
    /// Encode a kernel launch (no stream exists in this build).
    pub fn launch(
        &self,
        _kernel: &'static str,
        _groups: usize,
        _threads: usize,
        _buffers: &[&MetalBuffer],
        _params: &[u8],
    ) -> Result<(), BackendError> {
        match self.0 {}
    }

    /// A buffer for use on this stream (no stream exists in this build).
    pub fn alloc(&self, _bytes: usize) -> Result<MetalBuffer, BackendError> {
        match self.0 {}
    }
}
