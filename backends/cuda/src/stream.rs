//! A pool slot's stream: a non-blocking CUDA stream (it never synchronises with the legacy
//! default stream), its own cuBLAS handle, and the portable ops as real GPU work.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use cudarc::driver::{self as cu, sys, LaunchConfig, PushKernelArg};
use streampool_core::{BackendError, Stream};

use crate::alloc::Arena;
use crate::blas::BlasHandle;
use crate::buffer::CudaBuffer;
use crate::context::{CudaBackend, Shared};
use crate::error;
use crate::event::CudaEvent;
use crate::graph::{CaptureGate, Submission};
use crate::kernels::{HOLD, U32_OPS};

/// Threads per block of the element-wise kernels.
const BLOCK: u32 = 256;

/// Per-stream state that calls on the stream change. Reached through [`CudaStream::state`].
#[derive(Debug)]
pub struct StreamState {
    /// cuBLAS handle bound to this stream.
    pub blas: BlasHandle,
    /// The partial products of split-K linears (`ops::split_k`): allocated from the stream's
    /// pool at the first one, never reallocated (captured graphs keep its address). Written by a
    /// split-K GEMM and read by the kernel after it, both enqueued under this lock.
    pub(crate) parts: Option<crate::buffer::CudaBuffer>,
    /// The stream's cuBLASLt handle and plans (`ops::lt`), created at its first matmul with a
    /// fused bias; `None` until then, and where cuBLASLt is absent.
    pub(crate) lt: Option<crate::ops::lt::LtState>,
}

/// Stream of the CUDA backend.
pub struct CudaStream {
    slot: usize,
    raw: Arc<cu::CudaStream>,
    pub(crate) shared: Arc<Shared>,
    /// This stream's free lists of the caching allocator.
    arena: Arc<Arena>,
    /// Guards the stream's library state: the cuBLAS handle (a handle must not be used by two
    /// threads at once, and its settings — stream, workspace, pointer mode — are per handle). The
    /// owner of the slot is normally the only user, so it is uncontended; the portable ops,
    /// events and `synchronize` never take it.
    state: Mutex<StreamState>,
    /// Streams expected to run GEMMs alongside this one ([`CudaStream::set_gemm_load`]), a
    /// [`streampool_core::load_class`]. Written and read by the slot's owner; atomic only so
    /// that the stream stays `Sync`.
    gemm_load: AtomicUsize,
    /// Which thread, if any, is capturing this stream into a graph, and the submissions in
    /// progress: every path that enqueues work on the stream passes it first ([`Self::submit`],
    /// [`Self::host_sync`]; see [`crate::graph`], rule 5).
    gate: CaptureGate,
}

impl CudaStream {
    pub(crate) fn new(shared: &Arc<Shared>, slot: usize) -> Result<Self, BackendError> {
        let raw = shared.ctx.new_stream().map_err(error::driver("cuStreamCreate"))?;
        let workspace = CudaBuffer::alloc(&shared.ctx, shared.blas_workspace)?;
        let blas = BlasHandle::new(&raw, workspace)?;
        let arena = Arena::new(slot, raw.clone(), &shared.pools);
        let state = Mutex::new(StreamState { blas, parts: None, lt: None });
        let gemm_load = AtomicUsize::new(1);
        let gate = CaptureGate::default();
        Ok(Self { slot, raw, shared: shared.clone(), arena, state, gemm_load, gate })
    }

