//! Pool ownership rules that need no real work (NullBackend): the exhaustion policy, current
//! streams set only from owned leases, `with_stream`'s lease for the call.

use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};

use streampool_core::testing::NullBackend;
use streampool_core::{Device, PoolConfig, PoolError};

fn device(capacity: usize, timeout_ms: u64) -> Device<NullBackend> {
    let config =
        PoolConfig::with_capacity(capacity).acquire_timeout(Duration::from_millis(timeout_ms));
    Device::new(NullBackend, config)
}

#[test]
fn exhausted_pool_waits_then_fails_with_a_typed_error() {
    let device = device(2, 150);
    let _a = device.acquire().unwrap();
    let _b = device.acquire().unwrap();
    assert!(device.try_acquire().unwrap().is_none());
    let start = Instant::now();
    match device.acquire() {
        Err(PoolError::Exhausted { capacity, waited }) => {
            assert_eq!(capacity, 2);
            assert!(waited >= Duration::from_millis(150));
        }
        other => panic!("expected Exhausted, got {other:?}"),
    }
    assert!(start.elapsed() >= Duration::from_millis(150));
    let stats = device.stats();
    assert_eq!((stats.in_use, stats.waits, stats.timeouts), (2, 1, 1));
}

#[test]
fn waiting_acquire_gets_a_released_slot() {
    let device = device(1, 10_000);
    let lease = device.acquire().unwrap();
    let d = device.clone();
    let waiter = std::thread::spawn(move || d.acquire().map(|l| l.slot()));
    std::thread::sleep(Duration::from_millis(50));
    drop(lease);
    assert_eq!(waiter.join().unwrap().unwrap(), 0);
    assert_eq!(device.stats().waits, 1);
}

#[test]
fn current_stream_follows_guards_and_restores() {
    let device = device(4, 1000);
    assert_eq!(device.current_slot(), None);
    let a = device.acquire().unwrap();
    let b = device.acquire().unwrap();
    {
        let _ga = a.make_current();
        assert_eq!(device.current_slot(), Some(a.slot()));
        {
            let _gb = b.make_current();
            assert_eq!(device.current_slot(), Some(b.slot()));
            assert_eq!(device.with_stream(streampool_core::Stream::slot).unwrap(), b.slot());
        }
        assert_eq!(device.current_slot(), Some(a.slot()));
    }
    assert_eq!(device.current_slot(), None);
    // Another thread does not see this thread's current stream.
    let _g = a.make_current();
    let d = device.clone();
    assert_eq!(std::thread::spawn(move || d.current_slot()).join().unwrap(), None);
}

#[test]
fn current_stream_is_per_device() {
    let (d1, d2) = (device(2, 1000), device(2, 1000));
    let l1 = d1.acquire().unwrap();
    let _g = l1.make_current();
    assert_eq!(d1.current_slot(), Some(l1.slot()));
    assert_eq!(d2.current_slot(), None);
}

#[test]
fn with_stream_takes_a_lease_for_the_call_only() {
    let device = device(2, 1000);
    let first = device.with_stream(streampool_core::Stream::slot).unwrap();
    assert_eq!(device.stats().in_use, 0, "given back when the call returns");
    let again = device.with_stream(streampool_core::Stream::slot).unwrap();
    assert_eq!(first, again, "the thread's last slot again, when it is free");
    assert_eq!(device.stats().acquires, 2);
    let held = device.acquire().unwrap();
    let other = device.with_stream(streampool_core::Stream::slot).unwrap();
    assert_ne!(other, held.slot(), "a slot held elsewhere is not used");
}

#[test]
fn nested_with_stream_on_two_devices() {
    let (d1, d2) = (device(1, 1000), device(1, 1000));
    let slots = d1.with_stream(|_| d2.with_stream(streampool_core::Stream::slot).unwrap()).unwrap();
    assert_eq!(slots, 0);
    assert_eq!(d2.stats().in_use, 0);
    assert_eq!(d1.stats().in_use, 0);
}

#[test]
fn leases_move_between_threads_with_their_ownership() {
    let device = device(1, 1000);
    let lease = device.acquire().unwrap();
    let slot = std::thread::spawn(move || lease.slot()).join().unwrap();
    assert_eq!(slot, 0);
    assert_eq!(
        device.stats().in_use,
        0,
        "the lease dropped on the other thread gave the slot back"
    );
}

/// 64 threads inside `enter` at once (a barrier holds them there): each saw a distinct load, the
/// loads are exactly 1 to 64, the device counts 64, then none once they leave. Idle leases do
/// not count.
#[test]
fn sixty_four_running_callers_each_see_a_distinct_load() {
    const THREADS: usize = 64;
    let device = device(THREADS, 1000);
    let idle = device.acquire().unwrap();
    let barrier = std::sync::Barrier::new(THREADS + 1);
    let mut loads: Vec<usize> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    let running = device.enter();
                    barrier.wait(); // all inside
                    barrier.wait(); // counted by the main thread
                    running.load()
                })
            })
            .collect();
        barrier.wait();
        assert_eq!(device.running(), THREADS);
        barrier.wait();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    loads.sort_unstable();
    assert_eq!(loads, (1..=THREADS).collect::<Vec<_>>());
    assert_eq!(device.running(), 0);
    assert_eq!(device.stats().in_use, 1);
    drop(idle);
}

/// A device used by a thread through `with_stream` only is not kept alive by that thread: once
/// every other handle is gone, the thread's own drop of its handle destroys it, right there, not
/// later in a thread-local destructor (on CUDA that teardown synchronises a context other
/// threads may be capturing on).
#[test]
fn with_stream_never_keeps_a_device_for_thread_exit() {
    let backend = streampool_core::testing::CountedBackend::default();
    let drops = backend.drops.clone();
    let device = Device::new(backend, PoolConfig::with_capacity(2));
    let (used, go) = (std::sync::Barrier::new(2), std::sync::Barrier::new(2));
    std::thread::scope(|s| {
        let mine = device.clone();
        let (used, go, drops) = (&used, &go, &drops);
        s.spawn(move || {
            mine.with_stream(streampool_core::Stream::slot).unwrap();
            used.wait();
            go.wait(); // the other handle is gone now
            assert_eq!(drops.load(SeqCst), 0, "alive while this thread holds a handle");
            drop(mine);
            assert_eq!(drops.load(SeqCst), 1, "destroyed by this drop, not at thread exit");
        });
        used.wait();
        drop(device);
        go.wait();
    });
    assert_eq!(drops.load(SeqCst), 1);
}
