//! The listener: accepts connections under a limit (accept errors back off and recover, so a
//! file-descriptor shortage never ends the loop), serves each with hyper (HTTP/1.1 and HTTP/2,
//! head and idle timeouts, a bounded head), and shuts down gracefully.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::metrics::Metrics;
use crate::routes::{router, AppState};
use crate::service::EmbedService;

/// The server's limits and settings. `ServerConfig::default()` then change fields.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Requests handled at once; more are answered 429 at once (default 512).
    pub max_concurrent_requests: usize,
    /// Inputs in one request at most (default 256).
    pub max_client_batch_size: usize,
    /// Request body bytes at most (default 2,000,000, as TEI's).
    pub max_body_bytes: usize,
    /// Bytes of a request's line and headers at most (default 64 KiB; at least 8 KiB).
    pub max_head_bytes: usize,
    /// A connection that has not sent a whole request head this long after it opened or after
    /// its last answer is closed: slow heads and idle keep-alive connections both (default 30 s).
    pub idle_timeout: Duration,
    /// A request whose body has not arrived this long after its head is answered 408
    /// (default 30 s).
    pub body_timeout: Duration,
    /// Connections open at once; more are closed at once (default 10,000).
    pub max_connections: usize,
    /// Truncate inputs too long for the model unless a request says `truncate: false`
    /// (default true).
    pub auto_truncate: bool,
    /// Bearer token every route but `/health` and `/metrics` requires (default none).
    pub api_key: Option<String>,
    /// Allow OpenAI's `dimensions` below the model's (a Matryoshka-trained model).
    pub matryoshka: bool,
    /// How long a shutdown waits for requests in flight (default 30 s).
    pub shutdown_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_concurrent_requests: 512,
            max_client_batch_size: 256,
            max_body_bytes: 2_000_000,
            max_head_bytes: 64 * 1024,
            idle_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(30),
            max_connections: 10_000,
            auto_truncate: true,
            api_key: None,
            matryoshka: false,
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Binding the address failed.
    #[error("listening on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The async runtime could not start.
    #[error("starting the runtime: {0}")]
    Runtime(std::io::Error),
}

/// Serve `service` on `listener` until `shutdown` completes; then stop accepting, let requests
/// in flight finish (at most `config.shutdown_timeout`), and return.
pub async fn serve(
    listener: TcpListener,
    service: Arc<dyn EmbedService>,
    metrics: Arc<Metrics>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) {
    let state = Arc::new(AppState::new(service, config.clone(), metrics.clone()));
    let app = router(state.clone());
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.idle_timeout)
        .max_buf_size(config.max_head_bytes.max(8192))
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(config.max_head_bytes.max(8192) as u32)
        .keep_alive_interval(Some(config.idle_timeout))
        .keep_alive_timeout(config.idle_timeout);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let connections = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let mut backoff = Duration::from_millis(5);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                backoff = Duration::from_millis(5);
                stream
            }
            Err(e) => {
                // Out of file descriptors (or a connection reset before it was taken): wait for
                // some to close, then go on accepting.
                tracing::warn!(error = %e, ?backoff, "accept failed; retrying");
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            metrics.connection_refused();
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (app, builder, watcher) = (app.clone(), builder.clone(), graceful.watcher());
        let idle = config.idle_timeout;
        tokio::spawn(async move {
            // The HTTP/1-or-2 detection waits for a first byte without a timer of its own: a
            // connection that sends nothing is closed after the idle timeout.
            let mut first = [0u8; 1];
            if !matches!(tokio::time::timeout(idle, stream.peek(&mut first)).await, Ok(Ok(1))) {
                drop(permit);
                return;
            }
            let service = TowerToHyperService::new(app);
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            // A connection's errors (a client gone, a malformed head, a timeout) end it alone.
            if let Err(e) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(error = %e, "connection ended");
            }
            drop(permit);
        });
    }
    drop(listener);
    state.stopping.store(true, Ordering::Relaxed);
    tracing::info!("shutting down: finishing the requests in flight");
    if tokio::time::timeout(config.shutdown_timeout, graceful.shutdown()).await.is_err() {
        tracing::warn!(timeout = ?config.shutdown_timeout, "requests still in flight at the shutdown timeout");
    }
}

/// A server running on its own thread and runtime (for tests and embedding in a program):
/// [`Server::stop`] shuts it down gracefully.
pub struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Bind `addr` (port 0: any free port) and serve `service` with `threads` runtime threads.
    pub fn start(
        addr: &str,
        service: Arc<dyn EmbedService>,
        metrics: Arc<Metrics>,
        config: ServerConfig,
        threads: usize,
    ) -> Result<Self, ServerError> {
        let bind = |source| ServerError::Bind { addr: addr.to_owned(), source };
        let std_listener = std::net::TcpListener::bind(addr).map_err(bind)?;
        std_listener.set_nonblocking(true).map_err(bind)?;
        let local = std_listener.local_addr().map_err(bind)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("streampool-http")
            .enable_all()
            .build()
            .map_err(ServerError::Runtime)?;
        let listener = {
            let _guard = runtime.enter();
            TcpListener::from_std(std_listener).map_err(bind)?
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("streampool-server".into())
            .spawn(move || {
                runtime.block_on(serve(listener, service, metrics, config, async {
                    let _ = stopped.await;
                }));
            })
            .map_err(ServerError::Runtime)?;
        Ok(Self { addr: local, stop: Some(stop), thread: Some(thread) })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop accepting, finish the requests in flight, and return once the port is free.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}
