//! The corpus pipeline with all-MiniLM-L6-v2 on the CPU: 10,000 texts of shuffled lengths
//! through several streams come back in input order, each within 1e-5 of its embedding computed
//! alone; a 1 MB text among them costs no more than a page. Needs the model (downloaded once;
//! a visible SKIPPED line offline, a failure under CI).

use std::sync::Arc;

use streampool_core::{Device, PoolConfig};
use streampool_cpu::CpuBackend;
use streampool_engine::corpus::{embed_all, CorpusConfig};
use streampool_engine::MiniLmBatches;
use streampool_models::graph::ExecMode;
use streampool_models::testing::default_model;
use streampool_models::MiniLm;

/// Words of natural English, mixed into texts of 0 to 20 words.
const WORDS: &str = "the quick brown fox jumps over a lazy dog while streams of light fall on \
                     quiet hills and every river runs to the sea under an open sky";

fn texts(count: usize) -> Vec<String> {
    let words: Vec<&str> = WORDS.split_whitespace().collect();
    let lengths = streampool_core::testing::rand(count, 9);
    let picks = streampool_core::testing::rand(count * 4, 10);
    (0..count)
        .map(|i| {
            let n = ((lengths[i] + 1.0) * 10.0) as usize;
            let start = ((picks[i] + 1.0) * 13.0) as usize;
            (0..n).map(|w| words[(start + w * 7 + i) % words.len()]).collect::<Vec<_>>().join(" ")
        })
        .collect()
}

#[test]
fn ten_thousand_texts_match_one_at_a_time() {
    let Some(files) = default_model() else { return };
    let device = Device::new(CpuBackend::new(), PoolConfig::with_capacity(4));
    let model = Arc::new(MiniLm::load(&device, files).unwrap());
    let mut texts = texts(10_000);
    // A text of 1 MB: cut to a byte bound before tokenising, same tokens.
    texts[1234] = "a long text ".repeat(1 << 17);
    let batches = MiniLmBatches::new(model.clone(), ExecMode::Eager);
    let config =
        CorpusConfig { workers: 2, window: 4096, max_batch_tokens: 2048, ..Default::default() };
    let (rows, stats) = embed_all(&batches, &config, texts.iter().cloned()).unwrap();
    assert_eq!((rows.len(), stats.texts), (texts.len(), texts.len()));
    assert!(stats.padding_share() < 0.1, "padding {:.1}%", 100.0 * stats.padding_share());
    // Every text alone, on two threads (each on its own stream).
    let alone: Vec<Vec<f32>> = std::thread::scope(|s| {
        let halves: Vec<_> = texts
            .chunks(texts.len() / 2)
            .map(|half| {
                let (model, device) = (&model, &device);
                s.spawn(move || {
                    let lease = device.acquire().unwrap();
                    half.iter()
                        .map(|t| model.embed(lease.stream(), &[t.as_str()]).unwrap().remove(0))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        halves.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let mut worst = (0f32, 0usize);
    for (i, (got, want)) in rows.iter().zip(&alone).enumerate() {
        assert_eq!(got.len(), 384);
        let diff = got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        if diff > worst.0 {
            worst = (diff, i);
        }
    }
    assert!(worst.0 <= 1e-5, "text {} differs by {} from its embedding alone", worst.1, worst.0);
}
