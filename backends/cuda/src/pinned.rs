//! Page-locked host memory ([`PinnedBuffer`]) for staging a graph's inputs and outputs, and the
//! asynchronous copies between it and device buffers ([`CudaStream::copy_from_pinned`],
//! [`CudaStream::copy_to_pinned`]), which a CUDA graph can capture.
//!
//! A copy from or to page-locked memory is still running when its enqueue returns, and a graph
//! that captured one repeats it at every replay. So the host side is reached only through
//! [`PinnedBuffer::lock`], which first waits for the last GPU use that was enqueued (an event
//! recorded after each eager copy and after each replay of a graph that holds the buffer), and
//! holds a lock that such enqueues take too: the host never touches bytes the GPU is copying.

use std::ffi::c_void;
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

use cudarc::driver::{self as cu, sys};
use streampool_core::BackendError;

use crate::buffer::CudaBuffer;
use crate::error;
use crate::stream::CudaStream;

/// One `cuMemHostAlloc` allocation, shared by its [`PinnedBuffer`] and the graphs whose copies
/// use it (so it outlives them).
pub(crate) struct PinnedAlloc {
    ptr: *mut u8,
    len: usize,
    ctx: Arc<cu::CudaContext>,
    /// Guards host access to the bytes and the event of the last GPU use. Taken by
    /// [`PinnedBuffer::lock`] for as long as its guard lives, and (with `try_lock`: a host
    /// borrow makes the enqueue fail instead of deadlocking) by every enqueue of work that uses
    /// the bytes, around the enqueue and the event record.
    last_use: Mutex<Option<cu::CudaEvent>>,
}

// SAFETY: the allocation is plain page-locked host memory, valid from any thread until freed in
// `drop`; host access to it goes through `last_use`'s lock, and CUDA calls on it are
// thread-safe. The raw pointer is what keeps the auto traits off.
unsafe impl Send for PinnedAlloc {}
// SAFETY: as above: shared references only reach the bytes through the lock.
unsafe impl Sync for PinnedAlloc {}

impl Drop for PinnedAlloc {
    fn drop(&mut self) {
        if self.ptr.is_null() {
            return;
        }
        // Wait for the last enqueued use (nothing can enqueue more: this was the last handle).
        let last = self.last_use.get_mut().unwrap_or_else(|p| p.into_inner()).take();
        let waited = error::bind_raw(&self.ctx).and_then(|()| match &last {
            // SAFETY: the event is live (owned here) and belongs to this context.
            Some(event) => unsafe { cu::result::event::synchronize(event.cu_event()) },
            None => Ok(()),
        });
        if let Err(e) = waited {
            // The GPU may still copy into or out of it: leak it rather than free it.
            self.ctx.record_err::<()>(Err(e));
            return;
        }
        // SAFETY: `ptr` came from cuMemHostAlloc, is freed only here (the last handle), and the
        // last GPU use of it has completed (waited for above).
        self.ctx.record_err(unsafe { cu::result::free_host(self.ptr.cast()) });
    }
}

impl PinnedAlloc {
    /// The lock of the bytes for an enqueue, or an error if the host holds it.
    pub(crate) fn try_use(&self) -> Result<MutexGuard<'_, Option<cu::CudaEvent>>, BackendError> {
        match self.last_use.try_lock() {
            Ok(guard) => Ok(guard),
            Err(TryLockError::Poisoned(p)) => Ok(p.into_inner()),
            Err(TryLockError::WouldBlock) => Err(BackendError::InvalidArgument(
                "a pinned buffer is locked on the host (a PinnedGuard is alive): drop the guard \
                 before enqueueing work that uses the buffer"
                    .into(),
            )),
        }
    }

    /// Record, on `stream`, the event that host access waits for, after enqueueing work that
    /// uses the bytes. If that fails (cudarc's calls also fail, without doing their work, on an
    /// error another call left pending), the event may be stale or missing, and neither host
    /// access nor the free would wait for the work just enqueued: so wait for the stream before
    /// returning the error.
    pub(crate) fn record(
        &self,
        slot: &mut Option<cu::CudaEvent>,
        stream: &cu::CudaStream,
    ) -> Result<(), BackendError> {
        let recorded = self.try_record(slot, stream);
        if recorded.is_err() {
            self.ctx.record_err(error::wait_stream_raw(&self.ctx, stream.cu_stream()));
        }
        recorded
    }

    fn try_record(
        &self,
        slot: &mut Option<cu::CudaEvent>,
        stream: &cu::CudaStream,
    ) -> Result<(), BackendError> {
        let event = match slot.take() {
            Some(e) => e,
            None => self.ctx.new_event(None).map_err(error::driver("cuEventCreate"))?,
        };
        let recorded = event.record(stream).map_err(error::driver("cuEventRecord"));
        *slot = Some(event);
        recorded
    }
}

