//! The engine: one shared model that any thread can call with a single request, at any time,
//! from as many threads as it likes. Requests go into one bounded queue; a fixed set of workers,
//! each owning a pool slot (its own stream) for the engine's life, takes whatever has queued
//! (up to [`EngineConfig::max_batch`]) and runs it as one batch on its stream, then hands each
//! caller its own result.
//!
//! Batching is continuous: a worker never waits to fill a batch (unless
//! [`EngineConfig::max_wait`] asks it to), so one caller alone sees the latency of a batch of
//! one, and under load the batches grow by themselves while the workers are busy.
//!
//! Every request gets an answer: its result, its own error (a bad input is refused before it is
//! queued, so it never fails a batch), the batch's error (the model failed or panicked: the
//! worker goes on), [`EngineError::Overloaded`] when the queue stays full past
//! [`EngineConfig::submit_timeout`], or [`EngineError::Stopped`]. Dropping the engine stops
//! intake and runs everything already queued before the workers exit: nothing is lost.
//!
//! ```
//! use std::sync::Arc;
//! use streampool_core::{Device, PoolConfig};
//! use streampool_cpu::CpuBackend;
//! use streampool_engine::{BatchModel, Engine, EngineConfig, EngineError};
//!
//! /// A model that doubles numbers, in batches.
//! struct Double(Device<CpuBackend>);
//!
//! /// The input it refuses.
//! #[derive(Debug, thiserror::Error)]
//! #[error("{0} is not finite")]
//! struct NotFinite(f32);
//!
//! impl BatchModel for Double {
//!     type Backend = CpuBackend;
//!     type Input = f32;
//!     type Output = f32;
//!     type Error = NotFinite;
//!     fn device(&self) -> &Device<CpuBackend> {
//!         &self.0
//!     }
//!     fn check(&self, x: &f32) -> Result<(), NotFinite> {
//!         if x.is_finite() { Ok(()) } else { Err(NotFinite(*x)) }
//!     }
//!     fn run(&self, _: &streampool_cpu::CpuStream, xs: &[f32]) -> Result<Vec<f32>, NotFinite> {
//!         Ok(xs.iter().map(|x| 2.0 * x).collect())
//!     }
//! }
//!
//! let device = Device::new(CpuBackend::new(), PoolConfig::with_capacity(4));
//! let engine = Engine::start(Arc::new(Double(device)), EngineConfig::default().workers(2))?;
//! std::thread::scope(|s| {
//!     for t in 0..8 {
//!         let engine = &engine;
//!         s.spawn(move || assert_eq!(engine.call(t as f32).unwrap(), 2.0 * t as f32));
//!     }
//! });
//! assert!(matches!(engine.call(f32::NAN), Err(EngineError::Invalid(NotFinite(_)))));
//! # Ok::<(), EngineError<NotFinite>>(())
//! ```

pub mod batcher;
mod config;
pub mod corpus;
mod engine;
mod error;
mod lanes;
mod minilm;
mod model;
pub mod npy;
pub mod output;
mod stats;
pub mod texts;
mod worker;

pub use config::EngineConfig;
pub use engine::{Answer, Answering, Engine, Pending};
pub use error::{BatchFailure, EngineError};
pub use minilm::MiniLmBatches;
pub use model::BatchModel;
pub use stats::{DeviceStats, EngineStats};
