//! The semantic tests every backend must pass, written once and expanded per backend by
//! [`conformance_tests!`](crate::conformance_tests) (the CPU backend's `tests/conformance.rs`,
//! the CUDA and Metal backends' ignored GPU tests). Each function builds the devices it needs
//! with `make`, does real work with results known in advance, and panics with a message saying
//! what broke. A new case is a function here plus one line in the macro: every backend then runs
//! it.
//!
//! Work items are the portable ops of [`Stream`]: `fill_u32` then a chain of `mul_add_u32`
//! whose result depends on the order it ran in, so a lost, reordered or unsynchronised op shows
//! up as a wrong number.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::Duration;

use crate::{Backend, Device, Event, EventError, PoolConfig, Stream, Timing};

/// Length, in u32 words, of the buffers the tests compute on.
pub const WORDS: usize = 256;

/// The value a chain computes: start from `seed`, then `x = x * mul + add` for each step.
pub fn expected(seed: u32, steps: &[(u32, u32)]) -> u32 {
    steps.iter().fold(seed, |x, &(m, a)| x.wrapping_mul(m).wrapping_add(a))
}

/// A chain of steps unique to `(thread, iteration)`.
pub fn steps_for(thread: usize, iteration: usize) -> Vec<(u32, u32)> {
    (0..4)
        .map(|k| (3 + 2 * ((thread + k) as u32 % 7), (iteration * 31 + k * 7 + thread) as u32))
        .collect()
}

/// Read a whole u32 buffer through `stream` (which waits for that stream's earlier work).
pub fn read_u32<B: Backend>(stream: &B::Stream, buf: &B::Buffer) -> Vec<u32> {
    let mut bytes = vec![0u8; B::buffer_len(buf)];
    stream.read(buf, 0, &mut bytes).expect("read");
    bytes.chunks_exact(4).map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]])).collect()
}

/// Enqueue `fill(seed)` then the chain on `stream`, read back, and check every word.
pub fn run_chain<B: Backend>(stream: &B::Stream, buf: &B::Buffer, seed: u32, steps: &[(u32, u32)]) {
    stream.fill_u32(buf, seed).expect("fill");
    for &(m, a) in steps {
        stream.mul_add_u32(buf, m, a).expect("mul_add");
    }
    let want = expected(seed, steps);
    let got = read_u32::<B>(stream, buf);
    assert!(
        got.iter().all(|&x| x == want),
        "stream {}: want {want}, got {:?}",
        stream.slot(),
        &got[..4]
    );
}

/// Work on one stream runs in submission order.
pub fn in_order<B: Backend>(make: impl Fn(PoolConfig) -> Device<B>) {
    let device = make(PoolConfig::with_capacity(2));
    let lease = device.acquire().unwrap();
    let buf = device.alloc(WORDS * 4).unwrap();
    let steps: Vec<(u32, u32)> = (0..64).map(|i| (i % 5 + 2, i * 13 + 1)).collect();
    run_chain::<B>(lease.stream(), &buf, 7, &steps);
}

