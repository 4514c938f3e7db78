//! The tests' client calls (the crate's own client, unwrapped) and a stand-in embedder.
#![allow(dead_code)] // each test binary uses a different subset

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use streampool_server::{EmbedError, Embedder};

pub use streampool_server::client::Answer;

/// The crate's client, panicking on a transport error.
pub fn request(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> Answer {
    streampool_server::client::request(addr, method, path, body).unwrap()
}

/// The answer's body as JSON (panics, with the body, when it is not).
pub fn json(answer: &Answer) -> serde_json::Value {
    answer.json().unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&answer.body)))
}

/// `POST /embed` of `texts`.
pub fn embed(addr: SocketAddr, texts: &[&str]) -> Answer {
    let body = serde_json::json!({ "texts": texts }).to_string();
    request(addr, "POST", "/embed", body.as_bytes())
}

/// Embeds a text as [length, sum of bytes, first byte, 1]: checkable by hand. Refuses texts
/// containing "bad"; fails whole calls containing "boom"; reports overload for "busy".
#[derive(Default)]
pub struct StandIn {
    pub calls: AtomicUsize,
}

pub fn stand_in_embedding(text: &str) -> Vec<f32> {
    let sum: u32 = text.bytes().map(u32::from).sum();
    vec![text.len() as f32, sum as f32, text.bytes().next().unwrap_or(0) as f32, 1.0]
}

impl Embedder for StandIn {
    fn model(&self) -> &str {
        "stand-in"
    }
    fn dim(&self) -> usize {
        4
    }
    fn device(&self) -> String {
        "test".into()
    }
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if let Some(index) = texts.iter().position(|t| t.contains("bad")) {
            return Err(EmbedError::Invalid { index, message: "contains bad".into() });
        }
        if texts.iter().any(|t| t.contains("boom")) {
            return Err(EmbedError::Failed("the model failed".into()));
        }
        if texts.iter().any(|t| t.contains("busy")) {
            return Err(EmbedError::Overloaded("queue full".into()));
        }
        Ok(texts.iter().map(|t| stand_in_embedding(t)).collect())
    }
}
