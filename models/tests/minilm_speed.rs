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
    let start = Instant::now();
    for t in &all[..n] {
        m.embed(s, &[t]).unwrap();
    }
    let single = n as f64 / start.elapsed().as_secs_f64();

    let rounds = 4;
    let start = Instant::now();
    for r in 0..rounds {
        let batch = &all[(r % 2) * 32..][..32];
        m.embed(s, batch).unwrap();
    }
    let batched = (rounds * 32) as f64 / start.elapsed().as_secs_f64();
    eprintln!(
        "MiniLM CPU ({}), 128-token texts: one at a time {single:.1} texts/s, batch 32 \
         {batched:.1} texts/s",
        streampool_core::Backend::name(device().backend())
    );
}
