//! Mapping of CUDA driver, NVRTC and cuBLAS failures to the core's [`BackendError`].

use cudarc::driver::{sys::CUresult, DriverError};
use streampool_core::BackendError;

/// Name of this backend in errors.
pub(crate) const BACKEND: &str = "cuda";

/// `CUDA_ERROR_NAME: description`, e.g. `CUDA_ERROR_ILLEGAL_ADDRESS: an illegal memory access
/// was encountered`.
pub(crate) fn describe(e: &DriverError) -> String {
    match e.error_string() {
        Ok(s) => format!("{:?}: {}", e.0, s.to_string_lossy()),
        Err(_) => format!("{:?}", e.0),
    }
}

/// A failed allocation of `bytes`.
pub(crate) fn alloc(bytes: usize) -> impl FnOnce(DriverError) -> BackendError {
    move |e| match e.0 {
        CUresult::CUDA_ERROR_OUT_OF_MEMORY => BackendError::OutOfMemory { bytes },
        _ => driver("cuMemAlloc")(e),
    }
}

/// A failed driver call.
pub(crate) fn driver(call: &'static str) -> impl FnOnce(DriverError) -> BackendError {
    move |e| BackendError::Driver { backend: BACKEND, call, message: describe(&e) }
}

/// A failure reported while waiting for a stream's work: the work itself (or earlier work on the
/// device: CUDA's faults are sticky for the whole context) failed after it was enqueued.
pub(crate) fn stream_failed(slot: usize) -> impl FnOnce(DriverError) -> BackendError {
    move |e| BackendError::StreamFailed { slot, message: describe(&e) }
}

/// The backend cannot run here.
pub(crate) fn unavailable(reason: impl Into<String>) -> BackendError {
    BackendError::Unavailable { backend: BACKEND, reason: reason.into() }
}

/// A failure outside the driver (NVRTC, cuBLAS).
pub(crate) fn library(call: &'static str, message: impl Into<String>) -> BackendError {
    BackendError::Driver { backend: BACKEND, call, message: message.into() }
}

pub(crate) use streampool_core::panic_text;

/// Make `ctx` current on this thread without taking the error cudarc keeps for the context's
/// next call. `CudaContext::bind_to_thread` returns that error, whichever thread or drop
/// recorded it, and then skips its own work; a drop path that must wait for the GPU before it
/// frees memory would skip its wait and rely on the free to wait (`cuMemFreeHost` and
/// `cuMemFree` did on an H200; nothing promises it). Those paths bind with this instead.
pub(crate) fn bind_raw(ctx: &cudarc::driver::CudaContext) -> Result<(), DriverError> {
    // SAFETY: `cu_ctx` is the live context `ctx` holds (retained until `ctx` drops).
    unsafe { cudarc::driver::result::ctx::set_current(ctx.cu_ctx()) }
}

/// Before freeing memory any stream may still use: wait until the whole context is idle, bound
/// with [`bind_raw`]. A failure is kept for the context's next call and returned as `false`:
/// the caller leaks the memory rather than free it while possibly in use.
pub(crate) fn idle_before_free(ctx: &cudarc::driver::CudaContext) -> bool {
    let idle = bind_raw(ctx).and_then(|()| cudarc::driver::result::ctx::synchronize());
    let ok = idle.is_ok();
    ctx.record_err(idle);
    ok
}

/// Wait for `stream`'s work, bound with [`bind_raw`]: another call's pending error neither skips
/// the wait nor is taken by it (it stays for the context's next call).
pub(crate) fn wait_stream_raw(
    ctx: &cudarc::driver::CudaContext,
    stream: cudarc::driver::sys::CUstream,
) -> Result<(), DriverError> {
    bind_raw(ctx)?;
    // SAFETY: `stream` is a live stream of `ctx` (the caller holds it), and `ctx` is current.
    unsafe { cudarc::driver::result::stream::synchronize(stream) }
}
