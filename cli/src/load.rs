//! `streampool load`: an HTTP load generator for `streampool serve` (or any server of OpenAI's or
//! TEI's embeddings API). Keep-alive clients, each sending its next request when the last is
//! answered, for a fixed time per client count: requests/s, texts/s, and latency percentiles.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use streampool_server::client::Connection;

/// Options of `streampool load`.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// The server's address (host:port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Client counts to sweep, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64,256")]
    pub clients: Vec<usize>,
    /// Texts per request.
    #[arg(long, default_value_t = 1)]
    pub texts: usize,
    /// Words per text (about one token each, plus two special tokens: 126 words ≈ 128 tokens).
    #[arg(long, default_value_t = 126)]
    pub words: usize,
    /// Route: `openai` (POST /v1/embeddings) or `tei` (POST /embed).
    #[arg(long, default_value = "openai")]
    pub api: String,
    /// Seconds per client count (after one second of warm-up).
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Bearer token to send.
    #[arg(long, env = "STREAMPOOL_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Print one JSON object per client count instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// What one client count gave.
struct Point {
    clients: usize,
    requests: usize,
    errors: usize,
    seconds: f64,
    latencies: Vec<f64>,
}

/// Run the sweep.
pub fn run(args: &LoadArgs) -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = args
        .addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| format!("--addr {}: no address", args.addr))?;
    let (path, body) = request_body(args)?;
    let body = Arc::new(body.into_bytes());
    // One request first: a server that refuses it would make every number meaningless.
    let mut probe = Connection::open(addr)?;
    let owned = auth(args);
    let headers: Vec<(&str, &str)> = owned.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let answer = probe.send("POST", path, &headers, &body)?;
    if answer.status != 200 {
        return Err(format!(
            "the server answered {}: {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        )
        .into());
    }
    if !args.json {
        println!(
            "{:>8} {:>10} {:>10} {:>9} {:>9} {:>9} {:>7}",
            "clients", "req/s", "texts/s", "p50 ms", "p90 ms", "p99 ms", "errors"
        );
    }
    for &clients in &args.clients {
        let point = sweep_point(addr, path, &body, clients.max(1), args)?;
        report(&point, args);
    }
    Ok(())
}

fn auth(args: &LoadArgs) -> Vec<(&'static str, String)> {
    args.api_key.iter().map(|k| ("Authorization", format!("Bearer {k}"))).collect()
}

fn request_body(args: &LoadArgs) -> Result<(&'static str, String), Box<dyn std::error::Error>> {
    const WORDS: [&str; 9] =
        ["the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog"];
    let text: Vec<&str> = (0..args.words.max(1)).map(|i| WORDS[i % WORDS.len()]).collect();
    let texts = vec![text.join(" "); args.texts.max(1)];
    Ok(match args.api.as_str() {
        "openai" => ("/v1/embeddings", serde_json::json!({ "input": texts }).to_string()),
        "tei" => ("/embed", serde_json::json!({ "inputs": texts }).to_string()),
        other => return Err(format!("--api {other}: use openai or tei").into()),
    })
}

fn sweep_point(
    addr: SocketAddr,
    path: &'static str,
    body: &Arc<Vec<u8>>,
    clients: usize,
    args: &LoadArgs,
) -> Result<Point, Box<dyn std::error::Error>> {
    let warm = Duration::from_secs(1);
    let measure = Duration::try_from_secs_f64(args.seconds)
        .map_err(|_| format!("--seconds {}: not a duration", args.seconds))?;
    let measuring = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let headers = auth(args);
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let (body, measuring, done, headers) =
                (body.clone(), measuring.clone(), done.clone(), headers.clone());
            std::thread::spawn(move || -> (usize, usize, Vec<f64>) {
                let headers: Vec<(&str, &str)> =
                    headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
                let (mut ok, mut errors, mut latencies) = (0, 0, Vec::new());
                let mut connection = Connection::open(addr).ok();
                while !done.load(Ordering::Relaxed) {
                    let Some(c) = connection.as_mut() else {
                        errors += 1;
                        connection = Connection::open(addr).ok();
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    };
                    let start = Instant::now();
                    let answer = c.send("POST", path, &headers, &body);
                    let counted = measuring.load(Ordering::Relaxed);
                    match answer {
                        Ok(a) if a.status == 200 => {
                            if counted {
                                ok += 1;
                                latencies.push(start.elapsed().as_secs_f64());
                            }
                        }
                        Ok(_) => errors += usize::from(counted),
                        Err(_) => {
                            errors += usize::from(counted);
                            connection = None;
                        }
                    }
                }
                (ok, errors, latencies)
            })
        })
        .collect();
    std::thread::sleep(warm);
    measuring.store(true, Ordering::Relaxed);
    let start = Instant::now();
    std::thread::sleep(measure);
    measuring.store(false, Ordering::Relaxed);
    let seconds = start.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let mut point = Point { clients, requests: 0, errors: 0, seconds, latencies: Vec::new() };
    for h in handles {
        let (ok, errors, latencies) = h.join().map_err(|_| "a client thread panicked")?;
        point.requests += ok;
        point.errors += errors;
        point.latencies.extend(latencies);
    }
    point.latencies.sort_by(f64::total_cmp);
    Ok(point)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize] * 1e3
}

fn report(p: &Point, args: &LoadArgs) {
    let rps = p.requests as f64 / p.seconds;
    let texts = rps * args.texts.max(1) as f64;
    let (p50, p90, p99) = (
        percentile(&p.latencies, 0.5),
        percentile(&p.latencies, 0.9),
        percentile(&p.latencies, 0.99),
    );
    if args.json {
        let line = serde_json::json!({
            "clients": p.clients, "texts_per_request": args.texts, "words": args.words,
            "requests_per_s": rps, "texts_per_s": texts, "p50_ms": p50, "p90_ms": p90,
            "p99_ms": p99, "errors": p.errors, "seconds": p.seconds,
        });
        println!("{line}");
    } else {
        println!(
            "{:>8} {:>10.0} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>7}",
            p.clients, rps, texts, p50, p90, p99, p.errors
        );
    }
}
