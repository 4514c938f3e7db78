//! Device memory: an `MTLBuffer` in shared storage (one allocation the CPU and the GPU both
//! address, Apple silicon's unified memory), shared by handles.

use std::ptr::NonNull;

use objc2::rc::{autoreleasepool, Retained};
use objc2::runtime::ProtocolObject;
use objc2_metal::{MTLBuffer, MTLDevice, MTLResourceOptions};
use streampool_core::BackendError;

/// Device memory of the Metal backend. Cloning retains the same `MTLBuffer` (no copy); the
/// memory is freed when the last handle, and the last command buffer using it, let go.
#[derive(Clone)]
pub struct MetalBuffer {
    raw: Retained<ProtocolObject<dyn MTLBuffer>>,
    /// Bytes asked for (Metal cannot make an empty buffer: a 0-byte one is backed by 1 byte).
    len: usize,
}

// SAFETY: objc2-metal leaves `MTLBuffer` without `Send`/`Sync` because the *contents* may be
// raced by the CPU and the GPU. The handle itself may move between and be used from any thread:
// retain/release are atomic, and what we do through it — read `length`/`contents`, bind it to an
// encoder that the encoding thread owns under its stream's lock — has no thread affinity. Races
// on the contents are governed by the `Stream` contract (streams, events, `synchronize`), as for
// a CUDA device pointer: `read` copies out only after synchronising the stream.
unsafe impl Send for MetalBuffer {}
// SAFETY: as for `Send`: every method reachable through `&MetalBuffer` is a thread-safe query of
// the handle; none touches the contents.
unsafe impl Sync for MetalBuffer {}

impl MetalBuffer {
    pub(crate) fn alloc(
        device: &ProtocolObject<dyn MTLDevice>,
        bytes: usize,
    ) -> Result<Self, BackendError> {
        let options =
            MTLResourceOptions::StorageModeShared | MTLResourceOptions::HazardTrackingModeTracked;
        // MPS lesson: an autorelease pool around every Objective-C call path on worker threads
        // (buffers are allocated by any thread: `Backend::alloc`, `MetalStream::alloc`).
        let raw = autoreleasepool(|_| device.newBufferWithLength_options(bytes.max(1), options))
            .ok_or(BackendError::OutOfMemory { bytes })?;
        Ok(Self { raw, len: bytes })
    }

    /// A new buffer holding a copy of `bytes` (taken during the call).
    pub(crate) fn with_bytes(
        device: &ProtocolObject<dyn MTLDevice>,
        bytes: &[u8],
    ) -> Result<Self, BackendError> {
        let options =
            MTLResourceOptions::StorageModeShared | MTLResourceOptions::HazardTrackingModeTracked;
        // An empty slice's pointer is dangling: never hand it to Metal (it would read 1 byte).
        let Some(data) = NonNull::new(bytes.as_ptr().cast_mut()).filter(|_| !bytes.is_empty())
        else {
            return Self::alloc(device, 0);
        };
        // MPS lesson: an autorelease pool around every Objective-C call path on worker threads.
        let raw = autoreleasepool(|_| {
            // SAFETY: `data` points to `bytes.len()` readable bytes for the whole call, and
            // Metal copies them into the new buffer before returning (it never writes through
            // `data`).
            unsafe {
                device.newBufferWithBytes_length_options(data.cast(), bytes.len().max(1), options)
            }
        })
        .ok_or(BackendError::OutOfMemory { bytes: bytes.len() })?;
        Ok(Self { raw, len: bytes.len() })
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The `MTLBuffer` (for code that needs the raw API).
    pub fn raw(&self) -> &ProtocolObject<dyn MTLBuffer> {
        &self.raw
    }

    /// Whether both handles refer to the same memory.
    pub fn same_as(&self, other: &MetalBuffer) -> bool {
        Retained::as_ptr(&self.raw) == Retained::as_ptr(&other.raw)
    }

    /// `InvalidArgument` unless `count` bytes at `offset` lie inside the buffer.
    pub(crate) fn check_range(
        &self,
        what: &str,
        offset: usize,
        count: usize,
    ) -> Result<(), BackendError> {
        match offset.checked_add(count) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(BackendError::InvalidArgument(format!(
                "{what}: {count} bytes at offset {offset} do not fit a buffer of {} bytes",
                self.len
            ))),
        }
    }

    /// Copy `dst.len()` bytes from `offset` to the host. The caller has synchronised every stream
    /// that writes the buffer (the `Stream::read` contract), and checked the range.
    pub(crate) fn copy_out(&self, offset: usize, dst: &mut [u8]) {
        if dst.is_empty() {
            return;
        }
        let base = self.raw.contents().cast::<u8>();
        // SAFETY: shared storage, so `contents` is the CPU address of the buffer's `length()`
        // bytes, valid while `self.raw` is retained; `offset + dst.len() <= len <= length()` was
        // checked by the caller; the GPU's writes to the range are complete (the stream was
        // synchronised) and `dst` is a distinct host allocation.
        unsafe {
            std::ptr::copy_nonoverlapping(base.as_ptr().add(offset), dst.as_mut_ptr(), dst.len())
        };
    }
}

impl std::fmt::Debug for MetalBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetalBuffer").field("len", &self.len).finish_non_exhaustive()
    }
}
