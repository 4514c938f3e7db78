//! # streampool-cuda
//!
//! The CUDA backend of streampool: [`CudaBackend`] implements [`streampool_core::Backend`] for
//! one NVIDIA GPU, so that many host threads can each drive their own stream of one shared
//! device.
//!
//! - Each pool slot gets a **non-blocking** CUDA stream with its own cuBLAS handle
//!   ([`CudaStream`]).
//! - Events are `cuEvent`s, created without timing unless asked for ([`CudaEvent`]).
//! - Buffers are raw device allocations shared by handles ([`CudaBuffer`]).
//! - The portable ops run as small CUDA C kernels (`kernels/*.cu`) compiled by NVRTC at first use
//!   for the device's own architecture, once per process (the core's `CompileCache`) and once per
//!   machine (an on-disk CUBIN cache, [`disk_cache`]).
//! - cudarc's automatic per-buffer event tracking is off: ordering across streams is the caller's
//!   (events), as everywhere in streampool.
//!
//! Everything CUDA sits behind the `cuda` feature. Without it the crate still builds and
//! [`CudaBackend::open`] returns [`streampool_core::BackendError::Unavailable`]. With it, CUDA is
//! loaded at run time: the crate builds without CUDA installed, and `open` reports a missing
//! driver or GPU as `Unavailable` too.
//!
//! ```
//! use streampool_core::BackendError;
//! use streampool_cuda::CudaBackend;
//! match CudaBackend::open(0) {
//!     Ok(backend) => println!("using {backend:?}"),
//!     Err(BackendError::Unavailable { reason, .. }) => println!("no CUDA: {reason}"),
//!     Err(e) => panic!("{e}"),
//! }
//! ```
#![warn(missing_docs)]

#[cfg(feature = "cuda")]
pub mod alloc;
pub mod disk_cache;
#[cfg(feature = "cuda")]
pub mod graph;
#[cfg(feature = "cuda")]
pub mod ops;

#[cfg(feature = "cuda")]
mod blas;
#[cfg(feature = "cuda")]
mod buffer;
#[cfg(feature = "cuda")]
mod compile;
#[cfg(feature = "cuda")]
mod context;
#[cfg(feature = "cuda")]
mod error;
#[cfg(feature = "cuda")]
mod event;
#[cfg(feature = "cuda")]
mod kernels;
#[cfg(feature = "cuda")]
mod pinned;
#[cfg(feature = "cuda")]
mod stream;

#[cfg(feature = "cuda")]
pub use alloc::{MemoryStats, StreamMemoryStats};
#[cfg(feature = "cuda")]
pub use blas::BlasHandle;
#[cfg(feature = "cuda")]
pub use buffer::CudaBuffer;
#[cfg(feature = "cuda")]
pub use context::{CudaBackend, CudaOptions, HostWait};
/// The cudarc crate this backend is built on, for code that needs the raw API.
#[cfg(feature = "cuda")]
pub use cudarc;
#[cfg(feature = "cuda")]
pub use event::CudaEvent;
#[cfg(feature = "cuda")]
pub use graph::{CaptureError, CudaGraph, CAPTURE_TRIES};
#[cfg(feature = "cuda")]
pub use pinned::{HostElem, PinnedBuffer, PinnedGuard};
#[cfg(feature = "cuda")]
pub use stream::{CudaStream, StreamState};

#[cfg(not(feature = "cuda"))]
mod unavailable;
#[cfg(not(feature = "cuda"))]
pub use unavailable::{CudaBackend, CudaBuffer, CudaEvent, CudaOptions, CudaStream, HostWait};
