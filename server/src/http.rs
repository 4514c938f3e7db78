//! The HTTP/1.1 server: a pool of threads taking requests from one listener (connections kept
//! alive), each answering its request by calling the shared [`Embedder`] and blocking until the
//! results are in, so up to `http_threads` requests are in flight at once for the engine to batch.

use std::io::Read;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use tiny_http::{Header, Method, Request, Response};

use crate::api::{ApiError, EmbedRequest, EmbedResponse, Health};
use crate::embedder::{EmbedError, Embedder};

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Threads answering requests: the most requests in flight at once. Default 64.
    pub http_threads: usize,
    /// Largest request body taken (413 past it). Default 4 MiB.
    pub max_body_bytes: usize,
    /// Most texts in one request (400 past it). Default 256.
    pub max_texts: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self { http_threads: 64, max_body_bytes: 4 << 20, max_texts: 256 }
    }
}

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The address could not be listened on.
    #[error("cannot listen on {addr}: {message}")]
    Bind {
        /// What was asked for.
        addr: String,
        /// The system's reason.
        message: String,
    },
    /// The configuration makes no sense (no threads, say).
    #[error("invalid server configuration: {0}")]
    Config(String),
}

/// What every HTTP thread shares.
struct Shared {
    http: tiny_http::Server,
    embedder: Arc<dyn Embedder>,
    config: ServerConfig,
    /// Set by `stop`; threads leave when their `recv` is unblocked.
    stopping: AtomicBool,
    /// Answers sent, and of those errors (Relaxed: statistics).
    requests: AtomicU64,
    errors: AtomicU64,
}

/// A running server. Dropping it (or [`Server::stop`]) stops taking requests, lets the requests
/// in flight finish and joins the threads.
///
/// ```no_run
/// use std::sync::Arc;
/// use streampool_core::{Device, PoolConfig};
/// use streampool_cpu::CpuBackend;
/// use streampool_engine::{Engine, EngineConfig, MiniLmBatches};
/// use streampool_models::{graph::ExecMode, MiniLm};
/// use streampool_server::{EngineEmbedder, Server, ServerConfig};
///
/// let device = Device::new(CpuBackend::new(), PoolConfig::default());
/// let model = Arc::new(MiniLm::load_default(&device)?);
/// let batches = Arc::new(MiniLmBatches::new(model, ExecMode::Eager));
/// let engine = Engine::start(batches, EngineConfig::default())?;
/// let embedder = Arc::new(EngineEmbedder::new(engine, "all-MiniLM-L6-v2"));
/// let server = Server::start("127.0.0.1:8080", embedder, ServerConfig::default())?;
/// println!("listening on http://{}", server.addr());
/// server.wait(); // until the process is stopped
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Server {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    addr: SocketAddr,
}

