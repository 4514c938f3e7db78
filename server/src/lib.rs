//! streampool's HTTP server: OpenAI- and TEI-compatible sentence embeddings over HTTP/1.1 and
//! HTTP/2 (axum on hyper and tokio), every request's texts micro-batched by the engine onto its
//! streams.
//!
//! Routes:
//! - `POST /v1/embeddings` (also `/embeddings`): OpenAI's embeddings API (`input` as a text, texts
//!   or token ids; `encoding_format` `float` or `base64`; `dimensions` with `--matryoshka`).
//! - `POST /embed`: text-embeddings-inference's (`inputs`, `normalize`, `truncate`,
//!   `truncation_direction`; a bare array of vectors). The older `{"texts": [...]}` form answers
//!   `{"model", "dim", "embeddings"}` as before.
//! - `POST /tokenize`, `GET /info`, `GET /health` (a probe through the engine, and each device's
//!   health: `degraded` while some have failed; 503 when none works, the probe is not answered or
//!   the server is stopping), `GET /metrics` (Prometheus, with per-device families),
//!   `GET /openapi.json`.
//!
//! Over several devices ([`EngineService::start_on`]: one model copy each), every device's
//! workers take from one queue; a device that fails is taken out and the others go on.
//!
//! A request is refused alone, with a status and a JSON error in its API's shape, never by
//! taking others down: 429 with `Retry-After` when `max_concurrent_requests` are in flight or the
//! engine's queue is full (at once, never after a wait), 413 over the body, input-count or token
//! limits, 408 for a body that does not arrive, 401 without the API key. Texts of a request whose
//! client has gone are cancelled before they reach a batch.
//!
//! ```no_run
//! use std::sync::Arc;
//! use streampool_core::{Device, PoolConfig};
//! use streampool_cpu::CpuBackend;
//! use streampool_engine::{EngineConfig, MiniLmBatches};
//! use streampool_models::{graph::ExecMode, MiniLm};
//! use streampool_server::{EngineService, Metrics, Server, ServerConfig};
//!
//! let device = Device::new(CpuBackend::new(), PoolConfig::with_capacity(4));
//! let model = Arc::new(MiniLm::load_default(&device)?);
//! let metrics = Arc::new(Metrics::new());
//! let batches = MiniLmBatches::new(model, ExecMode::Eager);
//! let service = EngineService::start(batches, "all-MiniLM-L6-v2", EngineConfig::default(), metrics.clone())?;
//! let server = Server::start("127.0.0.1:8080", Arc::new(service), metrics, ServerConfig::default(), 4)?;
//! println!("listening on http://{}", server.addr());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

mod api;
pub mod client;
mod metrics;
mod routes;
mod server;
mod service;

pub use api::{ApiError, Dialect, Inputs, OpenAiRequest, OpenAiResponse, TeiRequest};
pub use metrics::Metrics;
pub use server::{serve, Server, ServerConfig, ServerError};
pub use service::{
    EmbedError, EmbedFuture, EmbedService, EngineService, Metered, ModelInfo, TextModel,
};
