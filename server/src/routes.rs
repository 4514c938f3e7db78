//! The routes: OpenAI's `POST /v1/embeddings`, TEI's `POST /embed` and `POST /tokenize`,
//! `GET /info`, `/health`, `/metrics`, `/openapi.json`; and the layers every request passes:
//! metrics and a log line, then the API key.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::de::DeserializeOwned;
use streampool_engine::DeviceStats;
use streampool_models::loading::{Encoding, Side};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use utoipa::OpenApi;

use crate::api::*;
use crate::metrics::Metrics;
use crate::service::{EmbedError, EmbedService};
use crate::ServerConfig;

/// What every handler shares.
pub(crate) struct AppState {
    pub(crate) service: Arc<dyn EmbedService>,
    pub(crate) config: ServerConfig,
    pub(crate) metrics: Arc<Metrics>,
    /// One permit per request handled at once (`max_concurrent_requests`).
    slots: Arc<Semaphore>,
    /// Set once shutdown begins: `/health` answers 503.
    pub(crate) stopping: std::sync::atomic::AtomicBool,
}

type Shared = Arc<AppState>;

/// Texts of more bytes than this are tokenised off the async runtime's threads.
const INLINE_TOKENIZE_BYTES: usize = 16 * 1024;

#[derive(OpenApi)]
#[openapi(
    info(title = "streampool", description = "Sentence embeddings: OpenAI- and TEI-compatible"),
    paths(openai_embeddings, tei_embed, tokenize, info, health, metrics),
    components(schemas(
        OpenAiRequest,
        OpenAiResponse,
        OpenAiEmbedding,
        Usage,
        Inputs,
        TeiRequest,
        TruncationDirection,
        TokenizeRequest,
        TokenJson,
        Info,
        Health,
        DeviceHealth
    ))
)]
struct ApiDoc;

/// The router, its state built from `service`, `config` and `metrics`.
pub(crate) fn router(state: Shared) -> Router {
    Router::new()
        .route("/v1/embeddings", post(openai_embeddings))
        .route("/embeddings", post(openai_embeddings))
        .route("/embed", post(tei_embed))
        .route("/tokenize", post(tokenize))
        .route("/info", get(info))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), authorize))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

impl AppState {
    pub(crate) fn new(
        service: Arc<dyn EmbedService>,
        config: ServerConfig,
        metrics: Arc<Metrics>,
    ) -> Self {
        let slots = Arc::new(Semaphore::new(config.max_concurrent_requests.max(1)));
        Self { service, config, metrics, slots, stopping: Default::default() }
    }

    /// A slot for one request, or a 429 at once.
    fn admit(&self, dialect: Dialect) -> Result<OwnedSemaphorePermit, ApiError> {
        self.slots.clone().try_acquire_owned().map_err(|_| {
            ApiError::overloaded(
                dialect,
                format!(
                    "too many requests in flight (at most {}): retry later",
                    self.config.max_concurrent_requests
                ),
            )
        })
    }

    /// Bytes of a text read at most: 16 times what the tokenizer reads at first, so that only
    /// texts of whitespace or of one giant word can lose tokens to the cut.
    fn text_bytes(&self) -> usize {
        self.service.info().max_input_tokens.saturating_mul(256).max(16 * 1024)
    }

