//! # streampool-tensor
//!
//! Tensors (typed, shaped views of a backend's buffers) and the ops that run on them, submitted
//! to streams. Views ([`Tensor::reshape`], [`Tensor::permute`], [`Tensor::transpose`],
//! [`Tensor::narrow`]) share the buffer; [`Tensor::contiguous`] copies a strided view on a
//! stream. Ops go through one backend-facing trait, [`Ops`], which the CPU backend implements
//! here (module `cpu`), the CUDA backend with its own kernels, and the Metal backend with the
//! Metal Shading Language kernels' op map ([`msl`]).
//!
//! ```
//! use streampool_core::{Device, PoolConfig};
//! use streampool_cpu::CpuBackend;
//! use streampool_tensor::{Activation, DType, Ops, Tensor};
//!
//! let device = Device::new(CpuBackend::new(), PoolConfig::default());
//! let lease = device.acquire()?;
//! let s = lease.stream();
//! let x = Tensor::from_host(&device, s, &[1.0, 2.0], &[1, 2])?;
//! let w = Tensor::from_host(&device, s, &[1.0, 0.0, 1.0, 1.0], &[2, 2])?;
//! let y = Tensor::empty(&device, &[1, 2], DType::F32)?;
//! CpuBackend::linear(s, &x, &w, None, Activation::Identity, &y)?;
//! assert_eq!(y.to_host(s)?, vec![1.0, 3.0]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod check;
pub mod conformance;
mod cpu;
#[cfg(feature = "cuda")]
mod cuda;
#[cfg(not(feature = "cuda"))]
mod cuda_unavailable;
mod dtype;
mod error;
mod layout;
mod metal;
pub mod msl;
mod ops;
mod tensor;

pub use dtype::DType;
pub use error::{OpError, ViewError};
pub use layout::{Layout, MAX_RANK};
pub use ops::{Activation, BertEmbeddingTables, LayerNorm, NoGraphs, Ops, PoolKind};
pub use tensor::Tensor;
