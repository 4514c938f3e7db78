//! Shared by the GPU tests: the CUDA device and a CPU device to compare with, the real MiniLM
//! on both (the same weight files), the reference fixture, comparisons.
//!
//! On a GPU machine without network: `STREAMPOOL_MODEL_DIR` names the model directory (its
//! `model.safetensors` may be f16: the loader converts to f32), `STREAMPOOL_FIXTURE` the
//! reference JSON (default: `../shared/fixtures/minilm_reference.json` of the checkout).
#![allow(dead_code)] // each test binary uses a different subset

use std::path::PathBuf;
use std::sync::OnceLock;

use streampool_core::{Device, PoolConfig};
use streampool_cpu::CpuBackend;
use streampool_cuda::{CudaBackend, CudaOptions, HostWait};
use streampool_models::loading::{default_model_dir, locate_model, ModelFiles, Weights};
use streampool_models::MiniLm;

/// Slots of the GPU pool: 64 worker threads and a few spare.
pub const GPU_SLOTS: usize = 72;

/// One reference case: text, expected ids and embedding (sentence-transformers, f64).
pub struct Case {
    pub text: String,
    pub input_ids: Vec<u32>,
    pub embedding: Vec<f64>,
}

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

pub fn cases() -> &'static [Case] {
    static CASES: OnceLock<Vec<Case>> = OnceLock::new();
    CASES.get_or_init(|| {
        let path = std::env::var_os("STREAMPOOL_FIXTURE").map(PathBuf::from).unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../shared/fixtures/minilm_reference.json")
        });
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let json: serde_json::Value = serde_json::from_str(&text).expect("fixture is JSON");
        let numbers = |v: &serde_json::Value| -> Vec<f64> {
            v.as_array().expect("array").iter().map(|x| x.as_f64().expect("number")).collect()
        };
        json["cases"]
            .as_array()
            .expect("cases")
            .iter()
            .map(|c| Case {
                text: c["text"].as_str().expect("text").to_owned(),
                input_ids: numbers(&c["input_ids"]).into_iter().map(|v| v as u32).collect(),
                embedding: numbers(&c["embedding"]),
            })
            .collect()
    })
}

pub fn texts() -> Vec<&'static str> {
    cases().iter().map(|c| c.text.as_str()).collect()
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Cosine similarity and max abs difference against a reference.
pub fn compare(got: &[f32], want: &[f64]) -> (f64, f64) {
    assert_eq!(got.len(), want.len());
    let dot: f64 = got.iter().zip(want).map(|(&g, &w)| g as f64 * w).sum();
    let ng: f64 = got.iter().map(|&g| (g as f64).powi(2)).sum::<f64>().sqrt();
    let nw: f64 = want.iter().map(|w| w * w).sum::<f64>().sqrt();
    let diff = got.iter().zip(want).map(|(&g, &w)| (g as f64 - w).abs()).fold(0.0, f64::max);
    (dot / (ng * nw), diff)
}

/// [`compare`] against an f32 result.
pub fn compare_f32(got: &[f32], want: &[f32]) -> (f64, f64) {
    let want: Vec<f64> = want.iter().map(|&v| v as f64).collect();
    compare(got, &want)
}
