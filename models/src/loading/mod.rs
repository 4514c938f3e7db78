//! Loading real model files: download ([`fetch`]), directory layout ([`locate_model`]),
//! safetensors weights ([`weights`]), configuration ([`config`]) and tokenizer ([`tokenizer`]).
//!
//! Everything here produces host-side data (`Vec<f32>`, token ids) and reports bad or missing
//! files as [`LoadError`] / [`fetch::FetchError`], never by panicking.

#![forbid(unsafe_code)]

pub mod config;
mod error;
pub mod fetch;
mod files;
pub mod tokenizer;
pub mod weights;
mod wordpiece;

pub use config::{Architecture, BertConfig, DenseConfig, GemmaConfig, ModelConfig, PoolingMode};
pub use error::LoadError;
pub use files::{
    default_cache_dir, default_model_dir, locate_model, ModelFiles, HOME_ENV, MODEL_DIR_ENV,
    MODEL_DIR_NAME, REQUIRED_FILES,
};
pub use tokenizer::{Encoding, Side, Token, Tokenizer};
pub use weights::Weights;
