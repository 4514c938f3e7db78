//! Shared by the model tests: the device, the real model (loaded once per test binary), the
//! reference fixture.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::PathBuf;
use std::sync::OnceLock;

use streampool_core::{Device, PoolConfig};
use streampool_cpu::CpuBackend;
use streampool_models::loading::fetch::ensure_default_model;
use streampool_models::loading::ModelFiles;
use streampool_models::MiniLm;

/// One reference case: text, expected ids and embedding (sentence-transformers, f64).
pub struct Case {
    pub text: String,
    pub input_ids: Vec<u32>,
    pub embedding: Vec<f64>,
}

pub fn device() -> &'static Device<CpuBackend> {
    static DEVICE: OnceLock<Device<CpuBackend>> = OnceLock::new();
    DEVICE.get_or_init(|| Device::new(CpuBackend::new(), PoolConfig::with_capacity(64)))
}

pub fn model_files() -> &'static ModelFiles {
    static FILES: OnceLock<ModelFiles> = OnceLock::new();
    FILES.get_or_init(|| {
        ensure_default_model(&mut |_| {}).unwrap_or_else(|e| panic!("cannot get the model: {e}"))
    })
}

pub fn model() -> &'static MiniLm<CpuBackend> {
    static MODEL: OnceLock<MiniLm<CpuBackend>> = OnceLock::new();
    MODEL.get_or_init(|| MiniLm::load(device(), model_files()).expect("load MiniLM"))
}

pub fn cases() -> &'static [Case] {
    static CASES: OnceLock<Vec<Case>> = OnceLock::new();
    CASES.get_or_init(|| {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/fixtures/minilm_reference.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let json: serde_json::Value = serde_json::from_str(&text).expect("fixture is JSON");
        json["cases"]
            .as_array()
            .expect("cases")
            .iter()
            .map(|c| Case {
                text: c["text"].as_str().expect("text").to_owned(),
                input_ids: c["input_ids"]
                    .as_array()
                    .expect("input_ids")
                    .iter()
                    .map(|v| v.as_u64().expect("id") as u32)
                    .collect(),
                embedding: c["embedding"]
                    .as_array()
                    .expect("embedding")
                    .iter()
                    .map(|v| v.as_f64().expect("value"))
                    .collect(),
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

/// Cosine similarity and max abs difference against an f64 reference.
pub fn compare(got: &[f32], want: &[f64]) -> (f64, f64) {
    assert_eq!(got.len(), want.len());
    let dot: f64 = got.iter().zip(want).map(|(&g, &w)| g as f64 * w).sum();
    let ng: f64 = got.iter().map(|&g| (g as f64).powi(2)).sum::<f64>().sqrt();
    let nw: f64 = want.iter().map(|w| w * w).sum::<f64>().sqrt();
    let diff = got.iter().zip(want).map(|(&g, &w)| (g as f64 - w).abs()).fold(0.0, f64::max);
    (dot / (ng * nw), diff)
}