/// `threads` threads × `iterations`, each on its own stream, each iteration a chain with a result
/// known in advance. Also checks that concurrent owners never share a slot.
pub fn stress<B: Backend>(
    make: impl Fn(PoolConfig) -> Device<B>,
    threads: usize,
    iterations: usize,
) {
    let device = make(PoolConfig::with_capacity(threads));
    let owners: Vec<AtomicUsize> = (0..threads).map(|_| AtomicUsize::new(0)).collect();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (device, owners) = (&device, &owners);
            s.spawn(move || {
                let buf = device.alloc(WORDS * 4).unwrap();
                let lease = device.acquire().unwrap();
                assert_eq!(owners[lease.slot()].fetch_add(1, Ordering::SeqCst), 0, "slot shared");
                for i in 0..iterations {
                    run_chain::<B>(lease.stream(), &buf, (t * 1000 + i) as u32, &steps_for(t, i));
                }
                owners[lease.slot()].fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    let stats = device.stats();
    assert_eq!(stats.in_use, 0);
    assert!(stats.high_water <= threads);
}

/// `submitters` threads share ONE leased stream (`lease.stream()`, borrowed by scoped threads),
/// each running `iterations` chains on its own buffers, released at once by a barrier so that
/// their submissions interleave. Each iteration: `fill` then a chain of `mul_add` on a source
/// buffer, `copy` into a result buffer of that iteration, one more `mul_add` on the result (so
/// it shows whether the copy ran after the chain and before the last step); and one `mul_add` on
/// the thread's accumulator, a chain across the whole run. Nothing is read until every
/// submitter is done; then one `synchronize` and every buffer is checked exactly: a lost op, or
/// one of a submitter's ops run out of its order, shows up as a wrong number.
pub fn shared_stream<B: Backend>(
    make: impl Fn(PoolConfig) -> Device<B>,
    submitters: usize,
    iterations: usize,
) {
    let device = make(PoolConfig::with_capacity(1));
    let lease = device.acquire().unwrap();
    let stream = lease.stream();
    let barrier = Barrier::new(submitters);
    let accumulator_step = |t: usize, i: usize| (3 + 2 * (t as u32 % 5), (i * 7 + t) as u32);
    // Per submitter: its accumulator and, per iteration, (result buffer, expected value).
    let buffers = std::thread::scope(|s| {
        let handles: Vec<_> = (0..submitters)
            .map(|t| {
                let (device, barrier) = (&device, &barrier);
                s.spawn(move || {
                    let alloc = || device.alloc(WORDS * 4).unwrap();
                    let accumulator = alloc();
                    let mut results = Vec::with_capacity(iterations);
                    barrier.wait();
                    stream.fill_u32(&accumulator, t as u32).expect("fill");
                    for i in 0..iterations {
                        let (src, dst) = (alloc(), alloc());
                        let seed = (t * 1000 + i) as u32;
                        let mut steps = steps_for(t, i);
                        stream.fill_u32(&src, seed).expect("fill");
                        for &(m, a) in &steps {
                            stream.mul_add_u32(&src, m, a).expect("mul_add");
                        }
                        stream.copy(&src, &dst).expect("copy");
                        let last = (5, i as u32);
                        stream.mul_add_u32(&dst, last.0, last.1).expect("mul_add");
                        steps.push(last);
                        let (m, a) = accumulator_step(t, i);
                        stream.mul_add_u32(&accumulator, m, a).expect("mul_add");
                        results.push((dst, expected(seed, &steps)));
                    }
                    (accumulator, results)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect::<Vec<_>>()
    });
    stream.synchronize().expect("synchronize after every submitter");
    for (t, (accumulator, results)) in buffers.iter().enumerate() {
        let steps: Vec<_> = (0..iterations).map(|i| accumulator_step(t, i)).collect();
        let want = expected(t as u32, &steps);
        let got = read_u32::<B>(stream, accumulator);
        assert!(
            got.iter().all(|&x| x == want),
            "submitter {t}: accumulator want {want}, got {:?}",
            &got[..4]
        );
        for (i, (dst, want)) in results.iter().enumerate() {
            let got = read_u32::<B>(stream, dst);
            assert!(
                got.iter().all(|&x| x == *want),
                "submitter {t}, iteration {i}: want {want}, got {:?}",
                &got[..4]
            );
        }
    }
}

/// `submitters` threads share ONE leased stream and ONE buffer, each owning a disjoint region of
/// it (addressed by `write` and `read` at an offset), interleaving: `iterations` writes of a
/// value to its region (the last one it submitted must win: per-submitter order), a `read` of
/// its region every few writes (it must see its own latest write exactly: a read waits for the
/// stream's earlier work, whoever submitted it, and no other submitter touches the region), and
/// `mul_add(1, t + 1)` on a shared counter buffer (additions commute, so the total is known
/// whatever the interleaving, and shows a lost op).
pub fn shared_stream_regions<B: Backend>(
    make: impl Fn(PoolConfig) -> Device<B>,
    submitters: usize,
    iterations: usize,
) {
    const REGION: usize = 64; // words
    let device = make(PoolConfig::with_capacity(1));
    let lease = device.acquire().unwrap();
    let stream = lease.stream();
    let shared = device.alloc(submitters * REGION * 4).unwrap();
    let counter = device.alloc(WORDS * 4).unwrap();
    stream.fill_u32(&shared, u32::MAX).unwrap();
    stream.fill_u32(&counter, 0).unwrap();
    let value = |t: usize, i: usize| (t * 100_000 + i * 7 + 1) as u32;
    let bytes = |v: u32| v.to_le_bytes().repeat(REGION);
    let barrier = Barrier::new(submitters);
    std::thread::scope(|s| {
        for t in 0..submitters {
            let (shared, counter, barrier) = (&shared, &counter, &barrier);
            s.spawn(move || {
                let offset = t * REGION * 4;
                let mut region = vec![0u8; REGION * 4];
                barrier.wait();
                for i in 0..iterations {
                    stream.write(shared, offset, &bytes(value(t, i))).expect("write");
                    stream.mul_add_u32(counter, 1, t as u32 + 1).expect("mul_add");
                    if i % 8 == 7 {
                        stream.read(shared, offset, &mut region).expect("read");
                        assert_eq!(
                            region,
                            bytes(value(t, i)),
                            "submitter {t}, iteration {i}: read missed its own write"
                        );
                    }
                }
            });
        }
    });
    stream.synchronize().expect("synchronize after every submitter");
    let got = read_u32::<B>(stream, &shared);
    for (t, region) in got.chunks_exact(REGION).enumerate() {
        let want = value(t, iterations - 1);
        assert!(
            region.iter().all(|&x| x == want),
            "region {t}: want the last write {want}, got {:?}",
            &region[..4]
        );
    }
    let per_round: usize = (1..=submitters).sum();
    let want = (per_round * iterations) as u32;
    let got = read_u32::<B>(stream, &counter);
    assert!(got.iter().all(|&x| x == want), "counter: want {want}, got {:?}", &got[..4]);
}

/// Every thread's first use of a fresh device is released at once by a barrier: streams are
/// created concurrently by whichever thread comes first, and every result is right.
pub fn cold_start<B: Backend>(make: impl Fn(PoolConfig) -> Device<B>, threads: usize) {
    let device = make(PoolConfig::with_capacity(threads));
    let (start, hold) = (Barrier::new(threads), Barrier::new(threads));
    let slots = Mutex::new(HashSet::new());
    std::thread::scope(|s| {
        for t in 0..threads {
            let (device, start, hold, slots) = (&device, &start, &hold, &slots);
            s.spawn(move || {
                start.wait();
                let result = device.with_stream(|stream| {
                    let buf = device.alloc(WORDS * 4).unwrap();
                    run_chain::<B>(stream, &buf, t as u32, &steps_for(t, 0));
                    // Every thread holds its slot until all have one: none can be handed on.
                    hold.wait();
                    stream.slot()
                });
                let slot = result.expect("with_stream on a cold device");
                assert!(slots.lock().unwrap().insert(slot), "two threads got slot {slot}");
            });
        }
    });
    assert_eq!(device.stats().streams_created, threads);
    assert_eq!(device.stats().in_use, 0);
}

/// `with_stream` gives its slot back when it returns: a thread that exits (or never exits) keeps
/// nothing, and the slot is reused.
pub fn with_stream_gives_back<B: Backend>(make: impl Fn(PoolConfig) -> Device<B>) {
    let device = make(PoolConfig::with_capacity(1).acquire_timeout(Duration::from_secs(5)));
    for round in 0..3 {
        let d = device.clone();
        let slot = std::thread::spawn(move || {
            let slot = d
                .with_stream(|stream| {
                    let buf = d.alloc(WORDS * 4).unwrap();
                    run_chain::<B>(stream, &buf, round, &steps_for(0, round as usize));
                    stream.slot()
                })
                .unwrap();
            assert_eq!(d.stats().in_use, 0, "round {round}: kept after with_stream returned");
            slot
        })
        .join()
        .unwrap();
        assert_eq!(slot, 0);
        assert_eq!(device.stats().in_use, 0, "round {round}: the exited thread kept its slot");
    }
    assert!(device.try_acquire().unwrap().is_some());
}

/// Right after a scope of threads that used `with_stream` returns, every slot is free (nothing
/// waits for thread-local destructors, which run after the scope's join), in every round.
pub fn scope_returns_with_slots_free<B: Backend>(
    make: impl Fn(PoolConfig) -> Device<B>,
    rounds: usize,
) {
    let device = make(PoolConfig::with_capacity(4));
    for round in 0..rounds {
        std::thread::scope(|s| {
            for t in 0..4 {
                let device = &device;
                s.spawn(move || {
                    let ok = device
                        .with_stream(|stream| {
                            let buf = device.alloc(16).unwrap();
                            stream.fill_u32(&buf, t).unwrap();
                            read_u32::<B>(stream, &buf).iter().all(|&x| x == t)
                        })
                        .unwrap();
                    assert!(ok, "round {round}, thread {t}: wrong result");
                });
            }
        });
        let busy = device.stats().in_use;
        assert_eq!(busy, 0, "round {round}: {busy} slots still taken after the scope returned");
        assert!(device.try_acquire().unwrap().is_some(), "round {round}: no slot free");
    }
}

/// Concurrent owners hold distinct slots, and a thread's current stream is the one it set.
pub fn distinct_owners<B: Backend>(make: impl Fn(PoolConfig) -> Device<B>, threads: usize) {
    let device = make(PoolConfig::with_capacity(threads));
    let barrier = Barrier::new(threads);
    let slots = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads {
            let (device, barrier, slots) = (&device, &barrier, &slots);
            s.spawn(move || {
                let lease = device.acquire().unwrap();
                let _current = lease.make_current();
                barrier.wait(); // every lease is held at this point
                assert_eq!(device.current_slot(), Some(lease.slot()));
                let via_current = device.with_stream(|s| s.slot()).unwrap();
                assert_eq!(via_current, lease.slot());
                slots.lock().unwrap().push(lease.slot());
                barrier.wait();
            });
        }
    });
    let slots = slots.into_inner().unwrap();
    let distinct: HashSet<_> = slots.iter().collect();
    assert_eq!(distinct.len(), threads, "owners shared a slot: {slots:?}");
}

/// 4× more threads than slots, each iteration with a scoped lease: never two owners, every
/// result right, callers wait instead of failing.
pub fn oversubscribed<B: Backend>(
    make: impl Fn(PoolConfig) -> Device<B>,
    capacity: usize,
    iterations: usize,
) {
    let device = make(PoolConfig::with_capacity(capacity).acquire_timeout(Duration::from_secs(60)));
    let threads = capacity * 4;
    let owners: Vec<AtomicUsize> = (0..capacity).map(|_| AtomicUsize::new(0)).collect();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (device, owners) = (&device, &owners);
            s.spawn(move || {
                let buf = device.alloc(WORDS * 4).unwrap();
                for i in 0..iterations {
                    let lease = device.acquire().unwrap();
                    assert_eq!(
                        owners[lease.slot()].fetch_add(1, Ordering::SeqCst),
                        0,
                        "two owners"
                    );
                    run_chain::<B>(lease.stream(), &buf, (t + i) as u32, &steps_for(t, i));
                    owners[lease.slot()].fetch_sub(1, Ordering::SeqCst);
                }
            });
        }
    });
    let stats = device.stats();
    assert_eq!(stats.in_use, 0);
    assert!(stats.high_water <= capacity);
    assert_eq!(stats.acquires, (threads * iterations) as u64);
    assert_eq!(stats.timeouts, 0);
}

/// `total` short-lived threads, `batch` alive at a time, each using `with_stream` once: no slot
/// leaks, high-water mark within capacity.
pub fn churn<B: Backend>(make: impl Fn(PoolConfig) -> Device<B>, total: usize, batch: usize) {
    let capacity = batch.min(32);
    let device = make(PoolConfig::with_capacity(capacity).acquire_timeout(Duration::from_secs(60)));
    let done = AtomicUsize::new(0);
    for start in (0..total).step_by(batch) {
        std::thread::scope(|s| {
            let mut handles = Vec::with_capacity(batch);
            for t in start..(start + batch).min(total) {
                let (device, done) = (&device, &done);
                handles.push(s.spawn(move || {
                    let ok = device
                        .with_stream(|stream| {
                            let buf = device.alloc(16).unwrap();
                            stream.fill_u32(&buf, t as u32).unwrap();
                            stream.mul_add_u32(&buf, 3, 1).unwrap();
                            read_u32::<B>(stream, &buf).iter().all(|&x| x == (t as u32) * 3 + 1)
                        })
                        .unwrap();
                    assert!(ok, "thread {t} computed a wrong result");
                    done.fetch_add(1, Ordering::Relaxed);
                    // No explicit release: `with_stream` gave the slot back on return.
                }));
            }
            // Joined one by one: a failed thread's panic fails the test with its own message.
            for h in handles {
                h.join().unwrap();
            }
        });
    }
    assert_eq!(done.load(Ordering::Relaxed), total);
    let stats = device.stats();
    assert_eq!(stats.in_use, 0, "slots leaked by exited threads");
    assert!(stats.high_water <= capacity);
    assert_eq!(stats.acquires, total as u64);
}

/// `device.synchronize()` waits for work that *other threads* submitted on their own streams.
/// Fails if it waited only for the caller's stream.
pub fn device_sync_waits_for_others<B: Backend>(make: impl Fn(PoolConfig) -> Device<B>) {
    let device = make(PoolConfig::with_capacity(4));
    let buf = device.alloc(WORDS * 4).unwrap();
    let (submitted_tx, submitted_rx) = std::sync::mpsc::channel();
    let (checked_tx, checked_rx) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|s| {
        let (device, buf) = (&device, &buf);
        s.spawn(move || {
            let lease = device.acquire().unwrap();
            lease.stream().fill_u32(buf, 1).unwrap();
            lease.stream().hold(Duration::from_millis(300)).unwrap();
            lease.stream().mul_add_u32(buf, 5, 37).unwrap(); // 1 * 5 + 37 = 42
            submitted_tx.send(()).unwrap();
            checked_rx.recv().unwrap(); // keep the lease (and the work) until checked
        });
        submitted_rx.recv().unwrap();
        let mine = device.acquire().unwrap();
        device.synchronize().unwrap();
        // Read on the caller's own (idle) stream: only right if the other stream had finished.
        let got = read_u32::<B>(mine.stream(), buf);
        checked_tx.send(()).unwrap();
        assert!(
            got.iter().all(|&x| x == 42),
            "device sync returned before another thread's work: {:?}",
            &got[..4]
        );
    });
}