/// Plain-old-data element types a [`PinnedGuard`] views the bytes as: every bit pattern is a
/// value and the alignment is at most a page's (the allocation's).
pub trait HostElem: Copy + sealed::Sealed {}

mod sealed {
    pub trait Sealed {}
}

macro_rules! host_elem {
    ($($t:ty),*) => {$(impl sealed::Sealed for $t {} impl HostElem for $t {})*};
}
host_elem!(u8, u16, u32, u64, i8, i16, i32, i64, f32, f64);

/// Page-locked host memory (`cuMemHostAlloc`), freed when dropped (after its last GPU use).
///
/// ```no_run
/// use streampool_core::Backend;
/// use streampool_cuda::{CudaBackend, PinnedBuffer};
/// let backend = CudaBackend::open(0)?;
/// let stream = backend.new_stream(0)?;
/// let input = PinnedBuffer::new(&backend, 16)?;
/// let device = stream.alloc(16)?;
/// input.lock()?.as_mut_slice::<f32>().copy_from_slice(&[1.0, 2.0, 3.0, 4.0]);
/// stream.copy_from_pinned(&device, &input)?; // asynchronous
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct PinnedBuffer {
    alloc: Arc<PinnedAlloc>,
}

impl PinnedBuffer {
    /// `bytes` of page-locked memory on `backend`'s device (contents zeroed).
    pub fn new(backend: &crate::CudaBackend, bytes: usize) -> Result<Self, BackendError> {
        Self::in_context(backend.context(), bytes)
    }

    fn in_context(ctx: &Arc<cu::CudaContext>, bytes: usize) -> Result<Self, BackendError> {
        let ptr = if bytes == 0 {
            std::ptr::null_mut()
        } else {
            ctx.bind_to_thread().map_err(error::driver("cuCtxSetCurrent"))?;
            let flags = sys::CU_MEMHOSTALLOC_PORTABLE;
            // SAFETY: allocates `bytes` (> 0) of page-locked memory with the context bound; we
            // own the pointer and free it once, in `PinnedAlloc::drop`.
            let ptr = unsafe { cu::result::malloc_host(bytes, flags) }
                .map_err(error::driver("cuMemHostAlloc"))?
                .cast::<u8>();
            // SAFETY: `ptr` is valid for `bytes` writes and nothing else uses it yet.
            unsafe { std::ptr::write_bytes(ptr, 0, bytes) };
            ptr
        };
        let alloc = PinnedAlloc { ptr, len: bytes, ctx: ctx.clone(), last_use: Mutex::new(None) };
        Ok(Self { alloc: Arc::new(alloc) })
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.alloc.len
    }

    /// Whether the buffer holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.alloc.len == 0
    }

    /// Host access: waits until the GPU work enqueued so far that uses these bytes (eager copies,
    /// replays of graphs that copy from or to them) has completed, then holds the buffer's lock
    /// until the guard drops. Enqueueing work that uses the buffer while a guard lives fails
    /// with `InvalidArgument` instead of racing with the host.
    pub fn lock(&self) -> Result<PinnedGuard<'_>, BackendError> {
        let guard = self.alloc.last_use.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(event) = guard.as_ref() {
            event.synchronize().map_err(error::driver("cuEventSynchronize"))?;
        }
        Ok(PinnedGuard { alloc: &self.alloc, _lock: guard })
    }

    pub(crate) fn shared(&self) -> &Arc<PinnedAlloc> {
        &self.alloc
    }
}

