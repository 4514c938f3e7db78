//! [`CudaStream::capture`] and [`CudaStream::replay`], and the calling thread's capture state.

use std::cell::RefCell;
use std::sync::Arc;

use cudarc::driver::{self as cu, sys};
use streampool_core::{BackendError, Stream};

use super::exec::CudaGraph;
use crate::error;
use crate::pinned::PinnedAlloc;
use crate::stream::CudaStream;

/// The capture this thread is running (captures are thread-local: begun and ended by one
/// thread, and at most one at a time per thread).
struct Active {
    stream: sys::CUstream,
    /// Pinned allocations the captured copies use, handed to the graph.
    pinned: Vec<Arc<PinnedAlloc>>,
}

thread_local! {
    static ACTIVE: RefCell<Option<Active>> = const { RefCell::new(None) };
}

/// During a capture on `stream` by this thread, hand `alloc` to the graph being built (it must
/// outlive the graph's copies) and return true; otherwise false.
pub(crate) fn retain_in_capture(stream: &CudaStream, alloc: &Arc<PinnedAlloc>) -> bool {
    ACTIVE.with_borrow_mut(|active| match active {
        Some(a) if a.stream == stream.cu_stream() => {
            if !a.pinned.iter().any(|p| Arc::ptr_eq(p, alloc)) {
                a.pinned.push(alloc.clone());
            }
            true
        }
        _ => false,
    })
}

/// A failed [`CudaStream::capture`]. In every case the capture has been ended and the stream is
/// back to normal (eager) operation; nothing captured ran.
#[derive(Debug)]
#[non_exhaustive]
pub enum CaptureError<E> {
    /// The body returned this error. A capture-unsafe call inside it (an allocation that
    /// reached `cuMemAlloc`, a synchronisation) shows up here as the error the driver gave that
    /// call.
    Body(E),
    /// The driver invalidated the capture (a capture-unsafe call, or work enqueued on the stream
    /// from another thread), whether or not the body noticed: once invalidated, every launch of
    /// the capture fails, so a body error is then only a consequence and this is returned
    /// instead. Nothing of the capture ran; capturing again is safe.
    Invalidated(BackendError),
    /// Beginning the capture, or instantiating the captured graph, failed; among others with
    /// [`BackendError::StreamCapturing`] when another thread is capturing this stream already.
    Driver(BackendError),
    /// This thread is already capturing (captures do not nest).
    Nested,
}

impl<E: std::fmt::Display> std::fmt::Display for CaptureError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Body(e) => write!(f, "graph capture: {e}"),
            Self::Invalidated(e) => write!(f, "graph capture invalidated: {e}"),
            Self::Driver(e) => write!(f, "graph capture: {e}"),
            Self::Nested => write!(f, "graph capture: this thread is already capturing"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for CaptureError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Body(e) => Some(e),
            Self::Invalidated(e) | Self::Driver(e) => Some(e),
            Self::Nested => None,
        }
    }
}

impl From<CaptureError<BackendError>> for BackendError {
    fn from(e: CaptureError<BackendError>) -> Self {
        match e {
            CaptureError::Body(e) | CaptureError::Invalidated(e) | CaptureError::Driver(e) => e,
            CaptureError::Nested => BackendError::InvalidArgument(
                "graph capture: this thread is already capturing".into(),
            ),
        }
    }
}

/// Ends the capture on drop unless [`Capture::end`] did: a panic or an early return in the body
/// never leaves the stream capturing.
struct Capture<'a> {
    stream: &'a CudaStream,
    ended: bool,
}

impl<'a> Capture<'a> {
    fn enter(stream: &'a CudaStream) -> Self {
        ACTIVE.set(Some(Active { stream: stream.cu_stream(), pinned: Vec::new() }));
        Self { stream, ended: false }
    }

