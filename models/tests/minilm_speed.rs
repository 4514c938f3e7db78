//! MiniLM CPU throughput (ignored by default; run in release):
//! `cargo test --release -p streampool-models --test minilm_speed -- --ignored --nocapture`.

mod common;

use std::time::Instant;

use common::{device, model, texts};

/// Texts of exactly `tokens` tokens ([CLS] and [SEP] included), built from the fixture's words.
fn texts_of_length(tokens: usize, count: usize) -> Vec<String> {
    let m = model();
    let words: Vec<&str> = texts().iter().flat_map(|t| t.split_whitespace()).collect();
    (0..count)
        .map(|i| {
            let mut text = String::new();
            let mut j = i;
            while m.tokenizer().encode(&text).unwrap().len() < tokens {
                text.push_str(words[j % words.len()]);
                text.push(' ');
                j += 1;
            }
            while m.tokenizer().encode(&text).unwrap().len() > tokens {
                text.pop();
            }
            text
        })
        .collect()
}

/// FLOPs of one 128-token text through MiniLM's encoder: per layer, the four 384x384 and two
/// 384x1536 projections and the two attention products (128 x 128 x 384 each), over 6 layers.
fn gflop_per_text(seq: f64) -> f64 {
    let (h, i) = (384.0, 1536.0);
    6.0 * (2.0 * seq * (4.0 * h * h + 2.0 * h * i) + 4.0 * seq * seq * h) / 1e9
}

/// Busy CPU seconds of the whole machine, and of this process, so far (from /proc, Linux).
fn cpu_seconds() -> (f64, f64) {
    let tick = 100.0; // USER_HZ on Linux
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let busy = v.iter().take(8).sum::<f64>() - v.get(3).unwrap_or(&0.0) - v.get(4).unwrap_or(&0.0);
    // Summed over the live threads (the pool's and the streams' threads live to the end).
    let mut me = 0.0;
    for task in std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten() {
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        let f: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
        // utime and stime are fields 14 and 15; after the ')' they are the 12th and 13th.
        let field = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
        me += field(11) + field(12);
    }
    (busy / tick, me / tick)
}

/// Runs `f` (which handles `items` texts) and prints texts/s, GFLOP/s and the share of the
/// machine's cores that other processes used meanwhile.
fn phase(name: &str, items: usize, mut f: impl FnMut()) -> f64 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let (busy0, me0) = cpu_seconds();
    let start = Instant::now();
    f();
    let secs = start.elapsed().as_secs_f64();
    let (busy1, me1) = cpu_seconds();
    let others = ((busy1 - busy0) - (me1 - me0)).max(0.0) / (secs * cores);
    let rate = items as f64 / secs;
    eprintln!(
        "  {name:<34} {rate:6.1} texts/s {:6.1} GFLOP/s  (this process {:.2} cores, others {:.0}%)",
        rate * gflop_per_text(128.0),
        (me1 - me0) / secs,
        100.0 * others
    );
    rate
}

#[test]
#[ignore = "benchmark: run in release with --ignored --nocapture"]
fn minilm_cpu_throughput() {
    let m = model();
    let owned = texts_of_length(128, 64);
    let all: Vec<&str> = owned.iter().map(String::as_str).collect();
    assert!(all.iter().all(|t| m.tokenizer().encode(t).unwrap().len() == 128));
    let lease = device().acquire().unwrap();
    let s = lease.stream();
    m.embed(s, &all[..32]).unwrap(); // warm-up: workspace allocated
    let n = 32;
    let encodings: Vec<_> = all[..n].iter().map(|t| m.tokenizer().encode(t).unwrap()).collect();
    eprintln!(
        "MiniLM CPU ({}), 128-token texts ({:.2} GFLOP each):",
        streampool_core::Backend::name(device().backend()),
        gflop_per_text(128.0)
    );
    for _ in 0..2 {
        phase("one at a time", n, || {
            for t in &all[..n] {
                m.embed(s, &[t]).unwrap();
            }
        });
        phase("one at a time, pre-tokenised", n, || {
            for e in &encodings {
                m.embed_encodings(s, std::slice::from_ref(e)).unwrap();
            }
        });
        phase("batch 32", 4 * 32, || {
            for r in 0..4 {
                m.embed(s, &all[(r % 2) * 32..][..32]).unwrap();
            }
        });
    }
}
