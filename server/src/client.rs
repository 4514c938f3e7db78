//! A minimal blocking HTTP/1.1 client: [`request`] on a new connection each time, or a
//! keep-alive [`Connection`]. Enough to talk to the server from tests, `streampool load` and
//! scripts without another dependency.
//!
//! ```no_run
//! let addr = "127.0.0.1:8080".parse().unwrap();
//! let body = br#"{"texts": ["hi"]}"#;
//! let answer = streampool_server::client::request(addr, "POST", "/embed", body)?;
//! assert_eq!(answer.status, 200);
//! println!("{}", answer.json()?["embeddings"][0][0]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// An answer: status, headers (names in lower case), body.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status code.
    pub status: u16,
    /// (name, value) pairs, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as JSON.
    pub fn json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    /// The first header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

fn malformed(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("malformed answer: {what}"))
}

/// Send `method path` with `body` (JSON) on a new connection and read the whole answer
/// (60 s read timeout).
pub fn request(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> std::io::Result<Answer> {
    request_with(addr, method, path, &[], body)
}

/// [`request`] with extra headers (`("Authorization", "Bearer ...")`).
pub fn request_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Answer> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let extra: String = headers.iter().map(|(n, v)| format!("{n}: {v}\r\n")).collect();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n{extra}Connection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    // The server may answer (413) and close before reading a large body: a failed write is not
    // the end; the answer is.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let split =
        raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| malformed("no header end"))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| malformed("no status line"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok(Answer { status, headers, body: raw[split + 4..].to_vec() })
}

/// A keep-alive connection: requests one after another, each answer read by its
/// `Content-Length` (the server always sends one).
pub struct Connection {
    addr: SocketAddr,
    stream: BufReader<TcpStream>,
}

impl Connection {
    /// Connect to `addr` (60 s read timeout).
    pub fn open(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        Ok(Self { addr, stream: BufReader::new(stream) })
    }

    /// Send `method path` with `headers` and `body` and read the answer.
    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<Answer> {
        let extra: String = headers.iter().map(|(n, v)| format!("{n}: {v}\r\n")).collect();
        let mut out = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n{extra}\r\n",
            self.addr,
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(body);
        self.stream.get_mut().write_all(&out)?;
        let mut line = String::new();
        self.stream.read_line(&mut line)?;
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| malformed("no status line"))?;
        let mut headers = Vec::new();
        loop {
            line.clear();
            if self.stream.read_line(&mut line)? == 0 {
                return Err(malformed("the connection closed in the head"));
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((n, v)) = l.split_once(':') {
                headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let answer = Answer { status, headers, body: Vec::new() };
        let length: usize = answer
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| malformed("no content-length"))?;
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body)?;
        Ok(Answer { body, ..answer })
    }
}