    /// `inputs` embedded: the model's vectors in order, and the tokens read.
    async fn embed(
        &self,
        inputs: Vec<Input>,
        side: Side,
        truncate: bool,
        dialect: Dialect,
    ) -> Result<(Vec<Vec<f32>>, usize), ApiError> {
        let invalid_status = dialect.invalid_status();
        if inputs.is_empty() {
            return Err(ApiError::new(invalid_status, dialect, "no input: give at least one"));
        }
        let most = self.config.max_client_batch_size;
        if inputs.len() > most {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                dialect,
                format!("{} inputs in one request: at most {most} are taken", inputs.len()),
            ));
        }
        let service = self.service.clone();
        let cap = self.text_bytes();
        let bytes: usize = inputs
            .iter()
            .map(|i| match i {
                Input::Text(t) => t.len().min(cap),
                Input::Ids(ids) => ids.len(),
            })
            .sum();
        let max_tokens = service.info().max_input_tokens;
        let encode = move || -> Result<Vec<Encoding>, ApiError> {
            let mut encodings = Vec::with_capacity(inputs.len());
            for (i, input) in inputs.into_iter().enumerate() {
                let at = |e: EmbedError| {
                    ApiError::new(invalid_status, dialect, format!("input {i}: {e}"))
                };
                let encoding = match input {
                    Input::Text(text) => {
                        let (encoding, truncated) =
                            service.encode(bounded(&text, cap, side), side).map_err(at)?;
                        if truncated && !truncate {
                            return Err(ApiError::new(
                                StatusCode::PAYLOAD_TOO_LARGE,
                                dialect,
                                format!(
                                    "input {i} is longer than the model's {max_tokens} tokens \
                                     (and the request says truncate: false)"
                                ),
                            ));
                        }
                        encoding
                    }
                    Input::Ids(ids) => service.encode_ids(&ids).map_err(at)?,
                };
                encodings.push(encoding);
            }
            Ok(encodings)
        };
        let encodings = encode_off_runtime(encode, bytes, dialect).await?;
        let tokens = encodings.iter().map(Encoding::len).sum();
        // All queued before the first wait, so one request's texts share batches. Should one
        // be refused, the futures already made are dropped: their texts are cancelled.
        let mut pending = Vec::with_capacity(encodings.len());
        for encoding in encodings {
            pending.push(self.service.submit(encoding).map_err(|e| service_error(e, dialect))?);
        }
        let mut vectors = Vec::with_capacity(pending.len());
        for answer in pending {
            vectors.push(answer.await.map_err(|e| service_error(e, dialect))?);
        }
        Ok((vectors, tokens))
    }
}

/// Run `encode` here when the request's texts are small (`bytes`), on the blocking pool
/// otherwise: tokenising a megabyte takes milliseconds that the connections sharing this thread
/// would wait.
async fn encode_off_runtime(
    encode: impl FnOnce() -> Result<Vec<Encoding>, ApiError> + Send + 'static,
    bytes: usize,
    dialect: Dialect,
) -> Result<Vec<Encoding>, ApiError> {
    if bytes <= INLINE_TOKENIZE_BYTES {
        return encode();
    }
    tokio::task::spawn_blocking(encode).await.unwrap_or_else(|e| {
        Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, dialect, format!("tokenizing: {e}")))
    })
}

/// `text` cut to at most `cap` bytes at a character boundary, from the end the model keeps.
fn bounded(text: &str, cap: usize, side: Side) -> &str {
    if text.len() <= cap {
        return text;
    }
    match side {
        Side::Right => {
            let end = (0..=cap).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
            &text[..end]
        }
        Side::Left => {
            let start =
                (text.len() - cap..=text.len()).find(|&i| text.is_char_boundary(i)).unwrap_or(0);
            &text[start..]
        }
    }
}

fn service_error(e: EmbedError, dialect: Dialect) -> ApiError {
    match e {
        EmbedError::Invalid(m) => ApiError::new(dialect.invalid_status(), dialect, m),
        EmbedError::Overloaded(m) => ApiError::overloaded(dialect, m),
        EmbedError::Failed(m) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, dialect, m),
    }
}

/// The body read (at most `max_body_bytes`, within `body_timeout`) and parsed as JSON.
async fn read_json<T: DeserializeOwned>(
    state: &AppState,
    request: Request,
    dialect: Dialect,
) -> Result<T, ApiError> {
    let limit = state.config.max_body_bytes;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            dialect,
            format!("request body over {limit} bytes"),
        )
    };
    let declared = request.headers().get(header::CONTENT_LENGTH);
    if let Some(length) = declared.and_then(|v| v.to_str().ok()?.parse::<u64>().ok()) {
        if length > limit as u64 {
            return Err(too_large());
        }
    }
    let body = Limited::new(request.into_body(), limit);
    let bytes = match tokio::time::timeout(state.config.body_timeout, body.collect()).await {
        Err(_) => {
            return Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                dialect,
                format!("the body did not arrive within {:?}", state.config.body_timeout),
            ))
        }
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => return Err(too_large()),
        Ok(Err(e)) => return Err(ApiError::bad_request(dialect, format!("reading the body: {e}"))),
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::new(dialect.invalid_status(), dialect, format!("invalid JSON body: {e}"))
    })
}

