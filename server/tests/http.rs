//! The HTTP server with a stand-in embedder: answers in request order, 64 clients at once each
//! getting its own results, every error status with a JSON body (a bad request never affects
//! others), `/health`, and a clean stop.

mod common;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier};

use common::*;
use streampool_server::{Server, ServerConfig, ServerError};

fn start(config: ServerConfig) -> (Server, Arc<StandIn>) {
    let embedder = Arc::new(StandIn::default());
    let server = Server::start("127.0.0.1:0", embedder.clone(), config).unwrap();
    (server, embedder)
}

fn embeddings(answer: &Answer) -> Vec<Vec<f32>> {
    serde_json::from_value(json(answer)["embeddings"].clone()).unwrap()
}

#[test]
fn embeds_in_request_order() {
    let (server, _) = start(ServerConfig::default());
    let texts = ["first", "", "a third text", "ünïcödé"];
    let answer = embed(server.addr(), &texts);
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let json = json(&answer);
    assert_eq!(json["model"], "stand-in");
    assert_eq!(json["dim"], 4);
    let want: Vec<Vec<f32>> = texts.iter().map(|t| stand_in_embedding(t)).collect();
    assert_eq!(embeddings(&answer), want);
}

#[test]
fn sixty_four_clients_at_once_each_get_their_own_results() {
    let (server, embedder) = start(ServerConfig::default());
    let (clients, rounds) = (64, 20);
    let barrier = Barrier::new(clients);
    std::thread::scope(|scope| {
        for c in 0..clients {
            let (addr, barrier) = (server.addr(), &barrier);
            scope.spawn(move || {
                barrier.wait();
                for r in 0..rounds {
                    let texts: Vec<String> = (0..1 + (c + r) % 3)
                        .map(|i| format!("client {c} round {r} text {i}"))
                        .collect();
                    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                    let answer = embed(addr, &refs);
                    assert_eq!(answer.status, 200);
                    let want: Vec<Vec<f32>> = refs.iter().map(|t| stand_in_embedding(t)).collect();
                    assert_eq!(embeddings(&answer), want, "client {c} round {r}");
                }
            });
        }
    });
    assert_eq!(embedder.calls.load(Ordering::Relaxed), clients * rounds);
    assert_eq!(server.counts(), ((clients * rounds) as u64, 0));
}

#[test]
fn errors_have_their_status_and_a_json_body() {
    let config = ServerConfig { max_body_bytes: 1000, max_texts: 3, ..ServerConfig::default() };
    let (server, embedder) = start(config);
    let addr = server.addr();
    let cases: Vec<(Answer, u16, &str)> = vec![
        (request(addr, "POST", "/embed", b"{not json"), 400, "invalid_request"),
        (request(addr, "POST", "/embed", br#"{"text": "x"}"#), 400, "invalid_request"),
        (request(addr, "POST", "/embed", br#"{"texts": "x"}"#), 400, "invalid_request"),
        (embed(addr, &[]), 400, "invalid_request"),
        (embed(addr, &["a", "b", "c", "d"]), 400, "invalid_request"),
        (embed(addr, &["fine", "bad one"]), 400, "invalid_request"),
        (request(addr, "POST", "/embed", &vec![b' '; 5000]), 413, "too_large"),
        (embed(addr, &["boom"]), 500, "failed"),
        (embed(addr, &["busy"]), 503, "overloaded"),
        (request(addr, "GET", "/embed", b""), 405, "method_not_allowed"),
        (request(addr, "POST", "/health", b""), 405, "method_not_allowed"),
        (request(addr, "GET", "/nowhere", b""), 404, "not_found"),
    ];
    for (i, (answer, status, kind)) in cases.iter().enumerate() {
        assert_eq!(answer.status, *status, "case {i}: {}", String::from_utf8_lossy(&answer.body));
        let json = json(answer);
        assert_eq!(json["error"]["kind"], *kind, "case {i}");
        assert!(json["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "case {i}");
    }
    assert_eq!(json(&cases[5].0)["error"]["message"], "text 1: contains bad");
    assert_eq!(cases[9].0.header("allow"), Some("POST"));
    assert_eq!(cases[10].0.header("allow"), Some("GET"));
    // Only three requests reached the embedder (the refused text, "boom" and "busy"): the
    // malformed, empty, too long and too large ones were answered before it.
    assert_eq!(embedder.calls.load(Ordering::Relaxed), 3);
    // The server still answers good requests.
    let ok = embed(addr, &["still fine"]);
    assert_eq!(ok.status, 200);
    assert_eq!(embeddings(&ok), vec![stand_in_embedding("still fine")]);
    assert_eq!(server.counts(), (cases.len() as u64 + 1, cases.len() as u64));
}

#[test]
fn health_reports_the_model_and_counts() {
    let (server, _) = start(ServerConfig::default());
    embed(server.addr(), &["x"]);
    request(server.addr(), "GET", "/missing", b"");
    let answer = request(server.addr(), "GET", "/health?verbose=1", b"");
    assert_eq!(answer.status, 200);
    let json = json(&answer);
    assert_eq!(json["status"], "ok");
    assert_eq!(json["model"], "stand-in");
    assert_eq!(json["dim"], 4);
    assert_eq!(json["device"], "test");
    assert_eq!(json["requests"], 2);
    assert_eq!(json["errors"], 1);
}

#[test]
fn stop_finishes_and_frees_the_port() {
    let (server, _) = start(ServerConfig { http_threads: 4, ..ServerConfig::default() });
    let addr = server.addr();
    assert_eq!(embed(addr, &["before"]).status, 200);
    server.stop();
    // The listener's own thread closes the socket just after (within a few hundred ms).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::net::TcpStream::connect(addr).is_ok() {
        assert!(std::time::Instant::now() < deadline, "still listening 5 s after stop");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn bad_configuration_and_addresses_are_errors() {
    let embedder = Arc::new(StandIn::default());
    let none = ServerConfig { http_threads: 0, ..ServerConfig::default() };
    let err = Server::start("127.0.0.1:0", embedder.clone(), none).err().unwrap();
    assert!(matches!(err, ServerError::Config(_)), "{err}");
    let (taken, _) = start(ServerConfig::default());
    let err = Server::start(taken.addr(), embedder, ServerConfig::default()).err().unwrap();
    assert!(matches!(err, ServerError::Bind { .. }), "{err}");
}
