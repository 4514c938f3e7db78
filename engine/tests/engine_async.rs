//! The engine's async face and its token budget, with a stand-in model that records every batch
//! it runs: awaited answers reach their callers, a full queue is refused at once, a dropped
//! future's request never runs, and no batch costs more than the budget.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use streampool_core::{Device, PoolConfig};
use streampool_cpu::{CpuBackend, CpuStream};
use streampool_engine::{BatchModel, Engine, EngineConfig, EngineError};

/// Input `x` costs `x / 1000` padded tokens (at least 1) and answers `x + 1`; every batch run is
/// recorded, and each sleeps `delay`.
struct Recorder {
    device: Device<CpuBackend>,
    delay: Duration,
    batches: Mutex<Vec<Vec<u64>>>,
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

impl BatchModel for Recorder {
    type Backend = CpuBackend;
    type Input = u64;
    type Output = u64;
    type Error = Never;

    fn device(&self) -> &Device<CpuBackend> {
        &self.device
    }

    fn check(&self, _: &u64) -> Result<(), Never> {
        Ok(())
    }

    fn padded_tokens(&self, x: &u64) -> usize {
        (*x as usize / 1000).max(1)
    }

    fn run(&self, _: &CpuStream, xs: &[u64]) -> Result<Vec<u64>, Never> {
        std::thread::sleep(self.delay);
        self.batches.lock().unwrap().push(xs.to_vec());
        Ok(xs.iter().map(|x| x + 1).collect())
    }
}

fn recorder(delay: Duration) -> Arc<Recorder> {
    let device = Device::new(CpuBackend::new(), PoolConfig::with_capacity(4));
    Arc::new(Recorder { device, delay, batches: Mutex::new(Vec::new()) })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_time().build().unwrap()
}

#[test]
fn a_thousand_async_requests_get_their_own_answers() {
    let engine =
        Arc::new(Engine::start(recorder(Duration::ZERO), EngineConfig::default()).unwrap());
    runtime().block_on(async {
        let tasks: Vec<_> = (0..1000u64)
            .map(|x| {
                let engine = engine.clone();
                tokio::spawn(async move { (x, engine.submit_async(x).unwrap().await) })
            })
            .collect();
        for task in tasks {
            let (x, answer) = task.await.unwrap();
            assert_eq!(answer.unwrap(), x + 1);
        }
    });
    assert_eq!(engine.stats().requests, 1000);
}

#[test]
fn a_full_queue_is_refused_at_once() {
    let config = EngineConfig::default().workers(1).max_batch(1).queue_capacity(4);
    let engine = Engine::start(recorder(Duration::from_millis(300)), config).unwrap();
    let mut accepted = Vec::new();
    let started = Instant::now();
    let refused = loop {
        match engine.submit_async(accepted.len() as u64) {
            Ok(answer) => accepted.push(answer),
            Err(e) => break e,
        }
        assert!(accepted.len() <= 6, "a queue of 4 behind one busy worker took {}", accepted.len());
    };
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "refusing took {:?}",
        started.elapsed()
    );
    assert!(matches!(refused, EngineError::Overloaded { capacity: 4, waited } if waited.is_zero()));
    let answers = runtime().block_on(async {
        let mut out = Vec::new();
        for a in accepted {
            out.push(a.await.unwrap());
        }
        out
    });
    assert_eq!(answers, (1..=answers.len() as u64).collect::<Vec<_>>());
}

#[test]
fn a_dropped_future_is_cancelled_before_its_batch() {
    let model = recorder(Duration::from_millis(200));
    let config = EngineConfig::default().workers(1).max_batch(1);
    let engine = Engine::start(model.clone(), config).unwrap();
    let first = engine.submit_async(1).unwrap();
    std::thread::sleep(Duration::from_millis(50)); // the worker is running request 1
    let dropped: Vec<_> = (100..110).map(|x| engine.submit_async(x).unwrap()).collect();
    let kept = engine.submit_async(7).unwrap();
    drop(dropped);
    let (a, b) = runtime().block_on(async { (first.await.unwrap(), kept.await.unwrap()) });
    assert_eq!((a, b), (2, 8));
    let ran: Vec<u64> = model.batches.lock().unwrap().iter().flatten().copied().collect();
    assert_eq!(ran, [1, 7], "cancelled requests ran");
    assert_eq!(engine.stats().cancelled, 10);
}

#[test]
fn no_batch_costs_more_than_the_token_budget() {
    let model = recorder(Duration::from_millis(1));
    let config = EngineConfig::default().workers(2).max_batch(64).max_batch_tokens(1000);
    let engine = Engine::start(model.clone(), config).unwrap();
    // Costs 1 to 600 (one over half the budget forces a batch of its own per pair).
    let inputs: Vec<u64> = (0..2000u64).map(|i| (i * 7919 % 600 + 1) * 1000).collect();
    let answers = engine.call_many(inputs.iter().copied());
    for (x, a) in inputs.iter().zip(answers) {
        assert_eq!(a.unwrap(), x + 1);
    }
    let batches = model.batches.lock().unwrap();
    assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), inputs.len());
    for b in batches.iter() {
        let widest = b.iter().map(|x| x / 1000).max().unwrap() as usize;
        assert!(b.len() * widest <= 1000 || b.len() == 1, "batch {b:?} is over the budget");
    }
    assert!(batches.iter().any(|b| b.len() > 1), "nothing was batched");
}