/// Unit length (a zero vector stays zero).
fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// OpenAI's embeddings API.
#[utoipa::path(post, path = "/v1/embeddings", request_body = OpenAiRequest,
    responses((status = 200, body = OpenAiResponse), (status = 400), (status = 413), (status = 429)))]
async fn openai_embeddings(
    State(state): State<Shared>,
    request: Request,
) -> Result<Response, ApiError> {
    let d = Dialect::OpenAi;
    let _slot = state.admit(d)?;
    let body: OpenAiRequest = read_json(&state, request, d).await?;
    let base64 = match body.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError::bad_request(
                d,
                format!("encoding_format `{other}`: use `float` or `base64`"),
            ))
        }
    };
    let info = state.service.info();
    let dim = info.dim;
    let keep = match body.dimensions {
        None => dim,
        Some(n) if n == dim => dim,
        Some(n) if n == 0 || n > dim => {
            return Err(ApiError::bad_request(d, format!("dimensions {n}: the model gives {dim}")))
        }
        Some(n) if state.config.matryoshka => n,
        Some(n) => {
            return Err(ApiError::bad_request(
                d,
                format!(
                    "dimensions {n}: this server gives whole {dim}-value vectors (start it with \
                     --matryoshka for a model trained to be truncated)"
                ),
            ))
        }
    };
    let (vectors, tokens) = state.embed(body.input.into_vec(), Side::Right, true, d).await?;
    let data = vectors
        .into_iter()
        .enumerate()
        .map(|(index, mut v)| {
            if keep < v.len() {
                v.truncate(keep);
                normalize(&mut v);
            }
            let embedding = if base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                Vector::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                Vector::Float(v)
            };
            OpenAiEmbedding { object: "embedding", embedding, index }
        })
        .collect();
    let usage = Usage { prompt_tokens: tokens, total_tokens: tokens };
    Ok(Json(OpenAiResponse { object: "list", data, model: info.id.clone(), usage }).into_response())
}

/// text-embeddings-inference's `/embed` (and the older `{"texts": [...]}` form).
#[utoipa::path(post, path = "/embed", request_body = TeiRequest,
    responses((status = 200, description = "One vector per input", body = Vec<Vec<f32>>),
        (status = 413), (status = 422), (status = 429)))]
async fn tei_embed(State(state): State<Shared>, request: Request) -> Result<Response, ApiError> {
    let d = Dialect::Tei;
    let _slot = state.admit(d)?;
    let body: TeiRequest = read_json(&state, request, d).await?;
    let side = match body.truncation_direction.unwrap_or_default() {
        TruncationDirection::Right => Side::Right,
        TruncationDirection::Left => Side::Left,
    };
    let truncate = body.truncate.unwrap_or(state.config.auto_truncate);
    match (body.inputs, body.texts) {
        (Some(inputs), None) => {
            let (mut vectors, _) = state.embed(inputs.into_vec(), side, truncate, d).await?;
            if body.normalize.unwrap_or(true) {
                vectors.iter_mut().for_each(|v| normalize(v));
            }
            Ok(Json(vectors).into_response())
        }
        (None, Some(texts)) => {
            let inputs = texts.into_iter().map(Input::Text).collect();
            let (embeddings, _) = state.embed(inputs, side, truncate, d).await?;
            let info = state.service.info();
            let answer = LegacyResponse { model: info.id.clone(), dim: info.dim, embeddings };
            Ok(Json(answer).into_response())
        }
        (Some(_), Some(_)) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            d,
            "give `inputs` or the older `texts`, not both",
        )),
        (None, None) => {
            Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, d, "missing field `inputs`"))
        }
    }
}

