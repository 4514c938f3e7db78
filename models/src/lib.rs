//! # streampool-models
//!
//! Models that run on any backend implementing [`streampool_tensor::Ops`]: [`MiniLm`]
//! (all-MiniLM-L6-v2 sentence embeddings), [`Mlp`] and [`Conv1dNet`]. Each is loaded once and
//! shared by many threads, each calling it on its own stream; weights exist once on the device
//! and activations live in per-slot workspaces.
//!
//! [`loading`] reads model files; [`synthetic`] writes deterministic weights for the small
//! models.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod conv1d;
mod error;
pub mod graph;
pub mod loading;
pub mod minilm;
mod mlp;
mod params;
mod precision;
mod stack;
pub mod synthetic;
#[doc(hidden)] // for the workspace's tests
pub mod testing;
pub mod workspace;

pub use conv1d::Conv1dNet;
pub use error::ModelError;
pub use minilm::MiniLm;
pub use mlp::Mlp;
pub use precision::Precision;

// The README's Rust example, compiled with the doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeExample;
