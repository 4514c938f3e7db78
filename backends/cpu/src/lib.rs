//! # streampool-cpu
//!
//! The CPU backend. Each stream is an in-order executor: a worker thread with its own queue.
//! Enqueueing returns at once; events complete when the worker reaches them. It models a GPU queue
//! closely enough that an ordering bug in the core or in an op shows up in CI.
//!
//! ```
//! use streampool_core::{Device, PoolConfig, Stream};
//! use streampool_cpu::CpuBackend;
//!
//! let device = Device::new(CpuBackend::new(), PoolConfig::default());
//! let lease = device.acquire()?;
//! let buf = device.alloc(16)?;
//! lease.stream().fill_u32(&buf, 3)?;
//! lease.stream().mul_add_u32(&buf, 2, 1)?; // enqueued after the fill: 3 * 2 + 1
//! let mut out = [0u8; 16];
//! lease.stream().read(&buf, 0, &mut out)?;
//! assert!(out.chunks(4).all(|w| u32::from_le_bytes(w.try_into().unwrap()) == 7));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod backend;
mod buffer;
mod event;
pub mod kernels;
mod stream;

pub use backend::CpuBackend;
pub use buffer::{BufferRead, BufferWrite, CpuBuffer};
pub use event::CpuEvent;
pub use stream::{CpuStream, Job};

/// A CPU device: the CPU backend with its stream pool.
pub type CpuDevice = streampool_core::Device<CpuBackend>;