impl std::fmt::Debug for PinnedBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinnedBuffer").field("len", &self.alloc.len).finish()
    }
}

/// Host access to a [`PinnedBuffer`] whose GPU uses so far have completed.
pub struct PinnedGuard<'a> {
    alloc: &'a PinnedAlloc,
    _lock: MutexGuard<'a, Option<cu::CudaEvent>>,
}

impl PinnedGuard<'_> {
    /// The bytes as `T`s (a trailing partial element is left out).
    pub fn as_slice<T: HostElem>(&self) -> &[T] {
        if self.alloc.ptr.is_null() {
            return &[];
        }
        // SAFETY: the allocation is page-aligned (so aligned for any `HostElem`), valid for
        // `len` bytes, initialised (zeroed at allocation), every bit pattern is a `T`, and no
        // GPU work or other host code touches it while this guard holds the lock.
        unsafe {
            std::slice::from_raw_parts(self.alloc.ptr.cast(), self.alloc.len / size_of::<T>())
        }
    }

    /// The bytes as `T`s, writable.
    pub fn as_mut_slice<T: HostElem>(&mut self) -> &mut [T] {
        if self.alloc.ptr.is_null() {
            return &mut [];
        }
        // SAFETY: as in `as_slice`; `&mut self` makes this the only view of the bytes.
        unsafe {
            std::slice::from_raw_parts_mut(self.alloc.ptr.cast(), self.alloc.len / size_of::<T>())
        }
    }
}

/// Checks shared by the two copies: same device, equal sizes.
fn check(stream: &CudaStream, dev: &CudaBuffer, host: &PinnedBuffer) -> Result<(), BackendError> {
    stream.check_device(dev)?;
    if *host.alloc.ctx != **stream.context() {
        return Err(BackendError::InvalidArgument("pinned buffer of another device".into()));
    }
    if dev.len() != host.len() {
        return Err(BackendError::InvalidArgument(format!(
            "copy between a device buffer of {} bytes and a pinned buffer of {}",
            dev.len(),
            host.len()
        )));
    }
    Ok(())
}

impl CudaStream {
    /// Enqueue a copy of `src`'s bytes into `dst` (same length). Asynchronous: `src` is read
    /// when the stream reaches the copy. Inside [`CudaStream::capture`] the copy becomes a node
    /// of the graph, repeated at every replay, and the graph keeps `src` alive.
    ///
    /// While a thread captures this stream, only that thread may copy (its copies are what the
    /// graph holds the allocation for); another thread's copy is refused with
    /// [`BackendError::StreamCapturing`]. So a pinned buffer never ends up in a captured graph
    /// without the graph holding it.
    pub fn copy_from_pinned(
        &self,
        dst: &CudaBuffer,
        src: &PinnedBuffer,
    ) -> Result<(), BackendError> {
        check(self, dst, src)?;
        if src.is_empty() {
            return Ok(());
        }
        let _submit = self.submit()?;
        self.bind()?;
        let mut last = src.alloc.try_use()?;
        // SAFETY: both ranges are `len` bytes of live allocations of this context (checked
        // above); the host bytes stay allocated until the copy is done (`PinnedAlloc::drop`
        // waits for `last_use`, and a capturing graph holds the allocation), and host access
        // waits for the event recorded below.
        unsafe {
            sys::cuMemcpyHtoDAsync_v2(
                dst.device_ptr(),
                src.alloc.ptr as *const c_void,
                src.len(),
                self.cu_stream(),
            )
        }
        .result()
        .map_err(error::driver("cuMemcpyHtoDAsync"))?;
        self.after_pinned_use(src, &mut last)
    }

