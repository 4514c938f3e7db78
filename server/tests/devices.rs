//! A server over several CPU devices (one model copy each, every device's workers on one queue)
//! where devices fail on demand: a failed device's requests get an error naming it while the
//! others answer, `GET /health` says `degraded` (200) with that device unhealthy, and 503 once
//! every device has failed; `GET /metrics` has each device's lines, adding up to the totals.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::*;
use streampool_core::{Backend, BackendError, Device, PoolConfig};
use streampool_cpu::CpuBackend;
use streampool_engine::{BatchModel, EngineConfig, MiniLmBatches};
use streampool_models::graph::ExecMode;
use streampool_models::loading::{Encoding, Tokenizer};
use streampool_models::{MiniLm, ModelError};
use streampool_server::{EngineService, Metrics, ModelInfo, Server, ServerConfig, TextModel};

/// The tiny fixture model on one CPU device, failing every batch and the device check that
/// follows while `broken` is set: a device that has gone, as a GPU's sticky fault looks.
struct Faulty {
    inner: MiniLmBatches<CpuBackend>,
    broken: Arc<AtomicBool>,
}

impl Faulty {
    fn gone(&self) -> ModelError {
        let label = self.inner.device().label();
        let message = format!("{label} is gone (on purpose)");
        ModelError::Backend(BackendError::Driver { backend: "cpu", call: "synchronize", message })
    }
}

impl BatchModel for Faulty {
    type Backend = CpuBackend;
    type Input = Encoding;
    type Output = Vec<f32>;
    type Error = ModelError;

    fn device(&self) -> &Device<CpuBackend> {
        self.inner.device()
    }

    fn check(&self, input: &Encoding) -> Result<(), ModelError> {
        self.inner.check(input)
    }

    fn padded_tokens(&self, input: &Encoding) -> usize {
        self.inner.padded_tokens(input)
    }

    fn run(
        &self,
        stream: &<CpuBackend as Backend>::Stream,
        inputs: &[Encoding],
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        match self.broken.load(Ordering::SeqCst) {
            true => Err(self.gone()),
            false => self.inner.run(stream, inputs),
        }
    }

    fn check_device(&self, stream: &<CpuBackend as Backend>::Stream) -> Result<(), ModelError> {
        match self.broken.load(Ordering::SeqCst) {
            true => Err(self.gone()),
            false => self.inner.check_device(stream),
        }
    }
}

impl TextModel for Faulty {
    fn tokenizer(&self) -> &Tokenizer {
        self.inner.tokenizer()
    }

    fn describe(&self) -> ModelInfo {
        self.inner.describe()
    }
}

/// A server of the tiny model on CPU devices `cpu:0`…, one worker each; device `i` is broken
/// while `broken[i]` is set.
fn serve_on(broken: &[Arc<AtomicBool>]) -> Server {
    let files = tiny();
    let models: Vec<Faulty> = broken
        .iter()
        .enumerate()
        .map(|(i, broken)| {
            let device = Device::new(CpuBackend::with_ordinal(i), PoolConfig::with_capacity(1));
            let model = Arc::new(MiniLm::load(&device, &files).unwrap());
            let inner = MiniLmBatches::new(model, ExecMode::Eager);
            Faulty { inner, broken: broken.clone() }
        })
        .collect();
    let metrics = Arc::new(Metrics::new());
    let engine = EngineConfig::default().workers(1);
    let service = EngineService::start_on(models, "tiny", engine, metrics.clone()).unwrap();
    Server::start("127.0.0.1:0", Arc::new(service), metrics, ServerConfig::default(), 4).unwrap()
}

/// `n` one-text requests at once: each one's status and error message (empty for a 200).
fn embed_at_once(addr: SocketAddr, n: usize) -> Vec<(u16, String)> {
    std::thread::scope(|s| {
        let requests: Vec<_> = (0..n)
            .map(|i| {
                s.spawn(move || {
                    let body = serde_json::json!({ "input": format!("text number {i}") });
                    let a = post(addr, "/v1/embeddings", &body);
                    let message = match a.status {
                        200 => String::new(),
                        _ => json(&a)["error"]["message"].as_str().unwrap_or("").to_owned(),
                    };
                    (a.status, message)
                })
            })
            .collect();
        requests.into_iter().map(|r| r.join().unwrap()).collect()
    })
}

