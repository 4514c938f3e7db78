//! `streampool serve` end to end on the CPU: it prints the address it listens on, answers
//! `POST /embed` matching the sentence-transformers fixture and `GET /health`, refuses a mode
//! the device lacks with a message and a non-zero exit, takes its settings from the environment,
//! outlives running out of file descriptors, stops gracefully on SIGTERM under load, batches
//! mixed-length texts at least as fast as one client sends them one request at a time, and
//! serves one model copy per device over several CPU devices.

mod common;

use common::{serve, start};

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use streampool_models::testing;

use streampool_server::client::{request, request_with};

/// The model directory, downloaded once if absent; `None` where it cannot be (no pip, no
/// network) outside CI, after a `SKIPPED` line on stderr: the test returns early.
fn model() -> Option<&'static Path> {
    testing::default_model().map(|files| files.dir.as_path())
}

#[test]
fn serves_embeddings_matching_the_fixture() {
    let Some(model) = model() else { return };
    let (_server, addr) = start(serve(model, &[]));
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
    assert_eq!(health.json().unwrap()["status"], "ok");
}

/// `--device cpu:0,1`: two copies of the tiny fixture model; the first line names both devices
/// after the usual parts, and `/info`, `/health` and `/metrics` report each.
#[test]
fn serves_on_several_cpu_devices() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    /// Killed on drop, passed or not.
    struct Child(std::process::Child);
    impl Drop for Child {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let model = testing::tiny_models_dir().join("bert-mean");
    let mut command = Command::new(env!("CARGO_BIN_EXE_streampool"));
    command.args(["serve", "--device", "cpu:0,1", "--addr", "127.0.0.1:0", "--workers", "1"]);
    command.arg("--model").arg(&model).args(["--served-model-name", "tiny"]);
    let mut child = Child(command.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap());
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    // listening on http://ADDR (NAME, 2 × cpu (N cores) (cpu:0,cpu:1), eager, f32)
    let rest = line.strip_prefix("listening on http://").unwrap_or_else(|| panic!("{line:?}"));
    let (addr, rest) = rest.split_once(' ').unwrap();
    let addr: SocketAddr = addr.parse().unwrap();
    let device = rest.strip_prefix("(tiny, 2 × cpu (").unwrap_or_else(|| panic!("{line:?}"));
    assert!(device.trim_end().ends_with(" cores) (cpu:0,cpu:1), eager, f32)"), "{line:?}");

    let body =
        serde_json::json!({ "input": (0..16).map(|i| format!("text {i}")).collect::<Vec<_>>() });
    let a = request(addr, "POST", "/v1/embeddings", body.to_string().as_bytes()).unwrap();
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(a.json().unwrap()["data"].as_array().unwrap().len(), 16);
    let info = request(addr, "GET", "/info", b"").unwrap().json().unwrap();
    assert!(info["device"].as_str().unwrap().ends_with("(cpu:0,cpu:1)"), "{info}");
    let health = request(addr, "GET", "/health", b"").unwrap();
    assert_eq!(health.status, 200);
    let health = health.json().unwrap();
    assert_eq!(health["status"], "ok");
    let devices = health["devices"].as_array().unwrap();
    let labels: Vec<&str> = devices.iter().map(|d| d["device"].as_str().unwrap()).collect();
    assert_eq!(labels, ["cpu:0", "cpu:1"]);
    assert!(devices.iter().all(|d| d["healthy"] == true), "{health}");
    let sum: u64 = devices.iter().map(|d| d["requests"].as_u64().unwrap()).sum();
    assert_eq!(sum, 17, "16 texts and the probe: {health}");
    let metrics = String::from_utf8(request(addr, "GET", "/metrics", b"").unwrap().body).unwrap();
    for d in labels {
        let line = format!("streampool_device_healthy{{device=\"{d}\"}} 1");
        assert!(metrics.lines().any(|l| l == line), "{line} missing:\n{metrics}");
    }
}

#[test]
fn absurd_thread_counts_are_refused_before_anything_starts() {
    for args in [["--workers", "100000"], ["--http-threads", "0"]] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_streampool"));
        let out = command.args(["serve", "--device", "cpu"]).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("give a whole number from"), "stderr: {stderr}");
    }
}

