//! A stream's asynchronous failures are never lost: each is kept for the thread that submitted
//! the failed work, and every synchronize that covers it reports it. `Device::synchronize`
//! waits for every stream even when some failed, and names every failed stream.

use std::sync::Barrier;
use std::time::{Duration, Instant};

use streampool_core::{BackendError, Device, PoolConfig, Stream};
use streampool_cpu::{CpuBackend, CpuStream};

fn device(capacity: usize) -> Device<CpuBackend> {
    Device::new(CpuBackend::new(), PoolConfig::with_capacity(capacity))
}

/// Enqueue a job that fails with `message`.
fn fail(stream: &CpuStream, message: &str) {
    let message = message.to_owned();
    stream.enqueue(move || Err(message)).unwrap();
}

#[test]
fn device_sync_waits_for_every_stream_despite_a_failure() {
    let device = device(2);
    let (failing, busy) = (device.acquire().unwrap(), device.acquire().unwrap());
    let hold = Duration::from_millis(200);
    busy.stream().hold(hold).unwrap();
    fail(failing.stream(), "boom");
    let start = Instant::now();
    let e = device.synchronize().unwrap_err();
    assert!(
        start.elapsed() >= hold,
        "returned after {:?}, before the busy stream",
        start.elapsed()
    );
    assert_eq!(busy.stream().pending(), 0, "work left on the other stream");
    assert!(
        matches!(&e, BackendError::StreamFailed { slot, .. } if *slot == failing.slot()),
        "{e}"
    );
}

#[test]
fn device_sync_names_every_failed_stream() {
    let device = device(3);
    let leases: Vec<_> = (0..3).map(|_| device.acquire().unwrap()).collect();
    fail(leases[0].stream(), "first");
    fail(leases[2].stream(), "second");
    let e = device.synchronize().unwrap_err();
    let BackendError::Streams(failures) = &e else { panic!("one error for two streams: {e}") };
    let slots: Vec<usize> = failures
        .iter()
        .map(|f| match f {
            BackendError::StreamFailed { slot, .. } => *slot,
            other => panic!("{other}"),
        })
        .collect();
    assert_eq!(slots, [leases[0].slot(), leases[2].slot()]);
    assert!(e.to_string().contains("first") && e.to_string().contains("second"), "{e}");
}

/// Another thread's synchronize (device-wide, or of the stream itself) reports the owner's
/// failure without taking it: the owner still gets it, once.
#[test]
fn the_owner_keeps_its_failure_when_another_thread_synchronises() {
    let device = device(2);
    let lease = device.acquire().unwrap();
    let stream = lease.stream();
    fail(stream, "the owner's fault");
    let seen = Barrier::new(2);
    std::thread::scope(|s| {
        s.spawn(|| {
            let e = device.synchronize().unwrap_err();
            assert!(e.to_string().contains("the owner's fault"), "{e}");
            assert!(stream.synchronize().is_err(), "the stream's synchronize covers it too");
            seen.wait();
        });
        seen.wait();
    });
    let e = stream.synchronize().unwrap_err();
    assert!(matches!(e, BackendError::StreamFailed { .. }), "{e}");
    stream.synchronize().expect("reported to the owner once");
    device.synchronize().expect("and then to nobody");
}

/// A failure is reported at its submitter's next submit too, and only there: another thread
/// submitting to the same stream is not handed it.
#[test]
fn a_failure_goes_to_its_submitter_at_its_next_submit() {
    let device = device(1);
    let lease = device.acquire().unwrap();
    let stream = lease.stream();
    fail(stream, "mine");
    std::thread::scope(|s| {
        s.spawn(|| {
            stream.synchronize().unwrap_err(); // waits for the failed job; does not take it
            stream.enqueue(|| Ok(())).expect("not this thread's failure");
        });
    });
    let e = stream.enqueue(|| Ok(())).unwrap_err();
    assert!(e.to_string().contains("mine"), "{e}");
    stream.synchronize().unwrap();
}
