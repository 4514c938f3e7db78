//! A minimal HTTP/1.1 client for the tests (one request per connection) and a stand-in embedder.
#![allow(dead_code)] // each test binary uses a different subset

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use streampool_server::{EmbedError, Embedder};

/// An answer: status, headers (lower-case names), body.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Send `method path` with `body` on a new connection; read the whole answer.
pub fn request(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> Answer {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    // The server may answer (413) and close before reading a large body: a failed write is fine.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a header block");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Answer { status, headers, body: raw[split + 4..].to_vec() }
}

/// `POST /embed` of `texts`.
pub fn embed(addr: SocketAddr, texts: &[&str]) -> Answer {
    let body = serde_json::json!({ "texts": texts }).to_string();
    request(addr, "POST", "/embed", body.as_bytes())
}

/// Embeds a text as [length, sum of bytes, first byte, 1]: checkable by hand. Refuses texts
/// containing "bad"; fails whole calls containing "boom"; reports overload for "busy".
#[derive(Default)]
pub struct StandIn {
    pub calls: AtomicUsize,
}

pub fn stand_in_embedding(text: &str) -> Vec<f32> {
    let sum: u32 = text.bytes().map(u32::from).sum();
    vec![text.len() as f32, sum as f32, text.bytes().next().unwrap_or(0) as f32, 1.0]
}

impl Embedder for StandIn {
    fn model(&self) -> &str {
        "stand-in"
    }
    fn dim(&self) -> usize {
        4
    }
    fn device(&self) -> String {
        "test".into()
    }
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if let Some(index) = texts.iter().position(|t| t.contains("bad")) {
            return Err(EmbedError::Invalid { index, message: "contains bad".into() });
        }
        if texts.iter().any(|t| t.contains("boom")) {
            return Err(EmbedError::Failed("the model failed".into()));
        }
        if texts.iter().any(|t| t.contains("busy")) {
            return Err(EmbedError::Overloaded("queue full".into()));
        }
        Ok(texts.iter().map(|t| stand_in_embedding(t)).collect())
    }
}
