//! The engine with a fast stand-in model on the CPU backend: results reach the right callers
//! under 64 threads, bad inputs and failing batches stay contained, nothing is lost at shutdown,
//! a full queue is an error, not a hang.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use streampool_core::{Device, PoolConfig, PoolError};
use streampool_cpu::{CpuBackend, CpuStream};
use streampool_engine::{BatchFailure, BatchModel, Engine, EngineConfig, EngineError};

const REFUSED: u64 = u64::MAX; // refused by check
const FAILS: u64 = u64::MAX - 1; // fails its batch
const PANICS: u64 = u64::MAX - 2; // panics in its batch

/// Output = a function of the input and nothing else, so a result given to the wrong caller is
/// caught; records the slots it ran on.
struct Stand {
    device: Device<CpuBackend>,
    delay: Duration,
    slots_seen: [AtomicUsize; 64],
}

/// The stand-in model's errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum StandError {
    #[error("refused")]
    Refused,
    #[error("stand-in model fails")]
    Fails,
}

fn f(x: u64) -> u64 {
    x.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17) ^ 0x5555
}

impl BatchModel for Stand {
    type Backend = CpuBackend;
    type Input = u64;
    type Output = u64;
    type Error = StandError;

    fn device(&self) -> &Device<CpuBackend> {
        &self.device
    }

    fn check(&self, x: &u64) -> Result<(), StandError> {
        if *x == REFUSED {
            Err(StandError::Refused)
        } else {
            Ok(())
        }
    }

    fn run(&self, stream: &CpuStream, xs: &[u64]) -> Result<Vec<u64>, StandError> {
        self.slots_seen[stream.slot()].fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(self.delay);
        if xs.contains(&PANICS) {
            panic!("stand-in model panics");
        }
        if xs.contains(&FAILS) {
            return Err(StandError::Fails);
        }
        Ok(xs.iter().map(|&x| f(x)).collect())
    }
}

fn stand(delay: Duration) -> Arc<Stand> {
    let device = Device::new(CpuBackend::new(), PoolConfig::with_capacity(8));
    Arc::new(Stand { device, delay, slots_seen: std::array::from_fn(|_| AtomicUsize::new(0)) })
}

#[test]
fn sixty_four_threads_thousand_requests_each_get_their_own_results() {
    const THREADS: u64 = 64;
    const REQUESTS: u64 = 1000;
    let model = stand(Duration::from_micros(50));
    let engine = Engine::start(model.clone(), EngineConfig::default().workers(4)).unwrap();
    let start = Barrier::new(THREADS as usize);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (engine, start) = (&engine, &start);
            s.spawn(move || {
                start.wait(); // cold start: every caller at once
                for i in 0..REQUESTS {
                    let x = t * REQUESTS + i;
                    assert_eq!(engine.call(x).unwrap(), f(x), "thread {t} request {i}");
                }
            });
        }
    });
    let stats = engine.stats();
    assert_eq!(stats.requests, THREADS * REQUESTS);
    assert_eq!(stats.failed_batches, 0);
    // Callers outnumber workers 16 to 1: batches must have formed.
    assert!(stats.mean_batch() > 2.0, "{stats:?}");
    assert!(stats.max_batch <= engine.config().max_batch);
    let slots = model.slots_seen.iter().filter(|n| n.load(Ordering::Relaxed) > 0).count();
    assert_eq!(slots, 4, "every worker ran batches on its own slot");
    println!("{stats:?}, mean batch {:.1}", stats.mean_batch());
}

#[test]
fn a_refused_input_fails_alone() {
    let engine = Engine::start(stand(Duration::ZERO), EngineConfig::default()).unwrap();
    let answers = engine.call_many([1, REFUSED, 2]);
    assert_eq!(answers[0].as_ref().ok(), Some(&f(1)), "{:?}", answers[0]);
    assert!(
        matches!(answers[1], Err(EngineError::Invalid(StandError::Refused))),
        "{:?}",
        answers[1]
    );
    assert_eq!(answers[2].as_ref().ok(), Some(&f(2)), "{:?}", answers[2]);
}

