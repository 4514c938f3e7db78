//! Tokenising one text of 128 tokens ([CLS] and [SEP] included) with all-MiniLM-L6-v2's
//! tokenizer, as the server does for every request: `fast_path` (the ASCII WordPiece path) and
//! `tokenizers_crate` (the same tokenizer with every text going through the tokenizers crate).
//!
//! Needs the real model (`$STREAMPOOL_MODEL_DIR`, else the default cache directory); without it
//! the benchmarks are skipped with a message.
//!
//! `cargo bench -p streampool-models --bench tokenizer`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use streampool_models::loading::{default_model_dir, locate_model, Side, Tokenizer};

/// English prose, repeated and cut to 128 tokens below.
const PASSAGE: &str = streampool_models::testing::PROSE;

fn tokenizer(c: &mut Criterion) {
    let Some(files) = default_model_dir().ok().and_then(|d| locate_model(&d).ok()) else {
        eprintln!("tokenizer bench skipped: no model (run `streampool fetch-model`)");
        return;
    };
    let fast = Tokenizer::from_file(&files.tokenizer, 512).unwrap();
    let slow = Tokenizer::from_file(&files.tokenizer, 512).unwrap().without_fast_path();
    // The longest prefix of whole words with exactly 128 tokens.
    let words: Vec<&str> = PASSAGE.split_whitespace().cycle().take(200).collect();
    let text = (1..=words.len())
        .map(|n| words[..n].join(" "))
        .find(|t| fast.encode(t).unwrap().len() >= 128)
        .expect("the passage has 128 tokens");
    let tokens = fast.encode(&text).unwrap().len();

    let mut group = c.benchmark_group(format!("tokenize_{tokens}_tokens"));
    group.throughput(Throughput::Elements(1));
    for (name, t) in [("fast_path", &fast), ("tokenizers_crate", &slow)] {
        group.bench_function(name, |b| b.iter(|| t.encode_side(black_box(&text), Side::Right)));
    }
    group.finish();
}

criterion_group!(benches, tokenizer);
criterion_main!(benches);
