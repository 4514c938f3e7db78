//! An engine over several devices (CPU devices standing in for GPUs): the same results as one
//! device, per-device counters that add up, work that goes where workers are free, and a
//! failing device whose requests fail with its name while the others go on.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use streampool_core::{Device, PoolConfig, PoolError};
use streampool_cpu::{CpuBackend, CpuStream};
use streampool_engine::{BatchModel, Engine, EngineConfig, EngineError};

/// The output is a function of the input alone, so a result given to the wrong caller shows.
fn f(x: u64) -> u64 {
    x.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17) ^ 0x5555
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum Fault {
    #[error("the device is broken")]
    Broken,
}

/// One device's copy of a stand-in model: sleeps `delay` per batch; once `broken`, fails
/// every batch and the check after it.
struct Copy {
    device: Device<CpuBackend>,
    delay: Duration,
    broken: AtomicBool,
    batches: AtomicUsize,
}

impl BatchModel for Copy {
    type Backend = CpuBackend;
    type Input = u64;
    type Output = u64;
    type Error = Fault;

    fn device(&self) -> &Device<CpuBackend> {
        &self.device
    }

    fn check(&self, _: &u64) -> Result<(), Fault> {
        Ok(())
    }

    fn run(&self, _: &CpuStream, xs: &[u64]) -> Result<Vec<u64>, Fault> {
        self.batches.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(self.delay);
        if self.broken.load(Ordering::Relaxed) {
            return Err(Fault::Broken);
        }
        Ok(xs.iter().map(|&x| f(x)).collect())
    }

    fn check_device(&self, _: &CpuStream) -> Result<(), Fault> {
        match self.broken.load(Ordering::Relaxed) {
            true => Err(Fault::Broken),
            false => Ok(()),
        }
    }
}

/// One copy per delay, on CPU devices `cpu:0`, `cpu:1`, ...
fn copies(delays: &[Duration]) -> Vec<Arc<Copy>> {
    delays
        .iter()
        .enumerate()
        .map(|(i, &delay)| {
            let device = Device::new(CpuBackend::with_ordinal(i), PoolConfig::with_capacity(8));
            let (broken, batches) = (AtomicBool::new(false), AtomicUsize::new(0));
            Arc::new(Copy { device, delay, broken, batches })
        })
        .collect()
}

const MS: Duration = Duration::from_millis(1);

#[test]
fn sixty_four_threads_over_three_devices_get_their_own_results_and_the_counters_add_up() {
    let models = copies(&[MS, MS, MS]);
    let engine = Engine::start_on(models.clone(), EngineConfig::default().workers(2)).unwrap();
    let start = Barrier::new(64);
    std::thread::scope(|s| {
        for t in 0..64u64 {
            let (engine, start) = (&engine, &start);
            s.spawn(move || {
                start.wait();
                for i in 0..1000 {
                    let x = t * 1_000_000 + i;
                    assert_eq!(engine.call(x).unwrap(), f(x), "thread {t}, request {i}");
                }
            });
        }
    });
    let total = engine.stats();
    let devices = engine.device_stats();
    assert_eq!(total.requests, 64_000);
    let labels: Vec<&str> = devices.iter().map(|d| d.device.as_str()).collect();
    assert_eq!(labels, ["cpu:0", "cpu:1", "cpu:2"]);
    assert_eq!(devices.iter().map(|d| d.stats.requests).sum::<u64>(), total.requests);
    assert_eq!(devices.iter().map(|d| d.stats.batches).sum::<u64>(), total.batches);
    for (d, model) in devices.iter().zip(&models) {
        assert!(d.healthy() && d.workers == 2, "{d:?}");
        assert!(d.stats.requests > 0, "every device took work: {devices:?}");
        assert_eq!(d.stats.batches, model.batches.load(Ordering::Relaxed) as u64, "{d:?}");
    }
}

#[test]
fn a_device_list_of_one_is_the_single_device_engine() {
    let models = copies(&[MS]);
    let one = Engine::start(models[0].clone(), EngineConfig::default().workers(2)).unwrap();
    let answers: Vec<u64> = one.call_many(0..500).into_iter().map(Result::unwrap).collect();
    drop(one);
    let listed = Engine::start_on(copies(&[MS]), EngineConfig::default().workers(2)).unwrap();
    let listed_answers: Vec<u64> =
        listed.call_many(0..500).into_iter().map(Result::unwrap).collect();
    assert_eq!(listed_answers, answers);
    assert_eq!(answers, (0..500).map(f).collect::<Vec<_>>());
    assert_eq!(listed.device_stats().len(), 1);
    assert_eq!(listed.device_stats()[0].stats, listed.stats());
}

