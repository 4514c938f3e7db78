//! The ops conformance suite (`streampool_tensor::conformance`) on the CPU backend.

use streampool_core::{Device, PoolConfig};
use streampool_cpu::CpuBackend;

fn cpu() -> Device<CpuBackend> {
    Device::new(CpuBackend::new(), PoolConfig::with_capacity(2))
}

streampool_tensor::ops_conformance_tests!(cpu);
