//! The cuBLAS handle of one stream: created with the stream and bound to it, so every cuBLAS call
//! made through it is ordered with the stream's other work. It gets its own workspace once, at
//! creation (`cublasSetWorkspace`), so that no cuBLAS call allocates (which graph capture needs),
//! and its math mode is pinned to `CUBLAS_DEFAULT_MATH` (no TF32 unless a call asks for it).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use cudarc::cublas::{self, sys as blas_sys, CudaBlas};
use cudarc::driver as cu;
use streampool_core::BackendError;

use crate::buffer::CudaBuffer;
use crate::error::{self, panic_text, unavailable};

/// A cuBLAS handle bound to one stream, with its workspace.
pub struct BlasHandle {
    // Declared before `workspace`: the handle is destroyed before its workspace is freed.
    blas: CudaBlas,
    workspace: CudaBuffer,
    /// The handle's `cublasSetSmCountTarget` setting (0: the whole GPU).
    sm_target: u32,
}

impl BlasHandle {
    pub(crate) fn new(
        stream: &Arc<cu::CudaStream>,
        workspace: CudaBuffer,
    ) -> Result<Self, BackendError> {
        // SAFETY: only tries to dlopen the candidate names of libcublas.
        let present = catch_unwind(|| unsafe { cublas::sys::is_culib_present() }).unwrap_or(false);
        if !present {
            return Err(unavailable(
                "cuBLAS (libcublas.so) was not found: install the CUDA toolkit's runtime \
                 libraries or add their folder to LD_LIBRARY_PATH",
            ));
        }
        let created = catch_unwind(AssertUnwindSafe(|| CudaBlas::new(stream.clone())))
            .map_err(|p| error::library("cublasCreate", panic_text(&*p)))?;
        let blas = created.map_err(|e| error::library("cublasCreate", format!("{e:?}")))?;
        let handle = *blas.handle();
        // SAFETY: `handle` is live (owned by `blas`); the workspace is device memory of this
        // context that `self` keeps alive for as long as the handle exists (field order above).
        unsafe {
            blas_sys::cublasSetWorkspace_v2(
                handle,
                workspace.device_ptr() as *mut std::ffi::c_void,
                workspace.len(),
            )
        }
        .result()
        .map_err(|e| error::library("cublasSetWorkspace", format!("{e:?}")))?;
        // SAFETY: live handle; sets a per-handle flag.
        unsafe { blas_sys::cublasSetMathMode(handle, blas_sys::cublasMath_t::CUBLAS_DEFAULT_MATH) }
            .result()
            .map_err(|e| error::library("cublasSetMathMode", format!("{e:?}")))?;
        Ok(Self { blas, workspace, sm_target: 0 })
    }

    /// The cudarc handle (already bound to the stream), for gemm and friends.
    pub fn cublas(&self) -> &CudaBlas {
        &self.blas
    }

    /// Plan the handle's next GEMMs for `sms` multiprocessors (0: the whole GPU); a call only
    /// when the setting changes.
    pub(crate) fn set_sm_target(&mut self, sms: u32) -> Result<(), BackendError> {
        if sms != self.sm_target {
            let handle = *self.blas.handle();
            // SAFETY: live handle, used by this thread alone (the caller holds the stream's state
            // lock); sets a per-handle planning hint.
            unsafe { blas_sys::cublasSetSmCountTarget(handle, sms as i32) }
                .result()
                .map_err(|e| error::library("cublasSetSmCountTarget", format!("{e:?}")))?;
            self.sm_target = sms;
        }
        Ok(())
    }

    /// Size of the handle's workspace in bytes.
    pub fn workspace_len(&self) -> usize {
        self.workspace.len()
    }

    /// Device address and size of the handle's workspace, for cuBLASLt calls made on the same
    /// stream while the stream's state lock is held (stream order keeps them apart from cuBLAS's
    /// own use of it).
    pub(crate) fn workspace(&self) -> (u64, usize) {
        (self.workspace.device_ptr(), self.workspace.len())
    }
}

impl std::fmt::Debug for BlasHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlasHandle")
            .field("workspace", &self.workspace.len())
            .finish_non_exhaustive()
    }
}