#[test]
fn a_failing_or_panicking_batch_answers_each_request_and_the_engine_goes_on() {
    // One worker, batches formed while it sleeps: the bad input takes its batch down with it.
    let config = EngineConfig::default().workers(1);
    let engine = Engine::start(stand(Duration::from_millis(5)), config).unwrap();
    for bad in [FAILS, PANICS] {
        let answers = engine.call_many([10, 11, bad, 12]);
        for a in &answers {
            assert!(matches!(a, Ok(_) | Err(EngineError::Batch { .. })), "{a:?}");
        }
        // The model's own error, shared by the batch; a panic as its message.
        match &answers[2] {
            Err(EngineError::Batch { cause: BatchFailure::Model(e), .. }) if bad == FAILS => {
                assert_eq!(**e, StandError::Fails)
            }
            Err(EngineError::Batch { cause: BatchFailure::Panicked(message), .. })
                if bad == PANICS =>
            {
                assert!(message.contains("stand-in model panics"), "{message}")
            }
            other => panic!("input {bad}: {other:?}"),
        }
        // The worker survived: later requests are answered.
        assert_eq!(engine.call(7).ok(), Some(f(7)));
    }
    let stats = engine.stats();
    assert!(stats.failed_batches >= 2, "{stats:?}");
}

#[test]
fn dropping_the_engine_answers_everything_already_queued() {
    let engine =
        Engine::start(stand(Duration::from_millis(2)), EngineConfig::default().workers(2)).unwrap();
    let pending: Vec<_> = (0..500).map(|x| (x, engine.submit(x).unwrap())).collect();
    drop(engine); // stops intake, drains the queue, joins the workers
    for (x, p) in pending {
        assert_eq!(p.wait().ok(), Some(f(x)), "request {x} was lost");
    }
}

#[test]
fn a_full_queue_is_an_error_after_the_timeout_not_a_hang() {
    let config = EngineConfig::default()
        .workers(1)
        .max_batch(1)
        .queue_capacity(2)
        .submit_timeout(Duration::from_millis(20));
    let engine = Engine::start(stand(Duration::from_millis(200)), config).unwrap();
    let mut pending = Vec::new();
    let mut overloaded = None;
    for x in 0..10 {
        match engine.submit(x) {
            Ok(p) => pending.push((x, p)),
            Err(e) => {
                overloaded = Some(e);
                break;
            }
        }
    }
    let e = overloaded.expect("a queue of 2 behind a 200 ms batch must fill");
    assert!(matches!(e, EngineError::Overloaded { capacity: 2, .. }), "{e:?}");
    for (x, p) in pending {
        assert_eq!(p.wait().ok(), Some(f(x)));
    }
}

#[test]
fn a_pool_too_small_for_the_workers_fails_the_start() {
    let model = stand(Duration::ZERO);
    let held: Vec<_> = (0..6).map(|_| model.device().acquire().unwrap()).collect();
    let e = Engine::start(model.clone(), EngineConfig::default().workers(3)).unwrap_err();
    // Workers 1..=2 took the pool's last two slots; worker 3 found none.
    assert!(
        matches!(
            e,
            EngineError::Start { worker: 3, workers: 3, source: PoolError::Exhausted { .. }, .. }
        ),
        "{e:?}"
    );
    // The slots leased for the workers before the failure were given back.
    assert_eq!(model.device().stats().in_use, held.len());
    drop(held);
    assert!(Engine::start(model, EngineConfig::default().workers(3)).is_ok());
}

/// Takes only powers of two, as MiniLM's graph mode does.
struct PowersOfTwo {
    inner: Arc<Stand>,
    sizes: std::sync::Mutex<Vec<usize>>,
}

impl BatchModel for PowersOfTwo {
    type Backend = CpuBackend;
    type Input = u64;
    type Output = u64;
    type Error = StandError;
    fn device(&self) -> &Device<CpuBackend> {
        self.inner.device()
    }
    fn check(&self, x: &u64) -> Result<(), StandError> {
        self.inner.check(x)
    }
    fn batch_size(&self, available: usize) -> usize {
        1 << available.ilog2()
    }
    fn run(&self, stream: &CpuStream, xs: &[u64]) -> Result<Vec<u64>, StandError> {
        self.sizes.lock().unwrap().push(xs.len());
        self.inner.run(stream, xs)
    }
}

#[test]
fn batches_take_the_size_the_model_asks_for() {
    let model = Arc::new(PowersOfTwo {
        inner: stand(Duration::from_micros(200)),
        sizes: std::sync::Mutex::new(Vec::new()),
    });
    let engine = Engine::start(model.clone(), EngineConfig::default().workers(2)).unwrap();
    std::thread::scope(|s| {
        for t in 0..24u64 {
            let engine = &engine;
            s.spawn(move || {
                for i in 0..50 {
                    assert_eq!(engine.call(t * 50 + i).ok(), Some(f(t * 50 + i)));
                }
            });
        }
    });
    let sizes = model.sizes.lock().unwrap();
    assert_eq!(sizes.iter().sum::<usize>(), 24 * 50);
    assert!(sizes.iter().all(|n| n.is_power_of_two()), "{sizes:?}");
    assert!(sizes.iter().any(|&n| n > 1), "no batch formed: {sizes:?}");
}