    /// Admit an enqueue of work on this stream from the calling thread, for as long as the
    /// returned guard lives (hold it until the enqueue has returned). Refused with
    /// [`BackendError::StreamCapturing`] while another thread captures the stream; the
    /// capturing thread and, outside captures, every thread are admitted. Every submission path
    /// of the backend (kernel launches, cuBLAS / cuBLASLt calls, device copies, pinned copies,
    /// event records and waits, replays, allocations from the stream's pool) calls it.
    pub(crate) fn submit(&self) -> Result<Submission<'_>, BackendError> {
        self.gate.submit(self.slot)
    }

    /// Admit a synchronisation of this stream, or a copy through it from or to pageable host
    /// memory (`Stream::write`, `Stream::read`): refused with
    /// [`BackendError::StreamCapturing`] while any thread, the calling one included, captures
    /// the stream.
    pub(crate) fn host_sync(&self) -> Result<Submission<'_>, BackendError> {
        self.gate.host_sync(self.slot)
    }

    /// This stream's capture gate (for [`CudaStream::capture`]).
    pub(crate) fn gate(&self) -> &CaptureGate {
        &self.gate
    }

    /// Allocate `bytes` for use on this stream from its caching pool (contents unspecified).
    /// Stream-ordered: a block this stream freed is reused at once, without waiting (later work
    /// on the stream runs after the earlier work on the block); a block another stream freed is
    /// taken only once that stream's work on it has completed. Other streams that use the buffer
    /// must be declared with [`CudaBuffer::record_use`]. See [`crate::alloc`].
    ///
    /// Refused with [`BackendError::StreamCapturing`] while another thread captures this stream
    /// (reusing a block may enqueue a wait on the stream, which would join the capture).
    pub fn alloc(&self, bytes: usize) -> Result<CudaBuffer, BackendError> {
        let _submit = self.submit()?;
        self.arena.alloc(bytes)
    }

    /// Number of multiprocessors of the stream's device (for grid sizes).
    /// This stream's share of the caching allocator.
    pub(crate) fn arena(&self) -> &Arena {
        &self.arena
    }

    pub(crate) fn multiprocessors(&self) -> u32 {
        self.shared.multiprocessors
    }

    /// Plan this stream's next GEMMs for `streams` streams sharing the GPU (the forwards running
    /// at once, `streampool_core::Device::enter`): with one, cuBLAS and cuBLASLt plan for the
    /// whole GPU (the lowest latency); with more, for the stream's share of it, which picks
    /// kernels of fewer, fuller blocks that leave room for the other streams' work (far more
    /// throughput in all). See `CudaStream::gemm_sm_target`. A captured graph keeps the kernels
    /// chosen at capture.
    pub fn set_gemm_load(&self, streams: usize) {
        self.gemm_load.store(streampool_core::load_class(streams), Ordering::Relaxed);
    }

    /// The multiprocessor count the next GEMM is planned for (0: the libraries' default, the
    /// whole GPU): [`crate::CudaOptions::gemm_sm_target`] if set; else, for a load of `n` > 1
    /// streams ([`CudaStream::set_gemm_load`]), `multiprocessors / n`, at least 4 for
    /// tensor-core GEMMs (f16, bf16, TF32) and 16 for f32 SIMT GEMMs: the best or close to the
    /// best targets for MiniLM at batch 1 (docs/performance.md, "GEMM planning by load").
    pub(crate) fn gemm_sm_target(&self, tensor_cores: bool) -> u32 {
        if self.gemm_sm_target_pinned() {
            return self.shared.gemm_sm_target;
        }
        let load = self.gemm_load();
        if load == 1 {
            return 0;
        }
        let floor = if tensor_cores { 4 } else { 16 };
        (self.shared.multiprocessors / load).max(floor)
    }

    /// The load class set by [`CudaStream::set_gemm_load`]: 1 (alone) or a power of two.
    pub(crate) fn gemm_load(&self) -> u32 {
        (self.gemm_load.load(Ordering::Relaxed) as u32).max(1)
    }

    /// Whether [`crate::CudaOptions::gemm_sm_target`] pins every GEMM's multiprocessor target.
    pub(crate) fn gemm_sm_target_pinned(&self) -> bool {
        self.shared.gemm_sm_target > 0
    }

    /// Whether linears may be split along K ([`crate::CudaOptions::split_k`]).
    pub(crate) fn split_k_enabled(&self) -> bool {
        self.shared.split_k
    }

    /// Whether the device has TF32 tensor cores and `cp.async` (compute capability 8.0 on).
    pub(crate) fn has_tf32_mma(&self) -> bool {
        self.shared.compute_capability.0 >= 8
    }

    pub(crate) fn kernels(&self) -> &crate::kernels::Kernels {
        &self.shared.kernels
    }

    pub(crate) fn context(&self) -> &Arc<cu::CudaContext> {
        &self.shared.ctx
    }

    /// The cudarc stream (for libraries built on cudarc). Work enqueued through it (or through
    /// [`CudaStream::cu_stream`], or the cuBLAS handle of [`CudaStream::state`]) bypasses the
    /// capture gate: while another thread captures this stream it would join the graph, so only
    /// the stream's capturing thread, or any thread outside captures, may use it.
    pub fn raw(&self) -> &Arc<cu::CudaStream> {
        &self.raw
    }

    /// The driver's handle of this stream.
    pub fn cu_stream(&self) -> sys::CUstream {
        self.raw.cu_stream()
    }

    /// Lock this stream's library state (its cuBLAS handle). A poisoned lock is taken anyway:
    /// the state holds handles, not invariants a panic could break.
    pub fn state(&self) -> MutexGuard<'_, StreamState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn bind(&self) -> Result<(), BackendError> {
        self.shared.ctx.bind_to_thread().map_err(error::driver("cuCtxSetCurrent"))
    }

    /// `InvalidArgument` unless `buffer` was allocated on this stream's device.
    pub(crate) fn check_device(&self, buffer: &CudaBuffer) -> Result<(), BackendError> {
        if **buffer.context() == *self.shared.ctx {
            Ok(())
        } else {
            Err(BackendError::InvalidArgument("buffer belongs to another device".into()))
        }
    }

    /// Grid for `n` elements: enough blocks for one element per thread, at most 8 per
    /// multiprocessor (the kernels loop over the rest).
    fn grid(&self, n: u64) -> LaunchConfig {
        let max_blocks = u64::from(self.shared.multiprocessors) * 8;
        let blocks = n.div_ceil(u64::from(BLOCK)).clamp(1, max_blocks) as u32;
        LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (BLOCK, 1, 1), shared_mem_bytes: 0 }
    }

    /// Launch `function` of the u32 module on `buffer`'s words with two more u32 arguments
    /// (`mul_add_u32`) or one (`fill_u32`): `args` follow the pointer and the word count.
    fn launch_u32(
        &self,
        function: &'static str,
        buffer: &CudaBuffer,
        args: &[u32],
    ) -> Result<(), BackendError> {
        self.check_device(buffer)?;
        let words = (buffer.len() / 4) as u64;
        if words == 0 {
            return Ok(());
        }
        let ptr = buffer.device_ptr();
        let config = self.grid(words);
        self.shared.kernels.with(&self.shared.ctx, &U32_OPS, function, |func| {
            // Admitted after the kernel is loaded: a first-use compile never holds up a capture.
            let _submit = self.submit()?;
            let mut launch = self.raw.launch_builder(func);
            launch.arg(&ptr).arg(&words);
            for a in args {
                launch.arg(a);
            }
            // SAFETY: the kernel's parameters are (unsigned int*, unsigned long long, unsigned
            // int...) and match the arguments pushed above, as u64 / u64 / u32; it touches
            // `words` u32s from `ptr`, all inside the buffer, which is not reused before this
            // launch completes: a `Backend::alloc` buffer stays allocated until the device is
            // idle (buffer.rs); a pooled block goes back to its stream's free list, reused in
            // stream order there, by another stream only after its free event (alloc/).
            unsafe { launch.launch(config) }.map_err(error::driver("cuLaunchKernel"))?;
            Ok(())
        })
    }
}

