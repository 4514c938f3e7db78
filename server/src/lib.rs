//! streampool's HTTP server: sentence embeddings over HTTP/1.1 for many clients at once.
//!
//! The top layer, beside the CLI: HTTP threads take requests from one listener and call a shared
//! [`Embedder`]; with [`EngineEmbedder`] every text becomes one engine request, so the texts of
//! all connections in flight are micro-batched onto the engine's streams.
//!
//! - `POST /embed` with `{"texts": ["...", ...]}` (1 to `max_texts` texts) answers
//!   `{"model": ..., "dim": 384, "embeddings": [[...], ...]}`, one unit-length vector per text in
//!   request order.
//! - `GET /health` answers `{"status": "ok", "model", "dim", "device", "requests", "errors"}`.
//! - Errors answer `{"error": {"kind", "message"}}`: 400 `invalid_request` (malformed JSON, no
//!   texts, too many, a text the model refuses), 404 `not_found`, 405 `method_not_allowed` (with
//!   `Allow`), 413 `too_large`, 503 `overloaded` (the engine's queue stayed full), 500 `failed`.
//!   A bad request never takes a good one down: it is refused alone, before it is queued.
#![forbid(unsafe_code)]

mod api;
pub mod client;
mod embedder;
mod http;

pub use api::{ApiError, EmbedRequest, EmbedResponse, Health};
pub use embedder::{EmbedError, Embedder, EngineEmbedder};
pub use http::{Server, ServerConfig, ServerError};
