//! Load generator for `streampool serve`: N client threads each send `POST /embed` (one text per
//! request, a new connection each) for a fixed time; prints requests/s and latency percentiles.
//!
//! `cargo run --release -p streampool-server --example load -- ADDR [CLIENTS] [SECONDS]`

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use streampool_server::client::request;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: load ADDR [CLIENTS=64] [SECONDS=5]";
    let addr: SocketAddr = args.next().ok_or(usage)?.parse()?;
    let clients: usize = args.next().map_or(Ok(64), |a| a.parse())?;
    let seconds: f64 = args.next().map_or(Ok(5.0), |a| a.parse())?;
    // About 100 tokens, different per request (no caching anywhere to flatter us).
    let text = |c: usize, i: usize| {
        format!("request {i} of client {c}: {}", "streams leases events and graphs ".repeat(18))
    };
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let results: Vec<(Vec<Duration>, usize)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                s.spawn(move || {
                    let (mut lat, mut failed) = (Vec::new(), 0);
                    for i in 0.. {
                        let t0 = Instant::now();
                        if t0 >= deadline {
                            break;
                        }
                        let body = serde_json::json!({ "texts": [text(c, i)] }).to_string();
                        match request(addr, "POST", "/embed", body.as_bytes()) {
                            Ok(a) if a.status == 200 => lat.push(t0.elapsed()),
                            _ => failed += 1,
                        }
                    }
                    (lat, failed)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("client thread")).collect()
    });
    let elapsed = start.elapsed().as_secs_f64();
    let failed: usize = results.iter().map(|r| r.1).sum();
    let mut lat: Vec<Duration> = results.into_iter().flat_map(|r| r.0).collect();
    lat.sort();
    let pct = |p: f64| lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)));
    let ms = |d: Option<&Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64() * 1e3);
    println!(
        "{clients} clients, {elapsed:.1} s: {} ok ({:.0} req/s), {failed} failed; p50 {:.3} ms, \
         p99 {:.3} ms",
        lat.len(),
        lat.len() as f64 / elapsed,
        ms(pct(0.5)),
        ms(pct(0.99))
    );
    Ok(())
}
