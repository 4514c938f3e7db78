//! The ops conformance suite (`streampool_tensor::conformance`) on the CUDA backend, in f32,
//! f16 and bf16. Needs a GPU: every test is ignored; run them on a GPU machine with
//! `cargo test -p streampool-tensor --features cuda --test ops_conformance_cuda -- --ignored`.
#![cfg(feature = "cuda")]

use std::sync::OnceLock;

use streampool_core::{Device, PoolConfig};
use streampool_cuda::CudaBackend;

/// GPU 0, opened once for every test of the binary.
fn gpu() -> Device<CudaBackend> {
    static DEVICE: OnceLock<Device<CudaBackend>> = OnceLock::new();
    DEVICE
        .get_or_init(|| {
            let backend = CudaBackend::open(0).expect("these tests need a CUDA GPU");
            Device::new(backend, PoolConfig::with_capacity(16))
        })
        .clone()
}

streampool_tensor::ops_conformance_tests!(gpu, #[ignore = "needs a CUDA GPU"]);
