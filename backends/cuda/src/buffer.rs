//! Device memory: a raw allocation freed when its last handle goes.

use std::sync::Arc;

use cudarc::driver::{self as cu, sys};
use streampool_core::BackendError;

use crate::error;

/// One allocation. Freed on drop, after the device has finished all work submitted so far (no
/// stream can still be reading or writing it).
struct Allocation {
    /// Device address; 0 for an empty buffer (nothing allocated).
    ptr: sys::CUdeviceptr,
    len: usize,
    ctx: Arc<cu::CudaContext>,
}

impl Drop for Allocation {
    fn drop(&mut self) {
        if self.ptr == 0 {
            return;
        }
        // Any stream may still use this memory (we do not track uses, see context.rs), so wait
        // for every stream of the context before freeing. Errors cannot be returned from drop:
        // the context keeps them and reports them at its next call.
        self.ctx.record_err(self.ctx.synchronize());
        // SAFETY: `ptr` came from cuMemAlloc in this context, is freed only here (the last
        // handle), and no work that uses it is left after the synchronisation above.
        self.ctx.record_err(unsafe { cu::result::free_sync(self.ptr) });
    }
}

/// Device memory of the CUDA backend: a handle to one allocation (`cuMemAlloc`, aligned to at
/// least 256 bytes). Cloning gives another handle to the same memory; the memory is freed when
/// the last handle is dropped.
#[derive(Clone)]
pub struct CudaBuffer {
    alloc: Arc<Allocation>,
}

impl CudaBuffer {
    pub(crate) fn alloc(ctx: &Arc<cu::CudaContext>, bytes: usize) -> Result<Self, BackendError> {
        let ptr = if bytes == 0 {
            0
        } else {
            ctx.bind_to_thread().map_err(error::driver("cuCtxSetCurrent"))?;
            // SAFETY: allocates `bytes` (> 0) in the context bound just above; the pointer is
            // owned by the `Allocation` built next, which frees it exactly once.
            unsafe { cu::result::malloc_sync(bytes) }.map_err(error::alloc(bytes))?
        };
        Ok(Self { alloc: Arc::new(Allocation { ptr, len: bytes, ctx: ctx.clone() }) })
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.alloc.len
    }

    /// Whether the buffer holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.alloc.len == 0
    }

    /// The device address, for kernels and libraries (cuBLAS). Valid while any handle lives.
    pub fn device_ptr(&self) -> sys::CUdeviceptr {
        self.alloc.ptr
    }

    /// Whether two handles refer to the same memory.
    pub fn same_as(&self, other: &CudaBuffer) -> bool {
        Arc::ptr_eq(&self.alloc, &other.alloc)
    }

    /// `InvalidArgument` unless `offset..offset + len` lies within the buffer.
    pub(crate) fn check_range(&self, offset: usize, len: usize) -> Result<(), BackendError> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len() => Ok(()),
            _ => Err(BackendError::InvalidArgument(format!(
                "range {offset}..{offset}+{len} outside a buffer of {} bytes",
                self.len()
            ))),
        }
    }

    pub(crate) fn context(&self) -> &Arc<cu::CudaContext> {
        &self.alloc.ctx
    }
}

impl std::fmt::Debug for CudaBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaBuffer")
            .field("ptr", &format_args!("{:#x}", self.alloc.ptr))
            .field("len", &self.alloc.len)
            .finish()
    }
}