/// The tokens the model reads of each input.
#[utoipa::path(post, path = "/tokenize", request_body = TokenizeRequest,
    responses((status = 200, body = Vec<Vec<TokenJson>>), (status = 422)))]
async fn tokenize(State(state): State<Shared>, request: Request) -> Result<Response, ApiError> {
    let d = Dialect::Tei;
    let _slot = state.admit(d)?;
    let body: TokenizeRequest = read_json(&state, request, d).await?;
    let texts: Vec<String> = body
        .inputs
        .into_vec()
        .into_iter()
        .map(|input| match input {
            Input::Text(t) => Ok(t),
            Input::Ids(_) => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                d,
                "tokenize takes texts, not token ids",
            )),
        })
        .collect::<Result<_, _>>()?;
    if texts.is_empty() || texts.len() > state.config.max_client_batch_size {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            d,
            format!("give 1 to {} inputs", state.config.max_client_batch_size),
        ));
    }
    let add_special = body.add_special_tokens.unwrap_or(true);
    let (service, cap) = (state.service.clone(), state.text_bytes());
    let run = move || {
        texts
            .iter()
            .map(|t| {
                let tokens = service.tokens(bounded(t, cap, Side::Right), add_special)?;
                Ok(tokens
                    .into_iter()
                    .map(|t| TokenJson {
                        id: t.id,
                        text: t.text,
                        special: t.special,
                        start: t.span.map(|s| s.0),
                        stop: t.span.map(|s| s.1),
                    })
                    .collect::<Vec<_>>())
            })
            .collect::<Result<Vec<_>, EmbedError>>()
    };
    let tokens = tokio::task::spawn_blocking(run)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, d, e.to_string()))?
        .map_err(|e| service_error(e, d))?;
    Ok(Json(tokens).into_response())
}

/// The model and the server's limits.
#[utoipa::path(get, path = "/info", responses((status = 200, body = Info)))]
async fn info(State(state): State<Shared>) -> Json<Info> {
    let (i, c, engine) = (state.service.info(), &state.config, state.service.config());
    Json(Info {
        model_id: i.id.clone(),
        model_dtype: i.dtype.clone(),
        dimension: i.dim,
        pooling: i.pooling.clone(),
        max_input_length: i.max_input_tokens,
        max_batch_tokens: engine.max_batch_tokens,
        max_batch_requests: engine.max_batch,
        max_client_batch_size: c.max_client_batch_size,
        max_concurrent_requests: c.max_concurrent_requests,
        auto_truncate: c.auto_truncate,
        device: i.device.clone(),
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// 200 when a one-token probe comes back through the engine (or the queue is merely full),
/// with status `degraded: …` while some of its devices have failed; 503 when shutting down,
/// when every device has failed, or when the engine fails or does not answer within 10 s.
#[utoipa::path(get, path = "/health", responses((status = 200, body = Health), (status = 503, body = Health)))]
async fn health(State(state): State<Shared>) -> Response {
    let service = &*state.service;
    let info = service.info();
    let failed = |devices: &[DeviceStats]| devices.iter().filter(|d| !d.healthy()).count();
    let before = service.devices();
    let status = if state.stopping.load(std::sync::atomic::Ordering::Relaxed) {
        Err("shutting down".to_owned())
    } else if !before.is_empty() && failed(&before) == before.len() {
        // No probe: the engine refuses every request now.
        Err(format!("every device has failed: {}", failures(&before)))
    } else {
        match probe(service).await {
            // A device that failed under the probe is out now: ask the others.
            Err(_) if failed(&service.devices()) > failed(&before) => probe(service).await,
            status => status,
        }
    };
    let devices = service.devices();
    let (stats, queue) = service.load();
    let status = match status {
        Ok(status) if failed(&devices) == 0 => Ok(status.to_owned()),
        Ok(status) if failed(&devices) < devices.len() => {
            let busy = if status == "busy" { " (busy)" } else { "" };
            Ok(format!("degraded{busy}: {}", failures(&devices)))
        }
        Ok(_) => Err(format!("every device has failed: {}", failures(&devices))),
        Err(why) => Err(why),
    };
    let code = if status.is_ok() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let status = status.unwrap_or_else(|why| why);
    let devices = devices
        .into_iter()
        .map(|d| DeviceHealth {
            healthy: d.healthy(),
            requests: d.stats.requests,
            running: d.stats.running,
            failure: d.failure,
            device: d.device,
        })
        .collect();
    let health =
        Health { status, model: info.id.clone(), queue, embedded: stats.requests, devices };
    (code, Json(health)).into_response()
}

/// A one-token text through the engine: `ok` when it comes back within 10 s, `busy` when the
/// queue is full, else why not.
async fn probe(service: &dyn EmbedService) -> Result<&'static str, String> {
    match service.encode("", Side::Right).and_then(|(e, _)| service.submit(e)) {
        Ok(probe) => match tokio::time::timeout(std::time::Duration::from_secs(10), probe).await {
            Ok(Ok(_)) => Ok("ok"),
            Ok(Err(e)) => Err(format!("the engine failed a probe: {e}")),
            Err(_) => Err("the engine did not answer a probe within 10 s".to_owned()),
        },
        Err(EmbedError::Overloaded(_)) => Ok("busy"),
        Err(e) => Err(format!("the engine refused a probe: {e}")),
    }
}

/// The failed devices and why: `cuda:1 failed: …; cuda:2 failed: …`.
fn failures(devices: &[DeviceStats]) -> String {
    let failed = devices
        .iter()
        .filter_map(|d| Some(format!("{} failed: {}", d.device, d.failure.as_ref()?)));
    failed.collect::<Vec<_>>().join("; ")
}

/// Prometheus text format.
#[utoipa::path(get, path = "/metrics", responses((status = 200, content_type = "text/plain")))]
async fn metrics(State(state): State<Shared>) -> Response {
    let (stats, queue) = state.service.load();
    let text = state.metrics.render(stats, queue, &state.service.devices());
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text)
        .into_response()
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

const ROUTES: &str = "POST /v1/embeddings, POST /embed, POST /tokenize, GET /info, GET /health, \
                      GET /metrics, GET /openapi.json";

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        Dialect::OpenAi,
        format!("no such route (routes: {ROUTES})"),
    )
}

