//! The cuBLAS handle of one stream: created with the stream and bound to it, so every cuBLAS call
//! made through it is ordered with the stream's other work.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use cudarc::cublas::{self, CudaBlas};
use cudarc::driver as cu;
use streampool_core::BackendError;

use crate::error::{self, panic_text, unavailable};

/// A cuBLAS handle bound to one stream.
pub struct BlasHandle {
    blas: CudaBlas,
}

impl BlasHandle {
    pub(crate) fn new(stream: &Arc<cu::CudaStream>) -> Result<Self, BackendError> {
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
        Ok(Self { blas })
    }

    /// The cudarc handle (already bound to the stream), for gemm and friends.
    pub fn cublas(&self) -> &CudaBlas {
        &self.blas
    }
}

impl std::fmt::Debug for BlasHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlasHandle").finish_non_exhaustive()
    }
}