/// `device.synchronize()` returns while other threads keep submitting.
pub fn device_sync_under_load<B: Backend>(make: impl Fn(PoolConfig) -> Device<B>, threads: usize) {
    let device = make(PoolConfig::with_capacity(threads + 1));
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        for t in 0..threads {
            let (device, stop) = (&device, &stop);
            s.spawn(move || {
                let buf = device.alloc(WORDS * 4).unwrap();
                let lease = device.acquire().unwrap();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    run_chain::<B>(lease.stream(), &buf, i, &steps_for(t, i as usize));
                    i += 1;
                }
            });
        }
        for _ in 0..20 {
            device.synchronize().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
    });
}

/// An event recorded on stream A and waited on by stream B orders B's later work after A's
/// earlier work, even when A is slow.
pub fn cross_stream_events<B: Backend>(make: impl Fn(PoolConfig) -> Device<B>) {
    let device = make(PoolConfig::with_capacity(2));
    let a = device.acquire().unwrap();
    let b = device.acquire().unwrap();
    let x = device.alloc(WORDS * 4).unwrap();
    let y = device.alloc(WORDS * 4).unwrap();
    let event = device.new_event(Timing::Disabled).unwrap();
    for round in 0..3u32 {
        a.stream().fill_u32(&x, round).unwrap();
        a.stream().hold(Duration::from_millis(100)).unwrap();
        a.stream().mul_add_u32(&x, 3, 4).unwrap();
        a.stream().record(&event).unwrap();
        b.stream().wait_event(&event).unwrap();
        b.stream().copy(&x, &y).unwrap();
        let got = read_u32::<B>(b.stream(), &y);
        assert!(
            got.iter().all(|&v| v == round * 3 + 4),
            "round {round}: B ran before A's work: {:?}",
            &got[..4]
        );
    }
}

