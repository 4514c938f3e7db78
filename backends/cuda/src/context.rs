//! The device: opening it (with clear errors where CUDA is missing), its context and properties,
//! and the [`Backend`] implementation that hands out streams, events and memory.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Arc;

use cudarc::driver::{self as cu, sys};
use streampool_core::{Backend, BackendError, MemoryUsage, Timing};

use crate::alloc::{MemoryStats, Registry};
use crate::buffer::CudaBuffer;
use crate::disk_cache;
use crate::error::{self, panic_text, unavailable};
use crate::event::CudaEvent;
use crate::kernels::Kernels;
use crate::stream::CudaStream;

/// How a host thread waits for the GPU (stream and event synchronisation). A property of the
/// device's primary context: it applies to the whole process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostWait {
    /// The driver's choice (`CU_CTX_SCHED_AUTO`): spin while the process has fewer contexts than
    /// cores, which with many host threads waiting at once can starve the others of CPU.
    #[default]
    Auto,
    /// Spin (`CU_CTX_SCHED_SPIN`): lowest latency, one core busy per waiting thread.
    Spin,
    /// Spin but yield the core between polls (`CU_CTX_SCHED_YIELD`).
    Yield,
    /// Sleep on an OS primitive (`CU_CTX_SCHED_BLOCKING_SYNC`): no CPU while waiting, more
    /// latency.
    Block,
}

impl HostWait {
    /// The mode named by `STREAMPOOL_CUDA_WAIT` (`auto`, `spin`, `yield`, `block`), if set.
    pub fn from_env() -> Option<Self> {
        match std::env::var("STREAMPOOL_CUDA_WAIT").ok()?.to_ascii_lowercase().as_str() {
            "auto" => Some(Self::Auto),
            "spin" => Some(Self::Spin),
            "yield" => Some(Self::Yield),
            "block" => Some(Self::Block),
            _ => None,
        }
    }

    fn flags(self) -> sys::CUctx_flags {
        match self {
            Self::Auto => sys::CUctx_flags::CU_CTX_SCHED_AUTO,
            Self::Spin => sys::CUctx_flags::CU_CTX_SCHED_SPIN,
            Self::Yield => sys::CUctx_flags::CU_CTX_SCHED_YIELD,
            Self::Block => sys::CUctx_flags::CU_CTX_SCHED_BLOCKING_SYNC,
        }
    }
}

/// How to open a device. `Default` reads the environment.
#[derive(Debug, Clone)]
pub struct CudaOptions {
    /// Folder of the on-disk kernel cache; `None` disables it. Default:
    /// [`disk_cache::default_dir`] (`$STREAMPOOL_HOME/kernels` or `~/.cache/streampool/kernels`).
    pub kernel_cache_dir: Option<PathBuf>,
    /// How host threads wait for the GPU; `None` leaves the context's setting as it is. Default:
    /// [`HostWait::from_env`].
    pub host_wait: Option<HostWait>,
    /// Bytes of the cuBLAS workspace each stream gets once, at creation (so that no cuBLAS call
    /// allocates: graph capture needs that). `None`: 32 MiB on Hopper and newer (NVIDIA's
    /// recommendation there), 4 MiB before.
    pub blas_workspace_bytes: Option<usize>,
    /// Multiprocessors that cuBLAS and cuBLASLt plan every GEMM for
    /// (`cublasSetSmCountTarget`, `CUBLASLT_MATMUL_DESC_SM_COUNT_TARGET`), whatever the load.
    /// `None`: planned by load (see `CudaStream::set_gemm_load`). Default:
    /// `$STREAMPOOL_GEMM_SMS` if set and not 0 (for experiments).
    pub gemm_sm_target: Option<u32>,
    /// Whether a small f32 linear is split along K into partial products that the next kernel
    /// adds up (see `ops::split_k`: on tensor cores while at most 8 streams share the GPU, by
    /// cuBLAS for a stream alone). Default: on, unless `$STREAMPOOL_SPLIT_K` is `0`.
    pub split_k: bool,
    /// Whether f16 / bf16 attention of large batches runs the flash-style kernels (`cp.async`,
    /// `ldmatrix`; sm_80 and later) rather than the earlier tensor-core kernels. Default: on,
    /// unless `$STREAMPOOL_FLASH_ATTENTION` is `0` (for comparisons).
    pub flash_attention: bool,
    /// Whether f16 / bf16 linears followed by exact GELU compute it as GELU's tanh approximation
    /// in cuBLASLt's epilogue (at most 4.7e-4 apart; the separate pass, a read and a write of
    /// the layer's widest activation, is gone) rather than exactly in a pass of their own. f32
    /// and TF32 are always exact. Default: on, unless `$STREAMPOOL_GELU` is `erf`.
    pub tanh_gelu: bool,
}

