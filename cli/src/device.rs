//! Choosing a device from `--device`, and running generic code on whichever backend it is.

use streampool_core::{Device, PoolConfig};
use streampool_cpu::CpuBackend;
use streampool_cuda::CudaBackend;
use streampool_metal::MetalBackend;
use streampool_tensor::Ops;

/// `--device`: which backend to run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DeviceChoice {
    /// CUDA if a GPU and its libraries are present, else Metal (in a macOS build with
    /// `--features metal`), else the CPU.
    Auto,
    /// The CPU backend.
    Cpu,
    /// NVIDIA GPU 0 (needs a build with `--features cuda`).
    Cuda,
    /// The Mac's Apple GPU (needs a macOS build with `--features metal`; experimental: never
    /// run by the project).
    Metal,
}

/// Code that runs on any backend.
pub trait OnDevice {
    /// What it returns.
    type Output;
    /// Run on `device`.
    fn run<B: Ops>(self, device: Device<B>) -> Result<Self::Output, Box<dyn std::error::Error>>;
}

/// Open the chosen device with `config` and run `job` on it. In a build without the `cuda`
/// (`metal`) feature, opening CUDA (Metal) fails with `BackendError::Unavailable`, and `auto`
/// goes on to the next backend.
pub fn with_device<J: OnDevice>(
    choice: DeviceChoice,
    config: PoolConfig,
    job: J,
) -> Result<J::Output, Box<dyn std::error::Error>> {
    match choice {
        DeviceChoice::Cpu => job.run(Device::new(CpuBackend::new(), config)),
        DeviceChoice::Cuda => job.run(Device::new(CudaBackend::open(0)?, config)),
        DeviceChoice::Metal => job.run(Device::new(MetalBackend::open()?, config)),
        DeviceChoice::Auto => {
            if let Ok(cuda) = CudaBackend::open(0) {
                return job.run(Device::new(cuda, config));
            }
            match MetalBackend::open() {
                Ok(metal) => job.run(Device::new(metal, config)),
                Err(_) => job.run(Device::new(CpuBackend::new(), config)),
            }
        }
    }
}
