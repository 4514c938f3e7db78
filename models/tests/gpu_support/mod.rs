//! Shared by the GPU tests: the CUDA device and a CPU device to compare with, the real MiniLM
//! on both (the same weight files), the reference fixture, comparisons.
//!
//! On a GPU machine without network: `STREAMPOOL_MODEL_DIR` names the model directory (its
//! `model.safetensors` may be f16: the loader converts to f32); the reference JSON is the
//! repository's `fixtures/minilm_reference.json` (found from the staged binary's folder upwards),
//! or `STREAMPOOL_FIXTURE`. No download is tried: a missing model fails these tests.
#![allow(dead_code)] // each test binary uses a different subset

#[path = "../fixture/mod.rs"]
mod fixture;
#[allow(unused_imports)] // each test binary uses a different subset
pub use fixture::{cases, compare, max_abs_diff, texts, Case};

use std::sync::OnceLock;

use streampool_core::{Device, PoolConfig};
use streampool_cpu::CpuBackend;
use streampool_cuda::{CudaBackend, CudaOptions, HostWait};
use streampool_models::loading::{default_model_dir, locate_model, ModelFiles, Weights};
use streampool_models::MiniLm;

/// Slots of the GPU pool: 64 worker threads and a few spare.
pub const GPU_SLOTS: usize = 72;

/// GPU 0. Host threads block (sleep) while waiting for the GPU unless `STREAMPOOL_CUDA_WAIT`
/// says otherwise: the tests run up to 64 waiting threads on fewer cores.
pub fn gpu() -> &'static Device<CudaBackend> {
    static DEVICE: OnceLock<Device<CudaBackend>> = OnceLock::new();
    DEVICE.get_or_init(|| {
        let mut options = CudaOptions::default();
        options.host_wait = Some(options.host_wait.unwrap_or(HostWait::Block));
        eprintln!("host wait: {:?}", options.host_wait);
        let backend = CudaBackend::open_with(0, options).expect("needs a CUDA GPU");
        eprintln!("GPU: {backend:?}");
        Device::new(backend, PoolConfig::with_capacity(GPU_SLOTS))
    })
}

/// The CPU backend, for results to compare with.
pub fn cpu() -> &'static Device<CpuBackend> {
    static DEVICE: OnceLock<Device<CpuBackend>> = OnceLock::new();
    DEVICE.get_or_init(|| Device::new(CpuBackend::new(), PoolConfig::with_capacity(8)))
}

/// `$STREAMPOOL_MODEL_DIR`, else the cache directory (no download: the GPU machine has no
/// network).
pub fn model_files() -> &'static ModelFiles {
    static FILES: OnceLock<ModelFiles> = OnceLock::new();
    FILES.get_or_init(|| {
        let dir = default_model_dir().expect("model directory");
        locate_model(&dir).unwrap_or_else(|e| panic!("no model at {}: {e}", dir.display()))
    })
}

/// Whether the model file stores its weights as f16 (converted to fit the GPU machine's carry
/// limit): the results then differ slightly from the f32 reference.
pub fn f16_weights() -> bool {
    static F16: OnceLock<bool> = OnceLock::new();
    *F16.get_or_init(|| {
        let w = Weights::open(&model_files().weights).expect("open weights");
        w.tensors().iter().any(|t| t.dtype == "F16")
    })
}

pub fn gpu_model() -> &'static MiniLm<CudaBackend> {
    static MODEL: OnceLock<MiniLm<CudaBackend>> = OnceLock::new();
    MODEL.get_or_init(|| MiniLm::load(gpu(), model_files()).expect("load MiniLM on the GPU"))
}

pub fn cpu_model() -> &'static MiniLm<CpuBackend> {
    static MODEL: OnceLock<MiniLm<CpuBackend>> = OnceLock::new();
    MODEL.get_or_init(|| MiniLm::load(cpu(), model_files()).expect("load MiniLM on the CPU"))
}

/// [`compare`] against an f32 result.
pub fn compare_f32(got: &[f32], want: &[f32]) -> (f64, f64) {
    let want: Vec<f64> = want.iter().map(|&v| v as f64).collect();
    compare(got, &want)
}
