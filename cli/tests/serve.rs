//! `streampool serve` end to end on the CPU: it prints the address it listens on, answers
//! `POST /embed` matching the sentence-transformers fixture and `GET /health`, and refuses a mode
//! the device lacks with a message and a non-zero exit.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use streampool_models::testing;
use streampool_server::client::request;

/// The model directory, downloaded once if absent; `None` where it cannot be (no pip, no
/// network) outside CI, after a `SKIPPED` line on stderr: the test returns early.
fn model() -> Option<&'static Path> {
    testing::default_model().map(|files| files.dir.as_path())
}

/// `streampool serve` on the CPU with `model` and `args`, on any free port.
fn serve(model: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_streampool"));
    command
        .args(["serve", "--device", "cpu", "--addr", "127.0.0.1:0", "--workers", "2", "--model"])
        .arg(model)
        .args(args);
    command
}

/// Kills the server when the test ends, passed or not.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn serves_embeddings_matching_the_fixture() {
    let Some(model) = model() else { return };
    let child = serve(model, &[]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut server = Running(child);
    let mut line = String::new();
    BufReader::new(server.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr: SocketAddr = line
        .strip_prefix("listening on http://")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("first line: {line:?}"))
        .parse()
        .unwrap();
    let path = testing::reference_fixture_path();
    let fixture: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases: Vec<&serde_json::Value> =
        fixture["cases"].as_array().unwrap().iter().take(3).collect();
    let texts: Vec<&str> = cases.iter().map(|c| c["text"].as_str().unwrap()).collect();
    let body = serde_json::json!({ "texts": texts }).to_string();
    let answer = request(addr, "POST", "/embed", body.as_bytes()).unwrap();
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    let json = answer.json().unwrap();
    let got: Vec<Vec<f64>> = serde_json::from_value(json["embeddings"].clone()).unwrap();
    for (g, case) in got.iter().zip(&cases) {
        let want: Vec<f64> =
            case["embedding"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
        let dot: f64 = g.iter().zip(&want).map(|(a, b)| a * b).sum();
        let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
        let cos = dot / (norm(g) * norm(&want));
        assert!(cos >= 0.99999, "{:?}: cosine {cos}", case["text"]);
    }
    let health = request(addr, "GET", "/health", b"").unwrap();
    assert_eq!(health.status, 200);
    assert_eq!(health.json().unwrap()["requests"], 1);
}

#[test]
fn graph_mode_on_the_cpu_is_refused() {
    let Some(model) = model() else { return };
    let out = serve(model, &["--mode", "graph"]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--mode graph"), "stderr: {stderr}");
}
