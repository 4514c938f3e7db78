//! Choosing a device from `--device`, and running generic code on whichever backend it is.

use streampool_core::{Device, PoolConfig};
use streampool_cpu::CpuBackend;
use streampool_cuda::CudaBackend;
use streampool_tensor::Ops;

/// `--device`: which backend to run on. (Metal is not offered until it runs a model.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DeviceChoice {
    /// CUDA if a GPU and its libraries are present, else the CPU.
    Auto,
    /// The CPU backend.
    Cpu,
    /// NVIDIA GPU 0 (needs a build with `--features cuda`).
    Cuda,
}

/// Code that runs on any backend.
pub trait OnDevice {
    /// What it returns.
    type Output;
    /// Run on `device`.
    fn run<B: Ops>(self, device: Device<B>) -> Result<Self::Output, Box<dyn std::error::Error>>;
}

/// Open the chosen device with `config` and run `job` on it. In a build without the `cuda`
/// feature, opening CUDA fails with `BackendError::Unavailable` (`auto` then takes the CPU).
pub fn with_device<J: OnDevice>(
    choice: DeviceChoice,
    config: PoolConfig,
    job: J,
) -> Result<J::Output, Box<dyn std::error::Error>> {
    match choice {
        DeviceChoice::Cpu => job.run(Device::new(CpuBackend::new(), config)),
        DeviceChoice::Cuda => job.run(Device::new(CudaBackend::open(0)?, config)),
        DeviceChoice::Auto => match CudaBackend::open(0) {
            Ok(cuda) => job.run(Device::new(cuda, config)),
            Err(_) => job.run(Device::new(CpuBackend::new(), config)),
        },
    }
}
