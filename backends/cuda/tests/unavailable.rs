//! `open` where CUDA cannot run gives `Unavailable`, never a panic. Runs everywhere (CI has no
//! GPU): without the `cuda` feature, and with it on a machine without CUDA; on a GPU machine it
//! checks an ordinal that does not exist instead.

use streampool_core::BackendError;
use streampool_cuda::CudaBackend;

fn assert_unavailable(result: Result<CudaBackend, BackendError>, mentions: &str) {
    match result {
        Err(BackendError::Unavailable { backend, reason }) => {
            assert_eq!(backend, "cuda");
            assert!(reason.contains(mentions), "reason {reason:?} should mention {mentions:?}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[test]
#[cfg(not(feature = "cuda"))]
fn open_without_the_feature_is_unavailable() {
    assert_unavailable(CudaBackend::open(0), "--features cuda");
    assert_eq!(CudaBackend::device_count(), 0);
}

#[test]
#[cfg(feature = "cuda")]
fn open_without_a_gpu_is_unavailable() {
    match CudaBackend::open(0) {
        // A GPU machine: ask for a GPU that is not there.
        Ok(_) => assert_unavailable(CudaBackend::open(4096), "no GPU 4096"),
        Err(e) => {
            assert!(matches!(e, BackendError::Unavailable { .. }), "got {e:?}");
            assert_eq!(CudaBackend::device_count(), 0);
            eprintln!("as expected here: {e}");
        }
    }
}
