//! Stand-ins for a build without Metal (the `metal` feature off, or a system other than
//! macOS): the same names, so code generic over backends compiles unchanged, but
//! [`MetalBackend::open`] always fails and no value of the other types can exist.

use streampool_core::BackendError;

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
