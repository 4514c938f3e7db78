//! Shared by the model tests: the device, the real model (loaded once per test binary), the
//! reference fixture.
#![allow(dead_code)] // each test binary uses a different subset

#[path = "../fixture/mod.rs"]
mod fixture;
#[allow(unused_imports)] // each test binary uses a different subset
pub use fixture::{cases, compare, max_abs_diff, texts, Case};

use std::sync::OnceLock;

use streampool_core::{Device, PoolConfig};
use streampool_cpu::CpuBackend;
use streampool_models::loading::fetch::ensure_default_model;
use streampool_models::loading::ModelFiles;
use streampool_models::MiniLm;

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
