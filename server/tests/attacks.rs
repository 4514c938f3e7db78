//! The server attacked as an adversary would, on the CPU: oversized and overflowing
//! Content-Lengths, conflicting ones, a gigabyte header line, megabyte texts, hundreds of idle,
//! byte-a-second and body-less connections, a flood of concurrent requests. Each is refused or
//! outlasted, memory stays bounded, and a normal client is answered throughout.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::*;
use streampool_engine::EngineConfig;
use streampool_server::ServerConfig;

fn engine() -> EngineConfig {
    EngineConfig::default().workers(2)
}

/// Sends `bytes` on a new connection and reads what comes back within `wait` (empty when the
/// server closed without an answer).
fn raw(addr: SocketAddr, bytes: &[u8], wait: Duration) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn status(answer: &str) -> Option<u16> {
    answer.split(' ').nth(1)?.parse().ok()
}

/// A one-text embedding request answered 200 within `within`.
fn answers_within(addr: SocketAddr, within: Duration) {
    let start = Instant::now();
    let a = post(addr, "/v1/embeddings", &serde_json::json!({ "input": "still here" }));
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    assert!(start.elapsed() < within, "a normal request took {:?}", start.elapsed());
}

#[test]
fn malformed_lengths_are_refused_and_the_server_stays_up() {
    let server = serve(&tiny(), ServerConfig::default(), engine());
    let addr = server.addr();
    let wait = Duration::from_secs(5);
    // A body announced but never read (GET): answered, nothing allocated for it.
    let a =
        raw(addr, b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000000\r\n\r\n", wait);
    assert_eq!(status(&a), Some(200), "{a}");
    // A length past u64's range, and on an embedding route a length over the body limit.
    let a = raw(
        addr,
        b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551615\r\n\r\n",
        wait,
    );
    assert!(matches!(status(&a), Some(400..=499)), "{a}");
    let a =
        raw(addr, b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n", wait);
    assert_eq!(status(&a), Some(413), "{a}");
    // Two lengths that disagree: refused (a proxy might have read the other).
    let a = raw(
        addr,
        b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 14\r\n\r\n{}",
        wait,
    );
    assert_eq!(status(&a), Some(400), "{a}");
    // An HTTP/2 preface (prior knowledge) is spoken, not hung on: the server's SETTINGS come.
    let a = raw(addr, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", Duration::from_secs(2));
    assert!(!a.is_empty(), "no answer to an HTTP/2 preface");
    answers_within(addr, Duration::from_secs(5));
}

#[test]
fn a_gigabyte_header_line_is_cut_off_early() {
    let server = serve(&tiny(), ServerConfig::default(), engine());
    let addr = server.addr();
    let before = rss_mib();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nX-Long: ").unwrap();
    let chunk = vec![b'a'; 1 << 20];
    let mut sent = 0usize;
    // Up to 1 GiB; the server refuses (431) and closes long before.
    while sent < 1 << 30 {
        if s.write_all(&chunk).is_err() {
            break;
        }
        sent += chunk.len();
    }
    assert!(sent < 64 << 20, "the server read {} MiB of one header line", sent >> 20);
    let grown = rss_mib() - before;
    assert!(grown < 64.0, "memory grew {grown:.0} MiB");
    answers_within(addr, Duration::from_secs(5));
}

#[test]
fn megabyte_texts_cost_a_page_each() {
    let config = ServerConfig { max_body_bytes: 16 << 20, ..ServerConfig::default() };
    let server = serve(&tiny(), config, engine());
    let addr = server.addr();
    let words = "lorem ipsum dolor sit amet ".repeat((4 << 20) / 27);
    let one_word = "x".repeat(4 << 20);
    let before = rss_mib();
    let start = Instant::now();
    std::thread::scope(|s| {
        for text in [&words, &one_word, &words, &one_word] {
            s.spawn(move || {
                let a = post(addr, "/embed", &serde_json::json!({ "inputs": text }));
                assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
            });
        }
    });
    assert!(start.elapsed() < Duration::from_secs(20), "4 MiB texts took {:?}", start.elapsed());
    // Four 4 MiB bodies in flight at once, parsed: bounded by what was sent, not a multiple.
    let grown = rss_mib() - before;
    assert!(grown < 200.0, "memory grew {grown:.0} MiB for 16 MiB of texts");
    // Truncation off: too long is a 413, not a tokenised megabyte.
    let a = post(addr, "/embed", &serde_json::json!({ "inputs": words, "truncate": false }));
    assert_eq!(a.status, 413);
}

#[test]
fn slow_and_idle_connections_do_not_hold_up_a_normal_client() {
    let config = ServerConfig {
        idle_timeout: Duration::from_secs(2),
        body_timeout: Duration::from_secs(2),
        ..ServerConfig::default()
    };
    let server = serve(&tiny(), config, engine());
    let addr = server.addr();
    let mut held = Vec::new();
    for i in 0..500 {
        let mut s = TcpStream::connect(addr).unwrap();
        match i % 3 {
            0 => {}                                 // idle
            1 => s.write_all(b"GET /hea").unwrap(), // a head, slowly
            _ => s
                .write_all(b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
                .unwrap(), // no body
        }
        held.push(s);
    }
    answers_within(addr, Duration::from_secs(1));
    // One byte a second keeps nobody's connection past the head timeout.
    let mut trickle = TcpStream::connect(addr).unwrap();
    trickle.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let start = Instant::now();
    let mut closed = false;
    for byte in b"GET /health HTTP/1.1\r\nHost: x\r\n".iter().cycle().take(20) {
        if trickle.write_all(&[*byte]).is_err() {
            closed = true;
            break;
        }
        answers_within(addr, Duration::from_secs(1));
        std::thread::sleep(Duration::from_millis(500));
    }
    let mut rest = Vec::new();
    closed |= trickle.read_to_end(&mut rest).is_ok();
    assert!(closed && start.elapsed() < Duration::from_secs(10), "a trickling head was kept");
    // The body-less requests were answered 408, the idle ones closed.
    let mut answered = 0;
    for mut s in held {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        answered += usize::from(String::from_utf8_lossy(&out).contains(" 408 "));
    }
    assert!(answered >= 160, "{answered} of 166 body-less requests got a 408");
    answers_within(addr, Duration::from_secs(1));
}

#[test]
fn a_flood_gets_429s_at_once_and_every_accepted_request_its_answer() {
    let Some(files) = minilm() else { return };
    let config = ServerConfig { max_concurrent_requests: 16, ..ServerConfig::default() };
    let server = serve(files, config, engine());
    let addr = server.addr();
    let texts: Vec<String> =
        (0..8).map(|i| format!("request text number {i} of a flood")).collect();
    let results: Vec<(u16, Duration, Option<String>, serde_json::Value)> =
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..200)
                .map(|_| {
                    let texts = &texts;
                    s.spawn(move || {
                        let start = Instant::now();
                        let a =
                            post(addr, "/v1/embeddings", &serde_json::json!({ "input": texts }));
                        let retry = a.header("retry-after").map(str::to_owned);
                        (a.status, start.elapsed(), retry, json(&a))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
    let reference = json(&post(addr, "/v1/embeddings", &serde_json::json!({ "input": &texts })));
    let (mut ok, mut busy) = (0, Vec::new());
    for (status, took, retry, body) in &results {
        match status {
            200 => {
                ok += 1;
                for (d, r) in body["data"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .zip(reference["data"].as_array().unwrap())
                {
                    assert!(cosine(&floats(&d["embedding"]), &floats(&r["embedding"])) > 0.99999);
                }
            }
            429 => {
                assert_eq!(retry.as_deref(), Some("1"));
                busy.push(*took);
            }
            other => panic!("status {other}: {body}"),
        }
    }
    assert!(ok >= 16 && !busy.is_empty(), "{ok} answered, {} refused", busy.len());
    busy.sort();
    let median = busy[busy.len() / 2];
    assert!(median < Duration::from_millis(100), "429s took {median:?} (median)");
    // After the flood, a one-text request at normal latency (nothing abandoned is still running).
    answers_within(addr, Duration::from_secs(2));
}

#[test]
fn a_request_whose_client_left_is_cancelled_before_its_batch() {
    let Some(files) = minilm() else { return };
    let server =
        serve(files, ServerConfig::default(), EngineConfig::default().workers(1).max_batch(4));
    let addr = server.addr();
    let texts = vec!["a text long enough to take a moment to embed on a cpu ".repeat(8); 256];
    let body = serde_json::json!({ "input": texts }).to_string();
    let mut s = TcpStream::connect(addr).unwrap();
    let head = format!(
        "POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    drop(s); // gone before its 256 texts could run
    std::thread::sleep(Duration::from_millis(500));
    let metrics = String::from_utf8(request(addr, "GET", "/metrics", b"").unwrap().body).unwrap();
    let cancelled: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("streampool_cancelled_total")?.trim().parse().ok())
        .unwrap_or(0.0);
    assert!(cancelled >= 128.0, "only {cancelled} of 256 texts cancelled:\n{metrics}");
    answers_within(addr, Duration::from_secs(2));
}
