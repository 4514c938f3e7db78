//! The server in front of the real engine and MiniLM on the CPU backend: 8 clients at once, each
//! answer equal to the model's own result for each text alone (MiniLM truncates long texts, so
//! it refuses none; the error answers are tested with a stand-in in http.rs).

mod common;

use std::sync::Arc;

use common::*;
use streampool_core::{Device, PoolConfig};
use streampool_cpu::CpuBackend;
use streampool_engine::{Engine, EngineConfig, MiniLmBatches};
use streampool_models::graph::ExecMode;
use streampool_models::loading::fetch::ensure_default_model;
use streampool_models::MiniLm;
use streampool_server::{EngineEmbedder, Server, ServerConfig};

const TEXTS: [&str; 6] = [
    "A man is eating food.",
    "The new movie is awesome.",
    "",
    "Streams, leases and events: one GPU stream per caller.",
    "A woman is playing violin.",
    "Two men pushed carts through the woods.",
];

#[test]
fn eight_clients_get_what_the_model_gives_each_text_alone() {
    let device = Device::new(CpuBackend::new(), PoolConfig::with_capacity(8));
    let files = ensure_default_model(&mut |_| {}).expect("the model (streampool fetch-model)");
    let model = Arc::new(MiniLm::load(&device, &files).unwrap());
    let alone: Vec<Vec<f32>> = {
        let lease = device.acquire().unwrap();
        TEXTS.iter().map(|t| model.embed(lease.stream(), &[t]).unwrap().remove(0)).collect()
    };
    let batches = Arc::new(MiniLmBatches::new(model, ExecMode::Eager));
    let engine = Engine::start(batches, EngineConfig::default().workers(2)).unwrap();
    let embedder = Arc::new(EngineEmbedder::new(engine, "all-MiniLM-L6-v2"));
    let server = Server::start("127.0.0.1:0", embedder, ServerConfig::default()).unwrap();
    std::thread::scope(|s| {
        for c in 0..8 {
            let (addr, alone) = (server.addr(), &alone);
            s.spawn(move || {
                for k in 0..3 {
                    // 1 to 3 texts, starting at a different one per client and round.
                    let picked: Vec<usize> =
                        (0..1 + (c + k) % 3).map(|j| (c + 2 * k + j) % TEXTS.len()).collect();
                    let texts: Vec<&str> = picked.iter().map(|&i| TEXTS[i]).collect();
                    let answer = embed(addr, &texts);
                    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
                    let json = json(&answer);
                    assert_eq!(json["dim"], 384);
                    let got: Vec<Vec<f32>> =
                        serde_json::from_value(json["embeddings"].clone()).unwrap();
                    for (g, &i) in got.iter().zip(&picked) {
                        let diff = g
                            .iter()
                            .zip(&alone[i])
                            .map(|(a, b)| (a - b).abs())
                            .fold(0f32, f32::max);
                        assert!(diff <= 1e-5, "client {c} round {k} text {i}: {diff}");
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