/// Host wait and non-blocking query on an event.
pub fn event_host_wait_and_query<B: Backend>(make: impl Fn(PoolConfig) -> Device<B>) {
    let device = make(PoolConfig::with_capacity(1));
    let lease = device.acquire().unwrap();
    let event = device.new_event(Timing::Disabled).unwrap();
    assert!(event.query().unwrap(), "a never-recorded event counts as complete");
    lease.stream().hold(Duration::from_millis(200)).unwrap();
    lease.stream().record(&event).unwrap();
    assert!(!event.query().unwrap(), "query must not wait: the stream is still busy");
    event.synchronize().unwrap();
    assert!(event.query().unwrap());
}

/// Elapsed time: a typed error at once (while the work is still running) unless both events
/// time; `NotReady` rather than a block for pending timing events; a plausible duration once done.
pub fn event_elapsed<B: Backend>(make: impl Fn(PoolConfig) -> Device<B>) {
    let device = make(PoolConfig::with_capacity(1));
    let lease = device.acquire().unwrap();
    let stream = lease.stream();
    let hold = Duration::from_millis(200);

    let (p, q) =
        (device.new_event(Timing::Disabled).unwrap(), device.new_event(Timing::Disabled).unwrap());
    assert_eq!(q.elapsed_since(&p), Err(EventError::TimingDisabled));
    stream.record(&p).unwrap();
    stream.hold(hold).unwrap();
    stream.record(&q).unwrap();
    assert_eq!(q.elapsed_since(&p), Err(EventError::TimingDisabled));
    assert!(!q.query().unwrap(), "elapsed_since blocked until the work was done");

    let (s, e) =
        (device.new_event(Timing::Enabled).unwrap(), device.new_event(Timing::Enabled).unwrap());
    assert_eq!(e.elapsed_since(&s), Err(EventError::NotRecorded));
    stream.record(&s).unwrap();
    stream.hold(hold).unwrap();
    stream.record(&e).unwrap();
    assert_eq!(e.elapsed_since(&s), Err(EventError::NotReady));
    assert!(!e.query().unwrap(), "elapsed_since blocked until the work was done");
    // Mixed: one timing, one not.
    assert_eq!(e.elapsed_since(&p), Err(EventError::TimingDisabled));
    e.synchronize().unwrap();
    let took = e.elapsed_since(&s).unwrap();
    assert!(took >= hold / 2 && took < hold * 20, "elapsed {took:?} for a hold of {hold:?}");
    stream.synchronize().unwrap();
}

