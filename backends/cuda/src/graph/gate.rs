//! Who may submit to a stream while it is being captured: the [`CaptureGate`] of every
//! [`CudaStream`](crate::CudaStream).
//!
//! Any thread may submit to a stream (the `Stream` contract of `streampool-core`). A capture is
//! different: the driver puts into the graph whatever is enqueued on the capturing stream,
//! whichever thread enqueues it, so another thread's kernel would silently join the graph, and a
//! pageable `Stream::write` (from any thread) would become a graph node reading a host slice that
//! is freed when `write` returns. So while a thread captures a stream:
//!
//! - enqueues from other threads are refused ([`CaptureGate::submit`]);
//! - synchronisation and copies from or to pageable host memory are refused from every thread,
//!   the capturing one included ([`CaptureGate::host_sync`]);
//! - both with [`BackendError::StreamCapturing`], before anything reaches the driver: the
//!   capture is not disturbed.
//!
//! The owner's hot path takes no lock: two atomic increments of a counter no other thread
//! writes in the common case, and one load.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use streampool_core::BackendError;

/// A number for the calling thread, never 0 and never reused in the process (std's
/// `ThreadId::as_u64` is unstable).
fn thread_token() -> u64 {
    /// The next token to hand out. Relaxed: only uniqueness matters, which the RMW gives.
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static TOKEN: u64 = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    TOKEN.with(|t| *t)
}

/// The capture state of one stream, as its submission paths see it.
///
/// The race it closes: a submitter that checked "not capturing" and then enqueued could have
/// its work land after another thread's `cuStreamBeginCapture`, inside the graph. So a
/// submission announces itself in `in_flight` *before* it looks at `capturing`, and stays
/// announced until its enqueue has returned; a capture publishes itself in `capturing` *before*
/// it looks at `in_flight`, and begins only once `in_flight` is zero. All four accesses are
/// `SeqCst`, so in their single total order either the submission's increment comes first (and
/// the capture waits for it to finish) or the capture's store does (and the submission sees it
/// and is refused): never both missed (the store-buffer pattern; `AcqRel` alone would allow it).
#[derive(Debug, Default)]
pub(crate) struct CaptureGate {
    /// Token ([`thread_token`]) of the thread capturing the stream; 0 when none. Set by
    /// [`CaptureGate::begin`] (a compare-exchange from 0, so one capturer at a time) before the
    /// driver's `cuStreamBeginCapture`, cleared by [`CaptureGate::end`] after
    /// `cuStreamEndCapture`, both by the capturing thread.
    capturing: AtomicU64,
    /// Submissions between their check of `capturing` and the return of their enqueue, from any
    /// thread (refused ones that got past the first look briefly count too). Each
    /// [`Submission`] holds one, given back on drop with `Release` (the enqueue happens before a
    /// capture's begin that reads 0).
    in_flight: AtomicUsize,
}

/// A submission admitted by the gate: hold it until the enqueue has returned.
#[must_use = "the submission is admitted only while this guard lives"]
pub(crate) struct Submission<'a> {
    gate: &'a CaptureGate,
}

impl Drop for Submission<'_> {
    fn drop(&mut self) {
        self.gate.in_flight.fetch_sub(1, Ordering::Release);
    }
}