    /// Enqueue a copy of `src`'s bytes into `dst` (same length). Asynchronous: read `dst` through
    /// [`PinnedBuffer::lock`], which waits for the copy. Inside [`CudaStream::capture`] the copy
    /// becomes a node of the graph, and the graph keeps `dst` alive. From the capturing thread
    /// only, as for [`CudaStream::copy_from_pinned`].
    pub fn copy_to_pinned(&self, src: &CudaBuffer, dst: &PinnedBuffer) -> Result<(), BackendError> {
        check(self, src, dst)?;
        if dst.is_empty() {
            return Ok(());
        }
        let _submit = self.submit()?;
        self.bind()?;
        let mut last = dst.alloc.try_use()?;
        // SAFETY: as in `copy_from_pinned`; no host code reads the bytes until the copy is done
        // (host access waits for the event recorded below).
        unsafe {
            sys::cuMemcpyDtoHAsync_v2(
                dst.alloc.ptr.cast(),
                src.device_ptr(),
                dst.len(),
                self.cu_stream(),
            )
        }
        .result()
        .map_err(error::driver("cuMemcpyDtoHAsync"))?;
        self.after_pinned_use(dst, &mut last)
    }

    /// After enqueueing a copy that uses `buf`: inside a capture, hand the allocation to the
    /// graph being built; outside, record the event host access waits for. (A copy on a stream
    /// captured by another thread never gets here: the gate refused it.)
    fn after_pinned_use(
        &self,
        buf: &PinnedBuffer,
        last: &mut Option<cu::CudaEvent>,
    ) -> Result<(), BackendError> {
        if crate::graph::retain_in_capture(self, buf.shared()) {
            return Ok(());
        }
        buf.alloc.record(last, self.raw())
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use cudarc::driver::{sys, DriverError};
    use streampool_core::{Backend, Stream};

    use crate::{CudaBackend, CudaOptions, CudaStream, PinnedBuffer};

    /// A backend (no disk cache) and its stream 0, the hold kernel already loaded so that what
    /// the tests time is GPU work only.
    fn stream() -> (CudaBackend, CudaStream) {
        let options = CudaOptions { kernel_cache_dir: None, ..CudaOptions::default() };
        let backend = CudaBackend::open_with(0, options).expect("needs a CUDA GPU");
        let s = backend.new_stream(0).unwrap();
        s.hold(Duration::from_millis(1)).unwrap();
        s.synchronize().unwrap();
        (backend, s)
    }

    /// What a failed drop path of another thread leaves: an error cudarc hands to the context's
    /// next call that binds it.
    fn leave_error_pending(ctx: &cudarc::driver::CudaContext) {
        ctx.record_err::<()>(Err(DriverError(sys::cudaError_enum::CUDA_ERROR_UNKNOWN)));
    }

    /// With an error left pending in the context (cudarc hands it to the next call that binds
    /// the context, which then skips its own work), a pinned buffer's drop still returns only
    /// once the copy into the buffer, queued behind 300 ms of GPU work, has completed, and the
    /// error is still there for the next call. (The free may wait by itself too, but nothing
    /// promises it: see docs/performance.md, "Pinned staging and drop paths".)
    #[test]
    #[ignore = "needs a CUDA GPU"]
    fn drop_waits_for_the_last_copy_despite_a_pending_error() {
        let (backend, s) = stream();
        let src = s.alloc(1 << 20).unwrap();
        let pinned = PinnedBuffer::new(&backend, 1 << 20).unwrap();
        let start = Instant::now();
        s.hold(Duration::from_millis(300)).unwrap();
        s.copy_to_pinned(&src, &pinned).unwrap();
        let ctx = s.context();
        leave_error_pending(ctx);
        drop(pinned);
        let waited = start.elapsed();
        assert!(ctx.check_err().is_err(), "the pending error was taken by the drop");
        assert!(waited >= Duration::from_millis(250), "the drop returned after {waited:?}");
        s.synchronize().unwrap();
    }

    /// With an error left pending in the context, a stream's synchronize still waits for its
    /// work (300 ms of it) and succeeds, and leaves the error pending for the next call.
    /// `read` and `write` rely on this wait before their host memory can be released.
    #[test]
    #[ignore = "needs a CUDA GPU"]
    fn synchronize_waits_despite_a_pending_error() {
        let (_backend, s) = stream();
        let start = Instant::now();
        s.hold(Duration::from_millis(300)).unwrap();
        let ctx = s.context();
        leave_error_pending(ctx);
        s.synchronize().expect("the stream's own work succeeded");
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(250), "synchronize returned after {waited:?}");
        assert!(ctx.check_err().is_err(), "the pending error was taken by synchronize");
    }
}