    /// `cuStreamEndCapture`: the captured graph (owned by the caller) and the pinned memory its
    /// copies use.
    fn end(&mut self) -> (Result<sys::CUgraph, BackendError>, Vec<Arc<PinnedAlloc>>) {
        self.ended = true;
        let pinned = ACTIVE.take().map(|a| a.pinned).unwrap_or_default();
        let end = || {
            // Bound without taking another call's pending error: that would skip the end and
            // leave the stream capturing.
            error::bind_raw(self.stream.context()).map_err(error::driver("cuCtxSetCurrent"))?;
            // SAFETY: the stream is live and capturing, begun by this thread in thread-local
            // mode (the driver requires the same thread to end it); the graph returned is the
            // caller's to destroy.
            unsafe { cu::result::stream::end_capture(self.stream.cu_stream()) }
                .map_err(error::driver("cuStreamEndCapture"))
        };
        let ended = end();
        // After the driver's end: frees the arena deferred now record their events eagerly.
        self.stream.arena().end_capture();
        // Last: other threads are admitted again, and may begin their own capture.
        self.stream.gate().end();
        (ended, pinned)
    }
}

impl Drop for Capture<'_> {
    fn drop(&mut self) {
        if !self.ended {
            if let (Ok(graph), _) = self.end() {
                destroy(self.stream, graph);
            }
        }
    }
}

/// Destroy a captured graph that will not be instantiated.
fn destroy(stream: &CudaStream, graph: sys::CUgraph) {
    if !graph.is_null() {
        // SAFETY: `graph` came from cuStreamEndCapture, was never instantiated, and is destroyed
        // once, here.
        stream.context().record_err(unsafe { cu::result::graph::destroy(graph) });
    }
}

/// Captures of one graph at most in [`CudaStream::capture_retrying`].
pub const CAPTURE_TRIES: usize = 4;

impl CudaStream {
    /// Capture the work `body` enqueues on this stream into a [`CudaGraph`] (nothing runs), and
    /// return it with `body`'s value. The capture is thread-local
    /// (`CU_STREAM_CAPTURE_MODE_THREAD_LOCAL`): other threads keep using their own streams,
    /// allocating and synchronising, undisturbed; only this thread's capture-unsafe calls fail.
    ///
    /// The capture is this thread's alone. Until it ends, every submission to this stream from
    /// another thread (ops, copies, event records and waits, replays, allocations from its pool,
    /// another capture) is refused with [`BackendError::StreamCapturing`]; so are `synchronize`,
    /// `Stream::write` and `Stream::read` from any thread, this one included. Submissions from
    /// other threads that were already under way when `capture` was called are waited for
    /// before the capture begins, so none of them lands in the graph.
    ///
    /// The rules (see [`crate::graph`]): run the same work eagerly once first (kernels are
    /// loaded at first use); allocate every buffer the graph uses before the capture and keep it
    /// alive as long as the graph ([`CudaGraph::retain`]); no frees, and no host copies other
    /// than [`CudaStream::copy_from_pinned`] / [`CudaStream::copy_to_pinned`] inside `body`.
    ///
    /// Whatever happens (an error, a panic in `body`), the capture is ended before this returns
    /// and the stream works eagerly again.
    pub fn capture<R, E>(
        &self,
        body: impl FnOnce() -> Result<R, E>,
    ) -> Result<(CudaGraph, R), CaptureError<E>> {
        if ACTIVE.with_borrow(Option::is_some) {
            return Err(CaptureError::Nested);
        }
        let mode = sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL;
        // Before the driver's begin: from now on only this thread's submissions are admitted,
        // and those of other threads still under way have returned (a second capturer is
        // refused here, before it can touch the arena's capture state).
        self.gate().begin(self.slot()).map_err(CaptureError::Driver)?;
        // Before the driver's begin, so that no free from another thread can record its event
        // into the capture (the arena defers frees until `Capture::end`).
        self.arena().begin_capture();
        if let Err(e) = self.raw().begin_capture(mode) {
            self.arena().end_capture();
            self.gate().end();
            return Err(CaptureError::Driver(error::driver("cuStreamBeginCapture")(e)));
        }
        let mut capture = Capture::enter(self);
        let value = body();
        let invalidated = matches!(
            self.raw().capture_status(),
            Ok(sys::CUstreamCaptureStatus::CU_STREAM_CAPTURE_STATUS_INVALIDATED)
        );
        let (ended, pinned) = capture.end();
        match (value, ended) {
            (Err(_), Err(e)) if invalidated => Err(CaptureError::Invalidated(e)),
            (Err(e), ended) => {
                if let Ok(graph) = ended {
                    destroy(self, graph);
                }
                Err(CaptureError::Body(e))
            }
            (Ok(_), Err(e)) => Err(CaptureError::Invalidated(e)),
            (Ok(value), Ok(graph)) => {
                // The upload is enqueued on the stream: admitted like any submission (refused,
                // and the graph destroyed, if another thread began a capture meanwhile).
                let graph = match self.submit() {
                    Ok(_submit) => CudaGraph::instantiate(graph, self.raw(), pinned, &self.shared),
                    Err(e) => {
                        destroy(self, graph);
                        Err(e)
                    }
                };
                Ok((graph.map_err(CaptureError::Driver)?, value))
            }
        }
    }