/// Expands the whole conformance suite into `#[test]` functions, one per case, named after what
/// they check (`in_order`, `stress_64_threads_x_200`, `churn_10000_threads`, ...), calling the
/// functions of [`conformance`](crate::conformance) with `$make`: an expression for a
/// `Fn(PoolConfig) -> Device<B>` (a function's name, usually), evaluated once per test.
/// Attributes after it go on every test: `#[ignore = "..."]` for a backend that needs hardware.
///
/// ```
/// use streampool_core::{testing::NullBackend, Device, PoolConfig};
///
/// fn make(config: PoolConfig) -> Device<NullBackend> {
///     Device::new(NullBackend, config)
/// }
/// // In a test file: every case, each ignored unless asked for.
/// streampool_core::conformance_tests!(make, #[ignore = "needs a real backend"]);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr $(, #[$attr:meta])* $(,)?) => {
        $crate::conformance_tests!(@cases ($make) ($(#[$attr])*)
            in_order => in_order();
            stress_64_threads_x_200 => stress(64, 200);
            cold_start_64_threads => cold_start(64);
            with_stream_gives_the_slot_back => with_stream_gives_back();
            scope_returns_with_every_slot_free => scope_returns_with_slots_free(300);
            concurrent_owners_hold_distinct_slots => distinct_owners(32);
            oversubscribed_4x => oversubscribed(8, 50);
            shared_stream_2_submitters => shared_stream(2, 500);
            shared_stream_8_submitters => shared_stream(8, 200);
            shared_stream_disjoint_regions_8_submitters => shared_stream_regions(8, 400);
            churn_10000_threads => churn(10_000, 64);
            device_sync_waits_for_other_threads => device_sync_waits_for_others();
            device_sync_while_others_submit => device_sync_under_load(8);
            cross_stream_event_ordering => cross_stream_events();
            event_host_wait_and_query => event_host_wait_and_query();
            event_elapsed_errors_never_block => event_elapsed();
        );
    };
    // One case at a time, so that every test gets all the attributes.
    (@cases ($make:expr) ($(#[$attr:meta])*)) => {};
    (@cases ($make:expr) ($(#[$attr:meta])*)
        $test:ident => $case:ident($($arg:expr),*); $($rest:tt)*) => {
        #[test]
        $(#[$attr])*
        fn $test() {
            $crate::conformance::$case($make $(, $arg)*);
        }
        $crate::conformance_tests!(@cases ($make) ($(#[$attr])*) $($rest)*);
    };
}
