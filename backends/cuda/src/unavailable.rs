//! Stand-ins for a build without the `cuda` feature: the same names, so code generic over
//! backends compiles unchanged, but [`CudaBackend::open`] always fails and no value of the other
//! types can exist.

use std::path::PathBuf;

use streampool_core::BackendError;

const REASON: &str = "built without the `cuda` feature; rebuild with --features cuda";

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
    /// Whether small linears may be split along K.
    pub split_k: bool,
    /// Whether large-batch f16 / bf16 attention runs the flash-style kernels.
    pub flash_attention: bool,
    /// Whether f16 / bf16 exact GELU runs as its tanh form in the GEMM's epilogue.
    pub tanh_gelu: bool,
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

// The four types and their trait impls, whose methods can never be called (no value exists).
streampool_core::unavailable_backend! {
    kind: "cuda";
    /// The CUDA backend; this build has no CUDA support, so it cannot be opened.
    #[derive(Debug)]
    pub struct CudaBackend;
    /// Stream of the CUDA backend (no values in this build).
    #[derive(Debug)]
    pub struct CudaStream;
    /// Event of the CUDA backend (no values in this build).
    #[derive(Debug)]
    pub struct CudaEvent;
    /// Device memory of the CUDA backend (no values in this build).
    #[derive(Debug, Clone)]
    pub struct CudaBuffer;
}

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
