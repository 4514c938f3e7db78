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
use streampool_models::loading::ModelFiles;
use streampool_models::MiniLm;

pub fn device() -> &'static Device<CpuBackend> {
    static DEVICE: OnceLock<Device<CpuBackend>> = OnceLock::new();
    DEVICE.get_or_init(|| Device::new(CpuBackend::new(), PoolConfig::with_capacity(64)))
}

/// The real model's files, downloaded once per test binary if absent; `None` where they cannot
/// be downloaded (no pip, no network) outside CI, after a `SKIPPED` line on stderr: the test
/// returns early (`let Some(..) = model_files() else { return };`).
pub fn model_files() -> Option<&'static ModelFiles> {
    streampool_models::testing::default_model()
}

/// The real MiniLM on [`device`], loaded once per test binary; `None` as for [`model_files`].
pub fn model() -> Option<&'static MiniLm<CpuBackend>> {
    static MODEL: OnceLock<MiniLm<CpuBackend>> = OnceLock::new();
    let files = model_files()?;
    Some(MODEL.get_or_init(|| MiniLm::load(device(), files).expect("load MiniLM")))
}