/// `$name` is not `off` (unset: on).
fn on_unless(name: &str, off: &str) -> bool {
    std::env::var(name).map_or(true, |v| v.trim() != off)
}

/// `$STREAMPOOL_GEMM_SMS` as a multiprocessor count (unset, unparsable or 0: `None`).
fn gemm_sm_target_from_env() -> Option<u32> {
    std::env::var("STREAMPOOL_GEMM_SMS").ok()?.trim().parse().ok().filter(|&n| n > 0)
}

impl Default for CudaOptions {
    fn default() -> Self {
        Self {
            kernel_cache_dir: disk_cache::default_dir(),
            host_wait: HostWait::from_env(),
            blas_workspace_bytes: None,
            gemm_sm_target: gemm_sm_target_from_env(),
            split_k: on_unless("STREAMPOOL_SPLIT_K", "0"),
            flash_attention: on_unless("STREAMPOOL_FLASH_ATTENTION", "0"),
            tanh_gelu: on_unless("STREAMPOOL_GELU", "erf"),
        }
    }
}

/// What every stream, event and buffer of one device shares. Children hold an `Arc` of it, so
/// the context outlives everything created in it.
pub(crate) struct Shared {
    pub(crate) ctx: Arc<cu::CudaContext>,
    pub(crate) name: String,
    pub(crate) compute_capability: (i32, i32),
    pub(crate) multiprocessors: u32,
    pub(crate) driver_version: i32,
    pub(crate) kernels: Kernels,
    /// The caching allocator's arenas, one per stream.
    pub(crate) pools: Arc<Registry>,
    /// Bytes of each stream's cuBLAS workspace.
    pub(crate) blas_workspace: usize,
    /// [`CudaOptions::gemm_sm_target`], 0 for none.
    pub(crate) gemm_sm_target: u32,
    /// [`CudaOptions::split_k`].
    pub(crate) split_k: bool,
    /// [`CudaOptions::flash_attention`].
    pub(crate) flash_attention: bool,
    /// [`CudaOptions::tanh_gelu`].
    pub(crate) tanh_gelu: bool,
}

/// The CUDA backend for one GPU: its (primary) context, the NVRTC-compiled kernels of the
/// portable ops, and the factory of per-slot streams.
///
/// ```no_run
/// use streampool_core::{Device, PoolConfig, Stream};
/// use streampool_cuda::CudaBackend;
/// let device = Device::new(CudaBackend::open(0)?, PoolConfig::default());
/// let buffer = device.alloc(16)?;
/// let lease = device.acquire()?;
/// lease.stream().fill_u32(&buffer, 7)?;
/// let mut out = [0u8; 16];
/// lease.stream().read(&buffer, 0, &mut out)?;
/// assert_eq!(out[..4], 7u32.to_ne_bytes());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct CudaBackend {
    shared: Arc<Shared>,
}

impl CudaBackend {
    /// Open GPU `ordinal` with default options. Errors with [`BackendError::Unavailable`] when
    /// the driver library is missing, no GPU is present or `ordinal` is out of range.
    pub fn open(ordinal: usize) -> Result<Self, BackendError> {
        Self::open_with(ordinal, CudaOptions::default())
    }

