//! The routes' JSON bodies (their schemas feed `GET /openapi.json`) and errors as answers.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Texts, or token-id arrays: one input or many.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Inputs {
    /// One text.
    One(String),
    /// Several texts.
    Many(Vec<String>),
    /// One input as the model's token ids (special tokens included, as `POST /tokenize` gives
    /// them).
    Ids(Vec<u32>),
    /// Several inputs as token ids.
    ManyIds(Vec<Vec<u32>>),
}

/// One input to embed.
#[derive(Debug, Clone)]
pub enum Input {
    /// A text, tokenised here.
    Text(String),
    /// Token ids, used as they are.
    Ids(Vec<u32>),
}

impl Inputs {
    /// The inputs, in order.
    pub fn into_vec(self) -> Vec<Input> {
        match self {
            Self::One(t) => vec![Input::Text(t)],
            Self::Many(ts) => ts.into_iter().map(Input::Text).collect(),
            Self::Ids(ids) => vec![Input::Ids(ids)],
            Self::ManyIds(ids) => ids.into_iter().map(Input::Ids).collect(),
        }
    }
}

/// `POST /v1/embeddings` (OpenAI's embeddings API).
#[derive(Debug, Deserialize, ToSchema)]
pub struct OpenAiRequest {
    /// A text, an array of texts, token ids, or an array of token-id arrays.
    pub input: Inputs,
    /// Accepted and ignored: the server serves one model and answers with its name.
    #[serde(default)]
    pub model: Option<String>,
    /// `float` (default) or `base64` (little-endian f32 bytes).
    #[serde(default)]
    pub encoding_format: Option<String>,
    /// Keep the first `dimensions` values and re-normalise (only where the server was started
    /// with `--matryoshka`, for models trained to allow it).
    #[serde(default)]
    pub dimensions: Option<usize>,
    /// Accepted and ignored (OpenAI's end-user id).
    #[serde(default)]
    pub user: Option<String>,
}

/// A vector as `encoding_format` asks: numbers, or a base64 string of little-endian f32s.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum Vector {
    /// `float`.
    Float(Vec<f32>),
    /// `base64`.
    Base64(String),
}

/// One vector of a `POST /v1/embeddings` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenAiEmbedding {
    /// Always `embedding`.
    pub object: &'static str,
    /// The vector.
    pub embedding: Vector,
    /// The input's position in the request.
    pub index: usize,
}

/// Tokens read.
#[derive(Debug, Serialize, ToSchema)]
pub struct Usage {
    /// Tokens of every input, special tokens included.
    pub prompt_tokens: usize,
    /// The same (embeddings produce no tokens).
    pub total_tokens: usize,
}

/// `POST /v1/embeddings`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenAiResponse {
    /// Always `list`.
    pub object: &'static str,
    /// One per input, in order.
    pub data: Vec<OpenAiEmbedding>,
    /// The served model's name.
    pub model: String,
    /// Tokens read.
    pub usage: Usage,
}

/// Which end of a text too long for the model is dropped.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema, PartialEq, Eq)]
pub enum TruncationDirection {
    /// Keep the beginning.
    #[default]
    Right,
    /// Keep the end.
    Left,
}

/// `POST /embed` (text-embeddings-inference's). The older `{"texts": [...]}` form is also
/// taken, and answered in its own shape.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeiRequest {
    /// A text or an array of texts (or token ids).
    #[serde(default)]
    pub inputs: Option<Inputs>,
    /// The older form's texts.
    #[serde(default)]
    #[schema(ignore)]
    pub texts: Option<Vec<String>>,
    /// Unit-length vectors (default true). False: the model's own output (still unit-length
    /// when its last module normalises).
    #[serde(default)]
    pub normalize: Option<bool>,
    /// Drop what the model cannot read (default true); false: a text too long is a 413.
    #[serde(default)]
    pub truncate: Option<bool>,
    /// Which end is dropped (default `Right`).
    #[serde(default)]
    pub truncation_direction: Option<TruncationDirection>,
    /// Accepted and ignored.
    #[serde(default)]
    #[schema(ignore)]
    pub prompt_name: Option<String>,
}

/// `POST /tokenize`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenizeRequest {
    /// A text or an array of texts.
    pub inputs: Inputs,
    /// Include `[CLS]`, `[SEP]` and the like (default true).
    #[serde(default)]
    pub add_special_tokens: Option<bool>,
}

/// One token of `POST /tokenize`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenJson {
    /// Vocabulary id.
    pub id: u32,
    /// The token's text.
    pub text: String,
    /// Whether the tokenizer added it.
    pub special: bool,
    /// First character of its span in the input (null for added tokens).
    pub start: Option<usize>,
    /// One past its last character (null for added tokens).
    pub stop: Option<usize>,
}