    /// [`CudaStream::capture`], captured again (up to [`CAPTURE_TRIES`] times in all) while the
    /// driver invalidates the capture ([`CaptureError::Invalidated`]: nothing of it ran, so
    /// `body` simply enqueues its work again). With captures on many threads at once, an H200
    /// invalidated about one capture in a few hundred, whether captures ran one at a time in the
    /// process or not and with lazy or eager module loading; the cause is not known.
    pub fn capture_retrying<R, E>(
        &self,
        mut body: impl FnMut() -> Result<R, E>,
    ) -> Result<(CudaGraph, R), CaptureError<E>> {
        let mut tries = 1;
        loop {
            match self.capture(&mut body) {
                Err(CaptureError::Invalidated(_)) if tries < CAPTURE_TRIES => tries += 1,
                done => return done,
            }
        }
    }

    /// Enqueue one run of `graph` on this stream, the one it was captured on (an error on
    /// another). Asynchronous, like any enqueue: synchronise, or lock the pinned output, to see
    /// its results. Fails while a [`crate::PinnedGuard`] of one of the graph's pinned buffers
    /// is alive, when called inside a capture, or (with [`BackendError::StreamCapturing`])
    /// while another thread captures this stream.
    pub fn replay(&self, graph: &CudaGraph) -> Result<(), BackendError> {
        if !Arc::ptr_eq(graph.stream(), self.raw()) {
            return Err(BackendError::InvalidArgument(
                "a graph replays only on the stream it was captured on".into(),
            ));
        }
        if ACTIVE.with_borrow(Option::is_some) {
            return Err(BackendError::InvalidArgument("replay inside a graph capture".into()));
        }
        let _submit = self.submit()?;
        self.bind()?;
        // Held from before the launch until the events are recorded: no host access in between.
        let mut locks =
            graph.pinned().iter().map(|p| p.try_use()).collect::<Result<Vec<_>, _>>()?;
        // SAFETY: the instance is live (owned by `graph`, borrowed) and belongs to this stream's
        // context; every address its nodes use is kept alive by `graph` or, by the documented
        // contract, by the caller.
        unsafe { cu::result::graph::launch(graph.exec(), self.cu_stream()) }
            .map_err(error::driver("cuGraphLaunch"))?;
        for (p, last) in graph.pinned().iter().zip(&mut locks) {
            p.record(last, self.raw())?;
        }
        Ok(())
    }

    /// Whether this stream is being captured (by any thread), as the driver sees it.
    pub fn is_capturing(&self) -> Result<bool, BackendError> {
        let status = self.raw().capture_status().map_err(error::driver("cuStreamIsCapturing"))?;
        Ok(status != sys::CUstreamCaptureStatus::CU_STREAM_CAPTURE_STATUS_NONE)
    }
}