    /// Open GPU `ordinal` with `options`.
    pub fn open_with(ordinal: usize, options: CudaOptions) -> Result<Self, BackendError> {
        ensure_driver_library()?;
        // cudarc panics when a symbol it needs is missing from an (old) driver library: report
        // that as "unavailable" too, instead of unwinding through the caller.
        let opened = catch_unwind(AssertUnwindSafe(|| open_context(ordinal)));
        let ctx = opened.map_err(|p| {
            unavailable(format!("loading the CUDA driver failed: {}", panic_text(&*p)))
        })??;
        // SAFETY: we track cross-stream use of memory ourselves (events recorded and waited by
        // the caller, device-wide synchronisation before frees, see buffer.rs). No `CudaSlice`
        // has been created in this context by us yet, so none is left half-tracked.
        unsafe { ctx.disable_event_tracking() };
        if let Some(wait) = options.host_wait {
            ctx.set_flags(wait.flags()).map_err(error::driver("cuCtxSetFlags"))?;
        }
        let name = ctx.name().map_err(error::driver("cuDeviceGetName"))?;
        let compute_capability =
            ctx.compute_capability().map_err(error::driver("cuDeviceGetAttribute"))?;
        let multiprocessors = ctx
            .attribute(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
            .map_err(error::driver("cuDeviceGetAttribute"))?;
        let driver_version = driver_version()?;
        let arch = format!("sm_{}{}", compute_capability.0, compute_capability.1);
        let kernels = Kernels::new(arch, driver_version, options.kernel_cache_dir);
        let default_workspace = if compute_capability.0 >= 9 { 32 << 20 } else { 4 << 20 };
        let shared = Shared {
            ctx,
            name,
            compute_capability,
            multiprocessors: multiprocessors.max(1) as u32,
            driver_version,
            kernels,
            pools: Arc::new(Registry::default()),
            blas_workspace: options.blas_workspace_bytes.unwrap_or(default_workspace),
            gemm_sm_target: options.gemm_sm_target.unwrap_or(0),
            split_k: options.split_k,
            flash_attention: options.flash_attention,
            tanh_gelu: options.tanh_gelu,
        };
        Ok(Self { shared: Arc::new(shared) })
    }

    /// Number of CUDA GPUs on this machine (0 where CUDA is missing).
    pub fn device_count() -> usize {
        if ensure_driver_library().is_err() {
            return 0;
        }
        let count = catch_unwind(|| {
            cu::result::init().ok()?;
            cu::CudaContext::device_count().ok()
        });
        count.ok().flatten().map_or(0, |n| n.max(0) as usize)
    }

    /// The cudarc context (for libraries built on cudarc). Event tracking is disabled in it.
    pub fn context(&self) -> &Arc<cu::CudaContext> {
        &self.shared.ctx
    }

    /// The device's ordinal.
    pub fn ordinal(&self) -> usize {
        self.shared.ctx.ordinal()
    }

    /// Compute capability as (major, minor), e.g. (9, 0) on an H100.
    pub fn compute_capability(&self) -> (i32, i32) {
        self.shared.compute_capability
    }

    /// The architecture kernels are compiled for, e.g. `sm_90`.
    pub fn arch(&self) -> &str {
        self.shared.kernels.arch()
    }

    /// The driver's CUDA version, e.g. 13000 for 13.0.
    pub fn driver_version(&self) -> i32 {
        self.shared.driver_version
    }

    /// Number of NVRTC compiles this backend ran (a kernel found in the disk cache needs none).
    pub fn kernel_compiles(&self) -> u64 {
        self.shared.kernels.nvrtc_compiles()
    }

    /// Memory held by the streams' caching pools.
    pub fn memory_stats(&self) -> MemoryStats {
        self.shared.pools.stats()
    }

    /// Free every cached (unused) block of every stream's pool, after waiting for the device to
    /// be idle. Live buffers are untouched.
    pub fn empty_cache(&self) {
        self.shared.pools.release_all();
    }

    /// A device buffer (not pooled: for weights and other data every stream reads) holding a
    /// copy of `bytes`; the copy has completed when this returns.
    pub fn upload(&self, bytes: &[u8]) -> Result<CudaBuffer, BackendError> {
        let buffer = CudaBuffer::alloc(&self.shared.ctx, bytes.len())?;
        if !bytes.is_empty() {
            // SAFETY: the destination is a live allocation of exactly `bytes.len()` bytes in the
            // context `alloc` bound; the synchronous copy has read `bytes` when it returns.
            unsafe { cu::result::memcpy_htod_sync(buffer.device_ptr(), bytes) }
                .map_err(error::driver("cuMemcpyHtoD"))?;
        }
        Ok(buffer)
    }

    /// Number of kernel modules this backend loaded from the on-disk cache.
    pub fn kernel_disk_hits(&self) -> u64 {
        self.shared.kernels.disk_hits()
    }
}

impl std::fmt::Debug for CudaBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaBackend")
            .field("ordinal", &self.ordinal())
            .field("name", &self.shared.name)
            .field("arch", &self.arch())
            .finish()
    }
}

