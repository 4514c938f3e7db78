//! Models: MiniLM sentence embeddings, MLP, Conv1D
#![warn(missing_docs)]

pub mod loading;
