//! The models on the CPU backend: MiniLM against sentence-transformers, its typed errors for bad
//! files and input, reduced precision refused, MLP and Conv1D against an f64 reference. One test
//! binary (a module each) so that the test build links once, not four times.

#[path = "../common/mod.rs"]
mod common;

mod architectures;
mod errors;
mod long_texts;
mod precision;
mod reference;
mod small_models;
