//! `streampool serve`: all-MiniLM-L6-v2 embeddings over HTTP (`POST /embed`, `GET /health`),
//! the requests of all connections batched by the engine onto its workers' streams.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use streampool_core::{Device, PoolConfig};
use streampool_engine::{Engine, EngineConfig, MiniLmBatches};
use streampool_models::graph::ExecMode;
use streampool_models::loading;
use streampool_models::{MiniLm, Precision};
use streampool_server::{EngineEmbedder, Server, ServerConfig};
use streampool_tensor::Ops;

use crate::device::{with_device, DeviceChoice, OnDevice};

/// Options of `streampool serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0: any free port; the line printed at start says which).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Device to run on.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,
    /// Model directory (sentence-transformers layout: BERT, RoBERTa, XLM-RoBERTa, MPNet or
    /// Gemma-3 encoders, any pooling, Dense modules), the name of a model `fetch-model --list` shows
    /// (fetched on first use), or a Hugging Face Hub id ORG/NAME (downloaded into the Hub's
    /// cache where the Hub is reachable). Default: all-MiniLM-L6-v2.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Precision of weights and activations (tf32, f16, bf16: CUDA).
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    pub dtype: Precision,
    /// How the engine's batches run (graph: CUDA).
    #[arg(long, value_enum, default_value_t = ExecMode::Eager)]
    pub mode: ExecMode,
    /// Engine workers, each with its own stream.
    #[arg(long, default_value_t = 4)]
    pub workers: usize,
    /// Most requests (texts) per batch.
    #[arg(long, default_value_t = 64)]
    pub max_batch: usize,
    /// HTTP threads: the most requests in flight at once.
    #[arg(long, default_value_t = 64)]
    pub http_threads: usize,
    /// Most texts in one request.
    #[arg(long, default_value_t = 256)]
    pub max_texts: usize,
    /// The model's name in responses. Default: its directory's name.
    #[arg(long)]
    pub served_model_name: Option<String>,
}

struct Serve<'a> {
    args: &'a ServeArgs,
    files: &'a loading::ModelFiles,
}

impl OnDevice for Serve<'_> {
    type Output = ();

    fn run<B: Ops>(self, device: Device<B>) -> Result<(), Box<dyn std::error::Error>> {
        let args = self.args;
        let mode = args.mode;
        if !mode.supported_on::<B>() {
            return Err(format!(
                "--mode {mode}: needs --device cuda (a build with the cuda feature)"
            )
            .into());
        }
        let model = Arc::new(MiniLm::load_with(&device, self.files, args.dtype)?);
        let name = args.served_model_name.clone().unwrap_or_else(|| model.name().to_owned());
        let batches = Arc::new(MiniLmBatches::new(model, mode));
        let config = EngineConfig::default()
            .workers(args.workers)
            .max_batch(args.max_batch)
            .spin(Duration::from_millis(1));
        let engine = Engine::start(batches, config)?;
        let embedder = Arc::new(EngineEmbedder::new(engine, &name));
        let device_name = streampool_server::Embedder::device(&*embedder);
        let config = ServerConfig {
            http_threads: args.http_threads,
            max_texts: args.max_texts,
            ..ServerConfig::default()
        };
        let server = Server::start(args.addr.as_str(), embedder, config)?;
        // The first line of stdout names the address (tests and scripts read it).
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "listening on http://{} ({device_name}, {mode}, {})",
            server.addr(),
            args.dtype
        )?;
        out.flush()?;
        drop(out);
        server.wait();
        Ok(())
    }
}

/// Run `streampool serve` until the process is stopped.
pub fn run(args: &ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
    let files = crate::fetch::resolve(args.model.as_deref(), false)?;
    let pool = PoolConfig::with_capacity(args.workers.max(1));
    with_device(args.device, pool, Serve { args, files: &files })
}