impl Server {
    /// Listen on `addr` (port 0: any free port, see [`Server::addr`]) and start answering.
    pub fn start(
        addr: impl ToSocketAddrs + std::fmt::Debug,
        embedder: Arc<dyn Embedder>,
        config: ServerConfig,
    ) -> Result<Self, ServerError> {
        if config.http_threads == 0 || config.max_texts == 0 {
            return Err(ServerError::Config(
                "http_threads and max_texts must be at least 1".into(),
            ));
        }
        let shown = format!("{addr:?}");
        let bind = |message: String| ServerError::Bind { addr: shown.clone(), message };
        let http = tiny_http::Server::http(addr).map_err(|e| bind(e.to_string()))?;
        let addr = http.server_addr().to_ip().ok_or_else(|| bind("not an IP address".into()))?;
        let shared = Arc::new(Shared {
            http,
            embedder,
            config,
            stopping: AtomicBool::new(false),
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        });
        let threads = (0..shared.config.http_threads)
            .map(|i| {
                let shared = shared.clone();
                std::thread::Builder::new()
                    .name(format!("http-{i}"))
                    .spawn(move || serve(&shared))
                    .map_err(|e| ServerError::Config(format!("spawning HTTP threads: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { shared, threads, addr })
    }

    /// The address listened on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Requests answered so far, and how many of them with an error status.
    pub fn counts(&self) -> (u64, u64) {
        let s = &self.shared;
        (s.requests.load(Ordering::Relaxed), s.errors.load(Ordering::Relaxed))
    }

    /// Block until the server stops (it does not stop by itself: run it until the process is
    /// ended).
    pub fn wait(mut self) {
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }

    /// Stop taking requests, finish those in flight, join the threads. The listening socket is
    /// closed by the listener's own thread just after (within a few hundred milliseconds).
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Each unblock wakes one thread waiting in `recv`; one per thread reaches them all.
        for _ in &self.threads {
            self.shared.http.unblock();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// One HTTP thread: take requests until the server stops.
fn serve(shared: &Shared) {
    loop {
        match shared.http.recv() {
            Ok(request) => answer(shared, request),
            Err(_) if shared.stopping.load(Ordering::SeqCst) => return,
            // A connection that failed before its request was read: nothing to answer.
            Err(_) => continue,
        }
    }
}

fn answer(shared: &Shared, mut request: Request) {
    let result = route(shared, &mut request);
    let json = Header::from_bytes("Content-Type", "application/json").expect("a valid header");
    let response = match result {
        Ok(body) => Response::from_data(body).with_header(json),
        Err(e) => {
            shared.errors.fetch_add(1, Ordering::Relaxed);
            let mut r = Response::from_data(e.body()).with_status_code(e.status).with_header(json);
            if let Some(allow) = e.allow {
                r = r.with_header(Header::from_bytes("Allow", allow).expect("a valid header"));
            }
            r
        }
    };
    shared.requests.fetch_add(1, Ordering::Relaxed);
    // A client that went away gets nothing; the server goes on.
    let _ = request.respond(response);
}

fn route(shared: &Shared, request: &mut Request) -> Result<Vec<u8>, ApiError> {
    let path = request.url().split('?').next().unwrap_or("").to_string();
    match (request.method(), path.as_str()) {
        (Method::Post, "/embed") => embed(shared, request),
        (Method::Get, "/health") => health(shared),
        (m, "/embed") => Err(ApiError::method_not_allowed(m.as_str(), &path, "POST")),
        (m, "/health") => Err(ApiError::method_not_allowed(m.as_str(), &path, "GET")),
        _ => Err(ApiError::not_found(&path)),
    }
}

fn embed(shared: &Shared, request: &mut Request) -> Result<Vec<u8>, ApiError> {
    let limit = shared.config.max_body_bytes;
    if request.body_length().is_some_and(|n| n > limit) {
        return Err(ApiError::too_large(limit));
    }
    let mut body = Vec::new();
    request
        .as_reader()
        .take(limit as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| ApiError::bad_request(format!("reading the body: {e}")))?;
    if body.len() > limit {
        return Err(ApiError::too_large(limit));
    }
    let parsed: EmbedRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!("expected {{\"texts\": [\"...\", ...]}}: {e}"))
    })?;
    let (n, max) = (parsed.texts.len(), shared.config.max_texts);
    if n == 0 {
        return Err(ApiError::bad_request("texts is empty"));
    }
    if n > max {
        return Err(ApiError::bad_request(format!("{n} texts; at most {max} per request")));
    }
    let embeddings = shared.embedder.embed(&parsed.texts)?;
    let (model, dim) = (shared.embedder.model(), shared.embedder.dim());
    let response = EmbedResponse { model, dim, embeddings };
    serde_json::to_vec(&response).map_err(|e| EmbedError::Failed(e.to_string()).into())
}

fn health(shared: &Shared) -> Result<Vec<u8>, ApiError> {
    let e = &shared.embedder;
    let health = Health {
        status: "ok",
        model: e.model(),
        dim: e.dim(),
        device: e.device(),
        requests: shared.requests.load(Ordering::Relaxed),
        errors: shared.errors.load(Ordering::Relaxed),
    };
    Ok(serde_json::to_vec(&health).expect("plain data serialises"))
}
