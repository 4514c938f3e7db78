//! Device memory: a handle to one allocation, which is either the device's own (weights and
//! other long-lived data: freed after the whole device is idle) or a block of a stream's caching
//! pool (activations: handed back to that stream's free list, see [`crate::alloc`]).

use std::sync::{Arc, Mutex};

use cudarc::driver::{self as cu, sys};
use streampool_core::BackendError;

use crate::alloc::Arena;
use crate::error;
use crate::stream::CudaStream;

/// Where an allocation goes when its last handle drops.
enum Home {
    /// `cuMemAlloc`ed for this buffer alone (`Backend::alloc`): freed after the device is idle.
    Device,
    /// A block of `arena`'s stream (`CudaStream::alloc`), `class` bytes long.
    Pool {
        arena: Arc<Arena>,
        class: usize,
        /// Other streams that used the block ([`CudaBuffer::record_use`]): their work must be
        /// done too before the block is reused. Guards only this list; taken on `record_use` and
        /// once at drop.
        uses: Mutex<Vec<Arc<cu::CudaStream>>>,
    },
}

/// One allocation.
struct Allocation {
    /// Device address; 0 for an empty buffer (nothing allocated).
    ptr: sys::CUdeviceptr,
    len: usize,
    ctx: Arc<cu::CudaContext>,
    home: Home,
}

impl Drop for Allocation {
    fn drop(&mut self) {
        if self.ptr == 0 {
            return;
        }
        match &mut self.home {
            Home::Device => {
                // Any stream may still use this memory (we do not track uses of device
                // buffers), so wait for every stream of the context before freeing. Errors
                // cannot be returned from drop: the context keeps them for its next call, and
                // memory that may still be in use is leaked rather than freed.
                if !error::idle_before_free(&self.ctx) {
                    return;
                }
                // SAFETY: `ptr` came from cuMemAlloc in this context, is freed only here (the
                // last handle), and no work that uses it is left after the synchronisation.
                self.ctx.record_err(unsafe { cu::result::free_sync(self.ptr) });
            }
            Home::Pool { arena, class, uses } => {
                let uses = std::mem::take(uses.get_mut().unwrap_or_else(|p| p.into_inner()));
                arena.give_back(self.ptr, *class, uses);
            }
        }
    }
}

/// Device memory of the CUDA backend: a handle to one allocation (aligned to at least 256
/// bytes). Cloning gives another handle to the same memory; the memory is released when the last
/// handle is dropped: freed after the device is idle for [`Backend::alloc`] buffers, returned to
/// its stream's free list (no wait at all) for [`CudaStream::alloc`] buffers.
///
/// [`Backend::alloc`]: streampool_core::Backend::alloc
#[derive(Clone)]
pub struct CudaBuffer {
    alloc: Arc<Allocation>,
}

impl CudaBuffer {
    pub(crate) fn alloc(ctx: &Arc<cu::CudaContext>, bytes: usize) -> Result<Self, BackendError> {
        let ptr = if bytes == 0 { 0 } else { raw_alloc(ctx, bytes)? };
        Ok(Self::wrap(ptr, bytes, ctx, Home::Device))
    }

    /// A pool block of `class` bytes at `ptr`, of which `len` are the buffer's.
    pub(crate) fn pooled(
        ptr: sys::CUdeviceptr,
        len: usize,
        class: usize,
        arena: &Arc<Arena>,
    ) -> Self {
        let home = Home::Pool { arena: arena.clone(), class, uses: Mutex::new(Vec::new()) };
        Self::wrap(ptr, len, arena.context(), home)
    }

    fn wrap(ptr: sys::CUdeviceptr, len: usize, ctx: &Arc<cu::CudaContext>, home: Home) -> Self {
        Self { alloc: Arc::new(Allocation { ptr, len, ctx: ctx.clone(), home }) }
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

    /// Whether the buffer is a block of a stream's pool (from [`CudaStream::alloc`]).
    pub fn is_pooled(&self) -> bool {
        matches!(self.alloc.home, Home::Pool { .. })
    }

    /// The pool slot of the stream whose pool the buffer came from, if pooled.
    pub fn home_slot(&self) -> Option<usize> {
        match &self.alloc.home {
            Home::Pool { arena, .. } => Some(arena.slot()),
            Home::Device => None,
        }
    }

    /// Declare that `stream`, not the one the buffer was allocated on, uses this pooled buffer
    /// (PyTorch's `record_stream`): when the buffer is freed, an event is recorded on `stream`
    /// too, and the block is reused only after that work is done. Without it, a pooled buffer
    /// read by another stream could be handed out again while that stream still reads it. A
    /// no-op for device buffers (they wait for the whole device before being freed).
    pub fn record_use(&self, stream: &CudaStream) {
        if let Home::Pool { arena, uses, .. } = &self.alloc.home {
            if Arc::ptr_eq(arena.stream(), stream.raw()) {
                return;
            }
            let mut uses = uses.lock().unwrap_or_else(|p| p.into_inner());
            if !uses.iter().any(|s| Arc::ptr_eq(s, stream.raw())) {
                uses.push(stream.raw().clone());
            }
        }
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

/// `cuMemAlloc` of `bytes` (> 0) in `ctx`; the caller owns the pointer.
pub(crate) fn raw_alloc(
    ctx: &Arc<cu::CudaContext>,
    bytes: usize,
) -> Result<sys::CUdeviceptr, BackendError> {
    ctx.bind_to_thread().map_err(error::driver("cuCtxSetCurrent"))?;
    // SAFETY: allocates `bytes` (> 0) in the context bound just above; the caller takes
    // ownership of the pointer and frees it exactly once.
    unsafe { cu::result::malloc_sync(bytes) }.map_err(error::alloc(bytes))
}

impl std::fmt::Debug for CudaBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaBuffer")
            .field("ptr", &format_args!("{:#x}", self.alloc.ptr))
            .field("len", &self.alloc.len)
            .field("pooled", &self.is_pooled())
            .finish()
    }
}
