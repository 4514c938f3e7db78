//! The server in front of the real engine and MiniLM on the CPU backend: 8 clients at once, every
//! embedding within 1e-5 of sentence-transformers' (the fixture), whatever batch it ran in
//! (MiniLM truncates long texts, so it refuses none; the error answers are tested with a
//! stand-in in http.rs).

mod common;

use std::sync::Arc;

use common::*;
use streampool_core::{Device, PoolConfig};
use streampool_cpu::CpuBackend;
use streampool_engine::{Engine, EngineConfig, MiniLmBatches};
use streampool_models::graph::ExecMode;
use streampool_models::{testing, MiniLm};
use streampool_server::{EngineEmbedder, Server, ServerConfig};

/// The sentence-transformers fixture: (text, f64 embedding) for its first cases.
fn fixture(n: usize) -> Vec<(String, Vec<f64>)> {
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

#[test]
fn eight_clients_get_the_fixture_embeddings() {
    // Skipped (and says so) where the model cannot be downloaded, outside CI.
    let Some(files) = testing::default_model() else { return };
    let cases = fixture(6);
    let device = Device::new(CpuBackend::new(), PoolConfig::with_capacity(8));
    let model = Arc::new(MiniLm::load(&device, files).unwrap());
    let batches = Arc::new(MiniLmBatches::new(model, ExecMode::Eager));
    let engine = Engine::start(batches, EngineConfig::default().workers(2)).unwrap();
    let embedder = Arc::new(EngineEmbedder::new(engine, "all-MiniLM-L6-v2"));
    let server = Server::start("127.0.0.1:0", embedder, ServerConfig::default()).unwrap();
    std::thread::scope(|s| {
        for c in 0..8 {
            let (addr, cases) = (server.addr(), &cases);
            s.spawn(move || {
                for k in 0..3 {
                    // 1 to 3 texts, starting at a different one per client and round.
                    let picked: Vec<usize> =
                        (0..1 + (c + k) % 3).map(|j| (c + 2 * k + j) % cases.len()).collect();
                    let texts: Vec<&str> = picked.iter().map(|&i| cases[i].0.as_str()).collect();
                    let answer = embed(addr, &texts);
                    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
                    let json = json(&answer);
                    assert_eq!(json["dim"], 384);
                    let got: Vec<Vec<f32>> =
                        serde_json::from_value(json["embeddings"].clone()).unwrap();
                    for (g, &i) in got.iter().zip(&picked) {
                        let diff = g
                            .iter()
                            .zip(&cases[i].1)
                            .map(|(a, b)| (f64::from(*a) - b).abs())
                            .fold(0.0, f64::max);
                        assert!(diff <= 1e-5, "client {c} round {k} case {i}: {diff}");
                    }
                }
            });
        }
    });
    let health = json(&request(server.addr(), "GET", "/health", b""));
    assert_eq!(health["model"], "all-MiniLM-L6-v2");
    assert!(health["device"].as_str().unwrap().starts_with("cpu"), "{health}");
    assert_eq!(request(server.addr(), "POST", "/embed", b"[]").status, 400);
}
