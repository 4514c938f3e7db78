//! The core's conformance suite on the CUDA backend. Needs a GPU (and the `cuda` feature), so
//! every test is ignored by default; run them on a GPU machine with `-- --include-ignored`.

use streampool_core::{Device, PoolConfig};
use streampool_cuda::CudaBackend;

fn make(config: PoolConfig) -> Device<CudaBackend> {
    let backend = CudaBackend::open(0).expect("these tests need a CUDA GPU and --features cuda");
    Device::new(backend, config)
}

streampool_core::conformance_tests!(make, #[ignore = "needs a CUDA GPU"]);
