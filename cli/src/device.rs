//! Choosing a device from `--device`, and running generic code on whichever backend it is.

use streampool_core::{BackendError, Device, PoolConfig};
use streampool_cpu::CpuBackend;
#[cfg(feature = "cuda")]
use streampool_cuda::CudaBackend;
use streampool_tensor::Ops;

/// `--device`: which backend to run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DeviceChoice {
    /// CUDA if a GPU and its libraries are present, else the CPU.
    Auto,
    /// The CPU backend.
    Cpu,
    /// NVIDIA GPU 0 (needs a build with `--features cuda`).
    Cuda,
    /// Apple GPU (needs a build with `--features metal` on macOS).
    Metal,
}

/// Code that runs on any backend.
pub trait OnDevice {
    /// What it returns.
    type Output;
    /// Run on `device`.
    fn run<B: Ops>(self, device: Device<B>) -> Result<Self::Output, Box<dyn std::error::Error>>;
}

/// Open the chosen device with `config` and run `job` on it.
pub fn with_device<J: OnDevice>(
    choice: DeviceChoice,
    config: PoolConfig,
    job: J,
) -> Result<J::Output, Box<dyn std::error::Error>> {
    match choice {
        DeviceChoice::Cpu => job.run(Device::new(CpuBackend::new(), config)),
        DeviceChoice::Cuda => run_cuda(job, config),
        DeviceChoice::Auto => match run_cuda_if_present(job, config.clone()) {
            Ok(output) => output,
            Err(job) => job.run(Device::new(CpuBackend::new(), config)),
        },
        DeviceChoice::Metal => Err(unavailable(
            "metal",
            "this build has no Metal backend (macOS with --features metal only)",
        )
        .into()),
    }
}

fn unavailable(backend: &'static str, reason: &str) -> BackendError {
    BackendError::Unavailable { backend, reason: reason.into() }
}

#[cfg(feature = "cuda")]
fn run_cuda<J: OnDevice>(
    job: J,
    config: PoolConfig,
) -> Result<J::Output, Box<dyn std::error::Error>> {
    job.run(Device::new(CudaBackend::open(0)?, config))
}

#[cfg(not(feature = "cuda"))]
fn run_cuda<J: OnDevice>(_: J, _: PoolConfig) -> Result<J::Output, Box<dyn std::error::Error>> {
    Err(unavailable("cuda", "built without the `cuda` feature; rebuild with --features cuda")
        .into())
}

/// Run on CUDA GPU 0 if one can be opened; otherwise hand the job back.
#[cfg(feature = "cuda")]
fn run_cuda_if_present<J: OnDevice>(
    job: J,
    config: PoolConfig,
) -> Result<Result<J::Output, Box<dyn std::error::Error>>, J> {
    match CudaBackend::open(0) {
        Ok(cuda) => Ok(job.run(Device::new(cuda, config))),
        Err(_) => Err(job),
    }
}

#[cfg(not(feature = "cuda"))]
fn run_cuda_if_present<J: OnDevice>(
    job: J,
    _: PoolConfig,
) -> Result<Result<J::Output, Box<dyn std::error::Error>>, J> {
    Err(job)
}
