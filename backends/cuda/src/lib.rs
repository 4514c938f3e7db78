//! CUDA backend (feature `cuda`)