/// Whether the driver knows `ptr` (page-locked, registered or managed memory). A copy from such
/// memory can still be in flight when the enqueue returns; from ordinary pageable memory the
/// driver has taken the bytes (staged them) before it returns.
fn known_to_driver(ptr: *const u8) -> bool {
    let mut memory_type = 0u32;
    // SAFETY: cuPointerGetAttribute writes one unsigned int (a CUmemorytype) through the valid
    // out-pointer; `ptr` is only inspected, never dereferenced. Pageable memory gives an error.
    let result = unsafe {
        sys::cuPointerGetAttribute(
            (&mut memory_type as *mut u32).cast(),
            sys::CUpointer_attribute::CU_POINTER_ATTRIBUTE_MEMORY_TYPE,
            ptr as sys::CUdeviceptr,
        )
    };
    result == sys::CUresult::CUDA_SUCCESS
}

impl Stream<CudaBackend> for CudaStream {
    fn slot(&self) -> usize {
        self.slot
    }

    fn record(&self, event: &CudaEvent) -> Result<(), BackendError> {
        let _submit = self.submit()?;
        event.record_on(&self.raw)
    }

    fn wait_event(&self, event: &CudaEvent) -> Result<(), BackendError> {
        let _submit = self.submit()?;
        // cuStreamWaitEvent on an event never recorded is a no-op, as the trait asks.
        self.raw.wait(event.raw()).map_err(error::driver("cuStreamWaitEvent"))
    }

