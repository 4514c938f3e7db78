//! MiniLM (all-MiniLM-L6-v2) on the CPU backend, in texts per second, on texts of exactly 128
//! tokens ([CLS] and [SEP] included; about 2.8 GFLOP each through the encoder):
//!
//! - `one_at_a_time`: `embed` of one text per call, tokenisation included;
//! - `one_at_a_time_pretokenised`: `embed_encodings` of one pre-tokenised text per call;
//! - `batch_32`: `embed` of 32 texts per call.
//!
//! Needs the real model: `$STREAMPOOL_MODEL_DIR`, else the default cache directory, as the model
//! tests find it (fetch it with `cargo run --release -p streampool-cli -- fetch-model`). Without
//! it the benchmarks are skipped with a message; nothing is downloaded.
//!
//! `cargo bench -p streampool-models --bench minilm_cpu`

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use streampool_core::{Device, PoolConfig};
use streampool_cpu::CpuBackend;
use streampool_models::loading::{default_model_dir, locate_model};
use streampool_models::MiniLm;

/// Tokens per text.
const TOKENS: usize = 128;
/// Texts per batch.
const BATCH: usize = 32;

/// Words the texts are made of.
const PASSAGE: &str = streampool_models::testing::PROSE;

/// `count` texts of exactly [`TOKENS`] tokens, each starting at a different word of [`PASSAGE`].
fn texts(model: &MiniLm<CpuBackend>, count: usize) -> Vec<String> {
    let words: Vec<&str> = PASSAGE.split_whitespace().collect();
    let len = |text: &str| model.tokenizer().encode(text).map_or(usize::MAX, |e| e.len());
    (0..count)
        .map(|i| {
            let mut text = String::new();
            let mut j = i;
            while len(&text) < TOKENS {
                text.push_str(words[j % words.len()]);
                text.push(' ');
                j += 1;
            }
            while len(&text) > TOKENS {
                text.pop();
            }
            text
        })
        .collect()
}

/// The model from `$STREAMPOOL_MODEL_DIR` or the default cache directory; `None`, with a
/// message, when it is missing or does not load.
fn load(device: &Device<CpuBackend>) -> Option<MiniLm<CpuBackend>> {
    let skip = |why: String| {
        eprintln!(
            "minilm_cpu: benchmarks skipped, no usable MiniLM model: {why}\n  \
             (`cargo run --release -p streampool-cli -- fetch-model` fetches it)"
        );
    };
    let files = match default_model_dir().and_then(|dir| locate_model(&dir)) {
        Ok(files) => files,
        Err(e) => {
            skip(e.to_string());
            return None;
        }
    };
    match MiniLm::load(device, &files) {
        Ok(model) => Some(model),
        Err(e) => {
            skip(format!("{}: {e}", files.dir.display()));
            None
        }
    }
}

fn bench(c: &mut Criterion) {
    let device = Device::new(CpuBackend::new(), PoolConfig::default());
    let Some(model) = load(&device) else { return };
    let owned = texts(&model, 2 * BATCH);
    let all: Vec<&str> = owned.iter().map(String::as_str).collect();
    let encodings: Vec<_> = all.iter().map(|t| model.tokenizer().encode(t).unwrap()).collect();
    let lengths: Vec<usize> = encodings.iter().map(|e| e.len()).collect();
    if lengths.iter().any(|&n| n != TOKENS) {
        eprintln!("minilm_cpu: note: some texts are not exactly {TOKENS} tokens: {lengths:?}");
    }
    let lease = device.acquire().unwrap();
    let s = lease.stream();
    model.embed(s, &all[..BATCH]).unwrap(); // the slot's workspace, sized for the largest batch

    let mut group = c.benchmark_group("minilm_cpu");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));

    group.throughput(Throughput::Elements(1));
    let mut i = 0;
    group.bench_function("one_at_a_time", |b| {
        b.iter(|| {
            i = (i + 1) % all.len();
            black_box(model.embed(s, &all[i..][..1]).unwrap())
        })
    });
    group.bench_function("one_at_a_time_pretokenised", |b| {
        b.iter(|| {
            i = (i + 1) % encodings.len();
            black_box(model.embed_encodings(s, &encodings[i..][..1]).unwrap())
        })
    });

    // One call takes about half a second on two cores: a longer measurement for ten samples.
    group.throughput(Throughput::Elements(BATCH as u64));
    group.measurement_time(Duration::from_secs(10));
    let mut r = 0;
    group.bench_function("batch_32", |b| {
        b.iter(|| {
            r = (r + 1) % 2;
            black_box(model.embed(s, &all[r * BATCH..][..BATCH]).unwrap())
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
