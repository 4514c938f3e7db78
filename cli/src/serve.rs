//! `streampool serve`: a model's embeddings over HTTP (OpenAI's and TEI's APIs), the texts of
//! all connections batched by the engine onto its workers' streams. Every flag can also come
//! from an environment variable (`STREAMPOOL_<FLAG>`); SIGTERM or Ctrl-C stop it gracefully.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use streampool_core::{Device, PoolConfig};
use streampool_engine::{EngineConfig, MiniLmBatches};
use streampool_models::graph::ExecMode;
use streampool_models::loading;
use streampool_models::Precision;
use streampool_server::{EngineService, Metrics, ServerConfig};
use streampool_tensor::Ops;

use crate::device::{load_copies, with_device, DeviceChoice, OnDevice};

/// Options of `streampool serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0: any free port; the line printed at start says which).
    #[arg(long, env = "STREAMPOOL_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Devices to run on: auto, cpu, cuda, cuda:1, metal; several share the requests:
    /// cuda:0,2, cuda:all (cpu:0,1 for testing).
    #[arg(long, env = "STREAMPOOL_DEVICE", default_value = "auto")]
    pub device: DeviceChoice,
    /// Model directory (sentence-transformers layout: BERT, RoBERTa, XLM-RoBERTa, MPNet or
    /// Gemma-3 encoders, any pooling, Dense modules), the name of a model `fetch-model --list` shows
    /// (fetched on first use), or a Hugging Face Hub id ORG/NAME (downloaded into the Hub's
    /// cache where the Hub is reachable). Default: all-MiniLM-L6-v2.
    #[arg(long, env = "STREAMPOOL_MODEL")]
    pub model: Option<PathBuf>,
    /// The model's name in answers. Default: its directory's name.
    #[arg(long, env = "STREAMPOOL_SERVED_MODEL_NAME")]
    pub served_model_name: Option<String>,
    /// Precision of weights and activations (tf32, f16, bf16: CUDA).
    #[arg(long, env = "STREAMPOOL_DTYPE", value_enum, default_value_t = Precision::F32)]
    pub dtype: Precision,
    /// How the engine's batches run (graph: CUDA).
    #[arg(long, env = "STREAMPOOL_MODE", value_enum, default_value_t = ExecMode::Eager)]
    pub mode: ExecMode,
    /// Engine workers, each with its own stream (1 to 256).
    #[arg(long, env = "STREAMPOOL_WORKERS", default_value_t = 4, value_parser = within(1, 256))]
    pub workers: usize,
    /// Texts per engine batch at most.
    #[arg(long, env = "STREAMPOOL_MAX_BATCH", default_value_t = 64)]
    pub max_batch: usize,
    /// Padded tokens per engine batch at most (rows × the longest text's tokens). Default: 16384
    /// on CUDA; 256 on the CPU, where a batch saves little and padding costs what tokens cost.
    #[arg(long, env = "STREAMPOOL_MAX_BATCH_TOKENS")]
    pub max_batch_tokens: Option<usize>,
    /// Microseconds a worker that has texts waits for more before running them (0: it runs what
    /// has queued at once). Under load a short wait makes larger batches, fewer of them.
    #[arg(long, env = "STREAMPOOL_MAX_WAIT_US", default_value_t = 0)]
    pub max_wait_us: u64,
    /// Texts the engine's queue holds; a request finding it full is answered 429 at once.
    #[arg(long, env = "STREAMPOOL_QUEUE_CAPACITY", default_value_t = 4096)]
    pub queue_capacity: usize,
    /// Requests handled at once; more are answered 429 with Retry-After at once.
    #[arg(long, env = "STREAMPOOL_MAX_CONCURRENT_REQUESTS", default_value_t = 512)]
    pub max_concurrent_requests: usize,
    /// Inputs in one request at most (413 above).
    #[arg(
        long,
        alias = "max-texts",
        env = "STREAMPOOL_MAX_CLIENT_BATCH_SIZE",
        default_value_t = 256
    )]
    pub max_client_batch_size: usize,
    /// Request body bytes at most (413 above).
    #[arg(long, env = "STREAMPOOL_MAX_BODY_BYTES", default_value_t = 2_000_000)]
    pub max_body_bytes: usize,
    /// Bytes of a request's line and headers at most (at least 8192; 431 above).
    #[arg(long, env = "STREAMPOOL_MAX_HEAD_BYTES", default_value_t = 65536)]
    pub max_head_bytes: usize,
    /// Seconds a connection may take to send a request's head, counted from its opening or its
    /// last answer: slow and idle keep-alive connections are closed after it.
    #[arg(long, env = "STREAMPOOL_IDLE_TIMEOUT", default_value_t = 30.0)]
    pub idle_timeout: f64,
    /// Seconds a request's body may take to arrive (408 after).
    #[arg(long, env = "STREAMPOOL_BODY_TIMEOUT", default_value_t = 30.0)]
    pub body_timeout: f64,
    /// Connections open at once; more are closed at once.
    #[arg(long, env = "STREAMPOOL_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,
    /// Refuse (413) texts longer than the model reads unless a request asks to truncate
    /// (default: truncate unless a request says `truncate: false`).
    #[arg(long, env = "STREAMPOOL_NO_AUTO_TRUNCATE")]
    pub no_auto_truncate: bool,
    /// Bearer token every route but /health and /metrics requires.
    #[arg(long, env = "STREAMPOOL_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Allow OpenAI's `dimensions` below the model's (truncate, then re-normalise): for models
    /// trained as Matryoshka embeddings (EmbeddingGemma: 512, 256, 128).
    #[arg(long, env = "STREAMPOOL_MATRYOSHKA")]
    pub matryoshka: bool,
    /// Seconds a shutdown (SIGTERM, Ctrl-C) waits for requests in flight.
    #[arg(long, env = "STREAMPOOL_SHUTDOWN_TIMEOUT", default_value_t = 30.0)]
    pub shutdown_timeout: f64,
    /// Threads of the HTTP runtime (default: one per core; at most 1024).
    #[arg(long, env = "STREAMPOOL_HTTP_THREADS", value_parser = within(1, 1024))]
    pub http_threads: Option<usize>,
    /// Log lines as JSON objects (default: text).
    #[arg(long, env = "STREAMPOOL_JSON_LOGS")]
    pub json_logs: bool,
    /// Log filter (tracing's syntax: `info`, `debug` for a line per request,
    /// `streampool_server=debug,warn`).
    #[arg(long, env = "STREAMPOOL_LOG", default_value = "info")]
    pub log: String,
}