    fn synchronize(&self) -> Result<(), BackendError> {
        // A capturing stream cannot be waited for (the driver refuses, and the wait may
        // invalidate the capture): refused here first, from any thread.
        let _sync = self.host_sync()?;
        // cuStreamSynchronize is safe from any thread while others keep submitting. Bound
        // without taking another call's pending error: cudarc's `synchronize` would return that
        // error without waiting, and `read`/`write` rely on the wait before their host memory
        // can be released.
        error::wait_stream_raw(&self.shared.ctx, self.cu_stream())
            .map_err(error::stream_failed(self.slot))
    }

    fn write(&self, dst: &CudaBuffer, offset: usize, src: &[u8]) -> Result<(), BackendError> {
        self.check_device(dst)?;
        dst.check_range(offset, src.len())?;
        if src.is_empty() {
            return Ok(());
        }
        // Inside a capture the driver would capture a copy from `src`, gone by the first replay.
        let _copy = self.host_sync()?;
        self.bind()?;
        // SAFETY: the destination range lies inside the live allocation (checked above) and the
        // stream belongs to its context. The stream is not being captured (the gate above), so
        // the copy runs now, not at replays: the source is read during this call (pageable
        // memory, staged by the driver) or, for memory the driver knows, before the
        // synchronisation below returns: either way before `src` can be released.
        unsafe {
            cu::result::memcpy_htod_async(dst.device_ptr() + offset as u64, src, self.cu_stream())
        }
        .map_err(error::driver("cuMemcpyHtoDAsync"))?;
        if known_to_driver(src.as_ptr()) {
            self.synchronize()?;
        }
        Ok(())
    }

    fn read(&self, src: &CudaBuffer, offset: usize, dst: &mut [u8]) -> Result<(), BackendError> {
        self.check_device(src)?;
        src.check_range(offset, dst.len())?;
        let _copy = self.host_sync()?;
        if !dst.is_empty() {
            self.bind()?;
            // SAFETY: the source range lies inside the live allocation (checked above); `dst` is
            // borrowed mutably for the whole call and the stream is synchronised before we
            // return, so the copy into it has finished by then.
            unsafe {
                cu::result::memcpy_dtoh_async(
                    dst,
                    src.device_ptr() + offset as u64,
                    self.cu_stream(),
                )
            }
            .map_err(error::driver("cuMemcpyDtoHAsync"))?;
        }
        self.synchronize()
    }

    fn fill_u32(&self, dst: &CudaBuffer, value: u32) -> Result<(), BackendError> {
        self.launch_u32("fill_u32", dst, &[value])
    }

    fn mul_add_u32(&self, buf: &CudaBuffer, mul: u32, add: u32) -> Result<(), BackendError> {
        self.launch_u32("mul_add_u32", buf, &[mul, add])
    }

    fn copy(&self, src: &CudaBuffer, dst: &CudaBuffer) -> Result<(), BackendError> {
        self.check_device(src)?;
        self.check_device(dst)?;
        if src.len() != dst.len() {
            return Err(BackendError::InvalidArgument(format!(
                "copy between buffers of {} and {} bytes",
                src.len(),
                dst.len()
            )));
        }
        if src.is_empty() || src.same_as(dst) {
            return Ok(());
        }
        let _submit = self.submit()?;
        self.bind()?;
        // SAFETY: both allocations are live and `len` bytes long (checked above); the copy is
        // ordered on this stream.
        unsafe {
            cu::result::memcpy_dtod_async(
                dst.device_ptr(),
                src.device_ptr(),
                src.len(),
                self.cu_stream(),
            )
        }
        .map_err(error::driver("cuMemcpyDtoDAsync"))
    }

    fn hold(&self, duration: Duration) -> Result<(), BackendError> {
        let ns = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        if ns == 0 {
            return Ok(());
        }
        let config =
            LaunchConfig { grid_dim: (1, 1, 1), block_dim: (1, 1, 1), shared_mem_bytes: 0 };
        self.shared.kernels.with(&self.shared.ctx, &HOLD, "hold_ns", |func| {
            let _submit = self.submit()?;
            let mut launch = self.raw.launch_builder(func);
            launch.arg(&ns);
            // SAFETY: `hold_ns(unsigned long long)` takes one u64, pushed above; it touches no
            // memory.
            unsafe { launch.launch(config) }.map_err(error::driver("cuLaunchKernel"))?;
            Ok(())
        })
    }
}

impl std::fmt::Debug for CudaStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaStream").field("slot", &self.slot).finish_non_exhaustive()
    }
}