#[test]
fn graph_mode_on_the_cpu_is_refused() {
    let Some(model) = model() else { return };
    let out = serve(model, &["--mode", "graph"]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--mode graph"), "stderr: {stderr}");
}

/// A one-text request answered 200.
fn answered(addr: SocketAddr) -> bool {
    let body = br#"{"input": "are you there"}"#;
    request(addr, "POST", "/v1/embeddings", body).is_ok_and(|a| a.status == 200)
}

#[test]
fn settings_come_from_the_environment() {
    let Some(model) = model() else { return };
    let mut command = serve(model, &[]);
    command.env("STREAMPOOL_MAX_CLIENT_BATCH_SIZE", "2").env("STREAMPOOL_API_KEY", "k");
    command.env("STREAMPOOL_SERVED_MODEL_NAME", "from-env");
    let (_server, addr) = start(command);
    let auth = [("Authorization", "Bearer k")];
    let body = br#"{"input": ["a", "b", "c"]}"#;
    let a = request_with(addr, "POST", "/v1/embeddings", &auth, body).unwrap();
    assert_eq!(a.status, 413, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(request(addr, "POST", "/v1/embeddings", br#"{"input": "a"}"#).unwrap().status, 401);
    let a = request_with(addr, "POST", "/v1/embeddings", &auth, br#"{"input": "a"}"#).unwrap();
    assert_eq!(a.json().unwrap()["model"], "from-env");
}

/// Under a limit of 256 descriptors, 2,000 connections opened at once: the server refuses what
/// it cannot take, keeps its listener, and answers again once they close.
#[test]
fn running_out_of_file_descriptors_is_survived() {
    let Some(model) = model() else { return };
    let script = format!(
        "ulimit -n 256 && exec {} serve --device cpu --addr 127.0.0.1:0 --workers 2 --model '{}'",
        env!("CARGO_BIN_EXE_streampool"),
        model.display()
    );
    let mut command = Command::new("sh");
    command.args(["-c", &script]);
    let (_server, addr) = start(command);
    assert!(answered(addr));
    let mut held = Vec::new();
    // Connections beyond what the server can hold wait in the listen backlog until it is full;
    // then connecting times out, so keep trying for a while as the server takes more.
    let until = Instant::now() + Duration::from_secs(15);
    while held.len() < 2000 && Instant::now() < until {
        if let Ok(s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            held.push(s);
        }
    }
    assert!(held.len() > 300, "only {} connections opened", held.len());
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !answered(addr) {
        assert!(Instant::now() < deadline, "no answer 30 s after the connections closed");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// SIGTERM while 16 clients send: every request the server took is answered 200, then it exits
/// 0; requests after that find the port closed.
#[test]
fn sigterm_under_load_answers_every_accepted_request() {
    let Some(model) = model() else { return };
    let (mut server, addr) = start(serve(model, &[]));
    let stop = AtomicBool::new(false);
    let texts: Vec<String> =
        (0..16).map(|i| format!("text {i} of a request in flight when the signal comes")).collect();
    let body = serde_json::json!({ "input": texts }).to_string();
    let status = std::thread::scope(|s| {
        let clients: Vec<_> = (0..16)
            .map(|_| {
                let (stop, body) = (&stop, body.as_bytes());
                s.spawn(move || {
                    let (mut ok, mut bad) = (0, Vec::new());
                    while !stop.load(Ordering::Relaxed) {
                        match request(addr, "POST", "/v1/embeddings", body) {
                            Ok(a) if a.status == 200 => ok += 1,
                            Ok(a) => bad.push(format!("status {}", a.status)),
                            // Refused, or reset in the listen backlog: never accepted.
                            Err(_) => {}
                        }
                    }
                    (ok, bad)
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(1500));
        let pid = server.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let status = server.child.wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        let mut ok = 0;
        for c in clients {
            let (n, bad) = c.join().unwrap();
            assert!(bad.is_empty(), "{bad:?}");
            ok += n;
        }
        assert!(ok > 0, "no request was answered");
        status
    });
    assert!(status.success(), "exit status {status:?}");
    assert!(request(addr, "GET", "/health", b"").is_err(), "still listening after exit");
}