/// A parser of whole numbers from `low` to `high`: a count that would start that many threads
/// is refused here rather than found out by the system.
fn within(low: usize, high: usize) -> impl Fn(&str) -> Result<usize, String> + Clone {
    move |s: &str| match s.parse::<usize>() {
        Ok(n) if (low..=high).contains(&n) => Ok(n),
        _ => Err(format!("give a whole number from {low} to {high}")),
    }
}

struct Serve<'a> {
    args: &'a ServeArgs,
    files: &'a loading::ModelFiles,
}

fn seconds(flag: &str, value: f64) -> Result<Duration, Box<dyn std::error::Error>> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("--{flag} {value}: give a positive number of seconds").into())
}

impl OnDevice for Serve<'_> {
    type Output = ();

    fn run<B: Ops>(self, device: Device<B>) -> Result<(), Box<dyn std::error::Error>> {
        self.run_on(vec![device])
    }

    /// One copy of the model per device, each with `--workers` workers; every device's workers
    /// take from the one queue.
    fn run_on<B: Ops>(self, devices: Vec<Device<B>>) -> Result<(), Box<dyn std::error::Error>> {
        let args = self.args;
        let mode = args.mode;
        if !mode.supported_on::<B>() {
            return Err(format!(
                "--mode {mode}: needs --device cuda (a build with the cuda feature)"
            )
            .into());
        }
        let on_cpu = devices[0].backend().kind() == "cpu";
        let max_batch_tokens =
            args.max_batch_tokens.unwrap_or(if on_cpu { 256 } else { 16384 }).max(1);
        let config = ServerConfig {
            max_concurrent_requests: args.max_concurrent_requests.max(1),
            max_client_batch_size: args.max_client_batch_size.max(1),
            max_body_bytes: args.max_body_bytes.max(1),
            max_head_bytes: args.max_head_bytes.max(8192),
            idle_timeout: seconds("idle-timeout", args.idle_timeout)?,
            body_timeout: seconds("body-timeout", args.body_timeout)?,
            max_connections: args.max_connections.max(1),
            auto_truncate: !args.no_auto_truncate,
            api_key: args.api_key.clone().filter(|k| !k.is_empty()),
            matryoshka: args.matryoshka,
            shutdown_timeout: seconds("shutdown-timeout", args.shutdown_timeout)?,
        };
        let models = load_copies(&devices, self.files, args.dtype)?;
        let name = args.served_model_name.clone().unwrap_or_else(|| models[0].name().to_owned());
        let copies: Vec<MiniLmBatches<B>> =
            models.into_iter().map(|m| MiniLmBatches::new(m, mode)).collect();
        let engine = EngineConfig::default()
            .workers(args.workers)
            .max_batch(args.max_batch)
            .max_batch_tokens(max_batch_tokens)
            .queue_capacity(args.queue_capacity)
            .max_wait(Duration::from_micros(args.max_wait_us))
            .spin(Duration::from_millis(1));
        let metrics = Arc::new(Metrics::new());
        let service = Arc::new(EngineService::start_on(copies, &name, engine, metrics.clone())?);
        let threads = args.http_threads.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(4, std::num::NonZeroUsize::get)
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("streampool-http")
            .enable_all()
            .build()?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(&args.addr))
            .map_err(|e| format!("listening on {}: {e}", args.addr))?;
        let info = streampool_server::EmbedService::info(&*service).clone();
        // The first line of stdout names the address (tests and scripts read it).
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "listening on http://{} ({name}, {}, {mode}, {})",
            listener.local_addr()?,
            info.device,
            args.dtype
        )?;
        out.flush()?;
        drop(out);
        let dyn_service: Arc<dyn streampool_server::EmbedService> = service.clone();
        runtime.block_on(streampool_server::serve(
            listener,
            dyn_service,
            metrics,
            config,
            stop_signal(),
        ));
        // Every request answered; dropping the engine runs what is still queued (nothing, once
        // the requests are done) and joins its workers.
        drop(service);
        tracing::info!("stopped");
        Ok(())
    }
}

/// SIGTERM or Ctrl-C (SIGINT).
async fn stop_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("stop signal received");
}

/// Logs to stderr through `tracing`: text or JSON, filtered by `filter`.
fn init_logs(json: bool, filter: &str) -> Result<(), Box<dyn std::error::Error>> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .map_err(|e| format!("--log {filter:?}: {e}"))?;
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let result = if json { builder.json().try_init() } else { builder.try_init() };
    result.map_err(|e| format!("starting the logs: {e}").into())
}

/// Run `streampool serve` until SIGTERM or Ctrl-C.
pub fn run(args: &ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
    init_logs(args.json_logs, &args.log)?;
    let files = crate::fetch::resolve(args.model.as_deref(), false)?;
    let pool = PoolConfig::with_capacity(args.workers.max(1));
    with_device(args.device.clone(), pool, Serve { args, files: &files })
}
