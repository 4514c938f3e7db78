//! The ops conformance suite (`streampool_tensor::conformance`) through the Metal kernels' host
//! build: every op, f32 and f16, MiniLM's shapes and odd ones, against the f64 references.

use streampool_core::{Device, PoolConfig};
use streampool_metal_host::MslHostBackend;

fn host() -> Device<MslHostBackend> {
    Device::new(MslHostBackend::new(), PoolConfig::with_capacity(2))
}

streampool_tensor::ops_conformance_tests!(host);