impl Backend for CudaBackend {
    type Stream = CudaStream;
    type Event = CudaEvent;
    type Buffer = CudaBuffer;

    fn kind(&self) -> &'static str {
        "cuda"
    }

    fn name(&self) -> String {
        self.shared.name.clone()
    }

    fn ordinal(&self) -> usize {
        CudaBackend::ordinal(self)
    }

    fn new_stream(&self, slot: usize) -> Result<CudaStream, BackendError> {
        CudaStream::new(&self.shared, slot)
    }

    fn new_event(&self, timing: Timing) -> Result<CudaEvent, BackendError> {
        CudaEvent::new(&self.shared.ctx, timing)
    }

    fn alloc(&self, bytes: usize) -> Result<CudaBuffer, BackendError> {
        CudaBuffer::alloc(&self.shared.ctx, bytes)
    }

    fn buffer_len(buffer: &CudaBuffer) -> usize {
        buffer.len()
    }

    fn memory(&self) -> Option<MemoryUsage> {
        let pools = self.memory_stats();
        self.shared.ctx.bind_to_thread().ok()?;
        let (free, total) = cu::result::mem_get_info().ok()?;
        Some(MemoryUsage {
            device_used: total.saturating_sub(free),
            pool_in_use: pools.in_use,
            pool_peak: pools.peak,
            pool_cached: pools.cached,
        })
    }
}

/// `Unavailable` unless libcuda can be loaded. Checked before any cudarc call, because cudarc
/// panics when it cannot load the library.
fn ensure_driver_library() -> Result<(), BackendError> {
    // SAFETY: only tries to dlopen the candidate library names (and closes them again); loading
    // libcuda runs no code of ours.
    let present = catch_unwind(|| unsafe { sys::is_culib_present() }).unwrap_or(false);
    if present {
        Ok(())
    } else {
        Err(unavailable(
            "the NVIDIA driver library (libcuda.so) was not found: install an NVIDIA driver, or \
             add its folder to LD_LIBRARY_PATH",
        ))
    }
}

fn open_context(ordinal: usize) -> Result<Arc<cu::CudaContext>, BackendError> {
    use sys::CUresult::*;
    match cu::result::init() {
        Ok(()) => {}
        Err(e) if matches!(e.0, CUDA_ERROR_NO_DEVICE) => {
            return Err(unavailable("the NVIDIA driver found no GPU"));
        }
        Err(e) => {
            return Err(unavailable(format!(
                "the CUDA driver failed to initialise: {}",
                error::describe(&e)
            )))
        }
    }
    let count = cu::CudaContext::device_count().map_err(error::driver("cuDeviceGetCount"))?;
    if ordinal >= count.max(0) as usize {
        return Err(unavailable(format!("no GPU {ordinal}: this machine has {count}")));
    }
    cu::CudaContext::new(ordinal).map_err(error::driver("cuDevicePrimaryCtxRetain"))
}

fn driver_version() -> Result<i32, BackendError> {
    let mut version = 0;
    // SAFETY: cuDriverGetVersion writes one int through the valid pointer we pass.
    unsafe { sys::cuDriverGetVersion(&mut version) }
        .result()
        .map_err(error::driver("cuDriverGetVersion"))?;
    Ok(version)
}