async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        Dialect::OpenAi,
        format!("method {method} is not taken here (routes: {ROUTES})"),
    )
}

/// The API key, when the server has one: every route but `/health` and `/metrics` wants
/// `Authorization: Bearer <key>`, compared in constant time.
async fn authorize(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let Some(key) = state.config.api_key.as_deref() else { return next.run(request).await };
    let path = request.uri().path();
    if path == "/health" || path == "/metrics" {
        return next.run(request).await;
    }
    if bearer_matches(request.headers(), key) {
        return next.run(request).await;
    }
    let dialect =
        if path == "/embed" || path == "/tokenize" { Dialect::Tei } else { Dialect::OpenAi };
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        dialect,
        "missing or wrong API key (Authorization: Bearer <key>)",
    )
    .into_response()
}

fn bearer_matches(headers: &HeaderMap, key: &str) -> bool {
    use subtle::ConstantTimeEq;
    let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let token = given.and_then(|v| v.strip_prefix("Bearer ")).unwrap_or("");
    // Lengths differ: not equal (the key's length is not secret worth hiding).
    token.len() == key.len() && bool::from(token.as_bytes().ct_eq(key.as_bytes()))
}

/// Counts the request by route and status, times it, and logs one line (debug; warn for 5xx).
async fn observe(State(state): State<Shared>, request: Request<Body>, next: Next) -> Response {
    let start = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "other".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().clone();
    let response = next.run(request).await;
    let (status, seconds) = (response.status().as_u16(), start.elapsed().as_secs_f64());
    state.metrics.request(&route, status, seconds);
    if status >= 500 {
        tracing::warn!(%method, route, status, ms = seconds * 1e3, "request failed");
    } else {
        tracing::debug!(%method, route, status, ms = seconds * 1e3, "request");
    }
    response
}
