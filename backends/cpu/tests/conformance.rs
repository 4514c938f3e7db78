//! The core's conformance suite on the CPU backend.

use streampool_core::{Device, PoolConfig};
use streampool_cpu::CpuBackend;

fn make(config: PoolConfig) -> Device<CpuBackend> {
    Device::new(CpuBackend::new(), config)
}

streampool_core::conformance_tests!(make);