impl CaptureGate {
    /// Admit an enqueue on the stream of `slot` from the calling thread: refused with
    /// [`BackendError::StreamCapturing`] while another thread captures the stream; allowed to
    /// the capturing thread (its work is what the graph is made of) and to everyone when no
    /// capture runs.
    pub(crate) fn submit(&self, slot: usize) -> Result<Submission<'_>, BackendError> {
        self.admit(slot, |capturer| capturer == 0 || capturer == thread_token())
    }

    /// Admit a synchronisation of the stream, or a copy through it from or to pageable host
    /// memory: refused with [`BackendError::StreamCapturing`] while any thread, the calling one
    /// included, captures the stream (a graph cannot wait for the host, and a pageable copy
    /// would be captured reading memory gone by the first replay).
    pub(crate) fn host_sync(&self, slot: usize) -> Result<Submission<'_>, BackendError> {
        self.admit(slot, |capturer| capturer == 0)
    }

    fn admit(
        &self,
        slot: usize,
        allowed: impl Fn(u64) -> bool,
    ) -> Result<Submission<'_>, BackendError> {
        // A refusal known at once leaves `in_flight` alone, so that a capture's `begin` is not
        // held up by threads retrying refused submissions. Not the admission itself: the
        // capture may begin right after this load.
        if !allowed(self.capturing.load(Ordering::Relaxed)) {
            return Err(BackendError::StreamCapturing { slot });
        }
        // Announce first, then look (see the type's docs); the guard gives the count back on
        // every path, the refusal included.
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let admitted = Submission { gate: self };
        if allowed(self.capturing.load(Ordering::SeqCst)) {
            Ok(admitted)
        } else {
            Err(BackendError::StreamCapturing { slot })
        }
    }

    /// The calling thread is about to begin a capture of the stream of `slot`: refused with
    /// [`BackendError::StreamCapturing`] if a thread (this one included) already captures it;
    /// otherwise returns once every submission admitted before has finished enqueueing, and
    /// from then on only this thread is admitted by [`CaptureGate::submit`]. Call
    /// [`CaptureGate::end`] after the capture, whatever happens.
    pub(crate) fn begin(&self, slot: usize) -> Result<(), BackendError> {
        self.capturing
            .compare_exchange(0, thread_token(), Ordering::SeqCst, Ordering::Relaxed)
            .map_err(|_| BackendError::StreamCapturing { slot })?;
        // No admission can start now but this thread's, which is here. Those under way are an
        // enqueue (microseconds) or, for `read` / `synchronize`, a wait for the stream's work
        // (as long as that work): yield a while, then sleep between looks.
        let mut looks = 0u32;
        while self.in_flight.load(Ordering::SeqCst) != 0 {
            looks += 1;
            if looks < 64 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(std::time::Duration::from_micros(50));
            }
        }
        Ok(())
    }

    /// The capture begun by [`CaptureGate::begin`] has ended (after `cuStreamEndCapture`, or
    /// after a failed begin): every thread is admitted again.
    pub(crate) fn end(&self) {
        self.capturing.store(0, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::mpsc;
    use std::time::Duration;

    use streampool_core::BackendError;

    use super::CaptureGate;

    const SLOT: usize = 3;

    fn refused<T>(r: Result<T, BackendError>) -> bool {
        matches!(r, Err(BackendError::StreamCapturing { slot: SLOT }))
    }

    #[test]
    fn the_capturer_alone_submits_and_nobody_synchronises() {
        let gate = CaptureGate::default();
        assert!(gate.submit(SLOT).is_ok() && gate.host_sync(SLOT).is_ok());
        gate.begin(SLOT).unwrap();
        assert!(gate.submit(SLOT).is_ok(), "the capturing thread submits");
        assert!(refused(gate.host_sync(SLOT)), "even the capturing thread cannot synchronise");
        assert!(refused(gate.begin(SLOT)), "captures do not nest on one stream");
        std::thread::scope(|s| {
            s.spawn(|| {
                assert!(refused(gate.submit(SLOT)), "another thread's enqueue");
                assert!(refused(gate.host_sync(SLOT)), "another thread's synchronize");
                assert!(refused(gate.begin(SLOT)), "another thread's capture");
            });
        });
        gate.end();
        std::thread::scope(|s| {
            s.spawn(|| assert!(gate.submit(SLOT).is_ok() && gate.host_sync(SLOT).is_ok()));
        });
        assert_eq!(gate.in_flight.load(Ordering::SeqCst), 0, "refusals gave their count back");
    }

    /// A capture does not begin while another thread's admitted submission is still enqueueing.
    #[test]
    fn a_capture_waits_for_submissions_in_flight() {
        let gate = CaptureGate::default();
        let (admitted_tx, admitted_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let enqueued = AtomicBool::new(false);
        std::thread::scope(|s| {
            let (gate, enqueued) = (&gate, &enqueued);
            s.spawn(move || {
                let submission = gate.submit(SLOT).unwrap();
                admitted_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                std::thread::sleep(Duration::from_millis(50));
                enqueued.store(true, Ordering::SeqCst);
                drop(submission);
            });
            admitted_rx.recv().unwrap();
            release_tx.send(()).unwrap();
            gate.begin(SLOT).unwrap();
            assert!(enqueued.load(Ordering::SeqCst), "began before the enqueue had returned");
            gate.end();
        });
    }

    /// Many threads submit while one captures over and over: no submission of another thread is
    /// ever admitted while a capture is under way (between `begin` returning and `end`), and
    /// every submission outside captures is.
    #[test]
    fn no_foreign_submission_inside_a_capture_under_contention() {
        const SUBMITTERS: usize = 4;
        let gate = CaptureGate::default();
        let capturing = AtomicBool::new(false);
        let stop = AtomicBool::new(false);
        let (admitted, refusals) = (AtomicUsize::new(0), AtomicUsize::new(0));
        std::thread::scope(|s| {
            for _ in 0..SUBMITTERS {
                s.spawn(|| {
                    while !stop.load(Ordering::Relaxed) {
                        match gate.submit(SLOT) {
                            Ok(_submission) => {
                                // The "enqueue": long enough for a capture to begin meanwhile,
                                // were it not held back.
                                for _ in 0..3 {
                                    assert!(!capturing.load(Ordering::SeqCst), "joined a capture");
                                    std::thread::yield_now();
                                }
                                admitted.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => {
                                assert!(refused(Err::<(), _>(e)));
                                refusals.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                });
            }
            for _ in 0..300 {
                gate.begin(SLOT).unwrap();
                capturing.store(true, Ordering::SeqCst);
                let _own = gate.submit(SLOT).expect("the capturer submits");
                std::thread::yield_now();
                capturing.store(false, Ordering::SeqCst);
                gate.end();
            }
            stop.store(true, Ordering::Relaxed);
        });
        assert!(admitted.load(Ordering::Relaxed) > 0);
        assert_eq!(gate.in_flight.load(Ordering::SeqCst), 0);
    }
}