#[test]
fn the_least_loaded_device_gets_the_most_work() {
    // cpu:0 takes 20 ms a batch, cpu:1 1 ms: with 8 callers, cpu:1's free workers take far
    // more requests.
    let models = copies(&[20 * MS, MS]);
    let engine = Engine::start_on(models, EngineConfig::default().workers(2)).unwrap();
    std::thread::scope(|s| {
        for t in 0..8u64 {
            let engine = &engine;
            s.spawn(move || {
                for i in 0..200 {
                    assert_eq!(engine.call(t * 1000 + i).unwrap(), f(t * 1000 + i));
                }
            });
        }
    });
    let devices = engine.device_stats();
    let (slow, fast) = (devices[0].stats.requests, devices[1].stats.requests);
    assert_eq!(slow + fast, 1600);
    assert!(fast > 2 * slow, "slow {slow}, fast {fast}");
}

#[test]
fn a_failing_device_fails_its_own_requests_with_its_name_and_the_others_go_on() {
    let models = copies(&[MS, MS, MS]);
    let engine = Engine::start_on(models.clone(), EngineConfig::default().workers(2)).unwrap();
    // Warm: every device answers.
    assert!(engine.call_many(0..300).into_iter().all(|a| a.is_ok()));
    models[1].broken.store(true, Ordering::Relaxed);
    let failed = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for t in 0..16u64 {
            let (engine, failed) = (&engine, &failed);
            s.spawn(move || {
                for i in 0..300 {
                    let x = t * 1000 + i;
                    match engine.call(x) {
                        Ok(y) => assert_eq!(y, f(x)),
                        Err(EngineError::DeviceFailed { device, cause }) => {
                            assert_eq!(device, "cpu:1");
                            assert!(cause.contains("the device is broken"), "{cause}");
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => panic!("request {x}: {e}"),
                    }
                }
            });
        }
    });
    // Only the batches cpu:1 ran or held when it failed: at most its 2 workers' worth.
    let failed = failed.into_inner();
    assert!((1..=2 * 64 * 2).contains(&failed), "{failed} requests failed");
    let devices = engine.device_stats();
    assert!(devices[0].healthy() && devices[2].healthy(), "{devices:?}");
    let why = devices[1].failure.as_deref().unwrap_or_default();
    assert!(why.contains("the device is broken"), "{devices:?}");
    // After it: every request is answered by the others, none reaches cpu:1.
    let before = models[1].batches.load(Ordering::Relaxed);
    for (x, answer) in engine.call_many(0..2000).into_iter().enumerate() {
        assert_eq!(answer.unwrap(), f(x as u64));
    }
    assert_eq!(models[1].batches.load(Ordering::Relaxed), before);
}

#[test]
fn when_every_device_fails_requests_fail_at_once_instead_of_waiting() {
    let models = copies(&[MS, MS]);
    let engine = Engine::start_on(models.clone(), EngineConfig::default().workers(2)).unwrap();
    for m in &models {
        m.broken.store(true, Ordering::Relaxed);
    }
    // Requests in flight while the devices fail: each gets an answer, never a hang.
    let answers = engine.call_many(0..400);
    for a in &answers {
        assert!(
            matches!(a, Err(EngineError::DeviceFailed { .. } | EngineError::NoDevice { .. })),
            "{a:?}"
        );
    }
    assert!(engine.device_stats().iter().all(|d| !d.healthy()));
    match engine.call(1) {
        Err(EngineError::NoDevice { failures }) => {
            assert!(failures.contains("cpu:0") && failures.contains("cpu:1"), "{failures}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_device_too_small_for_its_workers_is_a_start_error_naming_it() {
    let mut models = copies(&[MS, MS]);
    let small = Device::new(CpuBackend::with_ordinal(2), PoolConfig::with_capacity(1));
    let (broken, batches) = (AtomicBool::new(false), AtomicUsize::new(0));
    models.push(Arc::new(Copy { device: small, delay: MS, broken, batches }));
    match Engine::start_on(models, EngineConfig::default().workers(2)) {
        Err(EngineError::Start {
            device,
            worker: 2,
            workers: 2,
            source: PoolError::Exhausted { .. },
        }) => {
            assert_eq!(device, "cpu:2")
        }
        other => panic!("{:?}", other.err()),
    }
    assert!(matches!(
        Engine::<Copy>::start_on(Vec::new(), EngineConfig::default()),
        Err(EngineError::NoDevice { .. })
    ));
}
