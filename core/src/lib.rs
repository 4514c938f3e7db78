//! # streampool-core
//!
//! The backend-neutral heart of streampool: a per-device pool of streams handed out as RAII
//! leases, the thread's current stream (settable only from a lease the thread owns), device-wide
//! synchronisation over every stream, and a compile-once cache for kernels, pipelines and graphs.
//!
//! Backends (`streampool-cpu`, `streampool-cuda`, `streampool-metal`) implement [`Backend`].
//!
//! ## Locks
//! No lock is taken on a hot path: using an owned lease, submitting to its stream, recording or
//! waiting on an event, and a cache hit take no lock in the core (backends keep per-stream state
//! behind per-stream locks). The locks that exist, each documented where it is declared:
//! - `pool::slots::Slots::sleep`: only when every slot is taken (the wait for a free one);
//! - `cache::CompileCache::insert`: only the first time a key is seen;
//! - `cache::Entry::progress`: one key's compile in flight.
//!
//! ```
//! use streampool_core::{Device, PoolConfig, CompileCache};
//! # use streampool_core::testing::NullBackend;
//! let device = Device::new(NullBackend, PoolConfig::default());
//! let kernels: CompileCache<String, u64, String> = CompileCache::new();
//! std::thread::scope(|s| {
//!     for t in 0..8 {
//!         let (device, kernels) = (&device, &kernels);
//!         s.spawn(move || {
//!             let lease = device.acquire().unwrap();
//!             let k = kernels.get(&"add".to_string(), || Ok(42)).unwrap();
//!             assert_eq!(k, 42);
//!             let _ = (t, lease.stream());
//!         });
//!     }
//! });
//! assert_eq!(kernels.compiles(), 1);
//! device.synchronize().unwrap();
//! ```
#![warn(missing_docs, unsafe_op_in_unsafe_fn)]
#![forbid(unsafe_code)]

mod backend;
mod cache;
pub mod conformance;
mod device;
mod error;
mod failures;
mod math;
mod pool;
mod shapes;
mod sync;
pub mod testing;
mod unavailable;

pub use backend::{Backend, Event, MemoryUsage, Stream, Timing};
pub use cache::{CacheError, CompileCache};
pub use device::{describe_devices, labels, Device, Running};
pub use error::{panic_text, BackendError, EventError, PoolError};
pub use failures::{submitter, Failures, Submitter};
pub use math::MatMath;
pub use pool::{load_class, CurrentGuard, Lease, PoolConfig, PoolStats, LOAD_CLASS_MAX};
pub use shapes::{AttentionDims, Conv1dError, Conv1dParams, Conv1dShape, GemmDims};
