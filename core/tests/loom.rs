//! loom model checks of the stream pool and the compile-once cache. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p streampool-core --test loom --release`
//! (`scripts/test` does). Without `--cfg loom` this file is empty.
#![cfg(loom)]

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

use streampool_core::testing::NullBackend;
use streampool_core::{submitter, CacheError, CompileCache, Device, Failures, PoolConfig};

fn device(capacity: usize) -> Device<NullBackend> {
    Device::new(NullBackend, PoolConfig::with_capacity(capacity))
}

/// Two threads contend for one slot: each gets it in turn (one waits), never both at once, and
/// the pool ends empty.
#[test]
fn pool_one_slot_two_threads() {
    loom::model(|| {
        let device = device(1);
        let owners = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let (device, owners) = (device.clone(), owners.clone());
                thread::spawn(move || {
                    let lease = device.acquire().unwrap();
                    assert_eq!(owners.fetch_add(1, Ordering::SeqCst), 0, "two owners of one slot");
                    assert_eq!(lease.slot(), 0);
                    owners.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(device.stats().in_use, 0);
        assert_eq!(device.stats().acquires, 2);
    });
}

/// Two callers enter and leave the running count in every interleaving: the loads they see are
/// 1 and 2 when they overlap, 1 and 1 when they do not, and the count ends at zero.
#[test]
fn running_count_is_exact_in_every_interleaving() {
    loom::model(|| {
        let device = device(2);
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let device = device.clone();
                thread::spawn(move || {
                    let running = device.enter();
                    let seen = device.running();
                    assert!((1..=2).contains(&seen));
                    running.load()
                })
            })
            .collect();
        let mut loads: Vec<usize> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        loads.sort_unstable();
        assert!(loads == [1, 2] || loads == [1, 1], "{loads:?}");
        assert_eq!(device.running(), 0);
    });
}

/// Two slots, three threads using scoped leases: concurrent owners always hold distinct slots.
/// Bounded to two preemptions whatever `LOOM_MAX_PREEMPTIONS` says: with three threads the
/// unbounded model ran past 20 minutes on a busy 2-core machine.
#[test]
fn pool_two_slots_three_threads() {
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(2);
    model.check(|| {
        let device = device(2);
        let owners = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let (device, owners) = (device.clone(), owners.clone());
                thread::spawn(move || {
                    let lease = device.acquire().unwrap();
                    assert_eq!(owners[lease.slot()].fetch_add(1, Ordering::SeqCst), 0);
                    owners[lease.slot()].fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let stats = device.stats();
        assert_eq!(stats.in_use, 0);
        assert!(stats.high_water <= 2);
    });
}

/// `with_stream`'s lease is given back when the call returns, so a second thread waiting on the
/// only slot gets it.
#[test]
fn pool_thread_exit_recycles() {
    loom::model(|| {
        let device = device(1);
        let first = {
            let device = device.clone();
            thread::spawn(move || device.with_stream(streampool_core::Stream::slot).unwrap())
        };
        let second = {
            let device = device.clone();
            thread::spawn(move || device.with_stream(streampool_core::Stream::slot).unwrap())
        };
        assert_eq!(first.join().unwrap(), 0);
        assert_eq!(second.join().unwrap(), 0);
        // If a finished call kept the slot, this is a deadlock and loom reports it.
        let lease = device.acquire().unwrap();
        assert_eq!(lease.slot(), 0);
        drop(lease);
        assert_eq!(device.stats().in_use, 0);
    });
}

/// N threads missing the same key at once: one compile, every caller gets its value.
#[test]
fn cache_one_compile_for_concurrent_misses() {
    loom::model(|| {
        let cache: Arc<CompileCache<u32, u32, String>> = Arc::new(CompileCache::new());
        let calls = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let (cache, calls) = (cache.clone(), calls.clone());
                thread::spawn(move || {
                    cache
                        .get(&7, || {
                            calls.fetch_add(1, Ordering::SeqCst);
                            Ok(49)
                        })
                        .unwrap()
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), 49);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(cache.compiles(), 1);
    });
}

/// A failed compile reaches the caller that waited on it and is not cached: a later caller
/// compiles again and succeeds.
#[test]
fn cache_failure_reaches_waiters_and_is_not_cached() {
    loom::model(|| {
        let cache: Arc<CompileCache<u32, u32, String>> = Arc::new(CompileCache::new());
        let failing = {
            let cache = cache.clone();
            thread::spawn(move || cache.get(&1, || Err("boom".to_string())))
        };
        let other = {
            let cache = cache.clone();
            thread::spawn(move || cache.get(&1, || Err("bang".to_string())))
        };
        for h in [failing, other] {
            match h.join().unwrap() {
                Err(CacheError::Failed(e)) => assert!(*e == "boom" || *e == "bang"),
                other => panic!("a failing compile must give an error, got {other:?}"),
            }
        }
        // Not cached as a success, and not cached as a failure either.
        assert_eq!(cache.get(&1, || Ok(5)).unwrap(), 5);
        assert_eq!(cache.get(&1, || Ok(6)).unwrap(), 5);
    });
}

/// A slow compile of one key does not block a compile or hit of another key: the compile of key
/// 1 cannot finish until key 2 has been served, so any blocking would be a deadlock loom reports.
#[test]
fn cache_slow_key_does_not_block_other_keys() {
    loom::model(|| {
        let cache: Arc<CompileCache<u32, u32, String>> = Arc::new(CompileCache::new());
        let other_done = Arc::new(AtomicBool::new(false));
        let slow = {
            let (cache, other_done) = (cache.clone(), other_done.clone());
            thread::spawn(move || {
                cache
                    .get(&1, || {
                        while !other_done.load(Ordering::SeqCst) {
                            thread::yield_now();
                        }
                        Ok(10)
                    })
                    .unwrap()
            })
        };
        let fast = {
            let (cache, other_done) = (cache.clone(), other_done.clone());
            thread::spawn(move || {
                let v = cache.get(&2, || Ok(20)).unwrap();
                other_done.store(true, Ordering::SeqCst);
                v
            })
        };
        assert_eq!(fast.join().unwrap(), 20);
        assert_eq!(slow.join().unwrap(), 10);
    });
}

/// The failure-keeping rule: a stream's worker records a failure of the owner's work while
/// another thread synchronises; whatever the interleaving, the other thread never takes it (it
/// sees it, or sees nothing yet), and the owner hears of it exactly once after the work is done.
#[test]
fn a_failure_is_kept_for_its_submitter() {
    loom::model(|| {
        let failures = Arc::new(Failures::default());
        let done = Arc::new(AtomicBool::new(false));
        let owner = submitter();
        let worker = {
            let (failures, done) = (failures.clone(), done.clone());
            thread::spawn(move || {
                failures.record(owner, "fault".into());
                done.store(true, Ordering::Release);
            })
        };
        let other = {
            let failures = failures.clone();
            thread::spawn(move || {
                // Not the submitter: may report it, never takes it.
                assert!(failures.take_own(0).is_ok());
                let _ = failures.check(0);
            })
        };
        worker.join().unwrap();
        other.join().unwrap();
        assert!(done.load(Ordering::Acquire));
        assert!(failures.check(0).is_err(), "the owner's synchronize reports it");
        assert!(failures.take_own(0).is_ok(), "once");
        assert!(failures.check(0).is_ok());
    });
}