/// The value of the sample `name{labels}` in a metrics text (0 when absent).
fn sample(text: &str, name_and_labels: &str) -> f64 {
    text.lines().find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok()).unwrap_or(0.0)
}

/// The sum of `family` over `devices`' samples.
fn per_device(text: &str, family: &str, devices: &[&str]) -> Vec<f64> {
    devices.iter().map(|d| sample(text, &format!("{family}{{device=\"{d}\"}}"))).collect()
}

fn scrape(addr: SocketAddr) -> String {
    String::from_utf8(request(addr, "GET", "/metrics", b"").unwrap().body).unwrap()
}

#[test]
fn one_device_failing_leaves_the_others_answering_and_health_degraded() {
    let broken: Vec<Arc<AtomicBool>> = (0..3).map(|_| Arc::default()).collect();
    let server = serve_on(&broken);
    let addr = server.addr();
    let devices = ["cpu:0", "cpu:1", "cpu:2"];

    let info = json(&request(addr, "GET", "/info", b"").unwrap());
    let device = info["device"].as_str().unwrap();
    assert!(
        device.starts_with("3 × cpu (") && device.ends_with(" (cpu:0,cpu:1,cpu:2)"),
        "{device}"
    );
    let health = json(&request(addr, "GET", "/health", b"").unwrap());
    assert_eq!(health["status"], "ok");
    let labels: Vec<&str> = health["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["device"].as_str().unwrap())
        .collect();
    assert_eq!(labels, devices);

    // cpu:1 breaks. Requests at once reach every device; those cpu:1 took fail, naming it.
    broken[1].store(true, Ordering::SeqCst);
    let mut failed = 0;
    for _ in 0..50 {
        for (status, message) in embed_at_once(addr, 12) {
            if status != 200 {
                assert_eq!(status, 500, "{message}");
                assert!(message.contains("device cpu:1 failed"), "{message}");
                assert!(message.contains("cpu:1 is gone (on purpose)"), "{message}");
                failed += 1;
            }
        }
        if failed > 0 {
            break;
        }
    }
    assert!(failed > 0, "cpu:1 took none of 600 requests");
    // The device is out: every request is answered by the others.
    for (status, message) in embed_at_once(addr, 24) {
        assert_eq!(status, 200, "{message}");
    }

    let answer = request(addr, "GET", "/health", b"").unwrap();
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    let health = json(&answer);
    let status = health["status"].as_str().unwrap();
    assert!(status.starts_with("degraded: cpu:1 failed: a batch of "), "{status}");
    assert!(status.contains("cpu:1 is gone"), "{status}");
    let report = health["devices"].as_array().unwrap();
    for (d, want) in report.iter().zip(devices) {
        assert_eq!(d["device"], want);
        assert_eq!(d["healthy"], want != "cpu:1", "{d}");
        // `failure` only where there is one.
        assert_eq!(d.get("failure").is_some(), want == "cpu:1", "{d}");
        assert_eq!(d["running"], 0);
    }
    assert!(report[1]["failure"].as_str().unwrap().contains("cpu:1 is gone"));
    let requests: Vec<u64> = report.iter().map(|d| d["requests"].as_u64().unwrap()).collect();
    assert_eq!(requests.iter().sum::<u64>(), health["embedded"].as_u64().unwrap());
    assert!(requests[1] >= failed, "{requests:?}");

    // Each device's lines, adding up to the totals (after /health: its probe counts too).
    let text = scrape(addr);
    let requests = per_device(&text, "streampool_device_requests_total", &devices);
    let batches = per_device(&text, "streampool_device_batches_total", &devices);
    let running = per_device(&text, "streampool_device_running", &devices);
    let healthy = per_device(&text, "streampool_device_healthy", &devices);
    assert_eq!(
        requests.iter().sum::<f64>(),
        sample(&text, "streampool_embeddings_total"),
        "{text}"
    );
    assert_eq!(requests.iter().sum::<f64>(), health["embedded"].as_f64().unwrap(), "{text}");
    assert_eq!(batches.iter().sum::<f64>(), sample(&text, "streampool_batch_size_count"), "{text}");
    assert_eq!(running.iter().sum::<f64>(), sample(&text, "streampool_streams_in_use"));
    assert_eq!(healthy, [1.0, 0.0, 1.0], "{text}");
    assert!(requests[1] >= failed as f64 && batches[1] >= 1.0, "{text}");
    assert!(requests[0] + requests[2] >= 24.0, "{text}");
    assert!(text.contains("# TYPE streampool_device_requests counter"), "{text}");
    assert!(text.contains("# TYPE streampool_device_healthy gauge"), "{text}");

    // Counters only grow, by what happened between scrapes.
    assert!(embed_at_once(addr, 5).iter().all(|(status, _)| *status == 200));
    let later = scrape(addr);
    let more = per_device(&later, "streampool_device_requests_total", &devices);
    let grown: f64 = more.iter().zip(&requests).map(|(b, a)| b - a).sum();
    assert_eq!(grown, 5.0, "{later}");
    assert_eq!(more[1], requests[1], "the failed device took more: {later}");
}

#[test]
fn health_is_503_once_every_device_has_failed() {
    let broken: Vec<Arc<AtomicBool>> = (0..2).map(|_| Arc::new(AtomicBool::new(true))).collect();
    let server = serve_on(&broken);
    let addr = server.addr();
    // Each request fails the device it reaches; once none is left, the engine refuses at once.
    let mut messages = Vec::new();
    while messages.len() < 10 {
        let a = post(addr, "/v1/embeddings", &serde_json::json!({ "input": "hello" }));
        assert_eq!(a.status, 500, "{}", String::from_utf8_lossy(&a.body));
        let error = json(&a)["error"].clone();
        assert_eq!(error["type"], "server_error");
        messages.push(error["message"].as_str().unwrap().to_owned());
        if messages.last().unwrap().contains("every device of the engine has failed") {
            break;
        }
    }
    let last = messages.last().unwrap();
    assert!(last.contains("every device") && last.contains("cpu:0:") && last.contains("cpu:1:"));
    assert!(messages.iter().any(|m| m.contains("device cpu:0 failed")), "{messages:?}");
    assert!(messages.iter().any(|m| m.contains("device cpu:1 failed")), "{messages:?}");

    let answer = request(addr, "GET", "/health", b"").unwrap();
    assert_eq!(answer.status, 503, "{}", String::from_utf8_lossy(&answer.body));
    let health = json(&answer);
    let status = health["status"].as_str().unwrap();
    assert!(status.starts_with("every device has failed: cpu:0 failed: "), "{status}");
    assert!(status.contains("; cpu:1 failed: "), "{status}");
    for d in health["devices"].as_array().unwrap() {
        assert_eq!(d["healthy"], false, "{d}");
        assert!(d["failure"].as_str().unwrap().contains("is gone (on purpose)"), "{d}");
    }
    let text = scrape(addr);
    assert_eq!(per_device(&text, "streampool_device_healthy", &["cpu:0", "cpu:1"]), [0.0, 0.0]);
}

#[test]
fn one_device_reports_itself_and_health_stays_ok() {
    let server = serve(&tiny(), ServerConfig::default(), EngineConfig::default().workers(2));
    let addr = server.addr();
    let info = json(&request(addr, "GET", "/info", b"").unwrap());
    let device = info["device"].as_str().unwrap();
    assert!(device.starts_with("cpu (") && !device.contains("cpu:0"), "{device}");
    let answer = request(addr, "GET", "/health", b"").unwrap();
    assert_eq!(answer.status, 200);
    let health = json(&answer);
    assert_eq!(health["status"], "ok");
    let report = health["devices"].as_array().unwrap();
    assert_eq!(report.len(), 1);
    assert_eq!(
        (report[0]["device"].as_str(), report[0]["healthy"].as_bool()),
        (Some("cpu:0"), Some(true))
    );
    assert!(report[0].get("failure").is_none(), "{health}");
    // The probe is the one request so far.
    assert_eq!((report[0]["requests"].as_u64(), health["embedded"].as_u64()), (Some(1), Some(1)));
    let text = scrape(addr);
    assert_eq!(sample(&text, r#"streampool_device_requests_total{device="cpu:0"}"#), 1.0, "{text}");
    assert_eq!(sample(&text, r#"streampool_device_healthy{device="cpu:0"}"#), 1.0, "{text}");
    let spec = json(&request(addr, "GET", "/openapi.json", b"").unwrap());
    let schema = &spec["components"]["schemas"]["DeviceHealth"];
    assert!(schema["properties"]["healthy"].is_object(), "{spec}");
    assert!(spec["components"]["schemas"]["Health"]["properties"]["devices"].is_object());
}
