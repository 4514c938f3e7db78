//! A server in front of the real engine on the CPU backend, and the tests' client calls.
#![allow(dead_code)] // each test binary uses a different subset

use std::net::SocketAddr;
use std::sync::Arc;

use streampool_core::{Device, PoolConfig};
use streampool_cpu::CpuBackend;
use streampool_engine::{EngineConfig, MiniLmBatches};
use streampool_models::graph::ExecMode;
use streampool_models::loading::{locate_model, ModelFiles};
use streampool_models::{testing, MiniLm};
use streampool_server::{EngineService, Metrics, Server, ServerConfig};

#[allow(unused_imports)]
pub use streampool_server::client::{request, request_with, Answer};

/// all-MiniLM-L6-v2 (downloaded once; `None`, after a `SKIPPED` line, where it cannot be
/// outside CI).
pub fn minilm() -> Option<&'static ModelFiles> {
    testing::default_model()
}

/// A tiny BERT of the repository's fixtures (random weights, mean pooling, 64 tokens at most).
pub fn tiny() -> ModelFiles {
    locate_model(&testing::tiny_models_dir().join("bert-mean")).unwrap()
}

/// A server of `files` on the CPU with `workers` engine workers and `engine` settings.
pub fn serve(files: &ModelFiles, config: ServerConfig, engine: EngineConfig) -> Server {
    let device = Device::new(CpuBackend::new(), PoolConfig::with_capacity(engine.workers));
    let model = Arc::new(MiniLm::load(&device, files).unwrap());
    let name = model.name().to_owned();
    let metrics = Arc::new(Metrics::new());
    let batches = MiniLmBatches::new(model, ExecMode::Eager);
    let service = EngineService::start(batches, &name, engine, metrics.clone()).unwrap();
    Server::start("127.0.0.1:0", Arc::new(service), metrics, config, 4).unwrap()
}

/// The answer's body as JSON (panics, with the body, when it is not).
pub fn json(answer: &Answer) -> serde_json::Value {
    answer.json().unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&answer.body)))
}

/// `POST path` with `body`.
pub fn post(addr: SocketAddr, path: &str, body: &serde_json::Value) -> Answer {
    request(addr, "POST", path, body.to_string().as_bytes()).unwrap()
}

/// The sentence-transformers fixture: (text, f64 embedding) for its first `n` cases.
pub fn fixture(n: usize) -> Vec<(String, Vec<f64>)> {
    let path = testing::reference_fixture_path();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases = json["cases"].as_array().unwrap().iter().take(n);
    cases
        .map(|c| {
            let e = c["embedding"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap());
            (c["text"].as_str().unwrap().to_string(), e.collect())
        })
        .collect()
}

/// Cosine similarity.
pub fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

/// A JSON array of numbers as f64s.
pub fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

/// Resident memory of this process, in MiB.
pub fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}
