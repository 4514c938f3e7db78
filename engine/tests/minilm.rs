//! The engine with the real MiniLM on the CPU backend: 8 caller threads, each result equal to
//! the model's own result for that text alone; a bad input refused alone.

use std::sync::Arc;

use streampool_core::{Device, PoolConfig};
use streampool_cpu::CpuBackend;
use streampool_engine::{Engine, EngineConfig, EngineError, MiniLmBatches};
use streampool_models::graph::ExecMode;
use streampool_models::{testing, MiniLm, ModelError};

const TEXTS: [&str; 8] = [
    "A man is eating food.",
    "A man is riding a horse.",
    "The new movie is awesome.",
    "",
    "Streams, leases and events: one GPU stream per caller.",
    "The cat sits outside",
    "A woman is playing violin.",
    "Two men pushed carts through the woods.",
];

#[test]
fn eight_callers_get_what_the_model_gives_each_text_alone() {
    // Skipped (and says so) where the model cannot be downloaded, outside CI.
    let Some(files) = testing::default_model() else { return };
    let device = Device::new(CpuBackend::new(), PoolConfig::with_capacity(8));
    let model = Arc::new(MiniLm::load(&device, files).unwrap());
    let alone: Vec<Vec<f32>> = {
        let lease = device.acquire().unwrap();
        TEXTS.iter().map(|t| model.embed(lease.stream(), &[t]).unwrap().remove(0)).collect()
    };
    let batches = Arc::new(MiniLmBatches::new(model, ExecMode::Eager));
    let engine = Engine::start(batches.clone(), EngineConfig::default().workers(2)).unwrap();
    std::thread::scope(|s| {
        for t in 0..8 {
            let (engine, batches, alone) = (&engine, &batches, &alone);
            s.spawn(move || {
                for k in 0..4 {
                    let i = (t + 3 * k) % TEXTS.len();
                    let got = engine.call(batches.encode(TEXTS[i]).unwrap()).unwrap();
                    let diff =
                        got.iter().zip(&alone[i]).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
                    assert!(diff <= 1e-5, "thread {t}: {:?} differs by {diff}", TEXTS[i]);
                }
            });
        }
    });
    let stats = engine.stats();
    assert_eq!(stats.requests, 32);
    println!("{stats:?}");

    let mut bad = batches.encode("out of the vocabulary").unwrap();
    bad.input_ids[1] = 1 << 30;
    let answers = engine.call_many([batches.encode(TEXTS[0]).unwrap(), bad]);
    assert!(answers[0].is_ok());
    assert!(
        matches!(
            &answers[1],
            Err(EngineError::Invalid(ModelError::InvalidInput { reason, .. }))
                if reason.contains("vocabulary")
        ),
        "{:?}",
        answers[1]
    );
}