/// `GET /info`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Info {
    /// The served model's name.
    pub model_id: String,
    /// Precision of weights and activations.
    pub model_dtype: String,
    /// Length of each embedding.
    pub dimension: usize,
    /// The pooling, as sentence-transformers names it.
    pub pooling: String,
    /// Tokens read per input at most (longer inputs are truncated or refused).
    pub max_input_length: usize,
    /// Padded tokens per engine batch at most.
    pub max_batch_tokens: usize,
    /// Texts per engine batch at most.
    pub max_batch_requests: usize,
    /// Inputs per request at most.
    pub max_client_batch_size: usize,
    /// Requests handled at once at most (more: 429).
    pub max_concurrent_requests: usize,
    /// Whether inputs are truncated unless a request says otherwise.
    pub auto_truncate: bool,
    /// The device, in words.
    pub device: String,
    /// streampool's version.
    pub version: &'static str,
}

/// `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` (or `busy`: the queue is full); `degraded: <device> failed: <why>` while some
    /// devices have failed and the others answer; otherwise why not (with a 503).
    pub status: String,
    /// The served model's name.
    pub model: String,
    /// Texts queued.
    pub queue: usize,
    /// Texts embedded so far.
    pub embedded: u64,
    /// Each device the engine runs on, in order.
    pub devices: Vec<DeviceHealth>,
}

/// One device of `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceHealth {
    /// Its label (`cuda:1`).
    pub device: String,
    /// False once it has failed: it takes no more batches.
    pub healthy: bool,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Texts it has answered (embeddings and errors).
    pub requests: u64,
    /// Batches it runs now.
    pub running: usize,
}

/// The legacy `{"texts": ...}` form's answer.
#[derive(Debug, Serialize)]
pub struct LegacyResponse {
    /// The served model's name.
    pub model: String,
    /// Length of each embedding.
    pub dim: usize,
    /// One per text.
    pub embeddings: Vec<Vec<f32>>,
}

/// Which API's error shape an answer takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `{"error": {"message", "type", "param", "code"}}`.
    OpenAi,
    /// `{"error": "...", "error_type": "..."}`.
    Tei,
}

impl Dialect {
    /// The status of a request the model or the parser refuses: 400 for OpenAI, 422 for TEI.
    pub fn invalid_status(self) -> StatusCode {
        match self {
            Self::OpenAi => StatusCode::BAD_REQUEST,
            Self::Tei => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }
}

/// An error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Its shape.
    pub dialect: Dialect,
    /// For people.
    pub message: String,
    /// Seconds to wait before retrying (a 429's `Retry-After`).
    pub retry_after: Option<u32>,
}

impl ApiError {
    /// An error of `status` in `dialect`.
    pub fn new(status: StatusCode, dialect: Dialect, message: impl Into<String>) -> Self {
        Self { status, dialect, message: message.into(), retry_after: None }
    }

    /// 400.
    pub fn bad_request(dialect: Dialect, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, dialect, message)
    }

    /// 429 with `Retry-After: 1`.
    pub fn overloaded(dialect: Dialect, message: impl Into<String>) -> Self {
        Self { retry_after: Some(1), ..Self::new(StatusCode::TOO_MANY_REQUESTS, dialect, message) }
    }

    fn openai_type(&self) -> &'static str {
        match self.status.as_u16() {
            401 => "authentication_error",
            404 => "not_found_error",
            429 => "rate_limit_error",
            400..=499 => "invalid_request_error",
            _ => "server_error",
        }
    }

    fn tei_type(&self) -> &'static str {
        match self.status.as_u16() {
            401 => "Unauthorized",
            429 => "Overloaded",
            503 => "Unhealthy",
            400..=499 => "Validation",
            _ => "Backend",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match self.dialect {
            Dialect::OpenAi => serde_json::json!({
                "error": {
                    "message": self.message,
                    "type": self.openai_type(),
                    "param": null,
                    "code": self.status.as_u16(),
                }
            }),
            Dialect::Tei => {
                serde_json::json!({ "error": self.message, "error_type": self.tei_type() })
            }
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert("retry-after", HeaderValue::from(seconds));
        }
        // A body left unread (too large, too slow) would hold the connection: close it.
        if matches!(self.status, StatusCode::REQUEST_TIMEOUT | StatusCode::PAYLOAD_TOO_LARGE) {
            response.headers_mut().insert("connection", HeaderValue::from_static("close"));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert("www-authenticate", HeaderValue::from_static("Bearer"));
        }
        response
    }
}
