//! The HTTP API's JSON bodies, and its errors as HTTP answers.

use serde::{Deserialize, Serialize};

use crate::embedder::EmbedError;

/// `POST /embed`: the texts to embed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedRequest {
    /// At least one text, at most the server's `max_texts`.
    pub texts: Vec<String>,
}

/// `POST /embed`'s answer: one unit-length embedding per text, in request order.
#[derive(Debug, Serialize)]
pub struct EmbedResponse<'a> {
    /// The model that computed them.
    pub model: &'a str,
    /// Length of each embedding.
    pub dim: usize,
    /// One per text.
    pub embeddings: Vec<Vec<f32>>,
}

/// `GET /health`'s answer.
#[derive(Debug, Serialize)]
pub struct Health<'a> {
    /// Always `"ok"` (a server that answers is up).
    pub status: &'static str,
    /// The model served.
    pub model: &'a str,
    /// Length of each embedding.
    pub dim: usize,
    /// The device it runs on.
    pub device: String,
    /// Requests answered so far (any status).
    pub requests: u64,
    /// Of those, answered with an error status.
    pub errors: u64,
}

/// An error answer: an HTTP status, and `{"error": {"kind": ..., "message": ...}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status code.
    pub status: u16,
    /// A stable, machine-readable name (`invalid_request`, `not_found`, ...).
    pub kind: &'static str,
    /// For people.
    pub message: String,
    /// The methods the path takes (the `Allow` header of a 405).
    pub allow: Option<&'static str>,
}

impl ApiError {
    fn new(status: u16, kind: &'static str, message: impl Into<String>) -> Self {
        Self { status, kind, message: message.into(), allow: None }
    }

    /// 400: the request is malformed or asks for what the server refuses.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "invalid_request", message)
    }

    /// 404: no such path.
    pub fn not_found(path: &str) -> Self {
        Self::new(404, "not_found", format!("no such path: {path} (try POST /embed, GET /health)"))
    }

    /// 405: the path exists, the method does not.
    pub fn method_not_allowed(method: &str, path: &str, allow: &'static str) -> Self {
        let message = format!("{method} {path}: use {allow}");
        Self { allow: Some(allow), ..Self::new(405, "method_not_allowed", message) }
    }

    /// 413: the body is larger than the server takes.
    pub fn too_large(limit: usize) -> Self {
        Self::new(413, "too_large", format!("request body over {limit} bytes"))
    }

    /// The JSON body.
    pub fn body(&self) -> Vec<u8> {
        let value = serde_json::json!({ "error": { "kind": self.kind, "message": self.message } });
        value.to_string().into_bytes()
    }
}

impl From<EmbedError> for ApiError {
    fn from(e: EmbedError) -> Self {
        match e {
            EmbedError::Invalid { .. } => Self::bad_request(e.to_string()),
            EmbedError::Overloaded(_) => Self::new(503, "overloaded", e.to_string()),
            EmbedError::Failed(_) => Self::new(500, "failed", e.to_string()),
        }
    }
}
